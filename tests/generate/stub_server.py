"""A loopback OpenAI-compatible chat-completions server for tests, benchmarks and dry runs.

It answers `POST /v1/chat/completions` with deterministic, valid anti-stereotype triples (or a term
list when the prompt asks for terms, or a yes/no verdict when the gate's LLM judge asks) after a fixed latency, and can inject faults on a cyclic
schedule: `429` (with Retry-After), `500`, `timeout` (never answers in time), `malformed` (broken
JSON body), `refusal` (a polite refusal as content), `401`. Plain asyncio streams and HTTP/1.1
keep-alive, so one process serves thousands of requests per second.

    python tests/generate/stub_server.py --port 8765 --latency 0.05 --faults ok,429,ok,500

A test stand-in, not part of vdata: tests import it as `generate.stub_server` (pytest puts tests/ on
sys.path through tests/conftest.py), bench/gen_throughput.py runs it as a script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vdata.generate.eventloop import event_loop_factory

ADJECTIVES = [
    "stoic",
    "gentle",
    "brilliant",
    "strong",
    "patient",
    "decisive",
    "nurturing",
    "analytical",
    "fearless",
    "humble",
    "ambitious",
    "calm",
    "inventive",
    "athletic",
    "articulate",
    "generous",
]
DEFAULT_TERMS = ["woman", "man", "mother", "father", "girl", "boy", "sister", "brother"]
# The LLM judge's rubric (vdata/prompts/verify_judge.yaml) is answered "no" for these attributes, "yes" else.
JUDGE_NO = {"gentle", "nurturing", "patient", "calm", "humble", "generous"}


@dataclass
class StubConfig:
    latency_s: float = 0.0
    faults: list[str] = field(default_factory=lambda: ["ok"])
    retry_after_s: float = 0.05
    timeout_hang_s: float = 30.0


async def read_request(
    reader: asyncio.StreamReader, authorizations: set[str]
) -> tuple[str, str, dict[str, str], bytes]:
    """One HTTP/1.1 request off a keep-alive connection: method, path, lower-cased headers, body; the API
    keys it carried (OpenAI's bearer, Gemini's header) are added to `authorizations`."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    for auth_header in ("authorization", "x-goog-api-key"):
        if auth_header in headers:
            authorizations.add(headers[auth_header])
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body


def _n_asked(text: str) -> int:
    m = re.search(r"Write (\d+) sentences", text)
    return int(m.group(1)) if m else 3


def reply_for(body: dict[str, Any]) -> str:
    """Deterministic content for a chat request: a term list, or `n` triples unique per seed."""
    messages = body.get("messages") or []
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    judged = re.search(r"^Attribute: (\S+)$", last, re.MULTILINE)
    if judged and "Sentence: " in last:
        if judged.group(1) in JUDGE_NO:
            return "No. That trait matches a common stereotype."
        return "Yes, it counters a common stereotype."
    if "Terms: [" in last:
        return "Terms: [" + ", ".join(DEFAULT_TERMS) + "]"
    if "Values: [" in last:
        return "Values: [short, formal, cheerful, rural, urban]"
    m = re.search(r"about: ([^.\n]+)\.", last)
    terms = [t.strip() for t in m.group(1).split(",")] if m else DEFAULT_TERMS
    seed = body.get("seed")
    digest = hashlib.sha256(json.dumps([last, seed], sort_keys=True).encode()).hexdigest()
    tag = seed if seed is not None else digest[:8]
    lines = []
    for k in range(_n_asked(last)):
        term = terms[(int(digest[k % 60 : k % 60 + 2], 16) + k) % len(terms)]
        adj = ADJECTIVES[(int(digest[(k + 7) % 60 : (k + 7) % 60 + 2], 16) + k) % len(ADJECTIVES)]
        lines.append(f"The {term} from team {tag}-{k} was remarkably {adj}. | {term} | {adj}")
    return "\n".join(lines)


class StubServer:
    def __init__(self, config: StubConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or StubConfig()
        self.host, self.port = host, port
        self.requests = 0
        self.outcomes: Counter[str] = Counter()
        self.authorizations: set[str] = set()
        self.last_request: tuple[str, dict[str, str], bytes] | None = None  # (path, headers, body)
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        reason = {
            200: "OK",
            401: "Unauthorized",
            404: "Not Found",
            429: "Too Many Requests",
            500: "Internal Server Error",
        }.get(status, "Error")
        head = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: keep-alive",
        ]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _handle_one(self, writer: asyncio.StreamWriter, path: str, body: bytes) -> None:
        self.requests += 1
        fault = self.config.faults[(self.requests - 1) % len(self.config.faults)]
        self.outcomes[fault] += 1
        if self.config.latency_s:
            await asyncio.sleep(self.config.latency_s)
        gemini = ":generateContent" in path
        if not path.endswith("/chat/completions") and not gemini:
            await self._respond(writer, 404, b'{"error": {"message": "not found"}}')
            return
        if fault == "429":
            await self._respond(
                writer,
                429,
                b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                {"Retry-After": str(self.config.retry_after_s)},
            )
            return
        if fault == "500":
            await self._respond(writer, 500, b'{"error": {"message": "server error"}}')
            return
        if fault == "401":
            await self._respond(writer, 401, b'{"error": {"message": "invalid api key"}}')
            return
        if fault == "timeout":
            await asyncio.sleep(self.config.timeout_hang_s)
            return
        if fault == "malformed":
            await self._respond(writer, 200, b'{"id": "x", "choices": [{"message": {"content": "The wom')
            return
        req = json.loads(body or b"{}")
        if gemini:
            await self._respond(writer, 200, json.dumps(self._gemini_reply(req, fault)).encode())
            return
        content = "I'm sorry, but I can't help with that." if fault == "refusal" else reply_for(req)
        prompt_chars = sum(len(m.get("content", "")) for m in req.get("messages", []))
        resp = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": req.get("model", "stub"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_chars // 4 + len(content) // 4,
            },
        }
        await self._respond(writer, 200, json.dumps(resp).encode())

    @staticmethod
    def _gemini_reply(req: dict[str, Any], fault: str) -> dict[str, Any]:
        """Gemini `generateContent`: contents/parts in, candidates/usageMetadata out."""
        messages = [
            {
                "role": "assistant" if c.get("role") == "model" else "user",
                "content": "".join(p.get("text", "") for p in c.get("parts", [])),
            }
            for c in req.get("contents", [])
        ]
        seed = (req.get("generationConfig") or {}).get("seed")
        text = (
            "I'm sorry, but I can't help with that."
            if fault == "refusal"
            else reply_for({"messages": messages, "seed": seed})
        )
        chars = sum(len(m["content"]) for m in messages)
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": chars // 4,
                "candidatesTokenCount": len(text) // 4,
                "totalTokenCount": chars // 4 + len(text) // 4,
            },
        }

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                _method, path, headers, body = await read_request(reader, self.authorizations)
                self.last_request = (path, headers, body)
                await self._handle_one(writer, path, body)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    # -- run in a background thread (tests) ----------------------------------------------------------
    def start_in_thread(self) -> StubServer:
        ready = threading.Event()

        def _run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=_run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    ap.add_argument("--faults", default="ok", help="cyclic schedule, e.g. ok,429,500,timeout,malformed")
    args = ap.parse_args()
    server = StubServer(
        StubConfig(latency_s=args.latency, faults=args.faults.split(",")), args.host, args.port
    )
    print(f"listening on http://{args.host}:{args.port}/v1", flush=True)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(server.serve_forever())


if __name__ == "__main__":
    main()
