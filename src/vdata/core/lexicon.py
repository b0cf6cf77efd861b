"""Social-group lexicons: vdata's own per-category term lists plus the bias-bench CDA word lists.

Pure code shared by two stages: `vdata audit` measures group balance with it, the server's contribution
gate compares a batch's groups with the public dataset's. The term lists are data files in
`vdata/data/lexicons/`.

A lexicon maps a category (gender, race, ...) to groups (male, female, ...) and each group to terms.
Users extend or override it with a YAML/JSON file of the same shape (`--lexicon FILE`):

    category: gender            # or a mapping of several categories: {gender: {groups: ...}, ...}
    groups:
      nonbinary: [enby, genderqueer]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vdata.core.errors import UserError
from vdata.core.hygiene import tokenize
from vdata.core.records import BASE_CATEGORIES

# bias-bench word-list tuples are ordered consistently; slot i of every tuple names the same group.
WORD_LIST_SLOTS: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    "race": ("black", "white", "asian"),
    "religion": ("jewish", "christian", "muslim"),
}
_POSSESSIVE = re.compile(r"['’]s$")


def term_key(token: str) -> str:
    """A token as looked up in the lexicon: possessive 's dropped ("women's" -> "women")."""
    if "'" not in token and "’" not in token:  # fast path: most tokens have no apostrophe
        return token
    return _POSSESSIVE.sub("", token)


@dataclass
class Lexicon:
    """category -> group -> terms, compiled for fast matching of 1- to 4-word terms."""

    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    attribute_words: frozenset[str] = frozenset()
    # term (tuple of tokens) -> [(category, group), ...]
    index: dict[tuple[str, ...], list[tuple[str, str]]] = field(default_factory=dict)
    max_len: int = 1
    phrase_starts: frozenset[str] = frozenset()

    def add(self, category: str, group: str, term: str) -> None:
        words = tuple(term_key(t) for t in tokenize(term))
        if not words:
            return
        entry = self.index.setdefault(words, [])
        # A term belongs to one group per category; the first definition wins (user, then own, then word lists).
        if any(c == category for c, _ in entry):
            return
        entry.append((category, group))
        members = self.groups.setdefault(category, {}).setdefault(group, [])
        members.append(" ".join(words))
        self.max_len = max(self.max_len, len(words))
        if len(words) > 1:
            self.phrase_starts = self.phrase_starts | {words[0]}

    def match(self, tokens: list[str]) -> list[tuple[str, str, str]]:
        """(category, group, term) for every lexicon term occurring in `tokens` (each occurrence once)."""
        keys = [term_key(t) for t in tokens]
        found: list[tuple[str, str, str]] = []
        index, starts = self.index, self.phrase_starts
        for i, tok in enumerate(keys):
            hits = index.get((tok,))
            if hits:
                for cat, grp in hits:
                    found.append((cat, grp, tok))
            if tok in starts:
                for n in range(2, self.max_len + 1):
                    gram = tuple(keys[i : i + n])
                    if len(gram) < n:
                        break
                    hits = index.get(gram)
                    if hits:
                        for cat, grp in hits:
                            found.append((cat, grp, " ".join(gram)))
        return found

    def n_groups(self, category: str) -> int:
        return len(self.groups.get(category, {}))


def _package_yaml(name: str) -> Any:
    text = resources.files("vdata.data").joinpath(f"lexicons/{name}").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def builtin_groups() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for cat in BASE_CATEGORIES:
        data = _package_yaml(f"{cat}.yaml")
        out[cat] = {g: [str(t) for t in terms] for g, terms in data["groups"].items()}
    return out


@cache
def builtin_attribute_words() -> frozenset[str]:
    return frozenset(str(w).casefold() for w in _package_yaml("attributes.yaml")["attributes"])


def _parse_user_lexicon(path: Path) -> dict[str, dict[str, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UserError(f"lexicon file {path} does not exist") from e
    except UnicodeDecodeError as e:
        raise UserError(f"lexicon file {path} is not UTF-8 text") from e
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise UserError(
            f"lexicon file {path} is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {e}"
        ) from e
    example = "category: gender\\ngroups:\\n  nonbinary: [enby, genderqueer]"
    if not isinstance(data, dict):
        raise UserError(f"lexicon file {path}: expected a mapping such as {example!r}")
    sections = {data["category"]: data} if "category" in data else data
    out: dict[str, dict[str, list[str]]] = {}
    for cat, section in sections.items():
        groups = section.get("groups") if isinstance(section, dict) else None
        if not isinstance(groups, dict) or not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in groups.values()
        ):
            raise UserError(f"lexicon file {path}: category {cat!r} needs 'groups: {{group: [terms...]}}'")
        out[str(cat)] = {str(g): list(v) for g, v in groups.items()}
    return out


def build_lexicon(
    word_lists: dict[str, list[tuple[str, ...]]] | None = None,
    user_files: list[Path] | None = None,
    attribute_words: frozenset[str] | None = None,
) -> Lexicon:
    """vdata's lexicons, then user files (their groups are added, new categories allowed), then the
    bias-bench word lists for any term not yet known."""
    lex = Lexicon(
        attribute_words=attribute_words if attribute_words is not None else builtin_attribute_words()
    )
    user = [_parse_user_lexicon(p) for p in (user_files or [])]
    for source in user:  # user terms first, so a user can move a term to another group
        for cat, groups in source.items():
            for grp, terms in groups.items():
                for term in terms:
                    lex.add(cat, grp, term)
    for cat, groups in builtin_groups().items():
        for grp, terms in groups.items():
            for term in terms:
                lex.add(cat, grp, term)
    for cat, tuples in (word_lists or {}).items():
        slots = WORD_LIST_SLOTS.get(cat)
        for t in tuples:
            for i, word in enumerate(t):
                lex.add(cat, slots[i] if slots and i < len(slots) else f"slot{i + 1}", word)
    return lex
