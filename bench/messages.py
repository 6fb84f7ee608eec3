"""What the services process (bench/world.py) sends back to the pipeline's process (bench/services.py).

Plain data only: both processes import this module, so it imports neither the fakes nor moto.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Traffic:
    """Requests the fakes received since the last look, per endpoint, and how many Trakt refused with 429."""

    by_endpoint: dict[str, int]
    throttled: int
    server_errors: int


@dataclass(frozen=True)
class NewView:
    item_id: int
    season: int
    episode: int
    at: int


@dataclass(frozen=True)
class StateSnapshot:
    """What the stored state says before a run: enough to know which rows and views it must read."""

    watermark: datetime | None
    last_full_scan: datetime | None
    ledger_keys: frozenset[str]
    refresh_due: dict[str, bool]  # per service: the access token expires within its refresh margin


@dataclass(frozen=True)
class ReplayCall:
    """One request the pipeline sent, as the bare-HTTP baseline sends it again (the same method, URL, query,
    headers and body); the services process answers it with the answer recorded for it."""

    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 200  # the answer the pipeline got: the baseline must get the same one back


__all__ = ["NewView", "ReplayCall", "StateSnapshot", "Traffic"]
