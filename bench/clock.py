"""A virtual clock two processes share: the pipeline's process sleeps on it, the fakes' process reads it.

The fakes run in their own process (so the pipeline's CPU and memory are measured alone), yet Trakt's
rate limits must be checked on the same time line the client paces itself by. Time is a count of whole
microseconds in shared memory: sums of float seconds would drift, and a write spaced by exactly one
second must not look 0.9999999 s apart to the fake's limiter. A sleep rounds up to the next microsecond,
so pacing never lands early.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from typing import Any

MICROS = 1_000_000

SharedMicros = Synchronized  # multiprocessing.Value("q", 0): elapsed microseconds


def shared_micros(context: Any) -> SharedMicros[int]:
    """A fresh shared counter from a multiprocessing context (``spawn``)."""
    value: SharedMicros[int] = context.Value("q", 0)
    return value


class SharedClock:
    """:class:`kinotrakt.clock.Clock` on shared memory; ``slept`` is the time spent in pacing waits."""

    def __init__(self, micros: SharedMicros[int], start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._micros = micros
        self._raw = micros.get_obj()
        self._start = start.astimezone(UTC)
        self.slept = 0.0

    @property
    def start(self) -> datetime:
        return self._start

    def _elapsed_micros(self) -> int:
        # Read without the lock (an aligned 64-bit load is atomic): the pipeline reads the clock some 25,000
        # times in a large backfill, and a lock round trip each time is the bench's CPU, not the pipeline's.
        return int(self._raw.value)

    def now(self) -> datetime:
        return self._start + timedelta(microseconds=self._elapsed_micros())

    def monotonic(self) -> float:
        return self._elapsed_micros() / MICROS

    def time(self) -> float:
        """Epoch seconds (the fakes' ``clock=``)."""
        return self._start.timestamp() + self._elapsed_micros() / MICROS

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        step = math.ceil(seconds * MICROS)
        with self._micros.get_lock():
            self._micros.value += step

    def advance_to(self, moment: datetime) -> None:
        """Jump forward to ``moment`` (never back)."""
        gap = (moment - self.now()).total_seconds()
        if gap > 0:
            self.advance(gap)


def epoch_reader(micros: SharedMicros[int], start_epoch: float) -> Any:
    """The fakes' clock in their own process: epoch seconds on the shared time line."""

    def read() -> float:
        return start_epoch + micros.value / MICROS

    return read
