"""Per-key rate limits: a token bucket per API key, in this process.

Each key's bucket holds up to ``burst`` requests and refills at ``rate`` a second; a request finding it
empty is refused with the seconds until the next token (``Retry-After``). In-process rather than
flask-limiter: the buckets are keyed by a key id known only after the key is checked, a refusal needs
the exact wait, and a shared store (Redis) would be a new server to run for a soft limit. The cost:
with N gunicorn workers a key may reach N × ``rate``. Only known keys get a bucket, so their number
is bounded by WCML_API_KEYS.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests a second per key, bursts of up to ``burst``; a rate of 0 is no limit."""

    rate: float = 0.0
    burst: int = 1

    @property
    def limited(self) -> bool:
        return self.rate > 0


class TokenBuckets:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self.limit, self._clock = limit, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> int:
        """0 when ``key_id`` may go on (a token is taken), else the whole seconds until it may."""
        if not self.limit.limited:
            return 0
        burst = max(1, self.limit.burst)
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * self.limit.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.limit.rate))
