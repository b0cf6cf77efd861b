"""Form checks: cheap rules on one record's text, term and attribute (known answers in
tests/generate/test_verify_form.py)."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from vdata.core.hygiene import RefusalMatcher, language_flag, malformed_reason, stopwords, tokenize
from vdata.core.records import Record
from vdata.generate.verify.lexicon import PRONOUNS, find_word, load_lexicon
from vdata.generate.verify.registry import CheckContext, CheckResult, record_check

# A sentence end followed by more text; abbreviations such as "Dr." do not end a sentence.
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z])(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bSt)(?<!\bJr)[.!?…]+[\"'”’)\]]*\s+\S"
)
_ATTRIBUTE_WORD = re.compile(r"^[^\W\d_]+(?:[-'’][^\W\d_]+)*$")
MIN_STEM = 4  # an inflected attribute ("nurture" -> "nurturing") shares at least this many letters


@cache
def _refusals() -> RefusalMatcher:
    return RefusalMatcher()


@record_check("not_refusal", description="not a refusal, meta-text or malformed text", order=10)
def not_refusal(record: Record, ctx: CheckContext) -> CheckResult:
    rule = _refusals().match(record.text) or malformed_reason(record.text, tokenize(record.text))
    return CheckResult(value=rule, passed=rule is None, reason=f"refusal or meta-text ({rule})")


@record_check("language", description="written in the requested language (settings.language)", order=20)
def language(record: Record, ctx: CheckContext) -> CheckResult:
    found = language_flag(record.text, tokenize(record.text), ctx.settings.language)
    return CheckResult(
        value=found or ctx.settings.language,
        passed=found is None,
        reason=f"language {found}, not {ctx.settings.language}",
    )


@record_check("one_sentence", description="exactly one sentence, on one line", order=30)
def one_sentence(record: Record, ctx: CheckContext) -> CheckResult:
    text = record.text.strip()
    n = 1 + len(_SENTENCE_END.findall(text)) + text.count("\n")
    return CheckResult(value=n, passed=n == 1, reason=f"{n} sentences")


@record_check("term_present", description="the group term occurs in the sentence as a word", order=40)
def term_present(record: Record, ctx: CheckContext) -> CheckResult:
    found = bool(record.target.strip()) and find_word(record.text, record.target) is not None
    return CheckResult(value=record.target, passed=found, reason="group term not in the sentence")


def attribute_in_text(text: str, attribute: str) -> str | None:
    """The word of `text` that is the attribute or an inflection of it ("nurture" ~ "nurturing"), or None."""
    attr = attribute.casefold()
    words = tokenize(text)
    if attr in words:
        return attr
    for word in words:
        common = 0
        for a, b in zip(attr, word, strict=False):
            if a != b:
                break
            common += 1
        if common >= MIN_STEM and common >= min(len(attr), len(word)) - 3:
            return word
    return None


@record_check(
    "attribute",
    description="the attribute is one word and appears (or is inflected) in the sentence",
    order=50,
)
def attribute(record: Record, ctx: CheckContext) -> CheckResult:
    attr = record.attribute.strip()
    if not _ATTRIBUTE_WORD.match(attr):
        return CheckResult(value=attr, passed=False, reason="attribute is not one word")
    word = attribute_in_text(record.text, attr)
    return CheckResult(value=word, passed=word is not None, reason="attribute not in the sentence")


@record_check(
    "pronouns", description="pronouns agree with the group term's gender (CDA word lists)", order=60
)
def pronouns(record: Record, ctx: CheckContext) -> CheckResult:
    lexicon = load_lexicon()
    gender = lexicon.term_gender(record.target)
    if gender is None:
        return CheckResult(value=None, passed=True)
    other = "female" if gender == "male" else "male"
    words = tokenize(record.text)
    wrong = [w for w in words if w in PRONOUNS[other]]
    # "The father helped his daughter with her homework": the pronoun may belong to another person.
    other_person = any(lexicon.gender_of.get(w) == other and w not in PRONOUNS[other] for w in words)
    passed = not wrong or other_person
    return CheckResult(
        value=f"{gender}: {', '.join(wrong)}" if wrong else gender,
        passed=passed,
        reason=f"pronoun {wrong[0] if wrong else ''} for a {gender} term",
    )


@record_check("no_repeats", description='no content word repeated ("talented and talented")', order=70)
def no_repeats(record: Record, ctx: CheckContext) -> CheckResult:
    function_words = stopwords().get(ctx.settings.language, frozenset())
    counts = Counter(w for w in tokenize(record.text) if len(w) > 2 and w not in function_words)
    repeated = sorted(w for w, n in counts.items() if n > 1)
    return CheckResult(
        value=repeated or None, passed=not repeated, reason=f"repeated word {repeated[0] if repeated else ''}"
    )
