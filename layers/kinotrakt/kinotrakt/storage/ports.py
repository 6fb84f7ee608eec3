"""The storage ports: one small interface per kind of data kinotrakt keeps, so each component names exactly
what it reads and writes. Nothing above this package touches boto3.

Each state port has a DynamoDB adapter (``storage/dynamo/``, one module per kind, all on the one table) and an
in-memory twin (``devkit/memory.py``); ``tests/unit/test_storage_contract.py`` runs every port's contract
against both. The two service secrets live in Secrets Manager (``storage/secrets.py``).

Who uses which port: a sync run and an audit use :class:`SyncStores` (their steps each take only their own ports);
the login routes use :class:`LoginStateStore` and the Trakt :class:`TokenStore`; each CLI command the few it reads
or writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

# --- tokens (Secrets Manager) ------------------------------------------------------------------------------


class ServiceSecret(BaseModel):
    """One service's secret JSON (the runtime contract: ``client_id``, ``client_secret``, ``access_token``,
    ``refresh_token``, ``expires_at``, ``issued_at``; the Trakt secret's ``setup_key`` with its
    ``setup_key_expires_at``, and ``linked_user``, the Trakt user the browser login linked). Secret fields are
    ``SecretStr`` so a repr, a log line or a traceback shows ``**********`` rather than the value; unknown
    fields are kept as they are."""

    model_config = ConfigDict(extra="allow")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    expires_at: int | None = None
    issued_at: int | None = None
    setup_key: SecretStr | None = None
    setup_key_expires_at: int | None = None  # epoch seconds; a key without it counts as expired
    linked_user: str | None = None

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


# --- what the state ports hold ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    watermark: datetime | None = None  # last_success_at: the sync has read everything up to here
    last_full_scan: datetime | None = None
    # A full scan that did not fit in one run: the Kinopub items it has already finished, so the next run
    # continues where it stopped instead of starting over (and never getting past the same point).
    scan_done: frozenset[int] = frozenset()
    # Kinopub items pinned since the last run: the next run reads them whatever their history rows say.
    reread: frozenset[int] = frozenset()
    # When the last runs sent their Trakt GETs (oldest first), as far as they may still count: Trakt's budget
    # is per user and per 5 minutes, so a run starting a minute after a busy one must not spend it again.
    trakt_reads: tuple[datetime, ...] = ()


KnownItemState = Literal["to_read", "open", "complete"]
_STATE_CODES: dict[KnownItemState, str] = {"to_read": "r", "open": "o", "complete": "c"}
_CODE_STATES: dict[str, KnownItemState] = {code: state for state, code in _STATE_CODES.items()}


@dataclass(frozen=True)
class KnownItem:
    """A Kinopub item the sync has met in history, and whether a full rescan must read it again.

    - ``complete``: every feature part (a film) or every episode Kinopub lists (a series) is watched and every
      view is in the ledger: a rescan would find nothing new. What can still change shows up in history (a new
      episode played, a film played again), where the incremental window reads it;
    - ``open``: something can still change (an episode not watched yet, a view unmatched): every rescan reads it;
    - ``to_read``: a full scan in progress has not finished it: the scan's next run reads it.

    ``title``, ``type``, ``year`` and ``imdb`` (what a history row says of the item) and ``last_seen`` (media id
    → newest ``last_seen``: the fallback time of a view whose ``updated`` is null) are what reading it takes
    without paging history again; a complete item keeps none of them."""

    kinopub_id: int
    state: KnownItemState
    title: str = ""
    type: str | None = None
    year: int | None = None
    imdb: str | None = None
    last_seen: Mapping[int, int] = field(default_factory=dict)  # media id → epoch seconds

    def to_row(self) -> list[Any]:
        """The stored JSON form: ``[id, "c"]``, or ``[id, "o"|"r", type, year, imdb, title, [[media, epoch]...]]``."""
        code = _STATE_CODES[self.state]
        if self.state == "complete":
            return [self.kinopub_id, code]
        seen = [[media, at] for media, at in sorted(self.last_seen.items())]
        return [self.kinopub_id, code, self.type, self.year, self.imdb, self.title, seen]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> KnownItem:
        kinopub_id, state = int(row[0]), _CODE_STATES[str(row[1])]
        if state == "complete":
            return cls(kinopub_id, state)
        kind, year, imdb, title, seen = row[2:7]
        return cls(kinopub_id, state, str(title), kind, year, imdb, {int(media): int(at) for media, at in seen})


@dataclass
class KnownItems:
    """Every item the sync has met in history, by Kinopub id. ``covers_history``: a full scan of every history
    page has completed since the book was started, so it holds every item with a history row (and the
    incremental windows add each new one), and a rescan may read the open items from here instead of paging
    the whole history again."""

    items: dict[int, KnownItem] = field(default_factory=dict)
    covers_history: bool = False

    def in_state(self, state: KnownItemState) -> frozenset[int]:
        return frozenset(item_id for item_id, item in self.items.items() if item.state == state)


@dataclass(frozen=True)
class LedgerEntry:
    """One play this deployment sent and Trakt accepted (or found already there): its key is never sent again.

    ``view_ref`` names the Kinopub view (``sync/keys.py``) and ``watched_at`` is the value sent (ISO minute or
    ``unknown``), so later runs reuse that value instead of re-resolving a fallback that could drift."""

    key: str
    view_ref: str
    watched_at: str
    sent_at: datetime


@dataclass
class Ledger:
    keys: set[str] = field(default_factory=set)
    watched_at_by_view: dict[str, str] = field(default_factory=dict)
    view_by_key: dict[str, str] = field(default_factory=dict)  # which view each play was sent for (the audit)


@dataclass(frozen=True)
class UnmatchedItem:
    """A Kinopub item (or one of its episodes) that could not be mapped or that Trakt did not find."""

    key: str  # stable across runs (``sync/keys.py``): one per item, or one per episode
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


# --- the state ports (DynamoDB), one per kind -----------------------------------------------------------------


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the lease, since when (None for a lease taken by a version that did not record it) and until."""

    owner: str
    taken_at: datetime | None
    expires_at: datetime


