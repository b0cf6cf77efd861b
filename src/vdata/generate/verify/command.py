"""`vdata verify IN OUT`: the gate over an existing record file (vdata records, or Han et al.'s JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vdata.core.errors import UserError
from vdata.core.han import parse_han_row
from vdata.core.io import atomic_path, check_writable, read_records, write_records
from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.records import Record
from vdata.generate.verify.gate import Rejected, VerifyResult, verify_records
from vdata.generate.verify.settings import VerifySettings


def read_candidates(path: Path, category: str) -> list[Record]:
    """vdata records from IN; a .json file of Han et al.'s rows ([sentence, target, attribute] or their
    causal-LM form) becomes records of `category`."""
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not valid UTF-8 JSON ({e})") from None
        if _is_han(rows):
            parsed = [parse_han_row(row) for row in rows]
            return [
                Record(text=s.text, target=s.target, attribute=s.attribute, category=category, strategy="han")
                for s in parsed
                if s is not None
            ]
    return read_records(path)


def _is_han(rows: object) -> bool:
    """Han et al.'s rows: [sentence, target, attribute] lists or {"prompt", "subject", ...} objects."""
    if not (isinstance(rows, list) and rows):
        return False
    first = rows[0]
    return isinstance(first, list) or (isinstance(first, dict) and "prompt" in first)


def write_rejected(rejected: Sequence[Rejected], path: Path) -> None:
    """The dropped candidates as JSON lines: the record, its checks, and {"rejected": {check, reason}}."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for r in rejected:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def run_verify(
    src: Path,
    out: Path,
    settings: VerifySettings,
    *,
    rejected: Path | None = None,
    judge_model: str | None = None,
    category: str = "gender",
    progress: ProgressFactory = no_progress,
) -> VerifyResult:
    """Gate the records of `src`, write the kept ones to `out` (and the dropped ones to `rejected`)."""
    check_writable(out)
    if rejected is not None:
        check_writable(rejected)
    records = read_candidates(src, category)
    if not records:
        raise UserError(f"{src} holds no records to verify")
    result = verify_records(records, settings, progress, judge=judge_model)
    write_records(result.kept, out)
    if rejected is not None:
        write_rejected(result.rejected, rejected)
    return result
