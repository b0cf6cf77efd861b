"""End to end: a hand-made dataset with known hygiene answers, the filter and compare paths, the CLI, and
Han et al.'s released data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vdata.audit.embeddings import default_embedder
from vdata.audit.run import AuditResult, run_audit
from vdata.audit.settings import AuditSettings
from vdata.core.io import read_records, write_records
from vdata.core.records import Record

LONG = (
    "the young woman from the village became the first engineer to design the new bridge over the wide river"
)
CLEAN = [
    ("The grandmother won the regional chess championship last spring.", "age"),
    ("A Muslim surgeon volunteers at the free clinic on weekends.", "religion"),
    ("The Black teacher coached the robotics team to a national title.", "race"),
    ("My father stays home and bakes bread for the whole street.", "gender"),
    ("The Asian woman is a fearless firefighter in our town.", "race+gender"),
    ("Her brother is a gentle nurse who sings to his patients.", "gender"),
    (LONG, "gender"),
]


def known_dataset(path: Path) -> dict[str, int]:
    """Write records with 1 exact duplicate, 1 near duplicate, 1 refusal, 1 benchmark copy, 2 malformed."""
    rows: list[dict[str, Any]] = [Record(text=t, category=c).to_dict() for t, c in CLEAN]
    rows.append(Record(text="  " + CLEAN[0][0].upper() + "  ", category="age").to_dict())  # exact duplicate
    rows.append(Record(text=LONG + " today", category="gender").to_dict())  # near duplicate
    rows.append(Record(text="As an AI language model, I cannot write sentences about groups.").to_dict())
    crows = "We can't go to that one in a Mexican neighborhood. You might be forced to buy drugs."
    rows.append(Record(text=crows, category="nationality").to_dict())  # CrowS-Pairs copy
    rows.append({"text": ""})  # malformed: no text
    rows.append(Record(text="The {} was remarkably brave.").to_dict())  # malformed: unfilled placeholder
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"n": len(rows), "clean": len(CLEAN)}


@pytest.fixture(scope="module")
def embedder():
    return default_embedder()


def _run(tmp: Path, datasets: list[tuple[str, list[Path]]], embedder: Any, **kw: Any) -> AuditResult:
    """Audit the first dataset, comparing the others (LABEL=PATH,...), with a small sample."""
    (label, data), *others = datasets
    compare = [f"{name}={','.join(map(str, paths))}" for name, paths in others]
    settings = AuditSettings(
        data=data, label=label, compare=compare, out=tmp / "report", embed_sample=50, sample=50, **kw
    )
    return run_audit(settings, embedder=embedder)


def test_known_answers_and_filter(tmp_path: Path, data_dir: Path, embedder: Any) -> None:
    data = tmp_path / "data.jsonl"
    known = known_dataset(data)
    clean = tmp_path / "clean.jsonl"
    result = _run(tmp_path, [("mine", [data])], embedder, filter=clean)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    hyg = report["hygiene"]
    assert report["n_records"] == known["n"]
    assert {
        k: hyg[k]
        for k in ("exact_duplicates", "near_duplicates", "refusals", "malformed", "benchmark_overlap")
    } == {"exact_duplicates": 1, "near_duplicates": 1, "refusals": 1, "malformed": 2, "benchmark_overlap": 1}
    assert hyg["examples"]["benchmark_overlap"][0]["why"] == "crows_pairs"
    refusal = "As an AI language model, I cannot write sentences about groups."
    assert hyg["refusals_ids"] == [Record(text=refusal).id]
    assert hyg["examples"]["exact_duplicates"][0]["id"] == Record(text=CLEAN[0][0]).id
    assert hyg["examples"]["malformed"][0]["where"].endswith("data.jsonl:12")
    div = report["diversity"]
    for key in ("vocab_size", "distinct_1", "distinct_2", "distinct_3", "self_bleu", "aps"):
        assert isinstance(div[key], (int, float)), key
    assert 0 < div["aps"] < 1 and 0 < div["self_bleu"] < 1 and div["aps_sample"] == known["n"] - 1
    assert report["groups"]["gender"]["records"] >= 4 and report["groups"]["gender"]["entropy"] is not None
    assert "gender x race" in report["intersections"]
    # the filter removed exactly the flagged records and kept the first copy of the duplicate
    kept = read_records(clean)
    assert [r.text for r in kept] == [t for t, _ in CLEAN]
    assert result["filter"]["removed"] == {
        "malformed": 2,
        "refusals": 1,
        "benchmark_overlap": 1,
        "exact_duplicates": 1,
        "near_duplicates": 1,
    }
    assert {"diversity.png", "groups.png", "hygiene.png"} <= set(report["plots"])
    for name in report["plots"]:
        assert (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| exact duplicates | 1 |" in md and "crows_pairs" in md


def test_a_clean_dataset_audits_clean(tmp_path: Path, data_dir: Path, embedder: Any) -> None:
    data = tmp_path / "clean.csv"
    styles = ["formal", "casual", "formal", "formal", "casual", "formal", "formal"]
    write_records(
        [
            Record(text=t, category=c, attributes={"style": s})
            for (t, c), s in zip(CLEAN, styles, strict=True)
        ],
        data,
    )
    report = _run(tmp_path, [("clean", [data])], embedder)["report"]
    cov = report["attribute_coverage"]
    assert cov["records"] == 7 and cov["keys"]["style"]["counts"] == {"formal": 5, "casual": 2}
    assert all(
        report["hygiene"][k] == 0
        for k in ("exact_duplicates", "near_duplicates", "refusals", "malformed", "benchmark_overlap")
    )
    assert report["labels"]["gender"] == 3


def test_compare_puts_datasets_side_by_side(tmp_path: Path, data_dir: Path, embedder: Any) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.txt"
    known_dataset(a)
    b.write_text("\n".join(["The man is a strong leader."] * 6 + ["The woman is a kind nurse."]) + "\n")
    result = _run(tmp_path, [("varied", [a]), ("repetitive", [b])], embedder)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["label"] == "varied" and set(report["compared"]) == {"repetitive"}
    rep = report["compared"]["repetitive"]
    assert rep["hygiene"]["exact_duplicates"] == 5
    assert rep["diversity"]["aps"] > report["diversity"]["aps"]
    assert rep["groups"]["gender"]["group_counts"]["male"] == 6
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| metric | varied | repetitive |" in md
    assert set(result["reports"]) == {"varied", "repetitive"}


def test_han_et_al_released_data(tmp_path: Path, data_dir: Path, embedder: Any) -> None:
    han = data_dir / "han2024-synthetic"
    general = [han / "General_Debiasing" / "Synthetic_General_1S.json"]
    targeted = [
        han / "Targeted_Debiasing" / "Gender" / "Synthetic_Gender_1.json",
        han / "Targeted_Debiasing" / "Racial" / "Synthetic_Race_1S.json",
    ]
    result = _run(tmp_path, [("general", general), ("targeted", targeted)], embedder)
    gen, tgt = result["reports"]["general"], result["reports"]["targeted"]
    assert gen["n_records"] == 500 and tgt["n_records"] == 1000
    assert tgt["labels"] == {"gender": 500, "race": 500}
    assert tgt["groups"]["gender"]["records"] > 300 and tgt["groups"]["race"]["records"] > 30
    # Synthetic_Race_1S.json repeats some of its own sentences (e.g. its line 458)
    assert tgt["hygiene"]["exact_duplicates"] >= 3
    assert gen["hygiene"]["refusals"] == 0
    assert 0 < gen["diversity"]["distinct_2"] <= 1 and gen["diversity"]["self_bleu"] is not None


def test_cli_summary_table_and_filter(tmp_path: Path, data_dir: Path) -> None:
    from vdata.cli import app

    data = tmp_path / "d.jsonl"
    known_dataset(data)
    other = tmp_path / "o.txt"
    other.write_text("The nurse is a man.\nThe engineer is a woman.\n")
    res = CliRunner().invoke(
        app,
        [
            "audit",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--embed-sample",
            "0",
            "--no-plots",
            "--compare",
            f"other={other}",
            "--filter",
            str(tmp_path / "clean.txt"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "exact duplicates" in res.output and "other" in res.output
    assert "removed" in res.output
    assert (tmp_path / "clean.txt").read_text().splitlines() == [t for t, _ in CLEAN]


def _quick(tmp: Path, lines: list[str], **kw: Any) -> tuple[dict[str, Any], str]:
    """Audit a few lines without embeddings, benchmark index or plots: (report.json, report.md)."""
    data = tmp / "d.txt"
    data.write_text("\n".join(lines) + "\n")
    out = tmp / "r"
    settings = AuditSettings(data=[data], out=out, embed_sample=0, benchmark_overlap=False, plots=False, **kw)
    run_audit(settings)
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_direction_not_measured_without_a_target_model(tmp_path: Path, data_dir: Path) -> None:
    report, md = _quick(tmp_path, [t for t, _ in CLEAN])
    d = report["direction"]
    assert d["measured"] is False and "target model" in d["reason"]
    assert d["how"].startswith("pass --target-model MODEL")
    section = md.split("### Stereotype direction", 1)[1]
    assert section.lstrip().startswith("Not measured: no target model was given")
    assert "--target-model MODEL" in section
    assert "direction: data more likely" not in md  # no empty table row for it


def test_direction_not_measured_without_group_terms(tmp_path: Path, data_dir: Path) -> None:
    """A target model, but no sentence to swap: the model is never loaded, and the report says why."""
    report, md = _quick(
        tmp_path, ["The sky is blue today.", "It rained all week."], target_model="smollm2-135m"
    )
    d = report["direction"]
    assert d["measured"] is False and "CDA word lists" in d["reason"] and "--word-lists" in d["how"]
    assert "Not measured: no sampled sentence contains a term from the CDA word lists" in md


def test_filter_to_csv_reads_back_as_records(tmp_path: Path, data_dir: Path) -> None:
    data = tmp_path / "data.jsonl"
    known_dataset(data)
    clean = tmp_path / "clean.csv"
    settings = AuditSettings(data=[data], out=tmp_path / "r", embed_sample=0, plots=False, filter=clean)
    run_audit(settings)
    kept = read_records(clean)
    assert [r.text for r in kept] == [t for t, _ in CLEAN]
    assert [r.category for r in kept] == [c for _, c in CLEAN]
