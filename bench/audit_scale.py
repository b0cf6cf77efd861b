"""How `vdata audit` scales: time and peak memory for 10k, 100k and 1M synthetic sentences.

Sentences are generated deterministically (seeded templates over group terms, attribute words and a
20k-word filler vocabulary, with some exact and near duplicates and refusals mixed in) into Parquet shards
of --shard-rows rows (a snapshot's layout). Each audit runs in a fresh subprocess so its peak resident
memory (ru_maxrss) is its own. Embeddings are sampled (--embed-sample, default 1000) so their cost is
constant.

    .venv/bin/python bench/audit_scale.py                 # 10k, 100k, 1M
    .venv/bin/python bench/audit_scale.py --sizes 10000   # one size
    .venv/bin/python bench/audit_scale.py --engine ray --sizes 1000000     # Ray beside the local engine
    .venv/bin/python bench/audit_scale.py --engine ray --skip-local --sizes 10000000

With --engine ray each size is audited by the local engine and by Ray (a local Ray, 2 CPUs, or
--ray-address), the two reports are checked equal, and the time of the streaming pass, of the driver's
merge and sample metrics, and of one shard audited alone (the per-shard rate a Ray worker reaches) are
printed, with the extrapolation to 200M sentences on N workers.

Target (issue 6): 1M sentences in <= 5 minutes and <= 2 GB peak on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GROUPS = [
    "woman",
    "man",
    "girl",
    "boy",
    "mother",
    "father",
    "Black man",
    "white woman",
    "Asian student",
    "Hispanic nurse",
    "Muslim teacher",
    "Jewish lawyer",
    "Christian pilot",
    "elderly woman",
    "teenager",
    "wheelchair user",
    "gay man",
    "lesbian",
    "immigrant",
    "Nigerian engineer",
    "wealthy banker",
    "poor family",
]
ATTRIBUTES = [
    "brilliant",
    "gentle",
    "ambitious",
    "logical",
    "nurturing",
    "strong",
    "creative",
    "calm",
    "confident",
    "generous",
    "athletic",
    "articulate",
    "resilient",
    "skilled",
    "honest",
    "kind",
]
CONNECTIVES = ["while", "because", "after", "although", "when", "since"]
TEMPLATES = [
    "The {g} was remarkably {a} during the {w1} {w2}.",
    "Everyone agreed that the {g} is {a} and {w1} about {w2}.",
    "A {a} {g} led the {w1} team to a {w2} result.",
    "Despite the {w1} {w2}, the {g} stayed {a}.",
    "My neighbour, a {g}, is known for being {a} at {w1} {w2} {w3}.",
]


def filler_vocab(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


def generate(n: int, folder: Path, shard_rows: int, seed: int = 0) -> None:
    """`n` sentences as Parquet shards of `shard_rows` rows (column `text`) in `folder`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    vocab = filler_vocab(rng)
    recent: list[str] = []
    folder.mkdir(parents=True)
    shard: list[str] = []
    for i in range(n):
        r = rng.random()
        if r < 0.01 and recent:
            text = rng.choice(recent)  # exact duplicate
        elif r < 0.02 and recent:
            text = rng.choice(recent).rstrip(".") + " today."  # near duplicate
        elif r < 0.025:
            text = "As an AI language model, I cannot write that sentence."
        else:
            text = rng.choice(TEMPLATES).format(
                g=rng.choice(GROUPS),
                a=rng.choice(ATTRIBUTES),
                w1=rng.choice(vocab),
                w2=rng.choice(vocab),
                w3=rng.choice(vocab),
            )
            # A free clause, so sentences from one template are not near duplicates of each other.
            clause = " ".join(rng.choice(vocab) for _ in range(rng.randint(4, 8)))
            text = f"{text.rstrip('.')} {rng.choice(CONNECTIVES)} {clause}."
            if len(recent) < 1000:
                recent.append(text)
            elif i % 7 == 0:
                recent[rng.randrange(1000)] = text
        shard.append(text)
        if len(shard) == shard_rows or i == n - 1:
            name = folder / f"shard-{i // shard_rows:05d}.parquet"
            pq.write_table(pa.table({"text": shard}), name, compression="zstd")
            shard = []


