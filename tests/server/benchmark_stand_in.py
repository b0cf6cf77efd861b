"""A small real program in the place of `vdata benchmark-dataset` for the server's schedule tests:
`python benchmark_stand_in.py SNAPSHOT_DIR OUT_DIR [--fail | --bad-output]`.

It reads the snapshot's manifest and writes OUT_DIR/benchmark.json in the vdata.benchmark/1 shape with
fixed figures (the real command trains and evaluates a model: minutes, not what these tests check).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def document(snapshot: Path) -> dict[str, object]:
    manifest_bytes = (snapshot / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    return {
        "schema": "vdata.benchmark/1",
        "created": "2026-11-30T07:00:00Z",
        "source": {
            "kind": "snapshot",
            "snapshot_id": manifest["snapshot_id"],
            "data_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            "records": manifest["rows"],
            "records_by_category": {},
        },
        "model": {"name": "stand-in", "sha256": "0" * 64},
        "settings": {},
        "versions": {},
        "audit": {},
        "categories": {
            "gender": {
                "status": "measured",
                "reason": None,
                "train_records": 10,
                "stereoset": {
                    "split": "test",
                    "ss_before": 62.0,
                    "ss_after": 57.5,
                    "ss_ci_after": [55.0, 60.0],
                    "bias_cut_pct": 37.5,
                    "bias_cut_ci": [20.0, 55.0],
                    "lms_before": 90.0,
                    "lms_after": 89.0,
                },
                "verdict": "debiases",
            }
        },
    }


def main() -> int:
    snapshot, out = Path(sys.argv[1]), Path(sys.argv[2])
    if "--fail" in sys.argv:
        print("stand-in: model training failed (as asked)", file=sys.stderr)
        return 3
    if "--bad-output" in sys.argv:
        (out / "benchmark.json").write_text('{"schema": "something else"}', encoding="utf-8")
        return 0
    (out / "benchmark.json").write_text(json.dumps(document(snapshot)), encoding="utf-8")
    print(f"stand-in: benchmarked {snapshot.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
