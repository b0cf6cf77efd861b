"""The public dataset's bias benchmarks: `vdata benchmark-dataset`'s benchmark.json documents, stored
whole with their snapshot id (table `benchmarks`), listed as a history, and summarised as a badge.

Only what the server uses is validated (schema, created, source, the categories' StereoSet figures);
the rest of the document is kept as written.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, Text, select

from vdata.core.errors import UserError
from vdata.server.store import now_utc

metadata = MetaData()
benchmarks = Table(
    "benchmarks",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("snapshot_id", String(100), nullable=True),
    Column("created", String(40), nullable=False),
    Column("imported_at", String(40), nullable=False),
    Column("data_sha256", String(64), nullable=False),
    Column("document", Text, nullable=False),
)

SCHEMA = "vdata.benchmark/1"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
VERDICT_COLOURS = {"debiases": "#4c1", "trade-off": "#dfb317", "no effect": "#9f9f9f", "worse": "#e05d44"}
GREY = "#9f9f9f"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StereoSetFigures(_Open):
    ss_before: float
    ss_after: float
    bias_cut_pct: float
    bias_cut_ci: tuple[float, float] | None = None


class CategoryResult(_Open):
    status: Literal["measured", "skipped"]
    reason: str | None = None
    stereoset: StereoSetFigures | None = None
    verdict: Literal["debiases", "trade-off", "no effect", "worse"] | None = None


class Source(_Open):
    kind: Literal["snapshot", "database", "files"]
    snapshot_id: str | None = Field(None, max_length=100)
    data_sha256: str = Field(min_length=1, max_length=64)
    records: int = Field(ge=0)


class BenchmarkDocument(_Open):
    schema_: Literal["vdata.benchmark/1"] = Field(alias="schema")
    created: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
    source: Source
    categories: dict[str, CategoryResult]


def validate_document(document: Any, where: str = "benchmark.json") -> BenchmarkDocument:
    """The parts of a benchmark.json the server relies on; UserError naming what is wrong."""
    if not isinstance(document, dict):
        raise UserError(f"{where} must be a JSON object as written by vdata benchmark-dataset")
    try:
        parsed = BenchmarkDocument.model_validate(document)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}" for err in e.errors()[:5]
        )
        raise UserError(
            f"{where} is not a {SCHEMA} document ({problems}); write it with vdata benchmark-dataset"
        ) from None
    for name, result in parsed.categories.items():
        if result.status == "measured" and result.stereoset is None:
            raise UserError(f"{where}: category {name!r} is measured but has no stereoset figures")
    return parsed


def read_document(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"{path} does not exist; give the benchmark.json vdata benchmark-dataset wrote"
        ) from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise UserError(f"{path} is larger than {MAX_DOCUMENT_BYTES} bytes; is it a benchmark.json?")
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid UTF-8 JSON: {e}") from None
    validate_document(document, str(path))
    return document  # type: ignore[no-any-return]


def import_document(engine: Engine, document: dict[str, Any], snapshot_id: str | None = None) -> int:
    """Store a validated benchmark.json; `snapshot_id` fills in a document that names none. Returns its id."""
    parsed = validate_document(document)
    with engine.begin() as conn:
        result = conn.execute(
            benchmarks.insert().values(
                snapshot_id=parsed.source.snapshot_id or snapshot_id,
                created=parsed.created,
                imported_at=now_utc(),
                data_sha256=parsed.source.data_sha256,
                document=json.dumps(document, ensure_ascii=False),
            )
        )
        return int(result.inserted_primary_key[0])


def _entry(row: Any, whole: bool) -> dict[str, Any]:
    document = json.loads(row.document)
    entry: dict[str, Any] = {
        "id": int(row.seq),
        "snapshot_id": row.snapshot_id,
        "created": row.created,
        "imported_at": row.imported_at,
        "data_sha256": row.data_sha256,
    }
    if whole:
        entry["document"] = document
        return entry
    entry["records"] = document["source"].get("records")
    entry["model"] = (document.get("model") or {}).get("name")
    entry["categories"] = {
        name: {
            "status": result.get("status"),
            "verdict": result.get("verdict"),
            "bias_cut_pct": (result.get("stereoset") or {}).get("bias_cut_pct"),
            "bias_cut_ci": (result.get("stereoset") or {}).get("bias_cut_ci"),
            "ss_before": (result.get("stereoset") or {}).get("ss_before"),
            "ss_after": (result.get("stereoset") or {}).get("ss_after"),
        }
        for name, result in document["categories"].items()
    }
    return entry


def history(engine: Engine, limit: int = 500) -> list[dict[str, Any]]:
    """Summaries of the stored benchmarks, oldest first (the order a chart draws them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(benchmarks).order_by(benchmarks.c.created.desc(), benchmarks.c.seq.desc()).limit(limit)
        ).all()
    return [_entry(row, whole=False) for row in reversed(rows)]


