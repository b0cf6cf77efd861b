"""`local`: the embedded SmolLM2-135M-Instruct (or any HF causal LM / GGUF file), no key, no network.

Two backends:
* xllamacpp (when installed, for GGUF models such as the shipped SmolLM2): llama.cpp in-process with
  `n_parallel` slots, so concurrent requests are decoded in one continuous batch.
* transformers: requests are collected into batches of up to `batch_size`, left-padded, rendered with
  the tokenizer's chat template, and generated together.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.generate.providers.base import (
    Completion,
    Message,
    Provider,
    ProviderError,
    ProviderOptions,
    ProviderSpec,
    register_provider,
)

TOP_P = 0.95
CTX_PER_SLOT = 2048


def xllamacpp_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None


def gguf_for(model: str) -> Path | None:
    """The GGUF file behind a model name, if it has one."""
    from vdata.lm.models import SMOLLM2_ALIASES, smollm2_gguf_path  # here: `vdata serve` lists providers

    if model.lower() in SMOLLM2_ALIASES:
        return smollm2_gguf_path()
    if model.endswith(".gguf"):
        path = Path(model)
        if not path.is_file():
            raise UserError(f"GGUF model file {model} not found; give an existing .gguf path")
        return path
    return None


def choose_backend(model: str, backend: str) -> str:
    gguf = gguf_for(model)
    if backend == "xllamacpp":
        if not xllamacpp_available():
            raise UserError(
                "backend 'xllamacpp' is not installed; `pip install xllamacpp` or use backend 'auto'"
            )
        if gguf is None:
            raise UserError(
                f"backend 'xllamacpp' needs a GGUF model; {model!r} is not one (use 'transformers')"
            )
        return "xllamacpp"
    if backend == "auto" and gguf is not None and xllamacpp_available():
        return "xllamacpp"
    return "transformers"


def default_threads() -> int:
    """All usable cores (up to 8), but one when the machine is already overloaded: llama.cpp's threads
    meet at a barrier after every op, and when other processes keep descheduling them each barrier waits
    a scheduler slice, which is far slower than a single thread."""
    import os

    cores = max(1, min(len(os.sched_getaffinity(0)), 8))
    try:
        busy = os.getloadavg()[0] > len(os.sched_getaffinity(0)) + 0.5
    except OSError:
        busy = False
    return 1 if busy else cores


class LlamaCppProvider(Provider):
    """llama.cpp via xllamacpp's in-process server API; blocking calls run in worker threads."""

    name = "local"

    def __init__(self, model: str, parallel: int = 4, threads: int | None = None) -> None:
        super().__init__(model)

        import xllamacpp as xlc

        gguf = gguf_for(model)
        assert gguf is not None
        self.gguf = gguf
        params = xlc.CommonParams()
        params.model.path = str(gguf)
        params.n_parallel = max(1, parallel)
        params.n_ctx = CTX_PER_SLOT * params.n_parallel
        n_threads = threads or default_threads()
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = n_threads
            # No busy-polling between steps: on a shared machine spinning threads starve each other.
            cpu.poll = 0
        params.verbosity = -1  # llama.cpp logs are noise for `vdata gen` users
        params.warmup = False
        self.server = xlc.Server(params)
        self._slots = asyncio.Semaphore(params.n_parallel)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "backend": "xllamacpp", "gguf": self.gguf.name}

    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": TOP_P,
        }
        if seed is not None:
            body["seed"] = seed & 0xFFFFFFFF
        async with self._slots:
            try:
                resp = await asyncio.to_thread(self.server.handle_chat_completions, body)
            except ValueError as e:
                raise ProviderError(f"llama.cpp rejected the request: {e}", retryable=False) from None
        if not isinstance(resp, dict) or "choices" not in resp:
            msg = resp.get("error", resp) if isinstance(resp, dict) else resp
            raise ProviderError(f"llama.cpp error: {str(msg)[:300]}", retryable=False)
        usage = resp.get("usage") or {}
        choice = resp["choices"][0]
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=self.model,
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        self.server = None  # the server stops when collected


