"""Stereotype direction: pairs from CDA, the summary, and a real run with the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.audit.direction import build_pairs, summarise
from vdata.audit.run import run_audit
from vdata.audit.settings import AuditSettings
from vdata.core.cda import load_word_lists


def test_pairs_swap_group_terms(data_dir: Path) -> None:
    wl = load_word_lists(data_dir)
    samples = [("a", "The woman is a brilliant engineer.", ["gender"]), ("b", "The table is wooden.", [])]
    pairs = build_pairs(samples, wl)
    assert pairs == [("a", "The woman is a brilliant engineer.", "The man is a brilliant engineer.")]


def test_summary_shares_and_examples() -> None:
    pairs = [(str(i), f"s{i}", f"c{i}") for i in range(4)]
    s = summarise([-2.0, -1.0, 0.5, 3.0], pairs, "m")
    assert s["n_pairs"] == 4 and s["n_unscorable"] == 0
    assert s["share_data_more_likely"] == 0.5 and s["share_counterfactual_more_likely"] == 0.5
    assert s["mean_difference"] == pytest.approx(0.125)
    assert s["examples"][0]["difference"] == -2.0 and s["examples"][3]["difference"] == 3.0
    assert sum(s["histogram"]["counts"]) == 4


@pytest.mark.slow
def test_direction_with_the_local_model(tmp_path: Path, data_dir: Path, smollm2) -> None:
    from vdata.lm.scorer import scorer_for

    data = tmp_path / "d.txt"
    lines = [
        "The woman fixed the truck engine in an hour.",
        "The man knitted a scarf for his niece.",
        "The Muslim doctor saved the patient.",
        "My sister is a talented mechanic.",
        "The sky is blue today.",
    ]
    data.write_text("\n".join(lines) + "\n")
    settings = AuditSettings(
        data=[data],
        out=tmp_path / "r",
        target_model="smollm2-135m",
        direction_sample=10,
        batch_size=4,
        embed_sample=0,
        benchmark_overlap=False,
        plots=True,
    )
    report = run_audit(settings, target_lm=smollm2)["report"]  # the session fixture: the model is loaded once
    d = report["direction"]
    assert d["model"] == "smollm2-135m" and d["n_pairs"] == 4  # the sky sentence has no group term
    assert 0.0 <= d["share_data_more_likely"] <= 1.0
    # the differences are the scorer's own numbers for these pairs
    pairs = [(e["sentence"], e["counterfactual"]) for e in d["examples"][:1]]
    assert scorer_for(smollm2, batch_size=4).pair_differences(pairs)[0] == pytest.approx(
        d["examples"][0]["difference"], abs=1e-3
    )
    assert "direction.png" in json.loads((tmp_path / "r" / "report.json").read_text())["plots"]


def test_summary_skips_unscorable_pairs() -> None:
    pairs = [("a", "s", "c"), ("b", "s2", "c2")]
    s = summarise([float("nan"), 1.0], pairs, "m")
    assert s["n_pairs"] == 1 and s["n_unscorable"] == 1 and s["examples"][0]["id"] == "b"
