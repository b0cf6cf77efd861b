"""Baseline: SmolLM2-135M on the full StereoSet test split and full CrowS-Pairs, bias-bench protocol.

    .venv/bin/python bench/eval_baseline.py [--model smollm2-135m] [--out docs/baseline-smollm2.json]

Writes the results JSON (plus .md/.png beside it) and prints SS/LMS/ICAT per domain, the CrowS metric
per bias type, and the wall time. Takes a while on a CPU (about 22k sentences).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VDATA_DATA_DIR", str(ROOT.parent / "shared" / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "baseline-smollm2.json")
    parser.add_argument("--batch-size", type=int, default=64)
    # CrowS first: it is the shorter run, so a cut-off run still leaves its numbers in the JSON.
    parser.add_argument("--benchmarks", default="crows_pairs,stereoset")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()

    from vdata.core.progress import progress_factory
    from vdata.evaluate.cli import _write_outputs
    from vdata.evaluate.runner import run_model
    from vdata.evaluate.settings import EvalSettings

    started = time.perf_counter()
    results: dict = {}
    data_sha256: dict = {}
    for name in args.benchmarks.split(","):
        settings = EvalSettings(benchmarks=[name], split="test", batch_size=args.batch_size)
        t0 = time.perf_counter()
        part, _ = run_model(args.model, settings, progress_factory(not args.quiet))
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
        provenance = part.pop("provenance")
        data_sha256.update(provenance["data_sha256"])
        results.update(part)
        provenance.update(
            data_sha256=data_sha256,
            wall_seconds=round(time.perf_counter() - started, 2),
            benchmarks=[b for b in args.benchmarks.split(",") if b in results],
        )
        results["provenance"] = provenance
        _write_outputs(results, args.out, None, None)  # after each benchmark, so a cut-off run keeps numbers
    wall = time.perf_counter() - started

    print(f"\n{args.model}: StereoSet test intrasentence (bias-bench protocol)")
    print(f"{'domain':<12}{'SS':>8}{'LMS':>8}{'ICAT':>8}{'n':>7}   SS 95% CI")
    for domain, row in results.get("stereoset", {}).get("intrasentence", {}).items():
        print(
            f"{domain:<12}{row['SS']:>8.2f}{row['LMS']:>8.2f}{row['ICAT']:>8.2f}{row['n']:>7}   {row['ss_ci95']}"
        )
    print("\nCrowS-Pairs metric (% preferring the more stereotyping sentence)")
    for group, row in results.get("crows_pairs", {}).items():
        print(f"{group:<22}{row['metric']:>8.2f}{row['n']:>6}   {row['ci95']}")
    print(
        f"\nwall time {wall:.1f} s (model load included); start token {results['provenance']['start_token']}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
