"""Group terms, their gender and their counterparts: what the form checks and the model judge swap.

Gender comes from bias-bench's CDA word lists (`vdata.core.cda`): in every gender pair the first word is
male and the second female. A term not in the lists takes the gender of its longest gendered ending
("grandmother" -> "mother", "schoolgirl" -> "girl"). Other categories' counterparts are the other
members of the term's CDA tuple (race, religion), then the category's example terms (`prompts/terms.yaml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from vdata.core.cda import WordLists, load_word_lists, swap_text
from vdata.generate.templates import builtin_data

Gender = Literal["male", "female"]
PRONOUNS: dict[Gender, frozenset[str]] = {
    "male": frozenset({"he", "him", "his", "himself"}),
    "female": frozenset({"she", "her", "hers", "herself"}),
}
MIN_ENDING = 3  # shorter gendered "endings" ("he" in "the") are not endings


@dataclass(frozen=True)
class Lexicon:
    word_lists: WordLists
    gender_of: dict[str, Gender]
    counterpart: dict[str, str]  # gendered word -> its opposite
    terms: dict[str, list[str]]  # category -> example terms

    def term_gender(self, term: str) -> Gender | None:
        """The gender of a group term's head word (its last word), exact or by its longest gendered ending."""
        head = _head(term)
        if head in self.gender_of:
            return self.gender_of[head]
        ending = self._ending(head)
        return self.gender_of[ending] if ending else None

    def _ending(self, head: str) -> str | None:
        endings = [w for w in self.gender_of if len(w) >= MIN_ENDING and head.endswith(w) and w != head]
        return max(endings, key=len) if endings else None

    def gender_swap(self, text: str, term: str) -> str | None:
        """The text with every gendered word swapped (CDA), the term too when only its ending is
        gendered ("grandmother" -> "grandfather"); None when nothing was swapped."""
        swapped = swap_text(text, "gender", self.word_lists, 0, "cased")
        head = _head(term)
        ending = None if head in self.gender_of else self._ending(head)
        if ending:
            other = head[: -len(ending)] + self.counterpart[ending]
            replaced = replace_word(swapped or text, head, other)
            swapped = replaced if replaced is not None else swapped
        return swapped

    def counterparts(self, term: str, category: str, limit: int) -> list[str]:
        """Other terms of the category to put in the term's place (not for gender: see `gender_swap`)."""
        low = term.casefold()
        mates = [w for t in self.word_lists.get(category, []) if low in t for w in t if w != low]
        examples = [t for t in self.terms.get(category, []) if t.casefold() != low]
        out = list(dict.fromkeys([*mates, *examples]))
        return out[:limit]

    def counterfactuals(self, text: str, term: str, category: str, limit: int) -> list[str]:
        """The text with the group swapped for its counterpart(s), per base category of `category`."""
        out: list[str] = []
        for part in category.split("+"):
            if part == "gender":
                swapped = self.gender_swap(text, term)
                if swapped is not None:
                    out.append(swapped)
                continue
            present = self._group_word(text, term, part)
            if present is None:
                continue
            for other in self.counterparts(present, part, limit):
                replaced = replace_word(text, present, other)
                if replaced is not None:
                    out.append(replaced)
        return [t for t in dict.fromkeys(out) if t != text]

    def _group_word(self, text: str, term: str, category: str) -> str | None:
        """The word(s) of `text` that name the group in `category`: the term itself when it is one of the
        category's words, else the first category word inside the term ("Black" in "Black woman"), else
        the first one in the text."""
        known = [*self.terms.get(category, []), *(w for t in self.word_lists.get(category, []) for w in t)]
        lowered = {w.casefold() for w in known}
        if term.casefold() in lowered and find_word(text, term) is not None:
            return term
        inside = [w for w in known if find_word(term, w) is not None and find_word(text, w) is not None]
        if inside:
            return max(inside, key=len)
        return next((w for w in known if find_word(text, w) is not None), None)


def _head(term: str) -> str:
    words = term.casefold().split()
    return re.sub(r"['’]s$", "", words[-1]) if words else ""


def word_pattern(word: str) -> re.Pattern[str]:
    """`word` as a whole word, case-insensitively, also with a possessive or plural 's'."""
    return re.compile(r"(?<![\w-])" + re.escape(word) + r"(?=(?:['’]s|s|es)?(?![\w-]))", re.IGNORECASE)


def find_word(text: str, word: str) -> re.Match[str] | None:
    return word_pattern(word).search(text) if word.strip() else None


def _match_case(template: str, word: str) -> str:
    if template[:1].isupper() and not word[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def replace_word(text: str, word: str, other: str) -> str | None:
    """Every whole-word `word` in `text` replaced by `other` (capitalised like the original); None if absent."""
    pattern = word_pattern(word)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: _match_case(m.group(0), other), text)


@cache
def load_lexicon(data_dir: str | None = None) -> Lexicon:
    word_lists = load_word_lists(data_dir)
    gender_of: dict[str, Gender] = {}
    counterpart: dict[str, str] = {}
    for male, female in word_lists.get("gender", []):
        gender_of.setdefault(male, "male")
        gender_of.setdefault(female, "female")
        counterpart.setdefault(male, female)
        counterpart.setdefault(female, male)
    for gender, words in PRONOUNS.items():
        for w in words:
            gender_of.setdefault(w, gender)
    raw = builtin_data("terms")
    terms = {k: [str(t) for t in v] for k, v in raw.items() if isinstance(v, list)}
    return Lexicon(word_lists, gender_of, counterpart, terms)
