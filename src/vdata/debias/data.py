"""Training examples for `vdata debias`: reading data files, CDA, and mixing with an original corpus.

Accepted data files:
  * vdata records (JSONL/JSON/CSV/Parquet, read with `vdata.core.io`): text, target, attribute;
  * Han et al. 2024's raw form (`*S.json`, ``[sentence, target, attribute]``) and causal-LM form
    (``{"prompt": "the {} was remarkably ", "subject": "woman", "target_new": {"str": "stoic"}}`` ->
    ``"the woman was remarkably stoic"``), parsed by `vdata.core.han`.
The corpus given to ``--mix-corpus`` is a plain-text file (one sample per non-blank line) or a records file.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vdata.core.cda import CdaMode, WordLists, counterfactuals, swap_text
from vdata.core.errors import UserError
from vdata.core.han import parse_han_row

RECORD_SUFFIXES = {".jsonl", ".ndjson", ".csv", ".parquet"}


@dataclass(frozen=True)
class Example:
    """One training sentence. `attribute` is the word the `attribute` objective trains on."""

    text: str
    target: str = ""
    attribute: str = ""
    synthetic: bool = True
    source: str = ""

    def attribute_span(self) -> tuple[int, int] | None:
        """Character span of the attribute word: its last whole-word occurrence (case-insensitive).

        The last one, because in the prompt form the attribute ends the text by construction."""
        return last_word_span(self.text, self.attribute)


def last_word_span(text: str, word: str) -> tuple[int, int] | None:
    if not word.strip():
        return None
    spans = word_spans(text, [word])
    return spans[-1] if spans else None


def word_spans(text: str, words: Iterable[str]) -> list[tuple[int, int]]:
    """Sorted character spans of whole-word, case-insensitive occurrences of any of `words`."""
    alternatives = sorted({w.strip() for w in words if w.strip()}, key=len, reverse=True)
    if not alternatives:
        return []
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def _han_example(row: object, where: str) -> Example | None:
    """An example from one item of a Han et al. file, or None when the item has neither form."""
    han = parse_han_row(row)
    return None if han is None else Example(han.text, han.target, han.attribute, True, where)


def read_examples(path: Path) -> list[Example]:
    """Examples from one data file; a file whose items are in none of the accepted forms is an error."""
    if not path.exists():
        raise UserError(f"data file {path} does not exist; give vdata records or Han et al. JSON files")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not valid UTF-8 JSON ({e}); fix the file or export it again") from e
        if not isinstance(data, list):
            raise UserError(f"{path}: expected a JSON list of records, [S, T, A] lists or prompt items")
        if data and isinstance(data[0], dict) and "text" in data[0]:
            return _from_records(path)
        examples = [ex for i, row in enumerate(data) if (ex := _han_example(row, f"{path.name}:{i}"))]
        return examples
    if path.suffix.lower() in RECORD_SUFFIXES:
        return _from_records(path)
    raise UserError(f"{path}: unknown data file type {path.suffix!r}; use .jsonl, .json, .csv or .parquet")


def _from_records(path: Path) -> list[Example]:
    from vdata.core.io import read_records

    return [Example(r.text, r.target, r.attribute, True, f"{path.name}:{r.id}") for r in read_records(path)]


def read_corpus(path: Path) -> list[Example]:
    """Original (non-synthetic) text: records files are read as records, anything else one sample per line."""
    if not path.exists():
        raise UserError(
            f"corpus file {path} does not exist; pass an existing text or records file to --mix-corpus"
        )
    if path.suffix.lower() in RECORD_SUFFIXES | {".json"}:
        return [replace(ex, synthetic=False, attribute="") for ex in read_examples(path)]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"corpus file {path} is not UTF-8 text; re-encode it") from e
    return [
        Example(line.strip(), synthetic=False, source=f"{path.name}:{n}")
        for n, line in enumerate(lines, 1)
        if line.strip()
    ]


def apply_cda(
    examples: Sequence[Example], categories: Sequence[str], word_lists: WordLists, seed: int, mode: CdaMode
) -> list[Example]:
    """Two-sided CDA: every example is kept and followed by its counterfactuals (one per category that
    swapped, plus the combined swap). The target is swapped with the same word lists so the
    `mask` mitigation still finds it; the attribute word is not a group term and stays."""
    out: list[Example] = []
    for i, ex in enumerate(examples):
        out.append(ex)
        for j, text in enumerate(
            counterfactuals(ex.text, categories, word_lists, seed=seed * 1_000_003 + i, mode=mode)
        ):
            target = ex.target
            if target:
                swapped = counterfactuals(
                    target, categories, word_lists, seed=seed * 1_000_003 + i, mode=mode
                )
                target = swapped[0] if swapped else target
            out.append(replace(ex, text=text, target=target, source=f"{ex.source}+cda{j}"))
    return out


def mix(
    synthetic: Sequence[Example], original: Sequence[Example], bias_ratio: float | None, seed: int
) -> list[Example]:
    """Synthetic and original examples with synthetic share `bias_ratio` (None: use all of both).

    The larger side is subsampled (seeded) so that the share is as close to R as the counts allow."""
    if bias_ratio is None:
        return [*synthetic, *original]
    if not 0.0 <= bias_ratio <= 1.0:
        raise UserError(f"--bias-ratio must be between 0 and 1 (the synthetic share); got {bias_ratio}")
    rng = random.Random(seed)
    n_syn, n_orig = len(synthetic), len(original)
    if bias_ratio == 1.0:
        n_orig = 0
    elif bias_ratio == 0.0:
        n_syn = 0
    elif n_syn / max(1, n_syn + n_orig) > bias_ratio:
        n_syn = min(n_syn, round(bias_ratio / (1 - bias_ratio) * n_orig))
    else:
        n_orig = min(n_orig, round(n_syn * (1 - bias_ratio) / bias_ratio))
    syn = rng.sample(list(synthetic), n_syn) if n_syn < len(synthetic) else list(synthetic)
    orig = rng.sample(list(original), n_orig) if n_orig < len(original) else list(original)
    return [*syn, *orig]


def split_heldout(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Seeded train/held-out split; held-out is empty when fewer than 10 examples or fraction 0."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = round(len(examples) * fraction) if len(examples) >= 10 else 0
    val = [examples[i] for i in sorted(order[:n_val])]
    train = [examples[i] for i in sorted(order[n_val:])]
    return train, val


def group_terms(examples: Sequence[Example]) -> list[str]:
    """The distinct targets (first spelling, case-insensitive) that occur in their own example's text:
    the category's term list the data itself gives."""
    terms: dict[str, str] = {}
    for ex in examples:
        if ex.synthetic and ex.target.strip() and word_spans(ex.text, [ex.target]):
            terms.setdefault(ex.target.strip().lower(), ex.target.strip())
    return list(terms.values())


