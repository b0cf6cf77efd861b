"""Gemini's batch mode (Gemini Developer API), through the google-genai SDK: `batches.create` with the
requests inline (each with metadata {"key": ...} that the answers echo), `batches.get` until the job's
state is final, then the inline responses (or the responses file, for jobs that return one).

States (as the SDK names them): JOB_STATE_PENDING, JOB_STATE_RUNNING, then JOB_STATE_SUCCEEDED,
JOB_STATE_FAILED, JOB_STATE_CANCELLED or JOB_STATE_EXPIRED (not finished within 48 h). Inline requests
may total 20 MB per job, so larger runs are split into several jobs.
"""

from __future__ import annotations

import json
from typing import Any

from vdata.generate.batch.base import (
    BatchClient,
    BatchItem,
    BatchSpec,
    ItemResult,
    JobStatus,
    register_batch,
)
from vdata.generate.providers.base import Completion, ProviderError, ProviderOptions, redact

FINAL_STATES = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
# google.rpc codes (and their HTTP equivalents) that asking again will not fix.
_PERMANENT_CODES = (3, 7, 16, 400, 401, 403)


def _wire_request(item: BatchItem) -> dict[str, Any]:
    """The request as the API receives it (camelCase), which is also what a responses file echoes."""
    system = "\n\n".join(m["content"] for m in item.messages if m["role"] == "system")
    request: dict[str, Any] = {
        "contents": [
            {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
            for m in item.messages
            if m["role"] != "system"
        ],
        "generationConfig": {"temperature": item.temperature, "maxOutputTokens": item.max_tokens},
    }
    if item.seed is not None:
        request["generationConfig"]["seed"] = item.seed
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    return request


class GeminiBatch(BatchClient):
    def __init__(self, model: str, api_key: str, base_url: str | None, timeout_s: float) -> None:
        from google import genai
        from google.genai import types

        self._types = types
        self.model = model
        self._key = api_key
        self.client = genai.Client(
            api_key=api_key, http_options=types.HttpOptions(timeout=int(timeout_s * 1000), base_url=base_url)
        )

    def encode(self, item: BatchItem) -> bytes:
        line = {"request": _wire_request(item), "metadata": {"key": item.key}}
        return json.dumps(line, ensure_ascii=False).encode()

    async def _call(self, what: str, coro: Any) -> Any:
        from google.genai import errors

        try:
            return await coro
        except errors.APIError as e:
            status = int(e.code) if e.code else None
            raise ProviderError(
                redact(f"{what}: Gemini error {status}: {str(e)[:300]}", self._key),
                retryable=status is None or status in (408, 429) or status >= 500,
                status=status,
            ) from None
        except Exception as e:  # httpx transport errors and timeouts surface unwrapped
            if type(e).__module__.startswith("httpx") or isinstance(e, TimeoutError):
                raise ProviderError(
                    redact(f"{what}: connection failed: {e}", self._key), retryable=True
                ) from None
            raise

    async def submit(self, items: list[BatchItem], encoded: list[bytes]) -> str:
        types = self._types
        requests = []
        for item in items:
            system = "\n\n".join(m["content"] for m in item.messages if m["role"] == "system") or None
            requests.append(
                types.InlinedRequest(
                    contents=[
                        types.Content(
                            role="model" if m["role"] == "assistant" else "user",
                            parts=[types.Part(text=m["content"])],
                        )
                        for m in item.messages
                        if m["role"] != "system"
                    ],
                    config=types.GenerateContentConfig(
                        system_instruction=system,
                        temperature=item.temperature,
                        max_output_tokens=item.max_tokens,
                        seed=item.seed,
                    ),
                    metadata={"key": item.key},
                )
            )
        job = await self._call(
            "creating the batch",
            self.client.aio.batches.create(
                model=self.model, src=requests, config=types.CreateBatchJobConfig(display_name="vdata gen")
            ),
        )
        return str(job.name)

    async def _job(self, job_id: str) -> Any:
        return await self._call(f"checking batch {job_id}", self.client.aio.batches.get(name=job_id))

    async def poll(self, job_id: str) -> JobStatus:
        job = await self._job(job_id)
        state = job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED"
        answered = len(job.dest.inlined_responses or []) if job.dest else 0
        message = f"{job.error.code}: {job.error.message}" if job.error else ""
        return JobStatus(state=state, done=state in FINAL_STATES, completed=answered, message=message)

    async def results(self, job_id: str) -> list[ItemResult]:
        job = await self._job(job_id)
        dest = job.dest
        if dest is None:
            return []
        out = []
        for answer in dest.inlined_responses or []:
            key = (answer.metadata or {}).get("key", "")
            if answer.error is not None:
                code = answer.error.code
                out.append(ItemResult(key, None, f"Gemini error {code}", code not in _PERMANENT_CODES))
            elif answer.response is not None:
                out.append(self._from_response(key, answer.response))
        if dest.file_name:
            data = await self._call(
                f"downloading {dest.file_name}", self.client.aio.files.download(file=dest.file_name)
            )
            types = self._types
            for line in data.splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                key = str(row.get("key") or (row.get("metadata") or {}).get("key", ""))
                if row.get("error"):
                    code = row["error"].get("code")
                    out.append(ItemResult(key, None, f"Gemini error {code}", code not in _PERMANENT_CODES))
                else:
                    response = types.GenerateContentResponse._from_response(
                        response=row["response"], kwargs={}
                    )
                    out.append(self._from_response(key, response))
        return out

    def _from_response(self, key: str, response: Any) -> ItemResult:
        text = response.text
        if text is None:
            reason = response.candidates[0].finish_reason if response.candidates else "no candidates"
            return ItemResult(key, None, f"empty response ({reason})", False)
        usage = response.usage_metadata
        return ItemResult(
            key,
            Completion(
                text=text,
                prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
                completion_tokens=(usage.candidates_token_count or 0) if usage else 0,
                model=self.model,
            ),
        )


def _make(options: ProviderOptions, api_key: str | None) -> BatchClient:
    assert options.model is not None
    return GeminiBatch(options.model, api_key or "", options.base_url, options.timeout_s)


register_batch(
    BatchSpec(
        provider="gemini",
        factory=_make,
        max_requests_per_job=50_000,
        max_bytes_per_job=20 * 1024 * 1024,
        description="Gemini batch mode (inline requests, 20 MB per job)",
    )
)