def latest(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(benchmarks).order_by(benchmarks.c.created.desc(), benchmarks.c.seq.desc()).limit(1)
        ).first()
    return None if row is None else _entry(row, whole=True)


def latest_snapshot_benchmarked(engine: Engine, snapshot_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(benchmarks.c.seq).where(benchmarks.c.snapshot_id == snapshot_id).limit(1)
            ).first()
            is not None
        )


def badge_text(document: dict[str, Any] | None, category: str) -> tuple[str, str, str]:
    """(label, message, colour) of the badge for `category` in the latest benchmark."""
    label = f"StereoSet {category}"
    if document is None:
        return "StereoSet", "no benchmark yet", GREY
    result = document["categories"].get(category)
    if not result or result.get("status") != "measured":
        return label, "not measured", GREY
    cut = float(result["stereoset"]["bias_cut_pct"])
    message = f"bias cut {cut:.0f}%" if cut >= 0 else f"bias up {-cut:.0f}%"
    return label, message, VERDICT_COLOURS.get(result.get("verdict") or "", GREY)


def _text_width(text: str) -> int:
    # Verdana 11px, as shields.io badges: about 6.5 px per character plus padding.
    return int(len(text) * 6.5 + 10)


def badge_svg(label: str, message: str, colour: str) -> str:
    """A shields.io-style flat badge: grey label, coloured message."""
    lw, mw = _text_width(label), _text_width(message)
    width = lw + mw
    label, message, title = escape(label), escape(message), escape(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="14">{label}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{message}</text></g></svg>'
    )


def history_chart(entries: list[dict[str, Any]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Points per category of StereoSet bias cut (%) over the runs, in SVG user units, with each run's
    interval as a vertical whisker (the template draws them)."""
    pad = 28
    runs = [e for e in entries if any(c["status"] == "measured" for c in e["categories"].values())]
    values = [
        v
        for e in runs
        for c in e["categories"].values()
        if c["status"] == "measured"
        for v in (c["bias_cut_pct"], *(c["bias_cut_ci"] or ()))
        if v is not None
    ]
    if not values:
        return {"width": width, "height": height, "series": [], "runs": []}
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(runs), 1)

    def y(v: float) -> float:
        return round(height - pad - (v - low) / span * (height - 2 * pad), 1)

    categories = sorted(
        {name for e in runs for name, c in e["categories"].items() if c["status"] == "measured"}
    )
    # Series side by side around each run's x, so that whiskers of one run do not hide each other.
    dodge = min(6.0, step / (2 * max(len(categories), 1)))
    series = []
    for k, name in enumerate(categories):
        points = []
        for i, e in enumerate(runs):
            c = e["categories"].get(name)
            if not c or c["status"] != "measured" or c["bias_cut_pct"] is None:
                continue
            x = round(pad + (i + 0.5) * step + (k - (len(categories) - 1) / 2) * dodge, 1)
            ci = c["bias_cut_ci"]
            points.append(
                {
                    "x": x,
                    "y": y(c["bias_cut_pct"]),
                    "lo": y(ci[0]) if ci else None,
                    "hi": y(ci[1]) if ci else None,
                    "value": c["bias_cut_pct"],
                    "created": e["created"],
                    "snapshot": e["snapshot_id"],
                }
            )
        series.append(
            {
                "category": name,
                "index": k % 6,
                "points": points,
                "line": " ".join(f"{p['x']},{p['y']}" for p in points),
            }
        )
    return {
        "width": width,
        "height": height,
        "series": series,
        "runs": [
            {"x": round(pad + (i + 0.5) * step, 1), "date": e["created"][:10]} for i, e in enumerate(runs)
        ],
        "zero": y(0.0),
        "low": low,
        "high": high,
        "pad": pad,
    }
