"""Archive: months of records leave the hot table once a verified snapshot holds them; they come back from it.

`vdata archive --older-than 12mo --snapshot DIR` archives each month (of `submitted_at`) older than the
age that is still in the hot table, after checking, month by month, that the snapshot holds it:

- no record of the month awaits moderation (a pending record is in no snapshot);
- the snapshot's files that may hold the month's approvals match the sha256 of its manifest;
- every approved record of the month is in the snapshot with the same content, column by column (a
  digest per row compared with the database's), and no record was approved after its watermark.

Then, in the same transaction, the month's partition is detached and dropped (PostgreSQL) or its rows
deleted (SQLite), and `archived_records` keeps what the snapshot does not carry (seq, content hash,
status, times; the whole row of a record the snapshot does not publish, such as a rejected one), and
`archived_periods` the month, its row count and the snapshot. Any refusal leaves everything as it was.

The counts of migration 0005 (/v1/stats, the `stats` view) describe the whole dataset, archived months
included: archiving moves records, it does not remove them from the dataset. `restore` rebuilds every
column of every row of a month from the snapshot and `archived_records`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.server import partitions
from vdata.server.db import record_store
from vdata.server.snapshot import MANIFEST, SHARD_COLUMNS, SNAPSHOT_ID, list_snapshots, read_manifest

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
AGE = re.compile(r"^(\d+)(d|w|mo|y)$")
GROUP = ("status", "category", "strategy", "provider")
COLUMNS: tuple[str, ...] = tuple(c.name for c in record_store.columns)
# What archived_records keeps of every row beside the snapshot's columns.
KEPT = ("seq", "content_sha256", "status", "submitted_at", "moderated_at")
SHOWN_IDS = 5


@dataclass
class MonthPlan:
    month: str
    rows: int = 0
    approved: int = 0
    other: int = 0  # rejected (or any status the snapshot does not publish): kept whole in archived_records


@dataclass
class ArchiveResult:
    snapshot_id: str
    months: list[MonthPlan] = field(default_factory=list)
    dry_run: bool = False


@dataclass
class SnapshotRef:
    root: Path
    snapshot_id: str
    manifest: dict[str, Any]


# ------------------------------------------------------------------------------------------ inputs


def parse_age(age: str) -> tuple[int, str]:
    """'12mo' -> (12, 'mo'); units d (days), w (weeks), mo (months), y (years)."""
    found = AGE.match(age.strip().lower())
    if not found or int(found.group(1)) == 0:
        raise UserError(f"--older-than {age!r}: give a positive age like 12mo, 365d, 8w or 2y")
    return int(found.group(1)), found.group(2)


def cutoff(age: str, now: datetime) -> datetime:
    """The moment `age` before `now` (months and years step back in calendar months)."""
    amount, unit = parse_age(age)
    if unit in ("d", "w"):
        return now - timedelta(days=amount * (7 if unit == "w" else 1))
    months = amount * (12 if unit == "y" else 1)
    index = now.year * 12 + now.month - 1 - months
    year, month = divmod(index, 12)
    day = min(now.day, 28)  # a day every month has; the month, not the day, decides what goes
    return now.replace(year=year, month=month + 1, day=day)


def check_month(month: str) -> str:
    if not MONTH.match(month):
        raise UserError(f"{month!r} is not a month; give it as YYYY-MM, like 2025-01")
    return month


def month_end(month: str) -> datetime:
    following = partitions.month_bounds(month)[1]
    return datetime.strptime(following, "%Y-%m").replace(tzinfo=UTC)


def open_snapshot(path: Path, snapshot_id: str | None = None) -> SnapshotRef:
    """`path` is a folder of snapshots (the latest, or `snapshot_id`, is used) or one snapshot's folder."""
    if (path / MANIFEST).is_file() and SNAPSHOT_ID.match(path.name):
        root, chosen = path.parent, path.name
    else:
        found = list_snapshots(path)
        if not found:
            raise UserError(
                f"--snapshot {path}: no snapshot there; write one first with vdata snapshot {path}"
            )
        root, chosen = path, snapshot_id or found[-1]
    return SnapshotRef(root, chosen, read_manifest(root, chosen))


# ------------------------------------------------------------------------------------- row digests


def _approved_at(row: dict[str, Any]) -> str:
    return str(row["moderated_at"] or row["submitted_at"])


def _shard_values(row: dict[str, Any]) -> list[Any]:
    """A database row as the snapshot stores it (SHARD_COLUMNS, in order)."""
    return [_approved_at(row) if name == "approved_at" else row[name] for name in SHARD_COLUMNS]


