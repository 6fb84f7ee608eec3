"""The storage interfaces the domain talks to. Nothing above this package touches boto3.

Two adapters implement each port: AWS (``dynamo.py``, ``secrets.py``) and in-memory (``memory.py``, for
unit tests). ``tests/unit/test_storage_contract.py`` runs the same contract against both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

# --- tokens (Secrets Manager) ------------------------------------------------------------------------------


class ServiceSecret(BaseModel):
    """The DESIGN §2 secret JSON. Secret fields are ``SecretStr`` so a repr, a log line or a traceback
    shows ``**********`` rather than the value; unknown fields are kept as they are."""

    model_config = ConfigDict(extra="allow")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    expires_at: int | None = None
    issued_at: int | None = None
    setup_key: SecretStr | None = None

    def to_json(self) -> str:
        """The secret's stored form, with the real values (only ever sent to Secrets Manager)."""
        data = self.model_dump(mode="python")
        for key, value in data.items():
            if isinstance(value, SecretStr):
                data[key] = value.get_secret_value()
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | None) -> ServiceSecret:
        return cls.model_validate_json(raw) if raw else cls()


@dataclass(frozen=True)
class StoredSecret:
    secret: ServiceSecret
    version: str | None  # the version we read; a write with a stale version is refused


class TokenStore(Protocol):
    """One service's secret. The sync's refresher is its single writer during a run."""

    def load(self) -> StoredSecret: ...

    def save(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        """Write a new version. Raises ``ConcurrentTokenWrite`` when the current version is no longer
        ``expected_version`` (someone else wrote it since we read it)."""
        ...


# --- state (DynamoDB) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    watermark: datetime | None = None  # last_success_at
    last_full_scan: datetime | None = None
    # Trakt /sync/last_activities as last seen together with a complete remote index.
    last_activities: Mapping[str, Any] | None = None
    # A full scan that did not fit in one run: the Kinopub items it has already finished, so the next run
    # continues where it stopped instead of starting over (and never getting past the same point).
    scan_done: frozenset[int] = frozenset()
    # Kinopub items pinned since the last run: the next run reads them whatever their history rows say.
    reread: frozenset[int] = frozenset()


@dataclass(frozen=True)
class LedgerEntry:
    """One play this deployment sent and Trakt accepted (DESIGN §3.6: a key in the ledger is never re-sent).

    ``view_ref`` names the Kinopub view (``movie:{item}`` or ``episode:{item}:{media}``) and
    ``watched_at`` is the value sent (ISO minute or ``unknown``), so later runs reuse that value
    instead of re-resolving a fallback that could drift."""

    key: str
    view_ref: str
    watched_at: str
    sent_at: datetime


@dataclass
class Ledger:
    keys: set[str] = field(default_factory=set)
    watched_at_by_view: dict[str, str] = field(default_factory=dict)


UnmatchedReason = Literal[
    "no_imdb_not_found",
    "ambiguous",
    "not_found",
    "show_not_found",
    "episode_not_on_trakt",
    "listed_as_show",
    "trakt_not_found",
    "kinopub_error",
    "unknown_type",
    "numbering_mismatch",
    "merged_episode",
]


@dataclass(frozen=True)
class UnmatchedItem:
    """A Kinopub item (or one of its episodes) that could not be mapped or that Trakt did not find."""

    key: str  # stable: "item:{id}" or "episode:{item}:{season}:{episode}"
    kinopub_id: int
    title: str
    reason: str
    detail: str = ""
    season: int | None = None
    episode: int | None = None
    seen_at: datetime | None = None
    # The Trakt show an unmatched episode was looked up in, as ``/shows/{id}`` takes it (an IMDb or Trakt id),
    # when mapping got that far: ``map`` checks an episode pin against its season table.
    trakt_show: str | None = None


@dataclass(frozen=True)
class Pin:
    """A user's manual mapping (CLI ``map``): a Kinopub item → a Trakt movie or show, plus a season offset."""

    kinopub_id: int
    trakt_type: Literal["movie", "show"]
    trakt_id: int
    season_offset: int = 0


@dataclass(frozen=True)
class EpisodePin:
    """One Kinopub episode → one or more Trakt episodes (a merged episode is two), by Trakt (season, number)."""

    kinopub_id: int
    season: int
    episode: int
    trakt_episodes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SeasonPin:
    """A Kinopub season's episodes from ``from_episode`` on → Trakt season ``trakt_season``, number + offset
    (numbers shifted by inline specials or a merged episode)."""

    kinopub_id: int
    season: int
    trakt_season: int
    episode_offset: int = 0
    from_episode: int = 1


@dataclass
class NumberingPins:
    episodes: dict[tuple[int, int, int], EpisodePin] = field(default_factory=dict)  # (item, season, episode)
    seasons: dict[tuple[int, int], list[SeasonPin]] = field(default_factory=dict)  # (item, season) → by from

    def add(self, pin: EpisodePin | SeasonPin) -> None:
        if isinstance(pin, EpisodePin):
            self.episodes[(pin.kinopub_id, pin.season, pin.episode)] = pin
            return
        ranges = [p for p in self.seasons.get((pin.kinopub_id, pin.season), []) if p.from_episode != pin.from_episode]
        self.seasons[(pin.kinopub_id, pin.season)] = sorted([*ranges, pin], key=lambda p: p.from_episode)

    def episode(self, kinopub_id: int, season: int, episode: int) -> EpisodePin | None:
        return self.episodes.get((kinopub_id, season, episode))

    def season(self, kinopub_id: int, season: int, episode: int) -> SeasonPin | None:
        """The season pin whose range holds ``episode`` (the one starting latest at or before it)."""
        ranges = [p for p in self.seasons.get((kinopub_id, season), []) if p.from_episode <= episode]
        return ranges[-1] if ranges else None

    def items(self) -> set[int]:
        return {key[0] for key in self.episodes} | {key[0] for key in self.seasons}


class StateStore(Protocol):
    """Everything the sync remembers, under ``<ACCOUNT_ID>#``-prefixed partition keys."""

    # lease (DESIGN §3.1)
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        """Conditional put: True if there was no lease or it had expired at ``now``."""
        ...

    def release_lease(self, owner: str) -> None:
        """Delete the lease only if ``owner`` still holds it."""
        ...

    # watermark and scan bookkeeping
    def load_sync_state(self) -> SyncState: ...

    def advance_watermark(self, value: datetime) -> datetime:
        """Conditional update that only moves forward; returns the stored value after the call."""
        ...

    def set_last_full_scan(self, value: datetime) -> None: ...

    def set_last_activities(self, value: Mapping[str, Any] | None) -> None: ...

    def set_scan_progress(self, done: Iterable[int] | None) -> None:
        """Remember the items an unfinished full scan has finished (None: no scan in progress)."""
        ...

    def request_reread(self, item_ids: Iterable[int]) -> None:
        """Have the next run read these items whatever their history says (added to those already asked)."""
        ...

    def clear_reread(self, item_ids: Iterable[int]) -> None:
        """The run read these items: remove them (only them: a pin made meanwhile stays asked for)."""
        ...

    # mapping cache (shows, season tables, negative results)
    def load_mappings(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Every cached mapping that has not expired at ``now``, by key."""
        ...

    def put_mappings(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        """Upsert ``key -> (value, expires_at)``; ``None`` = never expires."""
        ...

    # ledger
    def load_ledger(self) -> Ledger: ...

    def add_to_ledger(self, entries: Sequence[LedgerEntry]) -> None: ...

    # unmatched
    def put_unmatched(self, items: Sequence[UnmatchedItem]) -> None: ...

    def remove_unmatched(self, keys: Iterable[str]) -> None: ...

    def list_unmatched(self) -> list[UnmatchedItem]: ...

    # Kinopub items that failed to read, run after run (DESIGN §4: after 3 runs → unmatched kinopub_error)
    def record_item_failures(self, item_ids: Iterable[int]) -> dict[int, int]:
        """Increment each item's consecutive-failure count; return the new counts."""
        ...

    def clear_item_failures(self, item_ids: Iterable[int]) -> None: ...

    def list_item_failures(self) -> dict[int, int]:
        """Every item with a running failure count (one query; a run clears those it read fine)."""
        ...

    # run reports
    def put_report(self, report: Mapping[str, Any], at: datetime) -> None: ...

    def list_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    # manual mappings
    def put_pin(self, pin: Pin) -> None: ...

    def list_pins(self) -> dict[int, Pin]: ...

    def put_numbering_pin(self, pin: EpisodePin | SeasonPin) -> None: ...

    def list_numbering_pins(self) -> NumberingPins: ...

    # one-time OAuth state for /trakt/login → /trakt/callback (DESIGN §6)
    def put_oauth_state(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None: ...

    def consume_oauth_state(self, state: str, now: datetime) -> dict[str, str] | None:
        """Atomically delete and return the state; None if missing or expired (a replay finds nothing)."""
        ...
