"""The `loss_guided` generation strategy: batched bias scores, example picking, rounds, and a tiny real run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vdata.core.records import Record
from vdata.generate.options import parse_options
from vdata.generate.strategies import RunState, get_strategy
from vdata.generate.strategies.loss_guided import bias_scores, pick_examples
from vdata.generate.templates import load_template


def rec(text: str, target: str, attribute: str, category: str = "gender") -> Record:
    return Record(text=text, target=target, attribute=attribute, category=category, strategy="loss_guided")


def test_pick_examples_top_and_bottom_disjoint() -> None:
    rs = [rec(f"The woman number {i} was calm.", "woman", "calm") for i in range(5)]
    scored = [(0.5, rs[0]), (-1.0, rs[1]), (2.0, rs[2]), (0.1, rs[3]), (-0.3, rs[4])]
    top, bottom = pick_examples(scored, 2)
    assert top == [rs[2], rs[0]] and bottom == [rs[1], rs[4]]
    top, bottom = pick_examples(scored[:3], 2)  # too few for both: top first, the rest at the bottom
    assert top == [rs[2], rs[0]] and bottom == [rs[1]]


@pytest.mark.slow
def test_bias_score_is_counterfactual_minus_sentence(smollm2: Any, data_dir: Path) -> None:
    import torch

    from vdata.core.cda import load_word_lists

    lists = load_word_lists(data_dir=data_dir)
    records = [
        rec("The woman was a brilliant engineer.", "woman", "brilliant"),
        rec("My father is a gentle caregiver.", "father", "gentle"),
        rec("The engineer was brilliant.", "engineer", "brilliant"),  # no gender word: not scorable
    ]
    got = bias_scores(smollm2, records, lists)
    assert set(got) == {records[0].id, records[1].id}

    def mean_logprob(text: str) -> float:
        """bias-bench's two passes, one sentence at a time: the first token given BOS, the rest given the
        sentence so far (without BOS)."""
        ids = smollm2.tokenizer.encode(text, add_special_tokens=False)
        bos = smollm2.tokenizer.bos_token_id
        with torch.no_grad():
            first = torch.log_softmax(
                smollm2.model(input_ids=torch.tensor([[bos]])).logits[0, -1].float(), -1
            )
            rest = torch.log_softmax(smollm2.model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1)
        total = float(first[ids[0]]) + float(rest.gather(-1, torch.tensor(ids[1:])[:, None]).sum())
        return total / len(ids)

    expected = mean_logprob("The man was a brilliant engineer.") - mean_logprob(records[0].text)
    assert math.isclose(got[records[0].id], expected, abs_tol=1e-4)
    expected = mean_logprob("My mother is a gentle caregiver.") - mean_logprob(records[1].text)
    assert math.isclose(got[records[1].id], expected, abs_tol=1e-4)


@pytest.fixture(scope="module")
def tiny_llama(tiny_llama_dir: Path) -> str:
    return str(tiny_llama_dir)


def strategy_for(tmp_path: Path, **strategy_options: Any) -> Any:
    options = parse_options(
        {
            "provider": "openai",
            "model": "stub",
            "base_url": "http://127.0.0.1:9/v1",
            "strategy": "loss_guided",
            "count": 12,
            "per_request": 3,
            "strategy_options": {"rounds": 3, "k": 2, **strategy_options},
        }
    )
    strategy = get_strategy("loss_guided")(
        options, load_template("loss_guided", None), out_path=tmp_path / "o.jsonl"
    )
    strategy.terms = {"gender": ["woman", "man", "girl", "boy"]}  # as `prepare` would have asked
    return strategy


@pytest.mark.slow
def test_rounds_feed_top_and_bottom_k_back(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VDATA_DATA_DIR", str(data_dir))
    s = strategy_for(tmp_path)
    first = s.next_requests(RunState(count=12), 8)
    assert len(first) == 2 and all(r.stage == "sentences" for r in first)  # 12 / 3 rounds / 3 per request
    assert s.next_requests(RunState(count=12, issued=2, in_flight=2), 8) == []  # wait for the round
    accepted = [
        rec("The woman was a brilliant engineer.", "woman", "brilliant"),
        rec("The man was a gentle nurse.", "man", "gentle"),
        rec("The girl was a fearless leader.", "girl", "fearless"),
        rec("The boy was a patient listener.", "boy", "patient"),
        rec("The engineer was brilliant.", "engineer", "brilliant"),
    ]
    second = s.next_requests(RunState(count=12, accepted=accepted, issued=2, completed=2), 8)
    assert len(second) == 2 and all(r.stage == "guided" for r in second)
    scores = bias_scores(s.target(), accepted, s.word_lists())
    ranked = sorted(scores, key=lambda i: -scores[i])
    assert second[0].context["hard"] == ranked[:2] and second[0].context["easy"] == ranked[::-1][:2]
    by_id = {r.id: r for r in accepted}
    shown = second[0].messages[2]["content"]  # the assistant turn holds the most biased examples
    assert shown.splitlines() == [
        f"{by_id[i].text} | {by_id[i].target} | {by_id[i].attribute}" for i in ranked[:2]
    ]
    assert by_id[ranked[-1]].text in second[0].messages[3]["content"]
    side = [json.loads(x) for x in (tmp_path / "o.jsonl.loss_guided.jsonl").read_text().splitlines()]
    assert {x["id"] for x in side} == set(scores) and all(x["round"] == 1 for x in side)
    # Round 1 gave no usable record: it is extended by another quota instead of moving on without examples.
    extended = s.next_requests(RunState(count=12, accepted=accepted, issued=4, completed=4), 8)
    assert len(extended) == 2 and all(r.context["round"] == 1 for r in extended)
    more = [
        *accepted,
        *(rec(f"The woman number {i} was a fearless pilot.", "woman", "fearless") for i in range(2)),
    ]
    # The last round asks until `count` is reached (the engine stops it).
    third = s.next_requests(RunState(count=12, accepted=more, issued=6, completed=6), 8)
    assert len(third) == 8 and all(r.context["round"] == 2 for r in third)


@pytest.fixture
def stub_server() -> Iterator[Any]:
    from generate.stub_server import StubConfig, StubServer

    server = StubServer(StubConfig()).start_in_thread()
    yield server
    server.stop()


@pytest.mark.slow
def test_tiny_loss_guided_run(
    stub_server: Any, tiny_llama: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vdata.core.io import read_records
    from vdata.generate.engine import generate

    monkeypatch.setenv("VDATA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("VDATA_CACHE_DIR", str(tmp_path / "cache"))
    options = parse_options(
        {
            "provider": "openai",
            "model": "stub",
            "base_url": stub_server.base_url,
            "strategy": "loss_guided",
            "count": 18,
            "per_request": 3,
            "concurrency": 2,
            "strategy_options": {"rounds": 3, "k": 2, "target_model": tiny_llama},
        }
    )
    out = tmp_path / "lg.jsonl"
    summary = generate(options, out, api_key="k")
    records = read_records(out)
    assert summary.records == len(records) == 18
    side = [json.loads(x) for x in (tmp_path / "lg.jsonl.loss_guided.jsonl").read_text().splitlines()]
    assert {x["round"] for x in side} == {1, 2}  # scored after round 0 and after round 1
    assert {x["id"] for x in side} <= {r.id for r in records}
