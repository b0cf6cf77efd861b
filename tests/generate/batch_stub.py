"""A loopback server that speaks OpenAI's Batch API and Gemini's batch mode, for the `"batch": true` tests.

OpenAI: `POST /v1/files` (multipart, purpose `batch`), `POST /v1/batches`, `GET /v1/batches/{id}`,
`GET /v1/files/{id}/content`. Gemini (as the google-genai SDK sends it): `POST
/{version}/models/{model}:batchGenerateContent` with inline requests, `GET /{version}/batches/{id}`.
Online requests (`/v1/chat/completions`, `:generateContent`) are answered too, for retries sent online.
Requests are validated as the real services would (purpose, endpoint, completion window, JSONL lines with
unique custom_ids, known file ids) and rejected with 400 otherwise.

Each created job follows a scenario, taken cyclically from `scenarios`:
* `ok`: validating -> in_progress -> finalizing -> completed (Gemini: PENDING -> RUNNING -> SUCCEEDED);
* `partial`: completed, but every third request is answered with a 500 error line;
* `expired`: the first half answered, the rest `batch_expired` error lines (Gemini: nothing, EXPIRED);
* `failed`: validating -> failed, nothing answered (Gemini: FAILED with an error);
* `cancelled`: cancelling -> cancelled with the first half answered, the rest not mentioned.
Each non-final state lasts `polls_per_state` status requests. Replies are the chat stand-in's
(`stub_server.reply_for`), so records are deterministic per prompt and seed.

    PYTHONPATH=tests python tests/generate/batch_stub.py --port 8766 --scenarios ok,partial
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any

from generate.stub_server import StubServer, read_request, reply_for

OPENAI_STATES = {
    "ok": ["validating", "in_progress", "finalizing", "completed"],
    "partial": ["validating", "in_progress", "finalizing", "completed"],
    "expired": ["validating", "in_progress", "expired"],
    "failed": ["validating", "failed"],
    "cancelled": ["validating", "in_progress", "cancelling", "cancelled"],
}
GEMINI_STATES = {
    "ok": ["PENDING", "RUNNING", "SUCCEEDED"],
    "partial": ["PENDING", "RUNNING", "SUCCEEDED"],
    "expired": ["PENDING", "RUNNING", "EXPIRED"],
    "failed": ["PENDING", "FAILED"],
    "cancelled": ["PENDING", "RUNNING", "CANCELLED"],
}


@dataclass
class Job:
    id: str
    kind: str  # "openai" | "gemini"
    scenario: str
    requests: list[dict[str, Any]]  # openai: JSONL lines; gemini: {"request": ..., "metadata": ...}
    model: str = ""
    input_bytes: int = 0
    polls: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass
class BatchStubConfig:
    scenarios: list[str] = field(default_factory=lambda: ["ok"])
    polls_per_state: int = 1


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    content = reply_for(body)
    prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
    return {
        "id": "chatcmpl-batch",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "stub"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(content) // 4,
            "total_tokens": prompt_chars // 4 + len(content) // 4,
        },
    }


class BatchStub:
    def __init__(self, config: BatchStubConfig | None = None, host: str = "127.0.0.1") -> None:
        self.config = config or BatchStubConfig()
        self.host, self.port = host, 0
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, Job] = {}
        self.creations: Counter[str] = Counter()  # batch jobs created, per API
        self.polls = 0
        self.online_requests = 0
        self.authorizations: set[str] = set()
        self.rejections: list[str] = []
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def gemini_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def requests_in_jobs(self) -> int:
        return sum(len(j.requests) for j in self.jobs.values())

    # -- HTTP ----------------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, path, headers, body = await read_request(reader, self.authorizations)
                with self._lock:
                    status, payload, ctype = self._route(method, path.split("?")[0], headers, body)
                head_out = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
                )
                writer.write(head_out.encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _reject(self, message: str, status: int = 400) -> tuple[int, bytes, str]:
        self.rejections.append(message)
        return (
            status,
            json.dumps({"error": {"message": message, "code": status}}).encode(),
            "application/json",
        )

    @staticmethod
    def _json(doc: Any) -> tuple[int, bytes, str]:
        return 200, json.dumps(doc).encode(), "application/json"

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        if method == "POST" and path == "/v1/chat/completions":  # online retries
            self.online_requests += 1
            return self._json(chat_completion(json.loads(body)))
        if method == "POST" and path.endswith(":generateContent"):
            self.online_requests += 1
            return self._json(StubServer._gemini_reply(json.loads(body), "ok"))
        if method == "POST" and path == "/v1/files":
            return self._upload(headers, body)
        if method == "POST" and path == "/v1/batches":
            return self._create_openai(json.loads(body))
        job = self.jobs.get(path.rsplit("/", 1)[1])
        if method == "GET" and path.startswith("/v1/batches/") and job is not None and job.kind == "openai":
            return self._json(self._openai_view(job, poll=True))
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.split("/")[3]
            if file_id not in self.files:
                return self._reject("no such file", 404)
            return 200, self.files[file_id], "application/octet-stream"
        # Gemini paths start with the SDK's API version (v1beta, or v1 in newer SDKs).
        gemini = "/" + path.split("/", 2)[2] if path.count("/") >= 2 else path
        if method == "POST" and gemini.startswith("/models/") and gemini.endswith(":batchGenerateContent"):
            model = gemini[1 : -len(":batchGenerateContent")]
            return self._create_gemini(model, json.loads(body))
        if method == "GET" and gemini.startswith("/batches/"):
            job = self.jobs.get("batches/" + path.rsplit("/", 1)[1])
            return self._json(self._gemini_view(job)) if job else self._reject("no such batch", 404)
        return self._reject(f"unknown endpoint {method} {path}", 404)

    # -- OpenAI ----------------------------------------------------------------------------------------
    def _upload(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        msg = BytesParser().parsebytes(
            b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body
        )
        fields = {part.get_param("name", header="content-disposition"): part for part in msg.get_payload()}
        if fields.get("purpose") is None or fields["purpose"].get_payload(decode=True) != b"batch":
            return self._reject("purpose must be 'batch'")
        data = fields["file"].get_payload(decode=True)
        ids = []
        for n, line in enumerate(data.splitlines(), 1):
            row = json.loads(line)
            if row.get("method") != "POST" or row.get("url") != "/v1/chat/completions" or "body" not in row:
                return self._reject(f"line {n}: needs method POST, url /v1/chat/completions and a body")
            ids.append(row["custom_id"])
        if len(ids) != len(set(ids)):
            return self._reject("custom_id values must be unique within a batch file")
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return self._json(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": 0,
                "filename": "in.jsonl",
                "purpose": "batch",
                "status": "processed",
            }
        )

    def _scenario(self) -> str:
        return self.config.scenarios[(sum(self.creations.values()) - 1) % len(self.config.scenarios)]

    def _create_openai(self, req: dict[str, Any]) -> tuple[int, bytes, str]:
        if req.get("completion_window") != "24h" or req.get("endpoint") != "/v1/chat/completions":
            return self._reject("completion_window must be 24h and endpoint /v1/chat/completions")
        data = self.files.get(req.get("input_file_id", ""))
        if data is None:
            return self._reject("input_file_id is not an uploaded file")
        self.creations["openai"] += 1
        job = Job(
            f"batch_{len(self.jobs) + 1}",
            "openai",
            self._scenario(),
            [json.loads(x) for x in data.splitlines()],
            input_bytes=len(data),
        )
        self.jobs[job.id] = job
        return self._json(self._openai_view(job, poll=False))

    def _state(self, job: Job, states: list[str], poll: bool) -> str:
        if poll:
            job.polls += 1
            self.polls += 1
        return states[min(job.polls // self.config.polls_per_state, len(states) - 1)]

    def _answers(self, job: Job, state: str) -> tuple[list[int], list[int]]:
        """Indexes answered, indexes answered with an error line."""
        n = len(job.requests)
        if job.scenario == "partial":
            return [i for i in range(n) if i % 3 != 2], [i for i in range(n) if i % 3 == 2]
        if state == "expired":
            return list(range(n // 2)), list(range(n // 2, n))
        if state == "cancelled":
            return list(range(n // 2)), []
        if state == "failed":
            return [], []
        return list(range(n)), []

    def _openai_view(self, job: Job, *, poll: bool) -> dict[str, Any]:
        state = self._state(job, OPENAI_STATES[job.scenario], poll)
        final = state in ("completed", "expired", "failed", "cancelled")
        ok, bad = self._answers(job, state) if final else ([], [])
        if final and job.output_file_id is None and job.error_file_id is None and state != "failed":
            out = []
            for i in ok:
                row = job.requests[i]
                out.append(
                    {
                        "id": f"req_{i}",
                        "custom_id": row["custom_id"],
                        "error": None,
                        "response": {
                            "status_code": 200,
                            "request_id": f"r{i}",
                            "body": chat_completion(row["body"]),
                        },
                    }
                )
            errs = []
            for i in bad:
                cid = job.requests[i]["custom_id"]
                if state == "expired":
                    errs.append(
                        {
                            "id": f"req_{i}",
                            "custom_id": cid,
                            "response": None,
                            "error": {"code": "batch_expired", "message": "not completed in time"},
                        }
                    )
                else:
                    errs.append(
                        {
                            "id": f"req_{i}",
                            "custom_id": cid,
                            "error": None,
                            "response": {
                                "status_code": 500,
                                "body": {"error": {"message": "server error", "code": "server_error"}},
                            },
                        }
                    )
            for rows, attr in ((out, "output_file_id"), (errs, "error_file_id")):
                if rows:
                    file_id = f"file-{len(self.files) + 1}"
                    self.files[file_id] = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
                    setattr(job, attr, file_id)
        errors = None
        if state == "failed":
            errors = {
                "object": "list",
                "data": [
                    {
                        "code": "invalid_request",
                        "message": "the input file failed validation",
                        "line": None,
                        "param": None,
                    }
                ],
            }
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": errors,
            "input_file_id": "file-in",
            "completion_window": "24h",
            "status": state,
            "output_file_id": job.output_file_id,
            "error_file_id": job.error_file_id,
            "created_at": 0,
            "request_counts": {"total": len(job.requests), "completed": len(ok), "failed": len(bad)},
            "metadata": {},
        }

    # -- Gemini ----------------------------------------------------------------------------------------
    def _create_gemini(self, model: str, req: dict[str, Any]) -> tuple[int, bytes, str]:
        try:
            inline = req["batch"]["inputConfig"]["requests"]["requests"]
            if not all("contents" in r["request"] for r in inline):
                raise KeyError("contents")
        except (KeyError, TypeError):
            return self._reject("batch.inputConfig.requests.requests[].request.contents is required")
        self.creations["gemini"] += 1
        job = Job(f"batches/job{len(self.jobs) + 1}", "gemini", self._scenario(), inline, model=model)
        self.jobs[job.id] = job
        return self._json(self._gemini_operation(job, "PENDING"))

    def _gemini_view(self, job: Job) -> dict[str, Any]:
        return self._gemini_operation(job, self._state(job, GEMINI_STATES[job.scenario], True))

    def _gemini_operation(self, job: Job, state: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "name": job.id,
            "displayName": "vdata gen",
            "model": job.model,
            "state": f"BATCH_STATE_{state}",
            "createTime": "2025-01-01T00:00:00Z",
        }
        op: dict[str, Any] = {"name": job.id, "metadata": meta}
        final = state in ("SUCCEEDED", "EXPIRED", "FAILED", "CANCELLED")
        if final:
            op["done"] = True
        if state in ("SUCCEEDED", "CANCELLED"):
            n = len(job.requests)
            answered = range(n // 2) if state == "CANCELLED" else range(n)
            responses = []
            for i in answered:
                item = job.requests[i]
                if job.scenario == "partial" and i % 3 == 2:
                    responses.append(
                        {"error": {"code": 13, "message": "internal error"}, "metadata": item.get("metadata")}
                    )
                    continue
                gen = StubServer._gemini_reply(item["request"], "ok")
                responses.append({"response": gen, "metadata": item.get("metadata")})
            meta["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
        if state == "FAILED":
            op["error"] = {"code": 3, "message": "the batch failed validation"}
        return op

    # -- lifecycle -------------------------------------------------------------------------------------
    def start_in_thread(self) -> BatchStub:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()

            async def start() -> None:
                self._server = await asyncio.start_server(self._connection, self.host, self.port)
                self.port = self._server.sockets[0].getsockname()[1]

            self._loop.run_until_complete(start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


def main() -> None:
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--scenarios", default="ok", help="cyclic, e.g. ok,partial,expired,failed,cancelled")
    ap.add_argument("--polls-per-state", type=int, default=1)
    args = ap.parse_args()
    server = BatchStub(BatchStubConfig(args.scenarios.split(","), args.polls_per_state))
    server.port = args.port
    server.start_in_thread()
    print(f"listening on {server.base_url} (OpenAI) and {server.gemini_url} (Gemini)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
