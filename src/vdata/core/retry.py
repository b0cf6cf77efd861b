"""Retry timing shared by every client in vdata (generation providers, `vdata push`/`pull`).

Full-jitter exponential backoff (AWS's recommendation: spreads retries of many clients apart), never
shorter than the server's Retry-After (delta-seconds or HTTP-date).
"""

from __future__ import annotations

import email.utils
import random
import time


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    base: float = 0.5,
    cap: float = 60.0,
    rng: random.Random | None = None,
    max_retry_after: float = 600.0,
) -> float:
    """Delay before retry `attempt` (0-based): full-jitter exponential backoff, at least Retry-After."""
    r = rng or random
    delay = r.uniform(0, min(cap, base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after))
    return delay
