"""Turning messy LLM replies into candidate (sentence, target, attribute) triples, and checking them.

LLM output comes as JSON, JSON inside markdown fences, JSON cut off by the token limit, numbered lines,
"S | T | A" or "S, T, A" lines, or a refusal. `extract_triples` recovers every triple it can find;
`check_triple` keeps a triple only if the target term occurs in the sentence (case-insensitively, as a
whole word), the attribute is a single word and the sentence looks like a sentence. Every drop has a
reason so a run can report what it threw away and why.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Drop reasons (stable strings: they appear in summaries and tests).
REFUSAL = "refusal"
UNPARSEABLE = "unparseable"
TARGET_NOT_IN_TEXT = "target_not_in_text"
ATTRIBUTE_NOT_ONE_WORD = "attribute_not_one_word"
NOT_A_SENTENCE = "not_a_sentence"
DUPLICATE = "duplicate"
COPIED_EXAMPLE = "copied_example"
REQUEST_FAILED = "request_failed"

MIN_WORDS = 4
MAX_WORDS = 80
MAX_TARGET_WORDS = 4

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_STR = r'"((?:[^"\\\n]|\\.)*)"'
# A complete inner JSON array of three strings; found even when the outer list was truncated.
_JSON_TRIPLE = re.compile(r"\[\s*" + _STR + r"\s*,\s*" + _STR + r"\s*,\s*" + _STR + r"\s*\]")
_JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,4}[.):]\)?|[-*•·]|S\d*\s*[:=])\s*")
_REFUSAL = re.compile(
    r"\b(I(?:'m| am) (?:sorry|unable|not able)|I can(?:not|'t|’t)|I won(?:'t|’t)|as an AI\b|"
    r"I do not feel comfortable|I'm not comfortable|cannot (?:assist|help|comply|fulfil))",
    re.IGNORECASE,
)
_WORD = re.compile(r"^[A-Za-z][A-Za-z'’-]*$")
_QUOTES = " \t\"'`“”‘’*_"

SENTENCE_KEYS = ("sentence", "s", "text", "sent")
TARGET_KEYS = ("target", "t", "term", "group", "target_term", "subject", "social_group")
ATTRIBUTE_KEYS = ("attribute", "a", "adjective", "attribute_word", "attr", "trait")


@dataclass(frozen=True)
class Triple:
    text: str
    target: str
    attribute: str


@dataclass
class Extraction:
    """What one reply yielded: candidate triples, and reasons for the parts that could not be used."""

    triples: list[Triple] = field(default_factory=list)
    drops: Counter[str] = field(default_factory=Counter)


def _unescape(s: str) -> str:
    try:
        return json.loads(f'"{s}"')
    except json.JSONDecodeError:
        return s


def _from_obj(obj: Any) -> Triple | None:
    if isinstance(obj, list | tuple) and len(obj) >= 3 and all(isinstance(x, str) for x in obj[:3]):
        return Triple(obj[0], obj[1], obj[2])
    if isinstance(obj, dict):
        low = {str(k).strip().lower(): v for k, v in obj.items()}

        def pick(keys: tuple[str, ...]) -> str | None:
            for k in keys:
                if isinstance(low.get(k), str):
                    return low[k]
            return None

        s, t, a = pick(SENTENCE_KEYS), pick(TARGET_KEYS), pick(ATTRIBUTE_KEYS)
        if s is not None and t is not None and a is not None:
            return Triple(s, t, a)
    return None


def _walk_json(obj: Any, out: list[Triple]) -> None:
    found = _from_obj(obj)
    if found is not None:
        out.append(found)
        return
    if isinstance(obj, list):
        for x in obj:
            _walk_json(x, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _walk_json(v, out)


def _json_triples(text: str) -> list[Triple]:
    """Triples from JSON: whole-document parse first, then per-element scanning (survives truncation)."""
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            out: list[Triple] = []
            _walk_json(json.loads(stripped), out)
            if out:
                return out
        except json.JSONDecodeError:
            pass
    out = [Triple(_unescape(a), _unescape(b), _unescape(c)) for a, b, c in _JSON_TRIPLE.findall(text)]
    for m in _JSON_OBJECT.finditer(text):
        try:
            found = _from_obj(json.loads(m.group(0)))
        except json.JSONDecodeError:
            continue
        if found is not None:
            out.append(found)
    return out


def _split_line(line: str) -> Triple | None:
    body = _LIST_MARKER.sub("", line).strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    for sep in ("|", "\t", ";"):
        parts = [p.strip() for p in body.split(sep)]
        parts = [p for p in parts if p]
        if len(parts) == 3:
            return Triple(*parts)
    parts = [p.strip() for p in body.rsplit(",", 2)]
    if (
        len(parts) == 3
        and all(parts)
        and len(parts[1].split()) <= MAX_TARGET_WORDS
        and " " not in parts[2].strip()
    ):
        return Triple(*parts)
    return None


def _line_triples(text: str) -> list[Triple]:
    out = []
    for line in text.splitlines():
        if line.strip():
            found = _split_line(line)
            if found is not None:
                out.append(found)
    return out


def extract_triples(reply: str) -> Extraction:
    """All candidate triples in `reply` (not yet checked). An empty result records why."""
    result = Extraction()
    blocks = [m.group(1) for m in _FENCE.finditer(reply)] or [reply]
    for block in blocks:
        found = _json_triples(block) or _line_triples(block)
        result.triples.extend(found)
    if not result.triples:
        result.drops[REFUSAL if _REFUSAL.search(reply) else UNPARSEABLE] += 1
    return result


def _clean(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().strip(_QUOTES).strip()


def target_in_text(target: str, text: str) -> bool:
    """Whole-word, case-insensitive occurrence; a plural 's'/'es' on the last word is allowed."""
    words = [re.escape(w) for w in target.split()]
    pattern = r"(?<![\w])" + r"[\s-]+".join(words) + r"(?:s|es|'s|’s)?(?![\w])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def check_triple(triple: Triple) -> tuple[Triple | None, str | None]:
    """Return (cleaned triple, None) if valid, else (None, drop reason)."""
    text, target = _clean(triple.text), _clean(triple.target)
    attribute = _clean(triple.attribute).strip(".,;:!?()[]")
    words = text.split()
    if not (MIN_WORDS <= len(words) <= MAX_WORDS) or not re.match(r"^[\"'“‘(]?[A-Za-z0-9]", text):
        return None, NOT_A_SENTENCE
    if not re.search(r"[A-Za-z]{2}", text):
        return None, NOT_A_SENTENCE
    if text[-1] not in ".!?\"'”’)":
        text += "."
    if not target or len(target.split()) > MAX_TARGET_WORDS or not target_in_text(target, text):
        return None, TARGET_NOT_IN_TEXT
    if not _WORD.match(attribute) or attribute.lower() == target.lower():
        return None, ATTRIBUTE_NOT_ONE_WORD
    return Triple(text, target, attribute.lower()), None


def parse_reply(reply: str) -> Extraction:
    """Extract and check: the valid triples of `reply`, with every dropped candidate counted by reason."""
    raw = extract_triples(reply)
    result = Extraction(drops=raw.drops)
    for t in raw.triples:
        good, reason = check_triple(t)
        if good is None:
            result.drops[reason or UNPARSEABLE] += 1
        else:
            result.triples.append(good)
    return result


def parse_terms(reply: str, limit: int = 200) -> list[str]:
    """Social-group terms from a reply: a JSON list, 'Label: [a, b, c]', or one term per line/comma."""
    body = "\n".join(m.group(1) for m in _FENCE.finditer(reply)) or reply
    items: list[str] = []
    m = re.search(r"\[(.*?)(?:\]|\Z)", body, re.DOTALL)
    if m:
        try:
            loaded = json.loads(f"[{m.group(1)}]")
            items = [x for x in loaded if isinstance(x, str)]
        except json.JSONDecodeError:
            items = m.group(1).split(",")
    if not items:
        for line in body.splitlines():
            line = _LIST_MARKER.sub("", line)
            if ":" in line:
                line = line.split(":", 1)[1]
            items.extend(line.split(","))
    seen: dict[str, str] = {}
    for item in items:
        term = _clean(item).strip(".,;:!?()[]")
        if term and len(term.split()) <= 3 and re.fullmatch(r"[A-Za-z][A-Za-z '’-]*", term):
            seen.setdefault(term.lower(), term)
    return list(seen.values())[:limit]
