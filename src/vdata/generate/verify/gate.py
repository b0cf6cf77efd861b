"""`verify_records`: the gate itself, running the enabled checks in order over groups of records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.records import Record
from vdata.generate.verify.registry import CHECKS, CheckContext, CheckSpec, LlmAsk
from vdata.generate.verify.settings import VerifySettings

# The judge (and the model API under it) loads only when a gate runs: `vdata serve` imports neither.
if TYPE_CHECKING:
    from vdata.generate.verify.judge import ModelJudge


@dataclass(frozen=True)
class Rejected:
    """A dropped candidate: the record (with the checks it went through) and the check that failed."""

    record: Record
    check: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "rejected": {"check": self.check, "reason": self.reason}}


@dataclass
class VerifyResult:
    kept: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Drops per failing check name.
    reasons: Counter[str] = field(default_factory=Counter)
    # Time spent checking, and (apart) loading the judge model the first time it was needed.
    seconds: float = 0.0
    load_seconds: float = 0.0


def check_entry(name: str, value: Any, passed: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "pass": passed}


def enabled_checks(settings: VerifySettings) -> list[CheckSpec]:
    """The checks to run, in order: `settings.checks`, else every default check (form, then the model
    judge), plus the LLM judge when `llm_judge` is on. An unknown name is a UserError listing the known."""
    if settings.checks is not None:
        specs = [CHECKS.get(name) for name in settings.checks]
    else:
        order = {"form": 0, "model": 1, "llm": 2}
        specs = sorted(
            (spec for _, spec in CHECKS.entries() if spec.default),
            key=lambda s: (order[s.family], s.order, s.name),
        )
    if settings.llm_judge and all(s.name != "llm_judge" for s in specs):
        specs.append(CHECKS.get("llm_judge"))
    return specs


def verify_records(
    records: Sequence[Record],
    settings: VerifySettings | None = None,
    progress: ProgressFactory = no_progress,
    judge: ModelJudge | str | None = None,
    ask: LlmAsk | None = None,
) -> VerifyResult:
    """Run the gate: every enabled check (`enabled_checks`) in order, on groups of
    `settings.batch_size` records; a record failing a check is rejected with that check's reason and
    later checks do not see it. Kept records carry `checks` ([{name, value, pass}, ...], in order).

    `judge` is the model judge (a loaded `ModelJudge`, or a model name; default the embedded model),
    loaded only if a check uses it; `ask` lets the LLM judge ask the provider."""
    settings = settings or VerifySettings()
    specs = enabled_checks(settings)

    def load() -> ModelJudge:
        from vdata.generate.verify.judge import ModelJudge, load_judge
        from vdata.lm.models import DEFAULT_MODEL

        return judge if isinstance(judge, ModelJudge) else load_judge(judge or DEFAULT_MODEL)

    ctx = CheckContext(settings=settings, judge_loader=load, ask=ask)
    result = VerifyResult()
    started = time.monotonic()
    with progress("verify", len(records), "rec") as task:
        for start in range(0, len(records), settings.batch_size):
            group = records[start : start + settings.batch_size]
            checks: list[list[dict[str, Any]]] = [list(r.checks or []) for r in group]
            alive = list(range(len(group)))
            for spec in specs:
                if not alive:
                    break
                verdicts = spec.run([group[i] for i in alive], ctx)
                if len(verdicts) != len(alive):
                    raise RuntimeError(
                        f"check {spec.name!r} returned {len(verdicts)} results for {len(alive)} records"
                    )
                still = []
                for i, verdict in zip(alive, verdicts, strict=True):
                    checks[i].append(check_entry(spec.name, verdict.value, verdict.passed))
                    if verdict.passed:
                        still.append(i)
                    else:
                        result.rejected.append(
                            Rejected(
                                group[i].model_copy(update={"checks": checks[i]}), spec.name, verdict.reason
                            )
                        )
                        result.reasons[spec.name] += 1
                alive = still
            result.kept.extend(group[i].model_copy(update={"checks": checks[i]}) for i in alive)
            task.advance(len(group))
    result.load_seconds = ctx.load_seconds
    result.seconds = time.monotonic() - started - ctx.load_seconds
    return result
