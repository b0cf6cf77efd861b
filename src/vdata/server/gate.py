"""The contribution gate: an automatic report on every contribution batch, stored with it.

Per record, the hygiene flags of `flags.py` (duplicate of public data, near duplicate, refusal or
meta-text, malformed, other language, StereoSet/CrowS-Pairs overlap). For the batch as a whole, its
social groups and its group-attribute pairings against the public (approved) dataset's, and a
recommendation for the moderator. The operator's `--auto-reject` rules reject the records whose flags
they name, through the moderation log (moderator `auto-gate`, the flag as the reason), never silently.

The server has no language model (tests/server/test_no_ml.py), so the stereotype direction here is
the lexicon's: for each (group, attribute word) pairing of the batch, whether the public data already
pairs that attribute with that group more often than the group's share predicts ("along" its skew) or
less ("against" it). The model-based direction (log-probability against CDA counterfactuals) is
`vdata audit --target-model`'s, run on whole snapshots by `vdata benchmark-dataset`.

`gate_worker.py` runs `make_report` in a worker process after the PUT has been answered.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from vdata.core.errors import UserError
from vdata.core.hygiene import tokenize
from vdata.core.lexicon import Lexicon, build_lexicon, term_key
from vdata.server import flags, moderation_store, store
from vdata.server.db import record_store
from vdata.server.settings import AUTO_REJECT_RULES
from vdata.server.store import now_utc

log = logging.getLogger("vdata.server")

GATE_MODERATOR = "auto-gate"
REPORT_SCHEMA = "vdata.gate/1"
# A pairing's public direction is judged only when the public data pairs that attribute word with the
# category at least this often; rarer ones are counted as new.
MIN_PUBLIC_SUPPORT = 5
# Lift above/below which a pairing goes along/against the public data's skew (between: neutral).
LIFT_ALONG, LIFT_AGAINST = 1.1, 0.9
# Serious flags: a batch where at least this share of the records carries one is recommended for rejection.
SERIOUS_FLAGS = ("duplicate", "benchmark", "refusal", "malformed")
REJECT_SHARE = 0.5
PUBLIC_CHUNK = 5000
# Records whose signatures the gate writes per transaction: on SQLite a writer holds the one write lock,
# and a PUT that meets it waits; short transactions keep that wait short.
INDEX_CHUNK = 200


def evenness(counts: Iterable[int], n_groups: int) -> float | None:
    """Shannon entropy of group counts divided by log(n_groups): 1 = even, 0 = one group only."""
    values = [c for c in counts if c > 0]
    total = sum(values)
    if n_groups <= 1 or not total:
        return None
    return max(0.0, -sum(c / total * math.log(c / total) for c in values) / math.log(n_groups))


@dataclass
class GroupProfile:
    """Records per social group and (group, attribute word) pairings of a set of records."""

    records: int = 0
    group_records: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # category -> attribute word -> group -> records
    pairings: dict[str, dict[str, Counter[str]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, lexicon: Lexicon, text: str, attribute: str, sign: int = 1) -> list[tuple[str, str, str]]:
        """Count one record (`sign` -1: take back one counted before); returns its (category, group,
        attribute word) pairings."""
        self.records += sign
        tokens = tokenize(text)
        mentions: dict[str, set[str]] = {}
        for cat, grp, _ in lexicon.match(tokens):
            mentions.setdefault(cat, set()).add(grp)
        if attribute.strip():
            words = {attribute.strip().casefold()}
        else:
            words = {term_key(t) for t in tokens if term_key(t) in lexicon.attribute_words}
        out = []
        for cat, groups in mentions.items():
            for grp in groups:
                _bump(self.group_records[cat], grp, sign)
                for word in words:
                    _bump(self.pairings[cat].setdefault(word, Counter()), grp, sign)
                    out.append((cat, grp, word))
        return out

    def merged(self, other: GroupProfile) -> GroupProfile:
        out = GroupProfile(self.records + other.records)
        for source in (self, other):
            for cat, counts in source.group_records.items():
                out.group_records[cat].update(counts)
            for cat, words in source.pairings.items():
                for word, counts in words.items():
                    out.pairings[cat].setdefault(word, Counter()).update(counts)
        return out

    def skew(self, category: str) -> float | None:
        """Count-weighted mean total variation distance between P(group | attribute word) and P(group)
        (the audit's attribute skew): 0 = every word spread like the groups, 1 = each word with one group."""
        groups = self.group_records.get(category, Counter())
        total = sum(groups.values())
        if not total:
            return None
        base = {g: n / total for g, n in groups.items()}
        weighted, weight = 0.0, 0
        for counts in self.pairings.get(category, {}).values():
            n = sum(counts.values())
            if n < MIN_PUBLIC_SUPPORT:
                continue
            weighted += n * 0.5 * sum(abs(counts.get(g, 0) / n - p) for g, p in base.items())
            weight += n
        return weighted / weight if weight else None


def _bump(counts: Counter[str], key: str, by: int) -> None:
    counts[key] += by
    if counts[key] <= 0:
        del counts[key]  # a group or pairing no approved record has any more is not shown as 0


@dataclass
class PublicProfile:
    """The approved records' profile and what it has seen: the records up to `record_seq` (by their
    status then), and the moderation log up to `log_seq` (the status changes since)."""

    profile: GroupProfile
    record_seq: int
    log_seq: int


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one state of the database throughout: the records, the moderation
    log and the counts read in it agree with each other, whatever is written meanwhile."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            yield conn
    else:
        # pysqlite sends no BEGIN before a SELECT, so each statement would read its own state.
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()


def _last_log_seq(conn: Connection) -> int:
    last = conn.execute(select(func.max(moderation_store.moderation_log.c.seq))).scalar()
    return int(last) if last is not None else -1


def public_profile(engine: Engine, lexicon: Lexicon) -> PublicProfile:
    """The profile of every approved record, read in seq order a chunk at a time, in one snapshot."""
    profile = GroupProfile()
    with _snapshot(engine) as conn:
        log_seq = _last_log_seq(conn)
        record_seq = _add_approved_after(conn, lexicon, profile, -1)
    return PublicProfile(profile, record_seq, log_seq)


def _add_approved_after(conn: Connection, lexicon: Lexicon, profile: GroupProfile, seq: int) -> int:
    """Count into `profile` the approved records after `seq`, in seq order a chunk at a time; returns
    the last seq stored (whatever its status), from which the next update starts."""
    r = record_store.c
    while True:
        rows = conn.execute(
            select(r.seq, r.text, r.attribute)
            .where(r.status == "approved", r.seq > seq)
            .order_by(r.seq)
            .limit(PUBLIC_CHUNK)
        ).all()
        if not rows:
            break
        for _, text, attribute in rows:
            profile.add(lexicon, text, attribute)
        seq = rows[-1][0]
    return max(seq, int(conn.execute(select(func.max(r.seq))).scalar() or -1))


def update_public_profile(engine: Engine, lexicon: Lexicon, public: PublicProfile) -> PublicProfile | None:
    """`public` brought up to date by what changed since: the records stored after it (those approved),
    and the moderation log's status changes of the records it had seen (into approved: counted; out of
    approved: taken back). Reads only the changes. None when the result would not be exact: the
    approved total of the count tables disagrees (rows removed without a log entry, e.g. a month
    archived), so the caller counts afresh."""
    r, log = record_store.c, moderation_store.moderation_log.c
    profile = public.profile.merged(GroupProfile())  # a copy: a failed read leaves `public` as it was
    with _snapshot(engine) as conn:
        changes = conn.execute(
            select(log.seq, log.old_status, log.new_status, r.text, r.attribute)
            .join(record_store, r.id == log.record_id)
            .where(log.seq > public.log_seq, r.seq <= public.record_seq)
            .order_by(log.seq)
        ).all()
        log_seq = max([public.log_seq, *(c[0] for c in changes)])
        for _, old, new, text, attribute in changes:
            if (old == "approved") != (new == "approved"):
                profile.add(lexicon, text, attribute, 1 if new == "approved" else -1)
        record_seq = _add_approved_after(conn, lexicon, profile, public.record_seq)
        log_seq = max(log_seq, _last_log_seq(conn))
        if profile.records != store.status_counts(conn).get("approved", 0):
            return None
    return PublicProfile(profile, record_seq, log_seq)


class GateChecks:
    """What a report needs, built once per worker process: the hygiene flagger, the lexicon, and the
    public dataset's profile (counted once, then brought up to date from what changed when older than
    `refresh_s`: a recount read every approved record, 218 s of CPU at 10^7 records)."""

    def __init__(self, refresh_s: float, data_dir: str | None = None) -> None:
        from vdata.core.cda import load_word_lists

        self.flagger = flags.Flagger(data_dir)
        try:
            word_lists = load_word_lists(data_dir)
        except (UserError, OSError) as e:
            log.warning("gate: bias-bench word lists not found (%s); using vdata's own lexicon only", e)
            word_lists = None
        self.lexicon = build_lexicon(word_lists)
        self.refresh_s = refresh_s
        self._public: tuple[float, PublicProfile] | None = None

    def public(self, engine: Engine) -> GroupProfile:
        now = time.monotonic()
        if self._public is None:
            self._public = (now, public_profile(engine, self.lexicon))
        elif now - self._public[0] > self.refresh_s:
            updated = update_public_profile(engine, self.lexicon, self._public[1])
            self._public = (now, updated or public_profile(engine, self.lexicon))
        return self._public[1].profile


def batch_records(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    r, b = record_store.c, moderation_store.batch_record.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.seq, r.id, r.text, r.attribute, r.category, r.status)
            .join(moderation_store.batch_record, b.record_id == r.id)
            .where(b.batch_id == batch_id)
            .order_by(r.seq)
        ).all()
    return [dict(row._mapping) for row in rows]


