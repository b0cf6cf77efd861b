"""OpenAI's Batch API: the requests as a JSONL file (purpose `batch`), one job per file with a 24 h
completion window, then the output and error files, matched to requests by `custom_id`.

Limits per job (OpenAI's): 50,000 requests and 200 MB of input. The job statuses are validating,
in_progress, finalizing, completed, failed, expired, cancelling and cancelled; an expired or cancelled job
still returns what it finished, the rest appear in the error file (or not at all) and are retried.
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
    json_error_label,
    register_batch,
)
from vdata.generate.providers.base import ProviderError, ProviderOptions, redact
from vdata.generate.providers.openai_provider import RETRYABLE_STATUS, parse_chat_completion

ENDPOINT = "/v1/chat/completions"
FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")


def retryable_status(status: int | None) -> bool:
    return status is None or status in RETRYABLE_STATUS or status >= 500


class OpenAIBatch(BatchClient):
    def __init__(self, model: str, api_key: str, base_url: str | None, timeout_s: float) -> None:
        import openai

        self._openai = openai
        self.model = model
        self._key = api_key
        # The job-management calls are few: the SDK's own retries (with backoff) are enough for them.
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=5)

    def encode(self, item: BatchItem) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": item.messages,
            "temperature": item.temperature,
            "max_tokens": item.max_tokens,
        }
        if item.seed is not None:
            body["seed"] = item.seed
        line = {"custom_id": item.key, "method": "POST", "url": ENDPOINT, "body": body}
        return json.dumps(line, ensure_ascii=False).encode()

    async def _call(self, what: str, coro: Any) -> Any:
        oa = self._openai
        try:
            return await coro
        except oa.APIStatusError as e:
            raise ProviderError(
                redact(f"{what}: HTTP {e.status_code}: {str(e.message)[:300]}", self._key),
                retryable=retryable_status(e.status_code),
                status=e.status_code,
            ) from None
        except oa.APIConnectionError as e:  # includes timeouts
            raise ProviderError(
                redact(f"{what}: connection failed: {e}", self._key), retryable=True
            ) from None

    async def submit(self, items: list[BatchItem], encoded: list[bytes]) -> str:
        data = b"".join(line + b"\n" for line in encoded)
        upload = await self._call(
            "uploading the batch file",
            self.client.files.create(
                file=("vdata-gen-batch.jsonl", data, "application/jsonl"), purpose="batch"
            ),
        )
        job = await self._call(
            "creating the batch",
            self.client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"created_by": "vdata gen", "requests": str(len(items))},
            ),
        )
        return str(job.id)

    async def poll(self, job_id: str) -> JobStatus:
        job = await self._call(f"checking batch {job_id}", self.client.batches.retrieve(job_id))
        counts = job.request_counts
        message = ""
        if job.errors is not None and job.errors.data:
            message = "; ".join(f"{e.code}: {e.message}" for e in job.errors.data[:3])
        return JobStatus(
            state=str(job.status),
            done=job.status in FINAL_STATUSES,
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            total=counts.total if counts else 0,
            message=message,
        )

    async def results(self, job_id: str) -> list[ItemResult]:
        job = await self._call(f"checking batch {job_id}", self.client.batches.retrieve(job_id))
        out: list[ItemResult] = []
        for file_id in (job.output_file_id, job.error_file_id):
            if not file_id:
                continue
            content = await self._call(f"downloading {file_id}", self.client.files.content(file_id))
            for line in content.content.splitlines():
                if line.strip():
                    out.append(self._result(json.loads(line)))
        return out

    def _result(self, line: dict[str, Any]) -> ItemResult:
        key = str(line.get("custom_id"))
        response = line.get("response") or {}
        status = response.get("status_code")
        if line.get("error") or status != 200:
            if status is not None and status != 200:
                body = response.get("body") or {}
                err = body.get("error") if isinstance(body, dict) else None
                label = f"HTTP {status}" + (f" {json_error_label(err)}" if err else "")
                return ItemResult(key, None, label, retryable_status(status))
            return ItemResult(key, None, json_error_label(line.get("error")), True)
        try:
            completion = parse_chat_completion(json.dumps(response.get("body")).encode(), self.model)
        except ProviderError as e:
            return ItemResult(key, None, str(e).split(":")[0], True)
        return ItemResult(key, completion)

    async def aclose(self) -> None:
        await self.client.close()


def _make(options: ProviderOptions, api_key: str | None) -> BatchClient:
    assert options.model is not None
    return OpenAIBatch(options.model, api_key or "", options.base_url, options.timeout_s)


register_batch(
    BatchSpec(
        provider="openai",
        factory=_make,
        max_requests_per_job=50_000,
        max_bytes_per_job=200 * 1024 * 1024,
        description="OpenAI Batch API (JSONL file, 24 h window)",
    )
)
