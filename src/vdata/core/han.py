"""Han et al. 2024's released synthetic debiasing data: the one parser of its two row forms.

  * raw form (``*S.json``): ``["The woman was remarkably stoic.", "woman", "stoic"]``, i.e.
    [sentence, target, attribute];
  * causal-LM form: ``{"prompt": "the {} was remarkably ", "subject": "woman", "target_new": {"str": "stoic"}}``.
    The sentence is the prompt with every ``{}`` filled with the subject, then the attribute, one space between
    them (Han et al.'s notebook joined with a second space; one is the normal spelling), with runs of
    whitespace collapsed: ``"the woman was remarkably stoic"``.

The causal-LM rows were made from the raw sentences by replacing the subject word with ``{}``, so filling
every ``{}`` (not only the first) is the inverse; a ``{}`` left in a sentence is never right. Rows whose
prompt has no ``{}`` (the subject word was not found verbatim, e.g. "best men" for "best man") or whose
subject or attribute is blank are not sentences of this form: the parser returns None for them.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "{}"


@dataclass(frozen=True)
class HanSentence:
    """One sentence of Han et al.'s data, with its group term (target) and attribute word."""

    text: str
    target: str
    attribute: str


def parse_han_triple(row: object) -> HanSentence | None:
    """The raw form ``[sentence, target, attribute]``, or None (not three strings, or a blank sentence)."""
    if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
        return None
    sentence, target, attribute = (x.strip() for x in row)
    return HanSentence(sentence, target, attribute) if sentence else None


def parse_han_prompt(row: object) -> HanSentence | None:
    """The causal-LM form ``{"prompt", "subject", "target_new": {"str"}}``, or None when incomplete."""
    if not isinstance(row, dict):
        return None
    prompt, subject, target_new = row.get("prompt"), row.get("subject"), row.get("target_new")
    attribute = target_new.get("str") if isinstance(target_new, dict) else target_new
    if not (isinstance(prompt, str) and PLACEHOLDER in prompt):
        return None
    if not (
        isinstance(subject, str) and subject.strip() and isinstance(attribute, str) and attribute.strip()
    ):
        return None
    sentence = prompt.replace(PLACEHOLDER, subject).rstrip() + " " + attribute.strip()
    return HanSentence(" ".join(sentence.split()), subject.strip(), attribute.strip())


def parse_han_row(row: object) -> HanSentence | None:
    """A row of either form, or None when it is in neither."""
    return parse_han_triple(row) if isinstance(row, list) else parse_han_prompt(row)
