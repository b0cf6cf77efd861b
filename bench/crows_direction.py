"""Where does a CrowS-Pairs gender change come from? Splits the pairs by which gender the more-stereotyping
sentence is about, for the evaluations `bench/debias_han.py` cached in its work dir.

A pair counts as "F>M" when the more-stereotyping sentence names a female term and the less-stereotyping one a
male term (the word lists below), "M>F" the other way; everything else is "other". For each evaluation it
prints how many pairs of each kind the model scored as preferring the more-stereotyping sentence.

    .venv/bin/python bench/crows_direction.py /tmp/vbd/w5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEMALE = set(
    [
        "she",
        "her",
        "hers",
        "herself",
        "woman",
        "women",
        "girl",
        "girls",
        "mother",
        "mothers",
        "wife",
        "wives",
        "daughter",
        "daughters",
        "sister",
        "sisters",
        "lady",
        "ladies",
        "female",
        "females",
        "mom",
        "moms",
        "aunt",
        "grandmother",
        "queen",
        "bride",
        "girlfriend",
    ]
)
MALE = set(
    [
        "he",
        "him",
        "his",
        "himself",
        "man",
        "men",
        "boy",
        "boys",
        "father",
        "fathers",
        "husband",
        "husbands",
        "son",
        "sons",
        "brother",
        "brothers",
        "gentleman",
        "gentlemen",
        "male",
        "males",
        "dad",
        "dads",
        "uncle",
        "grandfather",
        "king",
        "groom",
        "boyfriend",
    ]
)


def gender_of(sentence: str) -> str:
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    return ("F" if words & FEMALE else "") + ("M" if words & MALE else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="bench/debias_han.py --work folder (eval-*.json)")
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("VDATA_DATA_DIR") or ROOT.parent / "shared" / "benchmarks"),
    )
    args = ap.parse_args()
    from vdata.core.benchdata import locate

    with locate("crows_pairs/crows_pairs_anonymized.csv", args.data_dir).open(encoding="utf-8") as f:
        pairs = [r for r in csv.DictReader(f) if r["bias_type"] == "gender"]
    kinds = [f"{gender_of(p['sent_more'])}>{gender_of(p['sent_less'])}" for p in pairs]
    kinds = [k if k in ("F>M", "M>F") else "other" for k in kinds]
    total = Counter(kinds)
    print(f"{'evaluation':<24}" + "".join(f"{k:>12}" for k in ("F>M", "M>F", "other")))
    for path in sorted(args.work.glob("eval-*.json")):
        hits = json.loads(path.read_text())["crows_hits"]
        got = Counter(k for k, h in zip(kinds, hits, strict=True) if h)
        print(f"{path.stem[5:]:<24}" + "".join(f"{got[k]:>8}/{total[k]:<3}" for k in ("F>M", "M>F", "other")))


if __name__ == "__main__":
    main()