def _groups_section(batch: GroupProfile, public: GroupProfile, lexicon: Lexicon) -> dict[str, Any]:
    merged = public.merged(batch)
    out = {}
    for cat in sorted(batch.group_records):
        defined = list(lexicon.groups.get(cat, {}))
        counts = {g: batch.group_records[cat].get(g, 0) for g in defined}
        before = evenness(public.group_records.get(cat, Counter()).values(), len(defined))
        after = evenness(merged.group_records[cat].values(), len(defined))
        out[cat] = {
            "batch": counts,
            "public": {g: public.group_records.get(cat, Counter()).get(g, 0) for g in defined},
            "batch_evenness": evenness(counts.values(), len(defined)),
            "public_evenness": before,
            "evenness_after": after,
            "evenness_change": None if before is None or after is None else after - before,
        }
    return out


def _direction_section(
    pairings: Sequence[tuple[str, str, str]], batch: GroupProfile, public: GroupProfile
) -> dict[str, Any]:
    along = against = neutral = new = 0
    examples: list[dict[str, Any]] = []
    for cat, grp, word in pairings:
        groups = public.group_records.get(cat, Counter())
        counts = public.pairings.get(cat, {}).get(word)
        n, total = (sum(counts.values()) if counts else 0), sum(groups.values())
        if n < MIN_PUBLIC_SUPPORT or not groups.get(grp):
            new += 1
            continue
        assert counts is not None
        lift = (counts.get(grp, 0) / n) / (groups[grp] / total)
        if lift > LIFT_ALONG:
            along += 1
            if len(examples) < 5:
                examples.append({"category": cat, "group": grp, "attribute": word, "public_lift": lift})
        elif lift < LIFT_AGAINST:
            against += 1
        else:
            neutral += 1
    judged = along + against
    share = along / judged if judged else None
    if judged < MIN_PUBLIC_SUPPORT:
        verdict = "too few pairings to judge"
    elif share is not None and share >= 0.6:
        verdict = "reinforces the public data's skews"
    elif share is not None and share <= 0.4:
        verdict = "counters the public data's skews"
    else:
        verdict = "mixed"
    merged = public.merged(batch)
    skew = {
        cat: {"public": public.skew(cat), "after": merged.skew(cat)}
        for cat in sorted(batch.pairings)
        if public.skew(cat) is not None or merged.skew(cat) is not None
    }
    return {
        "method": "lexicon pairings against the public data (lift of P(group | attribute) over P(group))",
        "pairings": len(pairings),
        "along": along,
        "against": against,
        "neutral": neutral,
        "new": new,
        "share_along": share,
        "verdict": verdict,
        "attribute_skew": skew,
        "examples_along": examples,
    }


