"""How well does the gate's counter-stereotype judge separate human labels? (issue 15)

For each scoring rule of the model judge (`attribute_given_group`, `whole_sentence`) and a grid of margins,
it prints the share of sentences the judge keeps among
  * StereoSet intrasentence gender anti-stereotype sentences,
  * StereoSet intrasentence gender stereotype sentences,
  * Han et al.'s 1,500 targeted gender sentences (Targeted_Debiasing/Gender/*S.json),
on StereoSet's dev split (where rule and margin are chosen: the largest anti - stereotype gap) and on its
test split (reported once, for the choice made on dev). A sentence the judge cannot build a counterfactual
for counts as not kept. The judge is the embedded model unless --judge-model names another.

    PYTHONPATH=src VDATA_DATA_DIR=/work/shared/benchmarks .venv/bin/python bench/gate_separation.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from collections.abc import Sequence

from vdata.core.benchdata import locate
from vdata.core.han import parse_han_row
from vdata.core.records import Record
from vdata.evaluate.stereoset import load_examples
from vdata.generate.verify.checks.model_judge import JudgeItem, judge_deltas, judge_item
from vdata.generate.verify.judge import load_judge
from vdata.generate.verify.registry import CheckContext
from vdata.generate.verify.settings import JudgeRule, VerifySettings
from vdata.lm.models import DEFAULT_MODEL

RULES: tuple[JudgeRule, ...] = ("attribute_given_group", "whole_sentence")
MARGINS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
HAN_GENDER = [f"han2024-synthetic/Targeted_Debiasing/Gender/Synthetic_Gender_{i}S.json" for i in (1, 2, 3)]


def filled_word(context: str, sentence: str) -> str | None:
    """The first word StereoSet put in place of BLANK (the attribute), or None when it does not align."""
    before = context.split("BLANK")[0]
    if not sentence.lower().startswith(before.lower()):
        return None
    rest = re.findall(r"[\w'-]+", sentence[len(before) :])
    return rest[0] if rest else None


def stereoset_records(split: str, label: str) -> list[Record]:
    out = []
    for ex in load_examples(locate(f"stereoset/{split}.json"), ["gender"]):
        text = ex.sentences[label]
        word = filled_word(ex.context, text)
        if word:
            out.append(Record(text=text, target=ex.target, attribute=word, category="gender"))
    return out


def han_records() -> list[Record]:
    out = []
    for rel in HAN_GENDER:
        for row in json.loads(locate(rel).read_text(encoding="utf-8")):
            s = parse_han_row(row)
            if s:
                out.append(Record(text=s.text, target=s.target, attribute=s.attribute, category="gender"))
    return out


def deltas(records: Sequence[Record], rule: JudgeRule, ctx: CheckContext) -> list[float | None]:
    """counterpart - own score per record (None: not judgeable)."""
    prepared = [judge_item(r, rule, ctx.settings.max_counterparts) for r in records]
    items = [p for p in prepared if isinstance(p, JudgeItem)]
    scores = iter(judge_deltas(items, rule, ctx))
    out: list[float | None] = []
    for p in prepared:
        if isinstance(p, str):
            out.append(None)
        else:
            own, counterpart = next(scores)
            out.append(counterpart - own)
    return out


def kept(values: Sequence[float | None], margin: float) -> float:
    return 100.0 * sum(1 for d in values if d is not None and d > margin) / len(values)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judge-model", default=DEFAULT_MODEL)
    p.add_argument(
        "--limit", type=int, default=None, help="Score a seeded random sample of this many sentences per set."
    )
    args = p.parse_args()
    started = time.monotonic()
    judge = load_judge(args.judge_model)
    ctx = CheckContext(settings=VerifySettings(), judge_loader=lambda: judge)

    def sample(records: list[Record]) -> list[Record]:
        if args.limit is None or len(records) <= args.limit:
            return records
        return random.Random(0).sample(records, args.limit)

    sets = {
        (split, label): sample(stereoset_records(split, label))
        for split in ("dev", "test")
        for label in ("anti-stereotype", "stereotype")
    }
    han = sample(han_records())
    print(f"judge {args.judge_model}; load average {os.getloadavg()[0]:.2f}")
    print(
        "sentences: "
        + ", ".join(f"{s} {lab} {len(r)}" for (s, lab), r in sets.items())
        + f", Han gender {len(han)}"
    )
    best: tuple[float, JudgeRule, float] | None = None
    computed: dict[tuple[str, str, JudgeRule], list[float | None]] = {}
    for rule in RULES:
        for key, recs in [*sets.items(), (("han", ""), han)]:
            computed[(*key, rule)] = deltas(recs, rule, ctx)
            at_zero = kept(computed[(*key, rule)], 0.0)
            print(
                f"  {rule} {' '.join(key)}: kept {at_zero:.1f}% at margin 0 ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
        for split in ("dev", "test"):
            print(f"\n{rule}, StereoSet {split} | kept %: anti-stereotype | stereotype | gap | Han gender")
            for margin in MARGINS:
                anti = kept(computed[(split, "anti-stereotype", rule)], margin)
                stereo = kept(computed[(split, "stereotype", rule)], margin)
                han_kept = kept(computed[("han", "", rule)], margin)
                print(
                    f"  margin {margin:4.2f}: {anti:5.1f} | {stereo:5.1f} | {anti - stereo:5.1f} | {han_kept:5.1f}"
                )
                if split == "dev" and (best is None or anti - stereo > best[0]):
                    best = (anti - stereo, rule, margin)
    assert best is not None
    _, rule, margin = best
    print(f"\nchosen on dev: rule {rule}, margin {margin} (largest anti - stereotype gap)")
    for split in ("dev", "test"):
        anti = kept(computed[(split, "anti-stereotype", rule)], margin)
        stereo = kept(computed[(split, "stereotype", rule)], margin)
        print(
            f"  {split}: anti-stereotype {anti:.1f}%, stereotype {stereo:.1f}%, Han {kept(computed[('han', '', rule)], margin):.1f}%"
        )
    print(f"{time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
