"""The optional LLM judge: the generating provider, asked with a short rubric (`prompts/verify_judge.yaml`)
whether the sentence counters a common stereotype about its group term. Its answer is stored as the
check's value; a reply starting with "yes" passes, one that does not fails, and a request that failed
after its retries leaves the record unjudged (it passes, with value null)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from vdata.core.errors import UserError
from vdata.core.records import Record
from vdata.generate.templates import builtin_data
from vdata.generate.verify.registry import CheckContext, CheckResult, register_check

NAME = "llm_judge"
MAX_STORED_CHARS = 300
_YES = re.compile(r"^\W*yes\b", re.IGNORECASE)


@cache
def rubric() -> dict[str, Any]:
    return builtin_data("verify_judge")


def judge_messages(record: Record) -> list[dict[str, str]]:
    r = rubric()
    slots = {"term": record.target, "attribute": record.attribute, "sentence": record.text}
    return [
        {"role": "system", "content": r["system"]},
        {"role": "user", "content": r["user"].format(**slots)},
    ]


@register_check(
    NAME,
    family="llm",
    description="the generating provider, asked with a rubric, says the sentence counters a stereotype",
    default=False,
)
def llm_judge(records: Sequence[Record], ctx: CheckContext) -> list[CheckResult]:
    if ctx.ask is None:
        raise UserError(
            "the llm_judge check needs a provider to ask: it runs inside `vdata gen` (verify_options.llm_judge)"
        )
    replies = ctx.ask([judge_messages(r) for r in records])
    results = []
    for reply in replies:
        if reply is None:
            results.append(CheckResult(value=None, passed=True))
            continue
        answer = " ".join(reply.split())[:MAX_STORED_CHARS]
        results.append(
            CheckResult(value=answer, passed=bool(_YES.match(answer)), reason="the LLM judge said no")
        )
    return results