# A run's lease when its time left is unknown: it outlives the longest possible run (Lambda's 15-minute maximum) a
# little. A Lambda run's lease is its remaining time plus a minute.
DEFAULT_LEASE = timedelta(minutes=16)


class LeaseStore(Protocol):
    """The run lease: one sync at a time per account (a second invocation ends ``skipped``)."""

    def acquire(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        """Conditional put: True if there was no lease or it had expired at ``now``."""
        ...

    def holder(self, now: datetime) -> LeaseHolder | None:
        """The run holding the lease at ``now``, if any (for the report of a run that found it taken)."""
        ...

    def release(self, owner: str) -> None:
        """Delete the lease only if ``owner`` still holds it."""
        ...


class SyncStateStore(Protocol):
    """The watermark, the full-scan bookkeeping, the items a pin asks the next run to read, and the Trakt GET
    budget the last runs spent."""

    def load(self) -> SyncState: ...

    def advance_watermark(self, value: datetime) -> datetime:
        """Conditional update that only moves forward; returns the stored value after the call."""
        ...

    def set_last_full_scan(self, value: datetime) -> None: ...

    def set_scan_progress(self, done: Iterable[int] | None) -> None:
        """Remember the items an unfinished full scan has finished (None: no scan in progress)."""
        ...

    def request_reread(self, item_ids: Iterable[int]) -> None:
        """Have the next run read these items whatever their history says (added to those already asked)."""
        ...

    def clear_reread(self, item_ids: Iterable[int]) -> None:
        """The run read these items: remove them (only them: a pin made meanwhile stays asked for)."""
        ...

    def set_trakt_reads(self, sent_at: Iterable[datetime]) -> None:
        """Remember when the Trakt GETs still inside the budget window were sent (replaces what was stored). A
        time may read back up to a tenth of a second later, never earlier: it then counts a little longer."""
        ...


class KnownItemStore(Protocol):
    """The book of Kinopub items the sync has met (:class:`KnownItem`): what a rescan reads, and what an
    unfinished full scan has left to read."""

    def load(self) -> KnownItems: ...

    def save(self, changed: Sequence[KnownItem], *, covers_history: bool = False) -> None:
        """Upsert these items (a later save of an item wins over an earlier one); ``covers_history`` marks the
        book as holding every item in history from now on."""
        ...


class MappingStore(Protocol):
    """The mapping cache: Trakt show ids, season tables and negative answers, each with an optional expiry."""

    def load(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Every cached mapping that has not expired at ``now``, by key."""
        ...

    def put(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        """Upsert ``key -> (value, expires_at)``; ``None`` = never expires."""
        ...


class LedgerStore(Protocol):
    """What this deployment has put on Trakt (the dedupe's local half)."""

    def load(self) -> Ledger: ...

    def add(self, entries: Sequence[LedgerEntry]) -> None: ...


class UnmatchedStore(Protocol):
    """Views that could not be mapped, with the reason (CLI ``unmatched``)."""

    def load(self) -> list[UnmatchedItem]: ...

    def put(self, items: Sequence[UnmatchedItem]) -> None: ...

    def remove(self, keys: Iterable[str]) -> None: ...


class ItemFailureStore(Protocol):
    """Kinopub items that failed to read, run after run (after 3 runs in a row they become unmatched)."""

    def load(self) -> dict[int, int]:
        """Every item with a running failure count (one query; a run clears those it read fine)."""
        ...

    def record(self, item_ids: Iterable[int]) -> dict[int, int]:
        """Increment each item's consecutive-failure count; return the new counts."""
        ...

    def clear(self, item_ids: Iterable[int]) -> None: ...


class ReportStore(Protocol):
    """The run reports, as the runtime contract's JSON (CLI ``status``). Dry runs (``"dry_run": true``) are kept
    apart, so that trying the sync out does not push the real runs out of the list."""

    def put(self, report: Mapping[str, Any], at: datetime) -> None: ...

    def latest(self, limit: int = 10, *, dry_run: bool = False) -> list[dict[str, Any]]:
        """The real runs' reports (``dry_run``: the dry runs'), newest first."""
        ...


class AuditProgressStore(Protocol):
    """An unfinished audit's progress (``kinotrakt audit``): what it has read and found so far, so the next audit
    continues where one stopped. The audit's own JSON document, which may outgrow one DynamoDB item."""

    def load(self, now: datetime) -> dict[str, Any] | None:
        """The progress last saved, unless it had expired at ``now``."""
        ...

    def save(self, progress: Mapping[str, Any], expires_at: datetime) -> None:
        """Replace the stored progress as a whole: a reader gets the old document or the new one, never a mix."""
        ...

    def clear(self) -> None:
        """Forget it (the audit finished)."""
        ...


class PinStore(Protocol):
    """Manual mappings (CLI ``map``): a Kinopub item to a Trakt title, and episode or season numbering."""

    def load(self) -> dict[int, Pin]: ...

    def put(self, pin: Pin) -> None: ...

    def load_numbering(self) -> NumberingPins: ...

    def put_numbering(self, pin: EpisodePin | SeasonPin) -> None: ...


class LoginStateStore(Protocol):
    """The one-time ``state`` of a browser login, from ``/trakt/login`` to ``/trakt/callback``."""

    def put(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None: ...

    def consume(self, state: str, now: datetime) -> dict[str, str] | None:
        """Atomically delete and return the state; None if missing or expired (a replay finds nothing)."""
        ...


@dataclass(frozen=True)
class SyncStores:
    """Every store one sync run (or audit) touches, for the wiring (the handler, the CLI, the sandbox build it
    once); inside the run each step is handed only its own ports."""

    lease: LeaseStore
    sync_state: SyncStateStore
    known_items: KnownItemStore
    mappings: MappingStore
    ledger: LedgerStore
    unmatched: UnmatchedStore
    failures: ItemFailureStore
    reports: ReportStore
    pins: PinStore
    kinopub_tokens: TokenStore
    trakt_tokens: TokenStore
    audit_progress: AuditProgressStore
