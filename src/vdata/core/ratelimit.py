"""Token buckets: the one rate limiter of vdata.

`TokenBucket` is the arithmetic (refill at `rate` per second up to `capacity`); `take` answers how long
to wait without waiting, so the same bucket serves the generation engine (`acquire`, async, waits) and
the server (`KeyedTokenBuckets`, one bucket per client address, answers 429 with Retry-After).
Rate limiting is about staying under quotas; it is separate from cost accounting.
"""

from __future__ import annotations

import asyncio
import threading
import time


class TokenBucket:
    """Holds up to `capacity` tokens, refilled at `rate_per_s`; `acquire(n)` waits until n are there.

    A request larger than the capacity is let through once the bucket is full (it could never fit),
    so a single oversized request cannot deadlock the run.
    """

    def __init__(self, rate_per_s: float, capacity: float | None = None, *, now: float | None = None) -> None:
        self.rate = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s * 60)
        self.tokens = self.capacity
        self.stamp = time.monotonic() if now is None else now
        self._lock: asyncio.Lock | None = None

    @classmethod
    def per_minute(cls, amount: float) -> TokenBucket:
        # A one-minute burst would let a fresh run fire a whole minute's quota at once; providers also
        # measure over shorter windows, so the burst is one second's worth.
        return cls(amount / 60.0, capacity=max(1.0, amount / 60.0))

    def _refill(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, n: float = 1.0, now: float | None = None) -> float:
        """Seconds until `n` tokens are there (0 if they are now); takes nothing."""
        self._refill(now)
        need = min(n, self.capacity)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, n: float = 1.0, now: float | None = None) -> float:
        """Take `n` tokens if they are there and return 0; else take nothing and return the wait in seconds."""
        wait = self.wait(n, now)
        if wait == 0:
            self.tokens -= n  # may go negative for oversized requests: later ones wait longer
        return wait

    async def acquire(self, n: float = 1.0) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while (wait := self.take(n)) > 0:
                await asyncio.sleep(wait)

    def refund(self, n: float) -> None:
        """Give back tokens reserved but not used (e.g. max_tokens reserved, fewer generated)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens + n)


class KeyedTokenBuckets:
    """One `TokenBucket` per key (e.g. client address), thread-safe; idle keys are forgotten."""

    MAX_KEYS = 100_000

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:  # forget clients idle for a minute
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < 60}
            bucket = self._buckets[key] = TokenBucket(self.rate, float(self.burst), now=now)
        return bucket

    def take(self, key: str, n: float = 1.0) -> float:
        """0 if the request may go ahead (and it is counted), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            return self._bucket(key, now).take(n, now)

    def wait(self, key: str, n: float = 1.0) -> float:
        """Seconds until `key` may go ahead, counting nothing (e.g. check first, count only failures)."""
        now = time.monotonic()
        with self._lock:
            return self._bucket(key, now).wait(n, now)
