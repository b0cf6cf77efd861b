"""Disk cache of responses, keyed by a content hash of everything that determines a reply.

Key = sha256 of (provider identity, model, rendered messages, sampling params incl. template tag,
sample index). A rerun of the same command therefore finds every reply it already paid for.

Storage: one append-only JSONL file per responder (provider + model + server) under
`cache_dir()/gen-responses/`. Each reply is one line written with a single `write()` and flushed, so
kill -9 loses at most the line being written (a torn last line is skipped on load), and a reply costs
no file open or directory creation. Entries hold the reply text and token usage only, never API keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

from vdata.core.fingerprint import fingerprint
from vdata.core.paths import cache_dir
from vdata.generate.providers.base import Completion


def cache_key(
    identity: dict[str, Any], messages: list[dict[str, str]], params: dict[str, Any], sample_index: int | str
) -> str:
    payload = {"identity": identity, "messages": messages, "params": params, "sample": sample_index}
    return fingerprint(payload)


class ResponseCache:
    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = root or cache_dir() / "gen-responses"
        self.enabled = enabled
        self.entries: dict[str, Completion] = {}
        self._file: IO[bytes] | None = None
        self.path: Path | None = None

    def open(self, identity: dict[str, Any]) -> ResponseCache:
        """Load the responder's cache file (once) and keep it open for appending."""
        if not self.enabled or self._file is not None:
            return self
        # Not core.fingerprint: this hash escapes non-ASCII (json.dumps' default), and changing it would
        # orphan every existing cache file whose model path or name is not ASCII.
        name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / f"{name}.jsonl"
        if self.path.exists():
            with self.path.open("rb") as f:
                for line in f:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        raw = json.loads(line)
                        self.entries[raw["key"]] = Completion(
                            raw["text"],
                            int(raw["prompt_tokens"]),
                            int(raw["completion_tokens"]),
                            raw.get("model", ""),
                            raw.get("finish_reason"),
                        )
            # A torn last line (kill -9 mid-write) must not glue onto the next entry.
            if self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
                with self.path.open("ab") as f:
                    f.write(b"\n")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)
        return self

    def get(self, key: str) -> Completion | None:
        return self.entries.get(key) if self.enabled else None

    def put(self, key: str, completion: Completion) -> None:
        if not self.enabled:
            return
        self.entries[key] = completion
        if self._file is None:
            return
        line = json.dumps(
            {
                "key": key,
                "text": completion.text,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "model": completion.model,
                "finish_reason": completion.finish_reason,
            },
            ensure_ascii=False,
        )
        self._file.write(line.encode("utf-8") + b"\n")  # one unbuffered O_APPEND write per reply

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
