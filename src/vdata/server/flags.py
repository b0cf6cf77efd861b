"""Automatic flags on pending contributions, from `vdata audit`'s hygiene checks (`vdata.core.hygiene`).

Per record: duplicate of public data (same words as an approved record, ignoring case and
punctuation), near duplicate (MinHash LSH: a band of signatures shared with an approved or pending
record), refusal or meta-text, benchmark overlap (StereoSet/CrowS-Pairs n-grams, when the benchmark
files are found), other language, malformed.

Duplicate checks need the signatures of stored records: `record_signature` holds one row per LSH band
plus one for the whole word sequence, filled in seq order for the records not yet indexed each time
flags are computed. The hygiene code (numpy, datasketch) is imported on first use, so the server's
start-up and its read paths stay free of it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    bindparam,
    func,
    select,
)

from vdata.core.errors import UserError
from vdata.server.db import record_store

log = logging.getLogger("vdata.server")

metadata = MetaData()
record_signature = Table(
    "record_signature",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("band", SmallInteger, nullable=False),
    Column("hash", BigInteger, nullable=False),
)

EXACT_BAND = -1
INDEX_CHUNK = 2000
# Records indexed per page view (~3 s at the measured ~7,000 records/s): a large database that was
# never indexed is caught up over a few visits instead of making one visit wait minutes.
INDEX_PER_VIEW = 20_000
FLAG_KINDS = ("duplicate", "near-duplicate", "refusal", "benchmark", "language", "malformed")
EXPECTED_LANGUAGE = "en"


@dataclass(frozen=True)
class Flag:
    kind: str  # one of FLAG_KINDS
    detail: str  # e.g. the rule, the benchmark, the language, the id of the similar record


def _int64(value: int) -> int:
    """An unsigned 64-bit hash as the signed value a BIGINT column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


class Flagger:
    """The hygiene checks, built once per process (the benchmark index takes a few seconds)."""

    def __init__(self, data_dir: str | None = None) -> None:
        from vdata.core import hygiene
        from vdata.core.minhash import NearDuplicateIndex

        self.hygiene = hygiene
        self.refusals = hygiene.RefusalMatcher()
        self.near = NearDuplicateIndex()
        try:
            self.benchmarks: Any = hygiene.load_benchmark_index(data_dir)
        except (UserError, OSError) as e:
            log.warning("benchmark-overlap flags are off: %s", e)
            self.benchmarks = None

    def signatures(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[tuple[int, int]]]]:
        """(tokens, [(band, hash), ...]) per text: the whole word sequence, then each LSH band."""
        tokens = [self.hygiene.tokenize(t) for t in texts]
        bands = self.near.band_hashes(self.near.signatures(tokens)) if texts else []
        out = []
        for toks, row in zip(tokens, bands, strict=True):
            words = hashlib.sha256(" ".join(toks).encode()).digest()
            pairs = [(EXACT_BAND, _int64(int.from_bytes(words[:8], "big")))]
            pairs += [(j, _int64(int(h))) for j, h in enumerate(row.tolist())]
            out.append(pairs)
        return tokens, out

    def text_flags(self, text: str, tokens: Sequence[str]) -> list[Flag]:
        flags = []
        reason = self.hygiene.malformed_reason(text, tokens)
        if reason:
            flags.append(Flag("malformed", reason))
        rule = self.refusals.match(text)
        if rule:
            flags.append(Flag("refusal", rule))
        if self.benchmarks is not None:
            bench = self.benchmarks.match(tokens)
            if bench:
                flags.append(Flag("benchmark", bench))
        lang = self.hygiene.language_flag(text, tokens, EXPECTED_LANGUAGE)
        if lang:
            flags.append(Flag("language", lang))
        return flags


@functools.cache
def flagger() -> Flagger:
    return Flagger()


def _last_indexed(conn: Any) -> int:
    last = conn.execute(select(func.max(record_signature.c.seq))).scalar()
    return int(last) if last is not None else -1


def index_backlog(engine: Engine) -> int:
    """Stored records whose signatures are not indexed yet (duplicate flags cannot find them)."""
    with engine.connect() as conn:
        last = _last_indexed(conn)
        return int(
            conn.execute(
                select(func.count()).select_from(record_store).where(record_store.c.seq > last)
            ).scalar()
            or 0
        )


def index_signatures(
    engine: Engine, checks: Flagger, limit: int | None = None, chunk: int = INDEX_CHUNK
) -> int:
    """Add the signatures of records stored since the last call (at most about `limit` of them), `chunk`
    records per transaction; returns how many were indexed."""
    done = 0
    while limit is None or done < limit:
        with engine.begin() as conn:
            rows = conn.execute(
                select(record_store.c.seq, record_store.c.text)
                .where(record_store.c.seq > _last_indexed(conn))
                .order_by(record_store.c.seq)
                .limit(chunk)
            ).all()
            if not rows:
                return done
            _, sigs = checks.signatures([r[1] for r in rows])
            conn.execute(
                record_signature.insert(),
                [
                    {"seq": row[0], "band": band, "hash": h}
                    for row, pairs in zip(rows, sigs, strict=True)
                    for band, h in pairs
                ],
            )
        done += len(rows)
    return done


def flag_records(engine: Engine, records: Sequence[dict[str, Any]], checks: Flagger) -> dict[str, list[Flag]]:
    """Flags of `records` (dicts with seq, id, text), by record id."""
    if not records:
        return {}
    index_signatures(engine, checks, INDEX_PER_VIEW)
    tokens, sigs = checks.signatures([r["text"] for r in records])
    wanted = sorted({h for pairs in sigs for _, h in pairs})
    s, r = record_signature.c, record_store.c
    # The signature rows first, then the records they belong to by primary key: joining the two in one
    # statement made PostgreSQL hash-join every stored record for each chunk of hashes.
    hits: list[tuple[int, int, int]] = []
    info: dict[int, tuple[str, str]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            hits.extend(
                (int(band), int(h), int(seq))
                for band, h, seq in conn.execute(
                    select(s.band, s.hash, s.seq).where(s.hash.in_(bindparam("hashes", expanding=True))),
                    {"hashes": wanted[start : start + 500]},
                )
            )
        seqs = sorted({seq for _, _, seq in hits})
        for start in range(0, len(seqs), 500):
            for seq, rid, status in conn.execute(
                select(r.seq, r.id, r.status).where(
                    r.seq.in_(bindparam("seqs", expanding=True)), r.status != "rejected"
                ),
                {"seqs": seqs[start : start + 500]},
            ):
                info[seq] = (rid, status)
    matches: dict[tuple[int, int], list[tuple[int, str, str]]] = {}
    for band, h, seq in hits:
        if seq in info:
            matches.setdefault((band, h), []).append((seq, *info[seq]))
    out: dict[str, list[Flag]] = {}
    for record, toks, pairs in zip(records, tokens, sigs, strict=True):
        flags = checks.text_flags(record["text"], toks)
        others = [(band, m) for band, h in pairs for m in matches.get((band, h), []) if m[0] != record["seq"]]
        same = next((m for band, m in others if band == EXACT_BAND and m[2] == "approved"), None)
        if same:
            flags.insert(0, Flag("duplicate", same[1]))
        else:
            similar = sorted({m for band, m in others}, key=lambda m: (m[2] != "approved", m[0]))
            if similar:
                flags.insert(0, Flag("near-duplicate", f"{similar[0][1]} ({similar[0][2]})"))
        out[record["id"]] = flags
    return out
