"""How `vdata audit` scales: time and peak memory for 10k, 100k and 1M synthetic sentences.

Sentences are generated deterministically (seeded templates over group terms, attribute words and a
20k-word filler vocabulary, with some exact and near duplicates and refusals mixed in). Each size runs in
a fresh subprocess so its peak resident memory (ru_maxrss) is its own. Embeddings are sampled
(--embed-sample, default 1000) so their cost is constant.

    .venv/bin/python bench/audit_scale.py                 # 10k, 100k, 1M
    .venv/bin/python bench/audit_scale.py --sizes 10000   # one size

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
from pathlib import Path

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


def generate(n: int, path: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = filler_vocab(rng)
    recent: list[str] = []
    with path.open("w", encoding="utf-8") as f:
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
            f.write(text + "\n")


def run_one(path: Path, out: Path, embed_sample: int) -> dict[str, float]:
    """Runs inside the child process: audit `path`, return wall time and peak RSS."""
    from vdata.audit.run import run_audit
    from vdata.audit.settings import AuditSettings

    start = time.perf_counter()
    settings = AuditSettings(data=[path], label="bench", out=out, embed_sample=embed_sample, plots=True)
    result = run_audit(settings)
    elapsed = time.perf_counter() - start
    report = result["report"]
    return {
        "seconds": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_records": report["n_records"],
        "exact_duplicates": report["hygiene"]["exact_duplicates"],
        "near_duplicates": report["hygiene"]["near_duplicates"],
        "refusals": report["hygiene"]["refusals"],
        "distinct_3": report["diversity"]["distinct_3"],
        "aps": report["diversity"]["aps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--embed-sample", type=int, default=1000)
    parser.add_argument("--child", nargs=3, metavar=("DATA", "OUT", "EMBED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, out, embed = args.child
        print(json.dumps(run_one(Path(data), Path(out), int(embed))))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"synthetic-{n}.txt"
            t0 = time.perf_counter()
            generate(n, data)
            gen_s = time.perf_counter() - t0
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(data),
                    str(Path(tmp) / f"out-{n}"),
                    str(args.embed_sample),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                sys.exit(f"audit of {n:,} sentences failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            row.update(size=n, generate_seconds=gen_s, mb=data.stat().st_size / 2**20)
            rows.append(row)
            print(
                f"{n:>9,} sentences ({row['mb']:.0f} MB): audit {row['seconds']:7.1f} s  peak RSS "
                f"{row['peak_rss_mb']:7.0f} MB  | exact dups {row['exact_duplicates']:,}, near dups "
                f"{row['near_duplicates']:,}, refusals {row['refusals']:,}, distinct-3 {row['distinct_3']:.3f}",
                flush=True,
            )
    base = rows[0]
    print("\nsize ratio vs first | time ratio | peak-memory ratio")
    for row in rows:
        print(
            f"{row['size'] / base['size']:>19.0f} | {row['seconds'] / base['seconds']:>10.2f} | "
            f"{row['peak_rss_mb'] / base['peak_rss_mb']:>17.2f}"
        )


if __name__ == "__main__":
    main()