def _recommendation(
    n: int,
    flagged: dict[str, list[flags.Flag]],
    rejected: int,
    direction: dict[str, Any],
    groups: dict[str, Any],
) -> dict[str, Any]:
    serious = sum(1 for fs in flagged.values() if any(f.kind in SERIOUS_FLAGS for f in fs))
    any_flag = sum(1 for fs in flagged.values() if fs)
    why = []
    if rejected:
        why.append(f"{rejected} of {n} records rejected automatically by the operator's rules")
    if serious:
        why.append(f"{serious} of {n} records are duplicates, benchmark overlaps, refusals or malformed")
    if any_flag > serious:
        why.append(f"{any_flag - serious} more records carry a flag to check")
    if direction["verdict"] == "reinforces the public data's skews":
        why.append("its group-attribute pairings mostly follow the public data's existing skews")
    worse = [c for c, g in groups.items() if (g["evenness_change"] or 0) < -0.01]
    if worse:
        why.append(f"it makes the public data's group balance less even in {', '.join(worse)}")
    if rejected == n:
        action = "nothing left to review"
    elif serious - rejected >= REJECT_SHARE * (n - rejected) and serious > 0:
        action = "reject"
    elif why:
        action = "review"
    else:
        action = "approve"
        why.append("no flags; group balance and direction raise no concern")
    return {"action": action, "why": why}