class StageClock:
    """A progress factory that records how long each stage, and each step a stage reports, took."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._step: tuple[str, float] | None = None

    @contextmanager
    def __call__(self, description: str, total: float | None = None, unit: str = "") -> Iterator[Any]:
        start = time.perf_counter()
        try:
            yield self
        finally:
            self._end_step()
            stage = "pass" if description.startswith("auditing") else description.split(":")[-1].strip()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def update(self, *, info: str = "", **_: Any) -> None:
        if info in {"duplicates", "self-BLEU", "embeddings", "stereotype direction"}:
            self._end_step()
            self._step = (info, time.perf_counter())

    def advance(self, n: float = 1) -> None:
        pass

    def _end_step(self) -> None:
        if self._step is not None:
            name, began = self._step
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
            self._step = None


def run_one(path: Path, out: Path, embed_sample: int, engine: str, ray_address: str) -> dict[str, Any]:
    """Runs inside the child process: audit `path`, return wall time, stage times and peak RSS."""
    from vdata.audit.run import run_audit
    from vdata.audit.settings import AuditSettings

    if engine == "ray":  # start Ray before the clock: a cluster is up before anyone audits on it
        from vdata.audit.ray_engine import start_ray

        start_ray(ray_address or None)
    clock = StageClock()
    start = time.perf_counter()
    settings = AuditSettings(
        data=[path],
        label="bench",
        out=out,
        embed_sample=embed_sample,
        plots=True,
        engine=engine,
        ray_address=ray_address or None,
    )
    result = run_audit(settings, clock)
    elapsed = time.perf_counter() - start
    report = result["report"]
    (out / "bench-report.json").write_text(json.dumps(report, sort_keys=True, default=str))
    return {
        "seconds": elapsed,
        "pass_seconds": clock.seconds.get("pass", 0.0),
        "finish_seconds": clock.seconds.get("sample metrics", 0.0),
        "duplicates_seconds": clock.seconds.get("duplicates", 0.0),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_records": report["n_records"],
        "exact_duplicates": report["hygiene"]["exact_duplicates"],
        "near_duplicates": report["hygiene"]["near_duplicates"],
        "refusals": report["hygiene"]["refusals"],
        "distinct_3": report["diversity"]["distinct_3"],
        "aps": report["diversity"]["aps"],
    }


def time_one_shard(path: Path) -> dict[str, float]:
    """Runs inside the child process: one shard's streaming pass alone, as a Ray task runs it (after the
    lexicon and benchmark index are loaded): the per-shard rate of one worker."""
    from vdata.audit.auditor import AuditOptions
    from vdata.audit.hygiene import load_benchmark_index
    from vdata.audit.ray_engine import ShardJob, audit_shard
    from vdata.audit.settings import AuditSettings
    from vdata.core.cda import load_word_lists
    from vdata.core.lexicon import build_lexicon

    settings = AuditSettings(data=[path])
    job = ShardJob(
        build_lexicon(load_word_lists(None, None), []),
        AuditOptions.from_settings(settings),
        load_benchmark_index(None),
        None,
        None,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    partial = audit_shard(path, job)
    # CPU seconds: what the shard costs a worker that has a core to itself, whatever else runs here
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "rows": partial.n_records,
    }


def child(args: list[str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def print_row(n: int, engine: str, row: dict[str, Any]) -> None:
    print(
        f"{n:>11,} sentences ({row['mb']:.0f} MB) {engine:>5}: audit {row['seconds']:7.1f} s (pass "
        f"{row['pass_seconds']:6.1f} s, merge + sample metrics {row['finish_seconds']:5.1f} s)  peak RSS "
        f"{row['peak_rss_mb']:6.0f} MB  | exact dups {row['exact_duplicates']:,}, near dups "
        f"{row['near_duplicates']:,}, refusals {row['refusals']:,}, distinct-3 {row['distinct_3']:.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--embed-sample", type=int, default=1000)
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument(
        "--ray-address", default="", help="Ray cluster for --engine ray (default: local, 2 CPUs)"
    )
    parser.add_argument("--skip-local", action="store_true", help="with --engine ray: Ray only")
    parser.add_argument("--shard-rows", type=int, default=100_000, help="rows per Parquet shard")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2, 16, 64, 256], help="N for the 200M estimate"
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--shard-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, out, embed, engine, address = args.child
        print(json.dumps(run_one(Path(data), Path(out), int(embed), engine, address)))
        return
    if args.shard_child:
        print(json.dumps(time_one_shard(Path(args.shard_child))))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engines = ["ray"] if args.skip_local else ["local", args.engine] if args.engine == "ray" else ["local"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"synthetic-{n}"
            t0 = time.perf_counter()
            generate(n, data, args.shard_rows)
            gen_s = time.perf_counter() - t0
            mb = sum(f.stat().st_size for f in data.iterdir()) / 2**20
            reports = {}
            for engine in engines:
                out = Path(tmp) / f"out-{n}-{engine}"
                row = child(
                    ["--child", str(data), str(out), str(args.embed_sample), engine, args.ray_address]
                )
                row.update(size=n, engine=engine, generate_seconds=gen_s, mb=mb)
                rows.append(row)
                print_row(n, engine, row)
                reports[engine] = json.loads((out / "bench-report.json").read_text())
            if len(reports) == 2:
                local, ray = reports["local"], reports["ray"]
                for report in (local, ray):
                    report.pop("plots", None)
                differ = sorted(k for k in local.keys() | ray.keys() if local.get(k) != ray.get(k))
                same = "the same report" if not differ else f"DIFFERENT reports: {', '.join(differ)}"
                by_engine = {r["engine"]: r for r in rows if r["size"] == n}
                ratio = by_engine["local"]["seconds"] / by_engine["ray"]["seconds"]
                print(f"{'':>11} local / ray time: {ratio:.2f}x; {same}", flush=True)
            if args.engine == "ray":
                shard = child(["--shard-child", str(sorted(data.iterdir())[0])])
                ray_row = next(r for r in rows if r["size"] == n and r["engine"] == "ray")
                estimate_200m(shard, ray_row, args.workers)
    if args.engine == "local":
        base = rows[0]
        print("\nsize ratio vs first | time ratio | peak-memory ratio")
        for row in rows:
            print(
                f"{row['size'] / base['size']:>19.0f} | {row['seconds'] / base['seconds']:>10.2f} | "
                f"{row['peak_rss_mb'] / base['peak_rss_mb']:>17.2f}"
            )


def estimate_200m(shard: dict[str, float], ray_row: dict[str, Any], workers: list[int]) -> None:
    """200M sentences = 2,000 shards of 100k: pass = shards x one shard's time / N workers, plus the driver's
    serial tail: deciding duplicates (scaled by records from this run) and the fixed-size sample metrics."""
    per_shard_rate = shard["rows"] / shard["cpu_seconds"]
    target = 200_000_000
    dups = ray_row["duplicates_seconds"]
    finish = dups * target / ray_row["size"] + (ray_row["finish_seconds"] - dups)
    print(
        f"{'':>11} one shard of {shard['rows']:,.0f} rows alone: {shard['seconds']:.1f} s wall, "
        f"{shard['cpu_seconds']:.1f} s CPU = {per_shard_rate:,.0f} rows per CPU-second per worker; on the driver: "
        f"duplicates {dups:.1f} s, sample metrics "
        f"{ray_row['finish_seconds'] - dups:.1f} s",
        flush=True,
    )
    for n in workers:
        passes = target / per_shard_rate / n
        print(
            f"{'':>11} 200M on {n:>3} workers: pass {passes / 3600:6.2f} h + driver {finish / 60:5.1f} min "
            f"= {(passes + finish) / 3600:6.2f} h",
            flush=True,
        )


if __name__ == "__main__":
    main()
