"""A virtual clock for tests, the sandbox, the chaos suite and the benchmark: Trakt's rate limits are
simulated on it, never slept through."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class VirtualClock:
    """A clock whose ``sleep`` only moves time forward: pacing is simulated, never waited for."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def time(self) -> float:
        """Epoch seconds, for fakes that timestamp requests with this clock."""
        return self.now().timestamp()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._elapsed += seconds
                self.slept += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._elapsed += seconds
