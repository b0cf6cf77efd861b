"""`--engine ray` writes the report the local engine writes: shards audited apart and merged (Ray Data, or
per-file partials merged here) give the same figures as one pass, exact counts equal and the distinct-n
sketch within its stated error."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from vdata.audit.auditor import AuditOptions, Auditor, build_report
from vdata.audit.readers import DatasetReader, expand_inputs, items_at
from vdata.audit.run import run_audit
from vdata.audit.settings import AuditSettings
from vdata.core.cda import load_word_lists
from vdata.core.errors import UserError
from vdata.core.lexicon import build_lexicon

GROUPS = ["woman", "man", "Muslim teacher", "Jewish lawyer", "Black nurse", "Asian engineer", "grandmother"]
TRAITS = ["brave", "gentle", "logical", "kind", "ambitious", "calm", "nurturing", "strong"]


def sentences(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows with planted exact duplicates, near duplicates, refusals and malformed rows; how many of each."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 8))) for _ in range(5000)]
    rows: list[dict[str, Any]] = []
    kept: list[str] = []
    planted = {"exact": 0, "refusals": 0, "malformed": 0}
    for i in range(n):
        r = rng.random()
        if r < 0.01 and kept:
            text = rng.choice(kept).upper()  # same normalised text: an exact duplicate
            planted["exact"] += 1
        elif r < 0.02 and kept:
            text = rng.choice(kept).rstrip(".") + " today."  # a near duplicate (or exact, if already made)
        elif r < 0.025:
            text = f"As an AI language model, I cannot write sentence {i}."
            planted["refusals"] += 1
        elif r < 0.027:
            text = f"Fill {{}} in {i}"  # an unfilled placeholder
            planted["malformed"] += 1
        else:
            clause = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 9)))
            text = f"The {rng.choice(GROUPS)} was {rng.choice(TRAITS)} while {clause}."
            kept.append(text)
        category = rng.choice(["gender", "religion", "race", ""])
        rows.append({"id": "", "text": text, "category": category, "contributor": f"u{i % 7}"})
    return rows, planted


def write_snapshot(folder: Path, rows: list[dict[str, Any]], shards: int) -> list[Path]:
    """A snapshot-shaped folder (docs/snapshots.md): Parquet shards under data/<config>/, manifest.json
    listing them, and the metadata files that are not data (croissant.json)."""
    files = []
    per = -(-len(rows) // shards)
    for k in range(shards):
        part = rows[k * per : (k + 1) * per]
        rel = Path("data") / ("gender" if k % 2 else "race") / f"20260102T000000Z-{k:05d}.parquet"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(part), folder / rel, compression="zstd")
        files.append({"path": str(rel), "rows": len(part)})
    (folder / "manifest.json").write_text(json.dumps({"snapshot_id": "20260102T000000Z", "files": files}))
    (folder / "croissant.json").write_text(json.dumps({"@type": "Dataset"}))
    return [folder / f["path"] for f in files]


def audit(tmp: Path, data: list[Path], engine: str, **kw: Any) -> dict[str, Any]:
    settings = AuditSettings(
        data=data, out=tmp / f"out-{engine}", embed_sample=0, sample=300, plots=False, engine=engine, **kw
    )
    return run_audit(settings)["reports"]


@pytest.mark.slow
def test_ray_and_local_reports_are_equal_on_100k_records(
    tmp_path: Path, data_dir: Path, ray_session: Any
) -> None:
    rows, planted = sentences(100_000, seed=1)
    snapshot = tmp_path / "snap"
    write_snapshot(snapshot, rows, shards=8)
    kw = {"data_dir": data_dir, "target_model": None, "filter": None}
    local = audit(tmp_path, [snapshot], "local", **kw)["snap"]
    ray = audit(tmp_path, [snapshot], "ray", **kw)["snap"]
    assert ray == local  # every figure, example and sample-based metric
    hyg = local["hygiene"]
    assert local["n_records"] == 100_000 and hyg["refusals"] == planted["refusals"]
    assert hyg["malformed"] == planted["malformed"]
    assert hyg["exact_duplicates"] >= planted["exact"] and hyg["near_duplicates"] > 500
    assert local["diversity"]["distinct_exact"]


def test_ray_and_local_agree_on_mixed_files_filter_and_cli(
    tmp_path: Path, data_dir: Path, ray_session: Any
) -> None:
    rows, _ = sentences(3000, seed=2)
    data = tmp_path / "data"
    data.mkdir()
    with (data / "a.jsonl").open("w") as f:
        for row in rows[:1000]:
            f.write(json.dumps({"text": row["text"], "category": row["category"]}) + "\n")
        f.write("{broken json\n")  # a malformed row, not fatal after the first line
    (data / "b.txt").write_text("\n".join(r["text"] for r in rows[1000:2000]) + "\n")
    pq.write_table(pa.Table.from_pylist(rows[2000:]), data / "c.parquet")
    reports = {}
    for engine in ("local", "ray"):
        clean = tmp_path / f"clean-{engine}.txt"
        reports[engine] = audit(tmp_path, [data], engine, data_dir=data_dir, filter=clean)["data"]
        reports[engine]["filter"].pop("path")
    assert reports["ray"] == reports["local"]
    assert (tmp_path / "clean-ray.txt").read_text() == (tmp_path / "clean-local.txt").read_text()
    hyg = reports["ray"]["hygiene"]
    assert hyg["malformed"] >= 1 and any(
        ex["where"].endswith("a.jsonl:1001") for ex in hyg["examples"]["malformed"]
    )
    # the examples of duplicates are read back from their shards: the first ones in input order
    dup = hyg["examples"]["exact_duplicates"][0]
    assert dup["text"] and dup["where"].startswith(str(data))

    from vdata.cli import app

    out = tmp_path / "cli"
    flags = ["--engine", "ray", "--out", str(out), "--embed-sample", "0", "--sample", "300", "--no-plots"]
    result = CliRunner().invoke(app, ["audit", str(data), *flags, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["hygiene"] == {**reports["local"]["hygiene"]}


def test_an_unreadable_shard_is_the_same_user_error_on_ray(tmp_path: Path, ray_session: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("A perfectly fine sentence about a brave woman.\n")
    (data / "b.jsonl").write_bytes(b'{"text": "caf\xe9 au lait for the teacher"}\n')  # Latin-1, not UTF-8
    messages = []
    for engine in ("local", "ray"):
        with pytest.raises(UserError) as err:
            audit(tmp_path, [data], engine, benchmark_overlap=False)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "not UTF-8" in messages[1]


def test_per_file_partials_merged_equal_one_pass_and_the_sketch_is_within_its_error(tmp_path: Path) -> None:
    """The merge itself, without Ray: partials of three files merged = one pass over all; past the exact
    limit distinct-n is a HyperLogLog, within 3 % (about 4 standard errors) of the exact count."""
    rows, _ = sentences(6000, seed=3)
    paths = []
    for k in range(3):
        path = tmp_path / f"part{k}.txt"
        path.write_text("\n".join(r["text"] for r in rows[k * 2000 : (k + 1) * 2000]) + "\n")
        paths.append(path)
    lexicon = build_lexicon(load_word_lists(None, None), [])
    reports = {}
    for limit in (10**9, 5000):
        options = AuditOptions(
            sample=200,
            embed_sample=0,
            direction_sample=10,
            seed=0,
            near_threshold=0.8,
            language="en",
            exact_ngram_limit=limit,
        )
        one = Auditor(lexicon, options)
        for item in DatasetReader(paths):
            one.add(item)
        merged = None
        for path in paths:
            shard = Auditor(lexicon, options)
            for item in DatasetReader([path]):
                shard.add(item)
            if merged is None:
                merged = shard.partial()
            else:
                merged.merge(shard.partial())
        assert merged is not None
        method = one.near_duplicate_method()

        def fetch(ordinals: Any) -> Any:
            return items_at(DatasetReader(paths), ordinals)

        whole = build_report(one.partial(), options, near_method=method, fetch_items=fetch)
        parts = build_report(merged, options, near_method=method, fetch_items=fetch)
        assert parts == whole
        reports[limit] = whole
    exact, sketched = reports[10**9]["diversity"], reports[5000]["diversity"]
    assert exact["distinct_exact"] and not sketched["distinct_exact"]
    for n in (2, 3):
        assert sketched[f"distinct_{n}"] == pytest.approx(exact[f"distinct_{n}"], rel=0.03)
    assert sketched["vocab_size"] == exact["vocab_size"]
    assert reports[5000]["hygiene"] == reports[10**9]["hygiene"]


def test_engine_ray_without_ray_installed_says_how_to_get_it(tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_text("A perfectly fine sentence about a brave woman.\n")
    code = (
        "import sys; sys.modules['ray'] = None\n"  # an import of ray now fails as if it were not installed
        "from pathlib import Path\n"
        "from vdata.audit.run import run_audit\nfrom vdata.audit.settings import AuditSettings\n"
        f"run_audit(AuditSettings(data=[Path({str(data)!r})], out=Path({str(tmp_path / 'o')!r}), "
        "engine='ray', embed_sample=0, benchmark_overlap=False, plots=False))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "--engine ray needs Ray Data: pip install 'vdata[ray]'" in proc.stderr
    assert not (tmp_path / "o" / "report.json").exists()


def test_a_snapshot_folder_is_read_as_the_shards_its_manifest_lists(tmp_path: Path) -> None:
    rows, _ = sentences(30, seed=4)
    shards = write_snapshot(tmp_path / "snap", rows, shards=3)
    assert expand_inputs([tmp_path / "snap"]) == shards  # not croissant.json, not manifest.json
    assert sum(1 for _ in DatasetReader([tmp_path / "snap"])) == 30
    (tmp_path / "snap" / "manifest.json").write_text('{"snapshot_id": "x"}')
    with pytest.raises(UserError, match="not a vdata snapshot manifest"):
        expand_inputs([tmp_path / "snap"])
