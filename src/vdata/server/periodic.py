"""`vdata serve --snapshot-every 24h`: `vdata snapshot` run by the server itself, in a background thread.

Each run is the ordinary incremental snapshot (snapshot.py) into the folder the server serves at
/v1/snapshots, so a new snapshot appears there as soon as it is complete (it is written in a staging
folder and renamed). The next run is due one interval after the latest snapshot in the folder, so a
restart does not take an extra snapshot, and a server that was down past its time takes one at start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from vdata.core.errors import UserError
from vdata.server.settings import ServerSettings
from vdata.server.snapshot import list_snapshots, make_settings, take_snapshot

log = logging.getLogger("vdata.server")


def _taken_at(snapshot_id: str) -> float:
    return datetime.strptime(snapshot_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


class PeriodicSnapshots:
    def __init__(
        self,
        db_url: str,
        out_dir: Path,
        every_s: float,
        *,
        settle_s: float = 60.0,
        audit_report: Path | None = None,
    ) -> None:
        self.db_url = db_url
        self.out_dir = out_dir
        self.every_s = every_s
        self.settle_s = settle_s
        self.audit_report = audit_report
        self.taken: list[str] = []  # ids written by this process, oldest first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seconds_until_due(self, now: float | None = None) -> float:
        existing = list_snapshots(self.out_dir) if self.out_dir.is_dir() else []
        if not existing:
            return 0.0
        return max(0.0, _taken_at(existing[-1]) + self.every_s - (time.time() if now is None else now))

    def run_once(self) -> str | None:
        """Take one snapshot now; its id, or None when nothing changed (no snapshot written)."""
        settings = make_settings(
            db_url=self.db_url,
            out_dir=self.out_dir,
            settle_s=self.settle_s,
            **({"audit_report": self.audit_report} if self.audit_report else {}),
        )
        started = time.monotonic()
        manifest = take_snapshot(settings)
        if manifest is None:
            log.info(json.dumps({"event": "snapshot_unchanged", "dir": str(self.out_dir)}))
            return None
        self.taken.append(manifest["snapshot_id"])
        log.info(
            json.dumps(
                {
                    "event": "snapshot",
                    "snapshot": manifest["snapshot_id"],
                    "rows": manifest["rows"],
                    "files_added": len(manifest["files_added"]),
                    "seconds": round(time.monotonic() - started, 2),
                }
            )
        )
        return str(manifest["snapshot_id"])

    def _loop(self) -> None:
        wait = self.seconds_until_due()
        while not self._stop.wait(wait):
            written = None
            try:
                written = self.run_once()
            except UserError as e:  # e.g. a snapshot taken within the same second by `vdata snapshot`
                log.warning(json.dumps({"event": "snapshot_skipped", "reason": str(e)}))
            except Exception as e:  # the server keeps serving; the next run retries
                log.error(json.dumps({"event": "snapshot_failed", "error": f"{type(e).__name__}: {e}"}))
            # Unchanged or failed: the latest snapshot is as old as before, so the next try is an interval on.
            wait = self.seconds_until_due() if written else self.every_s

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="vdata-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


def snapshotter_for(settings: ServerSettings) -> PeriodicSnapshots | None:
    """The background snapshots `settings` ask for (`--snapshot-every` with `--snapshots DIR`), if any."""
    if settings.snapshot_every_s is None or settings.snapshots_dir is None:
        return None
    return PeriodicSnapshots(
        settings.db_url,
        settings.snapshots_dir,
        settings.snapshot_every_s,
        settle_s=settings.snapshot_settle_s,
        audit_report=settings.audit_report,
    )
