"""The counter-stereotype judge on the real embedded model: known answers, rules, margin."""

from __future__ import annotations

import math

import pytest

from vdata.core.records import Record
from vdata.generate.verify import VerifySettings, verify_records
from vdata.generate.verify.judge import ModelJudge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judge(smollm2, data_dir) -> ModelJudge:  # type: ignore[no-untyped-def]
    return ModelJudge(smollm2)


def rec(text: str, target: str, attribute: str) -> Record:
    return Record(text=text, target=target, attribute=attribute, category="gender")


FATHER = rec("He is a father who is incredibly nurturing.", "father", "nurturing")
MOTHER = rec("She is a mother who is incredibly nurturing.", "mother", "nurturing")


def judged(records: list[Record], judge: ModelJudge, **settings: object) -> list[dict]:
    result = verify_records(records, VerifySettings(checks=["counter_stereotype"], **settings), judge=judge)
    by_text = {r.text: r.checks[-1] for r in result.kept} | {
        r.record.text: r.record.checks[-1] for r in result.rejected
    }
    return [by_text[r.text] for r in records]


def test_continuation_score_is_log_p_of_the_word_given_the_prefix(judge: ModelJudge) -> None:
    import torch

    [score] = judge.continuation_logprobs([("He is a father who is incredibly", "nurturing")])
    tok = judge.lm.tokenizer
    prefix = tok.encode("He is a father who is incredibly", add_special_tokens=False)
    word = tok.encode(" nurturing", add_special_tokens=False)
    ids = torch.tensor([prefix + word])
    with torch.inference_mode():
        logp = torch.log_softmax(judge.lm.model(input_ids=ids).logits[0].double(), -1)
    expected = sum(float(logp[len(prefix) - 1 + i, t]) for i, t in enumerate(word))
    assert math.isclose(score, expected, abs_tol=1e-3)


@pytest.mark.parametrize("rule", ["attribute_given_group", "whole_sentence"])
def test_a_sentence_and_its_swap_get_opposite_verdicts(judge: ModelJudge, rule: str) -> None:
    """The father sentence's counterfactual is the mother sentence and back: the deltas are opposite, so
    exactly one of the two passes at margin 0 (the one the model finds less typical of its group)."""
    father, mother = judged([FATHER, MOTHER], judge, rule=rule)
    assert father["value"]["rule"] == rule
    assert math.isclose(father["value"]["own"], mother["value"]["counterpart"], abs_tol=1e-3)
    assert math.isclose(father["value"]["delta"], -mother["value"]["delta"], abs_tol=1e-3)
    assert father["pass"] != mother["pass"]
    assert father["pass"] is (father["value"]["delta"] > 0)


def test_known_answer_and_margin(judge: ModelJudge) -> None:
    """SmolLM2 finds "nurturing" likelier after "mother" than after "father" (by about 1.3 nats), so the
    father sentence counters its stereotype; a margin above that delta drops it."""
    [father] = judged([FATHER], judge)
    assert father["pass"] and 0.5 < father["value"]["delta"] < 3
    [strict] = judged([FATHER], judge, margin=5.0)
    assert not strict["pass"] and strict["value"]["margin"] == 5.0


def test_unjudgeable_records_fail_with_the_reason(judge: ModelJudge) -> None:
    result = verify_records(
        [rec("The nurse is incredibly strong.", "nurse", "strong"), rec("The man was tall.", "man", "stoic")],
        VerifySettings(checks=["counter_stereotype"]),
        judge=judge,
    )
    assert not result.kept
    reasons = sorted(r.reason for r in result.rejected)
    assert reasons == [
        "not judged: attribute not in the sentence",
        "not judged: no counterpart for the group term before the attribute",
    ]
