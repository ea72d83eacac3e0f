"""A thread-safe client-side request-rate limiter for --tps, which eases off when throttled."""

from __future__ import annotations

import threading
import time

# After a throttling answer the rate drops to this share of what it was ...
BACKOFF_FACTOR = 0.9
# ... never below this share of the configured rate, and climbs back by this share per second.
FLOOR_SHARE = 0.5
RECOVERY_SHARE_PER_S = 0.02


class RateLimiter:
    """Spaces calls evenly so that at most `rate` start per second (None: unlimited).

    Sending at exactly the service's quota still draws the odd throttling answer (requests
    leave a client unevenly), so `throttled()` lowers the pace a little and it recovers over
    the following seconds: a gentler version of botocore's adaptive mode, whose own limiter
    was measured to halve throughput after a few throttles at a 50 requests/s quota.
    """

    def __init__(self, rate: float | None) -> None:
        self.target = float(rate) if rate and rate > 0 else 0.0
        self.rate = self.target
        self._next = time.monotonic()
        self._updated = self._next
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the caller may send its next request."""
        if not self.target:
            return
        with self._lock:
            now = time.monotonic()
            self._recover(now)
            start = max(self._next, now)
            self._next = start + 1.0 / self.rate
        delay = start - now
        if delay > 0:
            time.sleep(delay)

    def throttled(self) -> None:
        """The service said 'slow down': lower the pace for a while."""
        if not self.target:
            return
        with self._lock:
            self._recover(time.monotonic())
            self.rate = max(self.target * FLOOR_SHARE, self.rate * BACKOFF_FACTOR)

    def _recover(self, now: float) -> None:
        elapsed = now - self._updated
        self._updated = now
        if self.rate < self.target:
            self.rate = min(self.target, self.rate + self.target * RECOVERY_SHARE_PER_S * elapsed)
