"""Parser: messy LLM output in, valid triples (and counted drop reasons) out. Includes property-based fuzzing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdata.generate.parse import (
    ATTRIBUTE_NOT_ONE_WORD,
    NOT_A_SENTENCE,
    REFUSAL,
    TARGET_NOT_IN_TEXT,
    UNPARSEABLE,
    Triple,
    check_triple,
    parse_reply,
    parse_terms,
    target_in_text,
)

GOOD = [
    ("The woman was remarkably stoic under pressure.", "woman", "stoic"),
    ("My grandfather is a gentle and patient caregiver.", "grandfather", "gentle"),
    ("The Muslim engineer led the bridge project with great care.", "Muslim", "meticulous"),
]


def texts(reply: str) -> list[tuple[str, str, str]]:
    return [(t.text, t.target, t.attribute) for t in parse_reply(reply).triples]


def test_plain_json_list() -> None:
    assert texts(json.dumps([list(g) for g in GOOD])) == GOOD


def test_json_in_markdown_fence_with_chatter() -> None:
    reply = (
        "Sure! Here you go:\n```json\n"
        + json.dumps([list(g) for g in GOOD], indent=2)
        + "\n```\nHope it helps."
    )
    assert texts(reply) == GOOD


def test_json_objects_with_key_aliases() -> None:
    reply = json.dumps({"items": [{"Sentence": s, "Term": t, "Adjective": a} for s, t, a in GOOD]})
    assert texts(reply) == GOOD


def test_truncated_json_keeps_complete_items() -> None:
    full = json.dumps([list(g) for g in GOOD])
    cut = full[: full.index(GOOD[2][0]) + 10]
    assert texts(cut) == GOOD[:2]


def test_unclosed_fence() -> None:
    reply = "```json\n" + json.dumps([list(g) for g in GOOD])[:-30]
    assert texts(reply) == GOOD[:2]


def test_numbered_pipe_lines() -> None:
    reply = "\n".join(f"{i}. {s} | {t} | {a}" for i, (s, t, a) in enumerate(GOOD, 1))
    assert texts(reply) == GOOD


def test_comma_lines_and_brackets() -> None:
    reply = "\n".join(f"- [{s}, {t}, {a}]" for s, t, a in GOOD)
    assert texts(reply) == GOOD


def test_sentence_with_commas_splits_from_the_right() -> None:
    reply = "1) The nurse, a man, was strong and calm today., man, strong"
    assert texts(reply) == [("The nurse, a man, was strong and calm today.", "man", "strong")]


def test_refusal_is_counted() -> None:
    result = parse_reply("I'm sorry, but I can't help with creating content about stereotypes.")
    assert result.triples == [] and result.drops == {REFUSAL: 1}


def test_garbage_is_unparseable() -> None:
    assert parse_reply("lorem ipsum dolor").drops == {UNPARSEABLE: 1}


def test_invalid_triples_dropped_with_reasons() -> None:
    reply = "\n".join(
        [
            "The woman fixed the engine quickly. | man | skilled",  # target not in sentence
            "The woman fixed the engine quickly. | woman | very skilled",  # attribute two words
            "Women rock. | women | cool",  # too short to be a sentence
            "The woman fixed the engine quickly. | woman | skilled",
        ]
    )
    result = parse_reply(reply)
    assert texts(reply) == [("The woman fixed the engine quickly.", "woman", "skilled")]
    assert result.drops == {TARGET_NOT_IN_TEXT: 1, ATTRIBUTE_NOT_ONE_WORD: 1, NOT_A_SENTENCE: 1}


def test_target_matching_is_whole_word_and_case_insensitive() -> None:
    assert target_in_text("woman", "The WOMAN smiled.")
    assert target_in_text("nurse", "Male nurses are common.")
    assert not target_in_text("man", "The woman smiled.")
    assert target_in_text("African American", "An African-American pilot landed.")


def test_missing_final_punctuation_is_added_and_attribute_lowercased() -> None:
    assert texts("The elderly man learned to code quickly | man | Adaptable") == [
        ("The elderly man learned to code quickly.", "man", "adaptable")
    ]


def test_parse_terms_formats() -> None:
    assert parse_terms('Gender: [woman, man, "Mother", aunt]') == ["woman", "man", "Mother", "aunt"]
    assert parse_terms("1. woman\n2. man\n3. grandmother") == ["woman", "man", "grandmother"]
    assert parse_terms('```json\n["nun", "monk", "nun"]\n```') == ["nun", "monk"]


# -- property-based fuzzing ------------------------------------------------------------------------

word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9)


@st.composite
def valid_triples(draw: st.DrawFn) -> Triple:
    target = draw(word)
    attribute = draw(word.filter(lambda w: w != target))
    before = draw(st.lists(word, min_size=1, max_size=5))
    after = draw(st.lists(word, min_size=2, max_size=8))
    # Keep other words distinct from the target so "target occurs in sentence" is unambiguous.
    before = [w for w in before if w != target] or ["the"]
    text = " ".join(["The", *before, target, *after]) + "."
    return Triple(text, target, attribute)


def render(triples: list[Triple], style: str) -> str:
    rows = [[t.text, t.target, t.attribute] for t in triples]
    if style == "json":
        return json.dumps(rows)
    if style == "fenced":
        return "Here:\n```json\n" + json.dumps(rows, indent=1) + "\n```"
    if style == "objects":
        return json.dumps([{"sentence": s, "target": t, "attribute": a} for s, t, a in rows])
    if style == "numbered":
        return "\n".join(f"{i}. {s} | {t} | {a}" for i, (s, t, a) in enumerate(rows, 1))
    return "\n".join(f"{s}, {t}, {a}" for s, t, a in rows)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(valid_triples(), min_size=1, max_size=8),
    st.sampled_from(["json", "fenced", "objects", "numbered", "csv"]),
)
def test_fuzz_every_format_round_trips(triples: list[Triple], style: str) -> None:
    assert parse_reply(render(triples, style)).triples == triples


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_triples(), min_size=1, max_size=6), st.data())
def test_fuzz_truncated_json_yields_a_prefix(triples: list[Triple], data: st.DataObject) -> None:
    full = json.dumps([[t.text, t.target, t.attribute] for t in triples])
    cut = data.draw(st.integers(min_value=0, max_value=len(full)))
    got = parse_reply(full[:cut]).triples
    assert got == triples[: len(got)]
    items = [json.dumps([t.text, t.target, t.attribute]) for t in triples]
    ends = [1 + sum(len(x) + 2 for x in items[:i]) + len(items[i]) for i in range(len(items))]
    assert len(got) == sum(1 for end in ends if end <= cut)  # every complete item, nothing else


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_arbitrary_text_never_crashes_and_only_valid_triples_come_out(text: str) -> None:
    result = parse_reply(text)
    for t in result.triples:
        again, reason = check_triple(t)
        assert reason is None and again == t
        assert target_in_text(t.target, t.text)
        assert " " not in t.attribute
    assert result.triples or sum(result.drops.values()) >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(valid_triples(), min_size=1, max_size=5),
    st.lists(st.sampled_from(["Sure!", "", "Note: these are examples.", "###", "* * *"]), max_size=4),
)
def test_fuzz_noise_lines_between_pipe_lines(triples: list[Triple], noise: list[str]) -> None:
    lines = [f"{t.text} | {t.target} | {t.attribute}" for t in triples]
    mixed = [*noise[:2], *lines, *noise[2:]]
    assert parse_reply("\n".join(mixed)).triples == triples