@dataclass
class _Job:
    messages: list[Message]
    temperature: float
    max_tokens: int
    seed: int | None
    future: asyncio.Future[Completion]


class TransformersProvider(Provider):
    """Batched generation with transformers: up to `batch_size` pending requests decode together."""

    name = "local"

    def __init__(self, model: str, batch_size: int = 8, loaded: Any = None) -> None:
        super().__init__(model)
        from vdata.lm.models import load_model

        self.lm = loaded or load_model(model)
        if self.lm.kind != "causal":
            raise UserError(f"model {model!r} is a masked LM; generation needs a causal (decoder) model")
        tok = self.lm.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.batch_size = batch_size
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "backend": "transformers"}

    def render(self, messages: list[Message]) -> str:
        tok = self.lm.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # Base models without a chat template: a plain transcript ending where the answer goes.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*lines, "Assistant:"])

    def generate_batch(
        self, messages: list[list[Message]], temperature: float, max_tokens: int, seed: int | None
    ) -> list[Completion]:
        """Generate replies for several conversations at once (left padding, one forward pass per step)."""
        import torch

        tok, model = self.lm.tokenizer, self.lm.model
        prompts = [self.render(m) for m in messages]
        with self._lock:
            tok.padding_side = "left"
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            if seed is not None:
                torch.manual_seed(seed)
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature, "top_p": TOP_P}
                if temperature > 0
                else {"do_sample": False}
            )
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_tokens,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                    **sampling,
                )
        new = out[:, enc["input_ids"].shape[1] :]
        results = []
        for i, row in enumerate(new):
            ids = row.tolist()
            n = len(ids)
            for j, t in enumerate(ids):
                if t == tok.eos_token_id or t == tok.pad_token_id:
                    n = j + 1 if t == tok.eos_token_id else j
                    break
            text = tok.decode(ids[:n], skip_special_tokens=True)
            results.append(
                Completion(
                    text=text.strip(),
                    prompt_tokens=int(enc["attention_mask"][i].sum()),
                    completion_tokens=n,
                    model=self.model,
                    finish_reason="stop" if n < len(ids) else "length",
                )
            )
        return results

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            # Let the engine's other tasks enqueue their requests before the batch closes.
            await asyncio.sleep(0)
            jobs = [first]
            while len(jobs) < self.batch_size and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            groups: dict[tuple[float, int], list[_Job]] = {}
            for job in jobs:
                groups.setdefault((job.temperature, job.max_tokens), []).append(job)
            for (temperature, max_tokens), group in groups.items():
                try:
                    outs = await asyncio.to_thread(
                        self.generate_batch,
                        [j.messages for j in group],
                        temperature,
                        max_tokens,
                        group[0].seed,
                    )
                except Exception as e:  # a failed batch fails its requests, not the run
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(
                                ProviderError(f"local generation failed: {e}", retryable=False)
                            )
                    continue
                for j, o in zip(group, outs, strict=True):
                    if not j.future.done():
                        j.future.set_result(o)

    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        fut: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(messages, temperature, max_tokens, seed, fut))
        return await fut

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
            self._queue = None


def _make(options: ProviderOptions, api_key: str | None) -> Provider:
    assert options.model is not None  # filled with the default model by the options
    if choose_backend(options.model, options.backend) == "xllamacpp":
        return LlamaCppProvider(options.model, parallel=min(options.concurrency, 8))
    return TransformersProvider(options.model, batch_size=options.batch_size)


register_provider(
    ProviderSpec(
        name="local",
        description="embedded SmolLM2-135M-Instruct (no key, no network), or any HF causal LM or .gguf file",
        default_model="smollm2-135m",
        factory=_make,
        needs_key=False,
        backends=("auto", "xllamacpp", "transformers"),
        backend_help="xllamacpp (fast, GGUF) when installed, else batched transformers",
        accepts_base_url=False,
        free=True,
        default_per_request=3,
        default_max_tokens=160,
    )
)
