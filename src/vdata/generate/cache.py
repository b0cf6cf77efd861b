"""Disk cache of responses, keyed by a content hash of everything that determines a reply.

Key = sha256 of (provider identity, model, rendered messages, sampling params, template tag, sample
index). A rerun of the same command therefore finds every reply it already paid for. Entries hold
the reply text and token usage only (never API keys); writes are atomic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vdata.core.paths import cache_dir
from vdata.generate.providers.base import Completion


def cache_key(
    identity: dict[str, Any], messages: list[dict[str, str]], params: dict[str, Any], sample_index: int | str
) -> str:
    payload = {"identity": identity, "messages": messages, "params": params, "sample": sample_index}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = root or cache_dir() / "gen-responses"
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        if not self.enabled:
            return None
        try:
            raw = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Completion(
                raw["text"],
                int(raw["prompt_tokens"]),
                int(raw["completion_tokens"]),
                raw.get("model", ""),
                raw.get("finish_reason"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or damaged: ask again

    def put(self, key: str, completion: Completion) -> None:
        if not self.enabled:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        data = {
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "model": completion.model,
            "finish_reason": completion.finish_reason,
        }
        try:
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
