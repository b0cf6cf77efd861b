"""Build the dataset `vdata benchmark-dataset` is measured on (docs/benchmark.md): Han et al.'s released
synthetic debiasing data plus the project's own generated records, as vdata records (JSONL).

    .venv/bin/python bench/benchmark_dataset_build.py OUT.jsonl --total 10000 --own demo-out/gender.jsonl

Han et al.'s raw sentences (`*S.json`, [sentence, target, attribute]; Targeted Gender/Racial/Religion and
General, 6,000 in all) come first, then every own record given with --own, then, to reach --total, rows of
Han et al.'s causal-LM form (`Synthetic_*_N.json`, the same sentences as prompts, parsed by
`vdata.core.han`): near duplicates of the raw sentences, as a public dataset receives re-submitted
variants; the audit flags them and its filter drops them before any training.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

from vdata.core.benchdata import locate
from vdata.core.han import parse_han_row
from vdata.core.io import read_records, write_records
from vdata.core.records import Record

HAN = "han2024-synthetic"
FOLDERS = {
    "Targeted_Debiasing/Gender/Synthetic_Gender": "gender",
    "Targeted_Debiasing/Racial/Synthetic_Race": "race",
    "Targeted_Debiasing/Religion/Synthetic_Religion": "religion",
    "General_Debiasing/Synthetic_General": "",
}


def han_records(form: str, data_dir: Path | None) -> list[Record]:
    """Han et al.'s rows of one form ("S": raw triples, "": causal-LM prompts) as records."""
    out = []
    for stem, category in FOLDERS.items():
        for i in (1, 2, 3):
            path = locate(f"{HAN}/{stem}_{i}{form}.json", data_dir)
            for row in json.loads(path.read_text(encoding="utf-8")):
                han = parse_han_row(row)
                if han is not None:
                    out.append(
                        Record(
                            text=han.text,
                            target=han.target,
                            attribute=han.attribute,
                            category=category,
                            strategy="han2024",
                            provider="han2024",
                            model="gpt-4 (Han et al. 2024)",
                        )
                    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--total", type=int, default=10_000)
    p.add_argument("--own", type=Path, action="append", default=[], help="vdata records (repeatable).")
    p.add_argument("--data-dir", type=Path, default=os.environ.get("VDATA_DATA_DIR"))
    args = p.parse_args()
    raw = han_records("S", args.data_dir)
    own = [r for path in args.own for r in read_records(path)]
    prompts = han_records("", args.data_dir)
    records = (raw + own + prompts)[: args.total]
    write_records(records, args.out)
    parts = {
        "han_raw": min(len(raw), len(records)),
        "own": len(own),
        "han_prompt_form": max(0, len(records) - len(raw) - len(own)),
    }
    print(json.dumps({"records": len(records), **parts, "by_category": Counter(r.category for r in records)}))


if __name__ == "__main__":
    main()
