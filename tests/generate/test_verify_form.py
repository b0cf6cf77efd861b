"""The gate's form checks, each with known answers, and the check registry."""

from __future__ import annotations

import pytest

from vdata.core.errors import UserError
from vdata.core.records import Record
from vdata.generate.verify import (
    CHECKS,
    CheckContext,
    CheckResult,
    VerifySettings,
    enabled_checks,
    record_check,
    verify_records,
)
from vdata.generate.verify.lexicon import load_lexicon


@pytest.fixture(autouse=True)
def _word_lists(data_dir) -> None:  # type: ignore[no-untyped-def]
    """The CDA word lists come from the benchmark data (skips without it)."""


def rec(text: str, target: str = "woman", attribute: str = "stoic", category: str = "gender") -> Record:
    return Record(text=text, target=target, attribute=attribute, category=category)


def run_check(name: str, record: Record, **settings: object) -> CheckResult:
    ctx = CheckContext(settings=VerifySettings(**settings), judge_loader=lambda: pytest.fail("no judge"))
    [result] = CHECKS.get(name).run([record], ctx)
    return result


CASES = [
    # (check, record, passes, value)
    ("one_sentence", rec("The woman was remarkably stoic."), True, 1),
    ("one_sentence", rec("Dr. Smith said the woman was stoic."), True, 1),
    ("one_sentence", rec("The woman was stoic. She never cried."), False, 2),
    ("one_sentence", rec("The woman was stoic!\nShe was."), False, 3),
    ("term_present", rec("The woman was stoic."), True, "woman"),
    ("term_present", rec("The woman's courage was stoic."), True, "woman"),
    ("term_present", rec("The women were stoic.", target="man"), False, "man"),  # "man" is not in "women"
    ("term_present", rec("A stoic person.", target="woman"), False, "woman"),
    ("pronouns", rec("The woman fixed her car, stoic as ever."), True, "female"),
    (
        "pronouns",
        rec("The male is a talented individual, known for her intelligence", "male"),
        False,
        "male: her",
    ),
    ("pronouns", rec("He is a stoic father.", "father"), True, "male"),
    ("pronouns", rec("The grandmother fixed his engine.", "grandmother"), False, "female: his"),
    ("pronouns", rec("The father helped his daughter with her homework.", "father"), True, "male: her"),
    ("pronouns", rec("The nurse fixed her car.", "nurse"), True, None),  # no gender: nothing to agree with
    (
        "no_repeats",
        rec("The male is a talented and talented individual", "male", "talented"),
        False,
        ["talented"],
    ),
    (
        "no_repeats",
        rec("A mother is a loving and compassionate mother who cares", "mother", "loving"),
        False,
        ["mother"],
    ),
    ("no_repeats", rec("The woman was remarkably stoic and calm."), True, None),
    ("attribute", rec("The woman was remarkably stoic."), True, "stoic"),
    ("attribute", rec("The father is incredibly nurturing.", "father", "nurture"), True, "nurturing"),
    ("attribute", rec("The woman was remarkably stoic.", attribute="very stoic"), False, "very stoic"),
    ("attribute", rec("The woman was remarkably calm.", attribute="stoic"), False, None),
    ("language", rec("The woman was remarkably stoic in the face of the storm."), True, "en"),
    ("language", rec("La femme était remarquablement stoïque dans la tempête et la nuit."), False, "fr"),
    ("not_refusal", rec("The woman was remarkably stoic."), True, None),
    (
        "not_refusal",
        rec("I'm sorry, but I cannot write sentences about a woman."),
        False,
        "refusals/i-cannot",
    ),
    ("not_refusal", rec("Here are 3 sentences about a stoic woman:"), False, None),
]


@pytest.mark.parametrize(("name", "record", "passes", "value"), CASES)
def test_form_checks_known_answers(name: str, record: Record, passes: bool, value: object) -> None:
    result = run_check(name, record)
    assert result.passed is passes, result
    if value is not None or name != "not_refusal":
        assert result.value == value
    if not passes:
        assert result.reason


def test_french_records_pass_when_french_is_asked() -> None:
    r = rec("La femme était remarquablement stoïque dans la tempête et la nuit.")
    assert run_check("language", r, language="fr").passed


def test_lexicon_genders_and_counterfactuals() -> None:
    lex = load_lexicon()
    assert lex.term_gender("woman") == "female" and lex.term_gender("young man") == "male"
    assert lex.term_gender("grandmother") == "female" and lex.term_gender("schoolboy") == "male"
    assert lex.term_gender("nurse") is None
    assert lex.counterfactuals("He is a father who is", "father", "gender", 4) == ["She is a mother who is"]
    assert lex.counterfactuals("The grandmother was", "grandmother", "gender", 4) == ["The grandfather was"]
    assert lex.counterfactuals("The nurse was", "nurse", "gender", 4) == []
    swapped = lex.counterfactuals("The Muslim woman was", "Muslim", "religion", 2)
    assert swapped == ["The Jewish woman was", "The Christian woman was"]
    both = lex.counterfactuals("The Black woman was", "Black woman", "race+gender", 1)
    assert both == ["The Caucasian woman was", "The Black man was"]


def test_gate_keeps_passing_records_with_their_checks_and_counts_reasons() -> None:
    records = [
        rec("The woman was remarkably stoic."),
        rec("The male is a talented and talented individual", "male", "talented"),
        rec("The woman was stoic. She never cried."),
        rec("The man fixed her car with great skill.", "man", "skill"),
    ]
    form = [s.name for s in enabled_checks(VerifySettings()) if s.family == "form"]
    result = verify_records(records, VerifySettings(checks=form, batch_size=3))
    assert [r.text for r in result.kept] == ["The woman was remarkably stoic."]
    assert [c["name"] for c in result.kept[0].checks or []] == form
    assert all(c["pass"] for c in result.kept[0].checks or [])
    assert result.reasons == {"no_repeats": 1, "one_sentence": 1, "pronouns": 1}
    failing = {r.check: r for r in result.rejected}
    assert failing["pronouns"].reason == "pronoun her for a male term"
    assert failing["pronouns"].record.checks[-1] == {"name": "pronouns", "value": "male: her", "pass": False}
    assert failing["pronouns"].to_dict()["rejected"] == {
        "check": "pronouns",
        "reason": "pronoun her for a male term",
    }


def test_default_order_and_user_checks() -> None:
    names = [s.name for s in enabled_checks(VerifySettings())]
    assert names == [
        "not_refusal",
        "language",
        "one_sentence",
        "term_present",
        "attribute",
        "pronouns",
        "no_repeats",
        "counter_stereotype",
    ]
    assert [s.name for s in enabled_checks(VerifySettings(llm_judge=True))][-1] == "llm_judge"

    @record_check("test_no_digits", description="no digits")
    def no_digits(record: Record, ctx: CheckContext) -> CheckResult:
        digits = "".join(c for c in record.text if c.isdigit())
        return CheckResult(value=digits or None, passed=not digits, reason="has digits")

    try:
        settings = VerifySettings(checks="term_present, test_no_digits")
        assert settings.checks == ["term_present", "test_no_digits"]
        result = verify_records([rec("The woman ran 5 miles, stoic."), rec("The woman was stoic.")], settings)
        assert [r.text for r in result.kept] == ["The woman was stoic."]
        assert (
            result.rejected[0].check == "test_no_digits"
            and result.rejected[0].record.checks[-1]["value"] == "5"
        )
    finally:
        CHECKS.remove("test_no_digits")
    with pytest.raises(UserError, match=r"verify check 'nope' is not available.*available: attribute"):
        enabled_checks(VerifySettings(checks=["nope"]))
