"""The audit's hygiene checks. They live in `vdata.core.hygiene`, because the server flags pending
contributions with the same code (the server may import core, never the audit stage)."""

from __future__ import annotations

from vdata.core.hygiene import (
    BenchmarkIndex,
    RefusalMatcher,
    guess_language,
    language_flag,
    load_benchmark_index,
    malformed_reason,
    non_latin_share,
)
from vdata.core.minhash import HashSet64, NearDuplicateIndex

__all__ = [
    "BenchmarkIndex",
    "HashSet64",
    "NearDuplicateIndex",
    "RefusalMatcher",
    "guess_language",
    "language_flag",
    "load_benchmark_index",
    "malformed_reason",
    "non_latin_share",
]