def word_list_category(term: str, word_lists: WordLists | None) -> str | None:
    """The category whose word lists hold `term` (case-insensitive), or None."""
    for category, tuples in (word_lists or {}).items():
        if any(term.lower() == w for t in tuples for w in t):
            return category
    return None


_ARTICLE = re.compile(r"\b(a|an)(\s+)$", re.IGNORECASE)


def replace_term(text: str, old: str, new: str) -> str:
    """`text` with every whole-word `old` (case-insensitive) replaced by `new`, an initial capital kept and
    a preceding "a"/"an" fitted to the new word."""
    out: list[str] = []
    last = 0
    for start, end in word_spans(text, [old]):
        before = text[last:start]
        article = _ARTICLE.search(before)
        if article:
            want = "an" if new[:1].lower() in "aeiou" else "a"
            want = want.capitalize() if article.group(1)[0].isupper() else want
            before = before[: article.start()] + want + article.group(2)
        word = new[:1].upper() + new[1:] if text[start : start + 1].isupper() else new
        out += [before, word]
        last = end
    return "".join(out) + text[last:]


def balance_groups(
    examples: Sequence[Example],
    n: int,
    word_lists: WordLists | None,
    seed: int,
    mode: CdaMode = "cased",
    counterpart_terms: Sequence[str] = (),
) -> list[Example]:
    """Group-balanced data: every synthetic example followed by up to `n` versions naming another group,
    so that training makes no group more likely as such. A target in the word lists is swapped with CDA
    (pronouns and other group words too); any other target is replaced by a term drawn (seeded) from
    `counterpart_terms`, or when none are given from the data's own term list (`group_terms`).

    Targeted data names the groups it is about and rarely the group benchmarks compare them with (Han et
    al.'s race data: 151 groups, "white" 5 times; CrowS-Pairs race: "white" in 243 of 516 less-stereotyping
    sentences), so balancing among the data's own terms still raises every named group against that one;
    `counterpart_terms` names it."""
    if n <= 0:
        return list(examples)
    terms = list(counterpart_terms) or group_terms(examples)
    rng = random.Random(seed)
    out: list[Example] = []
    for ex in examples:
        out.append(ex)
        if not ex.synthetic or not ex.target.strip():
            continue
        for j, (text, target) in enumerate(_counterparts(ex, n, terms, word_lists, rng, mode)):
            out.append(replace(ex, text=text, target=target, source=f"{ex.source}+bal{j}"))
    return out


def _counterparts(
    ex: Example, n: int, terms: Sequence[str], word_lists: WordLists | None, rng: random.Random, mode: CdaMode
) -> list[tuple[str, str]]:
    category = word_list_category(ex.target.strip(), word_lists)
    found: dict[str, str] = {}
    if category is not None and word_lists is not None:
        for _ in range(n):
            draw = rng.random()  # the same draw swaps the text and the target alike
            text = swap_text(ex.text, category, word_lists, random.Random(draw), mode)
            target = swap_text(ex.target, category, word_lists, random.Random(draw), mode) or ex.target
            if text is not None and text != ex.text:
                found.setdefault(text, target)
        return list(found.items())
    if not word_spans(ex.text, [ex.target]):
        return []
    others = [t for t in terms if t.lower() != ex.target.strip().lower()]
    return [(replace_term(ex.text, ex.target.strip(), t), t) for t in rng.sample(others, min(n, len(others)))]