def _digest(values: list[Any]) -> str:
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).hexdigest()


def _month_rows(conn: Connection, month: str) -> list[dict[str, Any]]:
    low, high = partitions.month_bounds(month)
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    if conn.dialect.name == "postgresql":
        source, where = partitions.partition_name(month), ""
        partitions.lock_month(conn, month)
    else:
        source, where = "record_store", " WHERE submitted_at >= :low AND submitted_at < :high"
    result = conn.execute(
        text(f"SELECT {names} FROM {source}{where} ORDER BY seq"), {"low": low, "high": high}
    )
    return [dict(zip(COLUMNS, r, strict=True)) for r in result]


def _snapshot_rows(ref: SnapshotRef, month: str, ids: set[str]) -> Iterator[dict[str, Any]]:
    """The rows with these ids in the snapshot's files that may hold `month`'s approvals (a record is
    approved after it was submitted), each file's sha256 checked against the manifest first."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not ids:
        return
    wanted = pa.array(sorted(ids), pa.string())
    for entry in ref.manifest["files"]:
        if entry["max_approved_at"] < month:
            continue
        path = ref.root / ref.snapshot_id / entry["path"]
        if not path.is_file():
            raise UserError(
                f"snapshot {ref.snapshot_id}: {entry['path']} is missing; the snapshot is incomplete"
            )
        if sha256_file(path) != entry["sha256"]:
            raise UserError(
                f"snapshot {ref.snapshot_id}: {entry['path']} does not match the sha256 of its manifest "
                "(corrupt or changed); nothing was archived. Take a new snapshot and use that one"
            )
        for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000):
            table = pa.Table.from_batches([batch])
            found = table.filter(pc.is_in(table.column("id"), value_set=wanted))
            yield from found.to_pylist()


def _shown(ids: list[str]) -> str:
    more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(sorted(ids)[:SHOWN_IDS]) + more


def verify_month(conn: Connection, ref: SnapshotRef, month: str) -> tuple[MonthPlan, list[dict[str, Any]]]:
    """Check that the snapshot holds every approved row of `month`, unchanged; refuse (UserError) if not."""
    rows = _month_rows(conn, month)
    if not rows:
        raise UserError(f"{month}: no records in the hot table; nothing to archive")
    plan = MonthPlan(month, rows=len(rows))
    pending = [r["id"] for r in rows if r["status"] == "pending"]
    if pending:
        raise UserError(
            f"{month}: {len(pending)} record(s) await moderation ({_shown(pending)}); a pending record is in "
            "no snapshot. Moderate them, take a snapshot, then archive"
        )
    expected = {r["id"]: _digest(_shard_values(r)) for r in rows if r["status"] == "approved"}
    late = [
        r["id"] for r in rows if r["status"] == "approved" and _approved_at(r) > ref.manifest["watermark"]
    ]
    if late:
        raise UserError(
            f"{month}: snapshot {ref.snapshot_id} does not cover {len(late)} record(s) approved after its "
            f"watermark {ref.manifest['watermark']} ({_shown(late)}); take a new snapshot, then archive"
        )
    found: dict[str, str] = {}
    for row in _snapshot_rows(ref, month, set(expected)):
        if row["id"] in found:
            raise UserError(f"snapshot {ref.snapshot_id} holds record {row['id']} twice; take a new snapshot")
        found[row["id"]] = _digest([row[name] for name in SHARD_COLUMNS])
    missing = [i for i in expected if i not in found]
    changed = [i for i in expected if i in found and found[i] != expected[i]]
    if missing or changed:
        parts = [f"{len(missing)} missing ({_shown(missing)})"] if missing else []
        parts += [f"{len(changed)} different from the database ({_shown(changed)})"] if changed else []
        raise UserError(
            f"{month}: snapshot {ref.snapshot_id} does not cover the month's {len(expected)} approved "
            f"record(s): {'; '.join(parts)}. Take a new snapshot, then archive"
        )
    plan.approved = len(expected)
    plan.other = len(rows) - len(expected)
    return plan, rows


# ------------------------------------------------------------------------------------------ counts


def _adjust_counts(conn: Connection, rows: list[dict[str, Any]], sign: int) -> None:
    """Add (sign +1) or take away (-1) `rows` in the counts of migration 0005, undoing what its triggers
    did when the rows were deleted (SQLite archive) or inserted again (restore)."""
    groups = Counter(tuple(r[c] for c in GROUP) for r in rows)
    days = Counter(str(r["submitted_at"])[:10] for r in rows)
    keys = ", ".join(GROUP)
    if conn.dialect.name == "postgresql":  # delta rows, as the triggers write them
        group_sql = (
            f"INSERT INTO record_counts ({keys}, n) VALUES (:status, :category, :strategy, :provider, :n)"
        )
        day_sql = "INSERT INTO record_days (day, n) VALUES (:day, :n)"
    else:
        group_sql = (
            f"INSERT INTO record_counts ({keys}, n) VALUES (:status, :category, :strategy, :provider, :n) "
            f"ON CONFLICT ({keys}) DO UPDATE SET n = n + excluded.n"
        )
        day_sql = "INSERT INTO record_days (day, n) VALUES (:day, :n) ON CONFLICT (day) DO UPDATE SET n = n + excluded.n"
    if groups:
        conn.execute(
            text(group_sql), [{**dict(zip(GROUP, g, strict=True)), "n": sign * n} for g, n in groups.items()]
        )
    if days:
        conn.execute(text(day_sql), [{"day": d, "n": sign * n} for d, n in days.items()])


# ----------------------------------------------------------------------------------------- archive


def archived_months(conn: Connection) -> dict[str, dict[str, Any]]:
    result = conn.execute(
        text('SELECT month, "rows", snapshot_id, archived_at FROM archived_periods ORDER BY month')
    )
    return {m: {"rows": int(n), "snapshot_id": s, "archived_at": a} for m, n, s, a in result}


def hot_months(conn: Connection) -> list[str]:
    """Months with records in the hot table, from the per-day counts (a few hundred rows, not a scan)."""
    days = conn.execute(text("SELECT day FROM record_days GROUP BY day HAVING SUM(n) <> 0")).scalars()
    archived = archived_months(conn)
    return sorted({d[:7] for d in days if MONTH.match(d[:7])} - set(archived))


def months_older_than(conn: Connection, age: str, now: datetime) -> list[str]:
    limit = cutoff(age, now)
    return [m for m in hot_months(conn) if month_end(m) <= limit]


def _archive_month(conn: Connection, ref: SnapshotRef, plan: MonthPlan, rows: list[dict[str, Any]]) -> None:
    kept = [
        {
            **{c: r[c] for c in KEPT},
            "id": r["id"],
            "month": plan.month,
            "unpublished": None if r["status"] == "approved" else json.dumps(r, ensure_ascii=False),
        }
        for r in rows
    ]
    if kept:
        conn.execute(
            text(
                "INSERT INTO archived_records (seq, id, content_sha256, month, status, submitted_at, "
                "moderated_at, unpublished) VALUES (:seq, :id, :content_sha256, :month, :status, "
                ":submitted_at, :moderated_at, :unpublished)"
            ),
            kept,
        )
    if conn.dialect.name == "postgresql":
        partitions.detach_and_drop(conn, plan.month)
    else:
        low, high = partitions.month_bounds(plan.month)
        conn.execute(
            text("DELETE FROM record_store WHERE submitted_at >= :low AND submitted_at < :high"),
            {"low": low, "high": high},
        )
        _adjust_counts(conn, rows, +1)  # the delete triggers took them away; they stay in the dataset
    conn.execute(
        text(
            'INSERT INTO archived_periods (month, "rows", snapshot_id, archived_at) '
            "VALUES (:month, :rows, :snapshot_id, :archived_at)"
        ),
        {
            "month": plan.month,
            "rows": plan.rows,
            "snapshot_id": ref.snapshot_id,
            "archived_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )


def archive(
    engine: Engine,
    snapshot: Path,
    *,
    older_than: str | None = None,
    months: list[str] | None = None,
    snapshot_id: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ArchiveResult:
    """Archive every hot month older than `older_than` (or the given `months`) after verifying the
    snapshot holds them; all months in one transaction. `dry_run` verifies and changes nothing."""
    if older_than is not None:
        parse_age(older_than)
    moment = now or datetime.now(UTC)
    for month in months or []:
        if month_end(check_month(month)) > moment:
            raise UserError(f"{month} is not over yet; a month is archived once all of it is in the past")
    ref = open_snapshot(snapshot, snapshot_id)
    result = ArchiveResult(ref.snapshot_id, dry_run=dry_run)
    partitions.ensure_months_ahead(engine)
    with engine.connect() as conn, conn.begin() as transaction:
        if months is None:
            chosen = months_older_than(conn, older_than or "", moment)
        else:
            archived = archived_months(conn)
            again = [m for m in months if m in archived]
            if again:
                raise UserError(
                    f"{', '.join(again)} already archived (in snapshot {archived[again[0]]['snapshot_id']})"
                )
            chosen = sorted(set(months))
        for month in chosen:
            if conn.dialect.name == "postgresql":
                partitions.ensure_partition(conn, month)
            plan, rows = verify_month(conn, ref, month)
            result.months.append(plan)
            if not dry_run:
                _archive_month(conn, ref, plan, rows)
        if dry_run:
            transaction.rollback()
    return result


# ----------------------------------------------------------------------------------------- restore


def restore(engine: Engine, month: str, snapshot: Path, *, snapshot_id: str | None = None) -> int:
    """Bring an archived month back into the hot table from the snapshot; returns its row count."""
    check_month(month)
    with engine.begin() as conn:
        period = archived_months(conn).get(month)
        if period is None:
            raise UserError(f"{month} is not archived; see vdata archive --dry-run for what is")
        ref = open_snapshot(snapshot, snapshot_id or _recorded_or_latest(snapshot, period["snapshot_id"]))
        kept = conn.execute(
            text(
                "SELECT seq, id, content_sha256, status, submitted_at, moderated_at, unpublished "
                "FROM archived_records WHERE month = :m ORDER BY seq"
            ),
            {"m": month},
        ).all()
        published = {r.id: r for r in kept if r.unpublished is None}
        rows = [json.loads(r.unpublished) for r in kept if r.unpublished is not None]
        for shard_row in _snapshot_rows(ref, month, set(published)):
            extra = published.pop(shard_row["id"])
            row = {name: shard_row[name] for name in SHARD_COLUMNS if name in COLUMNS}
            row.update({c: getattr(extra, c) for c in KEPT})
            rows.append(row)
        if published or len(rows) != period["rows"]:
            raise UserError(
                f"{month}: snapshot {ref.snapshot_id} lacks {len(published)} of the month's archived records "
                f"({_shown(list(published))}); restore from the snapshot the month was archived with "
                f"({period['snapshot_id']}) or a later one of the same folder"
            )
        rows.sort(key=lambda r: r["seq"])
        if conn.dialect.name == "postgresql":
            partitions.ensure_partition(conn, month)
            conn.execute(
                text("DELETE FROM record_keys WHERE id = ANY(:ids)"), {"ids": [r["id"] for r in rows]}
            )
        conn.execute(text("DELETE FROM archived_records WHERE month = :m"), {"m": month})
        if rows:
            names = ", ".join(COLUMNS)
            values = ", ".join(f":{c}" for c in COLUMNS)
            conn.execute(text(f"INSERT INTO record_store ({names}) VALUES ({values})"), rows)
            _adjust_counts(conn, rows, -1)  # the insert triggers counted them again
        conn.execute(text("DELETE FROM archived_periods WHERE month = :m"), {"m": month})
    return len(rows)


def _recorded_or_latest(snapshot: Path, recorded: str) -> str | None:
    """The snapshot the month was archived with when it is still in the folder, else the latest (later
    snapshots of the same folder keep the archived records' shards)."""
    if (snapshot / MANIFEST).is_file():
        return None
    return recorded if recorded in list_snapshots(snapshot) else None


# ---------------------------------------------------------------------------------------- coverage


def coverage(engine: Engine) -> dict[str, Any] | None:
    """Which period the hot table covers, when any month was archived (else None): for /v1/query and the
    pages. Read from archived_periods (a row per archived month)."""
    with engine.connect() as conn:
        archived = archived_months(conn)
        if not archived:
            return None
        hot = hot_months(conn)
    months = sorted(archived)
    snapshots = sorted({p["snapshot_id"] for p in archived.values()})
    since = partitions.month_bounds(months[-1])[1]
    # "Since" only when the archived months are the oldest ones, in a row.
    contiguous = len(months) == _months_between(months[0], months[-1]) and not any(
        m < months[-1] for m in hot
    )
    if len(months) == 1:
        span = months[0]
    else:
        span = f"{months[0]} to {months[-1]}" if contiguous else ", ".join(months)
    note = (
        f"live records submitted since {since}" if contiguous else "live records except the archived months"
    ) + (
        f"; {sum(p['rows'] for p in archived.values()):,} records of {span} are archived in snapshot "
        f"{', '.join(snapshots)} (query them with engine=snapshot)"
    )
    return {
        "live_since": since if contiguous else None,
        "archived_months": months,
        "archived_rows": sum(p["rows"] for p in archived.values()),
        "snapshots": snapshots,
        "note": note,
    }


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
