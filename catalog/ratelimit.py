"""A thread-safe client-side request-rate limiter for --tps."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Spaces calls evenly so that at most `rate` start per second (None: unlimited)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the caller may send its next request."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)
