"""The one place that knows time: UTC datetimes, sleeping, and the Lambda deadline.

Everything that waits or reads the time takes a :class:`Clock`, so tests and the benchmark can run
Trakt's rate limits on a virtual clock instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso(value: str) -> datetime:
    """Parse Trakt/ISO 8601 timestamps (``...Z`` or with offset) into aware UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


# isoformat, cut, rather than strftime: the same text at half the cost; and remembered, as a backfill formats
# every view's time several times (its dedupe key, its ledger entry, its play, the report). Equal datetimes are
# the same instant whatever their zone, so they share one text.
@lru_cache(maxsize=65_536)
def iso_z(value: datetime) -> str:
    """ISO 8601 UTC with ``Z`` and milliseconds, the form Trakt uses."""
    return _utc(value).isoformat(timespec="milliseconds")[:23] + "Z"


@lru_cache(maxsize=65_536)
def minute_z(value: datetime) -> str:
    """Truncated to the minute: Trakt stores ``watched_at`` to the minute (docs/trakt.md#history, 2026)."""
    return _utc(value).isoformat(timespec="minutes")[:16] + "Z"


class Deadline:
    """The Lambda's remaining time, measured on the injected clock.

    ``margin`` is DEADLINE_MARGIN_SECONDS: no new work starts when less than that is left.
    """

    def __init__(self, clock: Clock, remaining_seconds: float | None, margin: float) -> None:
        self._clock = clock
        self._ends_at = None if remaining_seconds is None else clock.monotonic() + remaining_seconds
        self.margin = margin

    def remaining(self) -> float:
        """Seconds of usable budget left (after the margin); ``inf`` without a deadline."""
        if self._ends_at is None:
            return float("inf")
        return self._ends_at - self._clock.monotonic() - self.margin

    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows_wait(self, seconds: float) -> bool:
        return seconds < self.remaining()