def auto_reject(
    engine: Engine,
    batch_id: str,
    records: Sequence[dict[str, Any]],
    found: dict[str, list[flags.Flag]],
    rules: Sequence[str],
) -> list[dict[str, str]]:
    """Reject, through the moderation log, the still pending records whose flags a rule names."""
    rejected = []
    for record in records:
        if record["status"] != "pending":
            continue  # a moderator got there first
        for rule in rules:
            kind = AUTO_REJECT_RULES[rule]
            flag = next((f for f in found.get(record["id"], []) if f.kind == kind), None)
            # A near duplicate of another pending record (often of its own batch) is for a person to judge.
            if flag is None or (kind == "near-duplicate" and not flag.detail.endswith("(approved)")):
                continue
            reason = f"auto-reject ({rule}): {kind} {flag.detail}".strip()
            decision = moderation_store.Decision(
                GATE_MODERATOR, "rejected", reason[: moderation_store.MAX_REASON], (record["id"],), batch_id
            )
            if moderation_store.decide(engine, decision).changed:
                rejected.append({"id": record["id"], "rule": rule, "reason": reason})
            break
    return rejected


def make_report(
    engine: Engine,
    batch_id: str,
    records: Sequence[dict[str, Any]],
    found: dict[str, list[flags.Flag]],
    checks: GateChecks,
    rules: Sequence[str],
) -> dict[str, Any]:
    """The report on one batch (its `records`, their flags `found`) and the auto-rejections it leads to."""
    public = checks.public(engine)
    batch = GroupProfile()
    pairings = [p for r in records for p in batch.add(checks.lexicon, r["text"], r["attribute"])]
    rejected = auto_reject(engine, batch_id, records, found, rules)
    groups = _groups_section(batch, public, checks.lexicon)
    direction = _direction_section(pairings, batch, public)
    counts = Counter(f.kind for r in records for f in found.get(r["id"], []))
    return {
        "schema": REPORT_SCHEMA,
        "batch": batch_id,
        "created": now_utc(),
        "records": len(records),
        "public_records": public.records,
        "flag_counts": {kind: counts.get(kind, 0) for kind in flags.FLAG_KINDS},
        "flags": {
            r["id"]: [{"kind": f.kind, "detail": f.detail} for f in found.get(r["id"], [])] for r in records
        },
        "groups": groups,
        "direction": direction,
        "rules": list(rules),
        "auto_rejected": rejected,
        "recommendation": _recommendation(len(records), found, len(rejected), direction, groups),
    }


