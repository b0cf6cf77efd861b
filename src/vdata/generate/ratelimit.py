"""Token buckets for requests/minute and tokens/minute, and retry delays (exponential backoff + jitter).

Rate limiting is about staying under the provider's quotas; it is separate from cost accounting.
"""

from __future__ import annotations

import asyncio
import random
import time


class TokenBucket:
    """Holds up to `capacity` tokens, refilled at `rate` per second; `acquire(n)` waits until n are there.

    A request larger than the capacity is let through once the bucket is full (it could never fit),
    so a single oversized request cannot deadlock the run.
    """

    def __init__(self, rate_per_s: float, capacity: float | None = None) -> None:
        self.rate = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s * 60)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    @classmethod
    def per_minute(cls, amount: float) -> TokenBucket:
        # A one-minute burst would let a fresh run fire a whole minute's quota at once; providers also
        # measure over shorter windows, so the burst is one second's worth.
        return cls(amount / 60.0, capacity=max(1.0, amount / 60.0))

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, n: float = 1.0) -> None:
        async with self._lock:
            need = min(n, self.capacity)
            while True:
                self._refill()
                if self.tokens >= need:
                    self.tokens -= n  # may go negative for oversized requests: later ones wait longer
                    return
                await asyncio.sleep((need - self.tokens) / self.rate)

    def refund(self, n: float) -> None:
        """Give back tokens reserved but not used (e.g. max_tokens reserved, fewer generated)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens + n)


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    base: float = 0.5,
    cap: float = 60.0,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry `attempt` (0-based): full-jitter exponential backoff, at least Retry-After."""
    r = rng or random
    delay = r.uniform(0, min(cap, base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, min(retry_after, 600.0))
    return delay
