"""`--filter CLEAN_OUT`: stream the dataset a second time and write only the records the audit kept.

Output format follows the extension: .jsonl / .csv / .parquet hold vdata records (rows that were already
vdata records keep all their fields; other inputs become records with text, target, attribute, category),
.txt holds one sentence per line. The file appears atomically, only when complete.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from vdata.audit.partial import KEEP
from vdata.audit.readers import AuditItem, DatasetReader
from vdata.core.errors import UserError
from vdata.core.io import atomic_path, row_for_csv, write_records
from vdata.core.records import RECORD_FIELDS, Record, validate_category

OUTPUT_SUFFIXES = (".jsonl", ".csv", ".parquet", ".txt")


def check_output(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"--filter {path}: use one of {', '.join(OUTPUT_SUFFIXES)} as the extension")


def as_record(item: AuditItem) -> Record:
    if item.record is not None:
        return item.record
    try:
        category = validate_category(item.category) if item.category else ""
    except ValueError:
        category = ""
    return Record(
        text=item.text or "",
        target=item.target,
        attribute=item.attribute,
        category=category,
        attributes=item.attributes,
    )


def kept_items(reader: DatasetReader, reasons: bytearray) -> Iterator[AuditItem]:
    for item in reader:
        if item.ordinal >= len(reasons):
            raise UserError(
                f"{item.where}: the input changed while it was being audited; run the audit again"
            )
        if reasons[item.ordinal] == KEEP and item.text:
            yield item


def write_clean(reader: DatasetReader, reasons: bytearray, out: Path) -> int:
    """Write the kept records; returns how many."""
    suffix = out.suffix.lower()
    n = 0
    if suffix == ".parquet":
        return write_records((as_record(i) for i in kept_items(reader, reasons)), out, "parquet")
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(RECORD_FIELDS)) if suffix == ".csv" else None
        if writer:
            writer.writeheader()
        for item in kept_items(reader, reasons):
            n += 1
            if suffix == ".txt":
                f.write(" ".join((item.text or "").split()) + "\n")
                continue
            row = as_record(item).to_dict()
            if writer:
                writer.writerow(row_for_csv(row))  # the same CSV row write_records writes
            else:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return n