def _store(engine: Engine, batch_id: str, report: dict[str, Any] | None, error: str | None) -> None:
    table = moderation_store.contribution_report
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.batch_id == batch_id)
            .values(
                status="done" if report is not None else "failed",
                finished_at=now_utc(),
                report=None if report is None else json.dumps(report, ensure_ascii=False),
                error=error,
            )
        )


def run_reports(
    engine: Engine, batch_ids: Sequence[str], checks: GateChecks, rules: Sequence[str]
) -> dict[str, str]:
    """Make and store the reports on `batch_ids` (their records flagged together: one signature index
    update and one lookup for all). A failure is stored (status failed, the error) and logged, never
    raised: the batch stays in the moderators' queue either way. Returns batch id -> status stored."""
    out: dict[str, str] = {}
    try:
        records = {batch_id: batch_records(engine, batch_id) for batch_id in batch_ids}
        flags.index_signatures(engine, checks.flagger, chunk=INDEX_CHUNK)
        found = flags.flag_records(engine, [r for rs in records.values() for r in rs], checks.flagger)
    except Exception as e:  # the worker must survive anything one round meets
        log.exception("gate: flagging batches %s failed", ", ".join(batch_ids))
        for batch_id in batch_ids:
            _store(engine, batch_id, None, f"{type(e).__name__}: {e}"[:2000])
            out[batch_id] = "failed"
        return out
    for batch_id in batch_ids:
        report, error = None, None
        try:
            report = make_report(engine, batch_id, records[batch_id], found, checks, rules)
        except Exception as e:
            log.exception("gate: report on batch %s failed", batch_id)
            error = f"{type(e).__name__}: {e}"[:2000]
        _store(engine, batch_id, report, error)
        out[batch_id] = "done" if report is not None else "failed"
    return out


def claim_pending(engine: Engine, limit: int) -> list[str]:
    """Take up to `limit` queued reports, oldest first, marking them running (a row another worker
    claimed first is skipped: the UPDATE's status condition makes the claim atomic)."""
    table = moderation_store.contribution_report
    with engine.connect() as conn:
        candidates = list(
            conn.execute(
                select(table.c.batch_id)
                .where(table.c.status == "pending")
                .order_by(table.c.created_at, table.c.batch_id)
                .limit(limit)
            ).scalars()
        )
    claimed = []
    with engine.begin() as conn:
        for batch_id in candidates:
            result = conn.execute(
                update(table)
                .where(table.c.batch_id == batch_id, table.c.status == "pending")
                .values(status="running")
            )
            if result.rowcount == 1:
                claimed.append(batch_id)
    return claimed


def requeue_running(engine: Engine) -> int:
    """Put reports left running by a worker that stopped back in the queue; returns how many."""
    table = moderation_store.contribution_report
    with engine.begin() as conn:
        result = conn.execute(update(table).where(table.c.status == "running").values(status="pending"))
        return int(result.rowcount or 0)


def read_reports(engine: Engine, batch_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """batch id -> {status, created_at, finished_at, report (parsed or None), error}."""
    if not batch_ids:
        return {}
    table = moderation_store.contribution_report
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.batch_id.in_(list(batch_ids)))).all()
    out = {}
    for row in rows:
        item = {str(k): v for k, v in row._mapping.items()}
        item["report"] = json.loads(item["report"]) if item["report"] else None
        out[item.pop("batch_id")] = item
    return out


def pending_reports(engine: Engine) -> int:
    """Reports queued and not yet taken by the worker."""
    table = moderation_store.contribution_report
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(table).where(table.c.status == "pending")).scalar()
            or 0
        )
