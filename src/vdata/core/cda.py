"""Counterfactual data augmentation (CDA) with the bias-bench word lists.

bias-bench (`experiments/run_clm.py`) splits each example on whitespace and swaps exact, case-sensitive,
whole-token matches of the attribute words, each also matched with one trailing `. , ? ! ; :`.
Gender swaps male<->female. Race and religion use word triples: per example, three random draws choose
which other member of the triple replaces a word in slot 1, 2 and 3. Two-sided CDA keeps both the
augmented and the original text of every example where a swap happened.

Two matching modes:
  * ``"bias-bench"``: exactly the above (use it to reproduce published numbers);
  * ``"cased"`` (vdata's default): also matches capitalised/upper-case tokens and possessives ("Man's"),
    preserving the original's capitalisation. Synthetic sentences often start with the group term
    ("Women are ..."), which the case-sensitive rule would miss.
When a word appears in several tuples, the last tuple wins, as in bias-bench's loop.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from vdata.core.errors import UserError

WordLists = dict[str, list[tuple[str, ...]]]
CdaMode = Literal["bias-bench", "cased"]
BIAS_BENCH_PUNCT = (".", ",", "?", "!", ";", ":")
WORD_LIST_FILE = "bias_attribute_words/bias_attribute_words.json"
# Category names users type, mapped to the word-list keys.
_CATEGORY_KEYS = {"race-color": "race", "sexual_orientation": "sexual-orientation"}

_TOKEN = re.compile(r"^(?P<pre>[\"'“‘(\[]*)(?P<core>.*?)(?P<poss>'s|’s)?(?P<post>[.,?!;:\"'”’)\]]*)$")


def validate_word_lists(raw: object, source: str) -> WordLists:
    """Check the shape: {category: [[w1, w2, ...], ...]} with equal-length tuples of >= 2 non-empty words."""
    if not isinstance(raw, dict) or not raw:
        raise UserError(
            f"{source}: word lists must be a JSON object mapping a category to a list of word tuples"
        )
    out: WordLists = {}
    for cat, tuples in raw.items():
        if not isinstance(tuples, list) or not tuples:
            raise UserError(f"{source}: category {cat!r} must map to a non-empty list of word tuples")
        width = None
        rows: list[tuple[str, ...]] = []
        for i, t in enumerate(tuples):
            ok = isinstance(t, list) and len(t) >= 2 and all(isinstance(w, str) and w.strip() for w in t)
            if not ok:
                raise UserError(
                    f'{source}: {cat}[{i}] must be a list of at least two words, e.g. ["he", "she"]; got {t!r}'
                )
            if width is not None and len(t) != width:
                raise UserError(f"{source}: {cat}[{i}] has {len(t)} words but earlier tuples have {width}")
            width = len(t)
            rows.append(tuple(w.strip() for w in t))
        out[_CATEGORY_KEYS.get(cat, cat)] = rows
    return out


def load_word_lists(data_dir: str | Path | None = None, path: str | Path | None = None) -> WordLists:
    """The bias-bench word lists (located like benchmark data, checksum-verified), or a user file."""
    if path is None:
        from vdata.core.benchdata import locate

        path = locate(WORD_LIST_FILE, data_dir=data_dir)
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"word list file {p} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"word list file {p} is not valid UTF-8 JSON: {e}") from e
    return validate_word_lists(raw, str(p))


def _patterns(width: int, rng: random.Random) -> list[int]:
    """For each slot, the index of the member that replaces it (never itself): bias-bench's random draws."""
    if width == 2:
        return [1, 0]
    return [rng.choice([j for j in range(width) if j != i]) for i in range(width)]


def swap_map(tuples: Sequence[tuple[str, ...]], rng: random.Random) -> dict[str, str]:
    """word -> replacement for one example; later tuples override earlier ones (bias-bench's last match)."""
    width = len(tuples[0])
    pattern = _patterns(width, rng)
    mapping: dict[str, str] = {}
    for t in tuples:
        for slot, word in enumerate(t):
            mapping[word] = t[pattern[slot]]
    return mapping


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _swap_token(token: str, mapping: dict[str, str], mode: CdaMode) -> str | None:
    if mode == "bias-bench":
        if token in mapping:
            return mapping[token]
        if token[-1:] in BIAS_BENCH_PUNCT and token[:-1] in mapping:
            return mapping[token[:-1]] + token[-1]
        return None
    m = _TOKEN.match(token)
    if not m or not m["core"]:
        return None
    core = m["core"]
    repl = mapping.get(core.lower())
    if repl is None:
        return None
    return m["pre"] + _match_case(core, repl) + (m["poss"] or "") + m["post"]


def swap_text(
    text: str, category: str, word_lists: WordLists, seed: int | random.Random = 0, mode: CdaMode = "cased"
) -> str | None:
    """One counterfactual of `text` for `category`, or None when no word of that category occurs."""
    key = _CATEGORY_KEYS.get(category, category)
    if key not in word_lists:
        raise UserError(
            f"no CDA word list for category {category!r}; available: {', '.join(sorted(word_lists))}"
        )
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    mapping = swap_map(word_lists[key], rng)
    words = text.split()
    swapped = False
    for i, w in enumerate(words):
        new = _swap_token(w, mapping, mode)
        if new is not None:
            words[i] = new
            swapped = True
    return " ".join(words) if swapped else None


def counterfactuals(
    text: str, categories: Iterable[str], word_lists: WordLists, seed: int = 0, mode: CdaMode = "cased"
) -> list[str]:
    """Distinct counterfactuals: one per category that swapped something, plus the combined swap when
    several did (for intersectional data such as race+gender)."""
    rng = random.Random(seed)
    cats = [c for c in categories if _CATEGORY_KEYS.get(c, c) in word_lists]
    out: list[str] = []
    combined = text
    n_swapped = 0
    for c in cats:
        one = swap_text(text, c, word_lists, rng, mode)
        if one is not None:
            out.append(one)
            n_swapped += 1
            combined = swap_text(combined, c, word_lists, random.Random(rng.random()), mode) or combined
    if n_swapped > 1 and combined not in out:
        out.append(combined)
    return list(dict.fromkeys(x for x in out if x != text))
