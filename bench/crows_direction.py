"""Where does a CrowS-Pairs (and StereoSet) change come from, per category?

Two kinds of work dir:

* `bench/debias_han.py` (gender, `eval-*.json`): splits CrowS gender pairs by which gender the
  more-stereotyping sentence is about ("F>M": it names a female term and the other sentence a male term,
  "M>F" the other way, else "other") and prints how many pairs of each kind each evaluation prefers the
  more-stereotyping sentence in.
* `bench/debias_categories.py` (gender, race, religion: `base-<category>.json` and `*/eval.json`, which keep
  token log-probabilities): for each trained model against the base model,
  - which groups' sentences became more likely: CrowS-Pairs groups (the words in which a pair's two
    sentences differ) and StereoSet targets, ranked by the mean change of their sentences' score;
  - whether a CrowS change is in the group term's own probability or in the attribute given the group:
    the change of (more - less) summed log-probability split into the differing (group) tokens and the
    tokens after them (conditioned on the group).

    .venv/bin/python bench/crows_direction.py /tmp/vbd/w5                 # debias_han.py, gender
    .venv/bin/python bench/crows_direction.py /tmp/vdc --category race    # debias_categories.py
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import re
from collections import Counter, defaultdict
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


def differing_span(sentence: str, other: str) -> tuple[int, int] | None:
    """Character span of the words of `sentence` that `other` does not have in that place (difflib)."""
    words = [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"\S+", sentence)]
    others = [w.lower() for w in other.split()]
    matcher = difflib.SequenceMatcher(a=[w for _, _, w in words], b=others, autojunk=False)
    changed = [i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, i2)]
    if not changed:
        return None
    return words[changed[0]][0], words[changed[-1]][1]


def split_logprob(
    tokens: list[float], offsets: list[list[int]], span: tuple[int, int]
) -> tuple[float, float]:
    """(summed log-prob of the tokens overlapping `span`, of the tokens after it)."""
    term = sum(lp for lp, (s, e) in zip(tokens, offsets, strict=True) if s < span[1] and e > span[0])
    after = sum(lp for lp, (s, _) in zip(tokens, offsets, strict=True) if s >= span[1])
    return term, after


def group_key(sentence: str, span: tuple[int, int] | None) -> str:
    return re.sub(r"[^a-z -]", "", sentence[span[0] : span[1]].lower()).strip() if span else "?"


def mean_score(tokens: list[float]) -> float:
    return sum(tokens) / len(tokens)


def category_analysis(base: dict, ev: dict) -> dict:
    """CrowS-Pairs and StereoSet direction figures of one evaluation against the base."""
    groups: dict[str, list[float]] = defaultdict(list)
    term_change, after_change, hits = [], [], [0, 0]
    for b, a in zip(base["crows"], ev["crows"], strict=True):
        spans = differing_span(b["more"], b["less"]), differing_span(b["less"], b["more"])
        for side, span in zip(("more", "less"), spans, strict=True):
            groups[group_key(b[side], span)].append(
                mean_score(a[f"{side}_tok"]) - mean_score(b[f"{side}_tok"])
            )
        hits[0] += mean_score(b["more_tok"]) > mean_score(b["less_tok"])
        hits[1] += mean_score(a["more_tok"]) > mean_score(a["less_tok"])
        if None in spans:
            continue
        parts = {}
        for name, run in (("base", b), ("after", a)):
            more = split_logprob(run["more_tok"], run["more_off"], spans[0])
            less = split_logprob(run["less_tok"], run["less_off"], spans[1])
            parts[name] = (more[0] - less[0], more[1] - less[1])
        term_change.append(parts["after"][0] - parts["base"][0])
        after_change.append(parts["after"][1] - parts["base"][1])
    targets: dict[str, list[float]] = defaultdict(list)
    attribute: list[float] = []
    for b, a in zip(base["stereoset_test"], ev["stereoset_test"], strict=True):
        targets[b["target"]].append(sum(a["lp"]) / 3 - sum(b["lp"]) / 3)
        attribute.append((a["lp"][0] - a["lp"][1]) - (b["lp"][0] - b["lp"][1]))
    rank = sorted(((sum(v) / len(v), k, len(v)) for k, v in groups.items() if len(v) >= 3), reverse=True)
    ranked_targets = sorted(((sum(v) / len(v), k) for k, v in targets.items()), reverse=True)
    return {
        "hits": hits,
        "n": len(base["crows"]),
        "term": sum(term_change) / max(1, len(term_change)),
        "after": sum(after_change) / max(1, len(after_change)),
        "rose": rank[:4],
        "fell": rank[-2:],
        "targets_rose": ranked_targets[:4],
        "targets_mean": sum(v for v, _ in ranked_targets) / max(1, len(ranked_targets)),
        "stereo_minus_anti": sum(attribute) / max(1, len(attribute)),
    }


def category_report(work: Path, category: str) -> None:
    base = json.loads((work / f"base-{category}.json").read_text())
    print(
        f"## {category}: CrowS-Pairs ({len(base['crows'])} pairs, all) and StereoSet test, each run vs base"
    )
    print()
    print(
        "| run | CrowS pairs preferring sent_more, base -> after | change of (more - less) log-prob: group tokens |"
        " tokens after the group | CrowS groups whose sentences rose most (mean change of score, pairs) |"
        " StereoSet targets rose most (all targets' mean) | StereoSet change of (stereotype - anti) |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in sorted(work.glob(f"{category}-*/eval.json")):
        r = category_analysis(base, json.loads(path.read_text()))
        rose = ", ".join(f"{k} {v:+.3f} ({n})" for v, k, n in r["rose"])
        tr = ", ".join(f"{k} {v:+.3f}" for v, k in r["targets_rose"])
        print(
            f"| {path.parent.name.rsplit('-', 1)[0]} | {r['hits'][0]} -> {r['hits'][1]} / {r['n']} | {r['term']:+.3f} |"
            f" {r['after']:+.3f} | {rose} | {tr} ({r['targets_mean']:+.3f}) | {r['stereo_minus_anti']:+.4f} |"
        )
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="bench/debias_han.py or bench/debias_categories.py --work folder")
    ap.add_argument(
        "--category", default=None, help="debias_categories.py work dirs: gender, race or religion"
    )
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("VDATA_DATA_DIR") or ROOT.parent / "shared" / "benchmarks"),
    )
    args = ap.parse_args()
    if args.category or any(args.work.glob("base-*.json")):
        for category in (
            [args.category]
            if args.category
            else sorted(p.stem.removeprefix("base-") for p in args.work.glob("base-*.json"))
        ):
            category_report(args.work, category)
        return
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
