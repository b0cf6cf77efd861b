"""The gate's checks, registered by name: each is a small function over a batch of records.

A check gets the records still in the running (earlier checks have dropped the others) and a
`CheckContext`, and returns one `CheckResult` per record. Built-in checks live one family per module in
`vdata.generate.verify.checks` (form, model judge, LLM judge); your own register the same way:

    from vdata.generate.verify import CheckResult, record_check

    @record_check("no_digits", family="form", description="no digits in the sentence")
    def no_digits(record, ctx):
        found = [c for c in record.text if c.isdigit()]
        return CheckResult(value="".join(found) or None, passed=not found, reason="has digits")

and then name it in `verify_options.checks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vdata.core.records import Record
from vdata.core.registry import Registry

if TYPE_CHECKING:
    from vdata.generate.verify.judge import ModelJudge
    from vdata.generate.verify.settings import VerifySettings

Family = Literal["form", "model", "llm"]
# The LLM judge's callback: one chat (a list of {"role", "content"} messages) per record in, the
# reply text (None when the request failed) per record out, in order.
LlmAsk = Callable[[Sequence[list[dict[str, str]]]], list[str | None]]


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one record: what it measured (`value`, JSON-serialisable), whether the
    record passes, and when it does not, a short reason (kept with the rejected record)."""

    value: Any
    passed: bool
    reason: str = ""


@dataclass
class CheckContext:
    """What checks may use besides the records: the settings, the judge model (loaded on first use)
    and, for the LLM judge, a way to ask the generating provider."""

    settings: VerifySettings
    judge_loader: Callable[[], ModelJudge]
    ask: LlmAsk | None = None
    _judge: ModelJudge | None = field(default=None, repr=False)
    # Seconds spent loading the judge (once per process), kept apart from the time spent judging.
    load_seconds: float = 0.0

    @property
    def judge(self) -> ModelJudge:
        if self._judge is None:
            started = time.monotonic()
            self._judge = self.judge_loader()
            self.load_seconds += time.monotonic() - started
        return self._judge


CheckFunction = Callable[[Sequence[Record], CheckContext], list[CheckResult]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    run: CheckFunction
    family: Family
    description: str
    # Checks on when `verify_options.checks` is not given (the LLM judge is switched on by `llm_judge`).
    default: bool = True
    # Default order within the family: cheap, decisive checks first (the first failure is the reason).
    order: int = 100


CHECKS: Registry[CheckSpec] = Registry("verify check", "vdata.generate.verify.checks")


def register_check(
    name: str, *, family: Family, description: str, default: bool = True, order: int = 100
) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator: register a batch check `fn(records, ctx) -> [CheckResult per record]` under `name`."""

    def wrap(fn: CheckFunction) -> CheckFunction:
        CHECKS.add(name, CheckSpec(name, fn, family, description, default, order))
        return fn

    return wrap


def record_check(
    name: str, *, family: Family = "form", description: str, default: bool = True, order: int = 100
) -> Callable[[Callable[[Record, CheckContext], CheckResult]], Callable[[Record, CheckContext], CheckResult]]:
    """Decorator: register a check written for one record `fn(record, ctx) -> CheckResult`."""

    def wrap(
        fn: Callable[[Record, CheckContext], CheckResult],
    ) -> Callable[[Record, CheckContext], CheckResult]:
        def batch(records: Sequence[Record], ctx: CheckContext) -> list[CheckResult]:
            return [fn(r, ctx) for r in records]

        CHECKS.add(name, CheckSpec(name, batch, family, description, default, order))
        return fn

    return wrap
