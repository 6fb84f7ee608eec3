"""In-memory twins of the storage ports, for unit tests, the chaos suite and the benchmark.

They keep the AWS adapters' semantics, checked by the same contract suite
(``tests/unit/test_storage_contract.py``): versions refuse stale writes, expiry is judged against the
``now`` the caller passes, the watermark only moves forward, the lease belongs to its owner, a login state
is consumed once. Values go through the same text forms as in DynamoDB (JSON, ``iso_z`` timestamps, whole
epoch seconds for expiry), so a value that DynamoDB would not round-trip does not round-trip here either.

``faults`` is called with the operation's name (``"ledger.add"``, ``"load"`` for a token store) before each
operation: a test raises a throttling error from it to see how the sync copes with a storage call that fails.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import count
from typing import Any

from kinotrakt.clock import iso_z, parse_iso, utc_from_epoch
from kinotrakt.errors import ConcurrentTokenWrite
from kinotrakt.storage.ports import (
    EpisodePin,
    KnownItem,
    KnownItems,
    LeaseHolder,
    Ledger,
    LedgerEntry,
    NumberingPins,
    Pin,
    SeasonPin,
    ServiceSecret,
    StoredSecret,
    SyncState,
    SyncStores,
    UnmatchedItem,
)

Faults = Callable[[str], None]


def _expiry(value: datetime) -> int:
    # Whole epoch seconds, rounded up, exactly as the DynamoDB adapters write the TTL attribute.
    return math.ceil(value.timestamp())


class _Store:
    """The fault hook and the lock every twin shares; ``kind`` prefixes the operation names."""

    kind = ""

    def __init__(self, *, faults: Faults | None = None) -> None:
        self._faults = faults
        self._lock = threading.RLock()

    def _fault(self, operation: str) -> None:
        if self._faults is not None:
            self._faults(f"{self.kind}.{operation}" if self.kind else operation)


class InMemoryTokenStore(_Store):
    """One service's secret; versions are counters (``"1"``, ``"2"``, ...), ``None`` before any value."""

    def __init__(self, secret: ServiceSecret | None = None, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._raw: str | None = None if secret is None else secret.to_json()
        self._version = 0 if secret is None else 1
        self.writes: list[ServiceSecret] = []

    @property
    def version(self) -> str | None:
        return str(self._version) if self._version else None

    def load(self) -> StoredSecret:
        self._fault("load")
        with self._lock:
            return StoredSecret(ServiceSecret.from_json(self._raw), self.version)

    def save(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        self._fault("save")
        with self._lock:
            if expected_version != self.version:
                raise ConcurrentTokenWrite(
                    "the token secret was written by someone else since it was read; their version was kept"
                )
            self._raw = secret.to_json()
            self._version += 1
            self.writes.append(secret)
            return StoredSecret(ServiceSecret.from_json(self._raw), self.version)


class InMemoryLeaseStore(_Store):
    kind = "lease"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._lease: tuple[str, int, datetime] | None = None  # owner, expires_at, taken_at

    def acquire(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        self._fault("acquire")
        with self._lock:
            if self._lease is not None and self._lease[1] > now.timestamp():
                return False
            self._lease = (owner, _expiry(expires_at), now)
            return True

    def holder(self, now: datetime) -> LeaseHolder | None:
        self._fault("holder")
        with self._lock:
            if self._lease is None or self._lease[1] <= now.timestamp():
                return None
            owner, expires_at, taken_at = self._lease
            return LeaseHolder(owner, taken_at, utc_from_epoch(expires_at))

    def release(self, owner: str) -> None:
        self._fault("release")
        with self._lock:
            if self._lease is not None and self._lease[0] == owner:
                self._lease = None


class InMemorySyncStateStore(_Store):
    kind = "sync_state"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._watermark: str | None = None
        self._last_full_scan: str | None = None
        self._scan_done: set[int] = set()
        self._reread: set[int] = set()
        self._trakt_reads: tuple[datetime, ...] = ()

    def load(self) -> SyncState:
        self._fault("load")
        with self._lock:
            return SyncState(
                watermark=parse_iso(self._watermark) if self._watermark else None,
                last_full_scan=parse_iso(self._last_full_scan) if self._last_full_scan else None,
                scan_done=frozenset(self._scan_done),
                reread=frozenset(self._reread),
                trakt_reads=self._trakt_reads,
            )

    def advance_watermark(self, value: datetime) -> datetime:
        self._fault("advance_watermark")
        candidate = iso_z(value)
        with self._lock:
            if self._watermark is None or self._watermark < candidate:
                self._watermark = candidate
            return parse_iso(self._watermark)

    def set_last_full_scan(self, value: datetime) -> None:
        self._fault("set_last_full_scan")
        with self._lock:
            self._last_full_scan = iso_z(value)

    def set_scan_progress(self, done: Iterable[int] | None) -> None:
        self._fault("set_scan_progress")
        with self._lock:
            self._scan_done = set() if done is None else set(done)

    def request_reread(self, item_ids: Iterable[int]) -> None:
        self._fault("request_reread")
        with self._lock:
            self._reread |= set(item_ids)

    def clear_reread(self, item_ids: Iterable[int]) -> None:
        self._fault("clear_reread")
        with self._lock:
            self._reread -= set(item_ids)

    def set_trakt_reads(self, sent_at: Iterable[datetime]) -> None:
        self._fault("set_trakt_reads")
        with self._lock:
            self._trakt_reads = tuple(sorted(sent_at))


class InMemoryKnownItemStore(_Store):
    kind = "known_items"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._saves: list[str] = []  # one JSON list of rows per save, in save order
        self._covers_history = False

    def load(self) -> KnownItems:
        self._fault("load")
        with self._lock:
            saves, covers = list(self._saves), self._covers_history
        book = KnownItems(covers_history=covers)
        for save in saves:
            for row in json.loads(save):
                known = KnownItem.from_row(row)
                book.items[known.kinopub_id] = known
        return book

    def save(self, changed: Sequence[KnownItem], *, covers_history: bool = False) -> None:
        self._fault("save")
        encoded = json.dumps([item.to_row() for item in changed], ensure_ascii=False)
        with self._lock:
            self._saves.append(encoded)
            self._covers_history = self._covers_history or covers_history


class InMemoryMappingStore(_Store):
    kind = "mappings"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._mappings: dict[str, tuple[str, int | None]] = {}

    def load(self, now: datetime) -> dict[str, dict[str, Any]]:
        self._fault("load")
        with self._lock:
            return {
                key: json.loads(value)
                for key, (value, expires_at) in self._mappings.items()
                if expires_at is None or expires_at > now.timestamp()
            }

    def put(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        self._fault("put")
        encoded = {
            key: (json.dumps(value), None if expires_at is None else _expiry(expires_at))
            for key, (value, expires_at) in entries.items()
        }
        with self._lock:
            self._mappings.update(encoded)


class InMemoryLedgerStore(_Store):
    kind = "ledger"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._batches: dict[tuple[str, int], str] = {}  # (sent_at, sequence) -> JSON entries
        self._sequence = count()

    def load(self) -> Ledger:
        self._fault("load")
        ledger = Ledger()
        with self._lock:
            batches = [self._batches[position] for position in sorted(self._batches)]
        for batch in batches:
            for key, view_ref, watched_at in json.loads(batch):
                ledger.keys.add(key)
                ledger.watched_at_by_view[view_ref] = watched_at
                ledger.view_by_key[key] = view_ref
        return ledger

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        self._fault("add")
        if not entries:
            return
        sent_at = iso_z(min(entry.sent_at for entry in entries))
        batch = json.dumps([[entry.key, entry.view_ref, entry.watched_at] for entry in entries])
        with self._lock:
            self._batches[(sent_at, next(self._sequence))] = batch


class InMemoryUnmatchedStore(_Store):
    kind = "unmatched"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._items: dict[str, UnmatchedItem] = {}

    def load(self) -> list[UnmatchedItem]:
        self._fault("load")
        with self._lock:
            return [self._items[key] for key in sorted(self._items)]

    def put(self, items: Sequence[UnmatchedItem]) -> None:
        self._fault("put")
        with self._lock:
            self._items.update((item.key, item) for item in items)

    def remove(self, keys: Iterable[str]) -> None:
        self._fault("remove")
        with self._lock:
            for key in keys:
                self._items.pop(key, None)


class InMemoryItemFailureStore(_Store):
    kind = "failures"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._counts: dict[int, int] = {}

    def load(self) -> dict[int, int]:
        self._fault("load")
        with self._lock:
            return dict(self._counts)

    def record(self, item_ids: Iterable[int]) -> dict[int, int]:
        self._fault("record")
        with self._lock:
            counts: dict[int, int] = {}
            for item_id in dict.fromkeys(item_ids):
                self._counts[item_id] = counts[item_id] = self._counts.get(item_id, 0) + 1
            return counts

    def clear(self, item_ids: Iterable[int]) -> None:
        self._fault("clear")
        with self._lock:
            for item_id in item_ids:
                self._counts.pop(item_id, None)


class InMemoryReportStore(_Store):
    kind = "reports"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._reports: dict[str, str] = {}
        self._dry_runs: dict[str, str] = {}

    def put(self, report: Mapping[str, Any], at: datetime) -> None:
        self._fault("put")
        encoded = json.dumps(report)
        with self._lock:
            (self._dry_runs if report.get("dry_run") is True else self._reports)[iso_z(at)] = encoded

    def latest(self, limit: int = 10, *, dry_run: bool = False) -> list[dict[str, Any]]:
        self._fault("latest")
        with self._lock:
            kept = self._dry_runs if dry_run else self._reports
            newest_first = sorted(kept, reverse=True)[:limit]
            return [json.loads(kept[at]) for at in newest_first]


class InMemoryPinStore(_Store):
    kind = "pins"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._pins: dict[int, Pin] = {}
        # An episode pin by (item, season, episode), a season range by (item, season, from): a newer one replaces.
        self._numbering: dict[tuple[str, int, int, int], EpisodePin | SeasonPin] = {}

    def load(self) -> dict[int, Pin]:
        self._fault("load")
        with self._lock:
            return dict(self._pins)

    def put(self, pin: Pin) -> None:
        self._fault("put")
        with self._lock:
            self._pins[pin.kinopub_id] = pin

    def load_numbering(self) -> NumberingPins:
        self._fault("load_numbering")
        pins = NumberingPins()
        with self._lock:
            for key in sorted(self._numbering):
                pins.add(self._numbering[key])
        return pins

    def put_numbering(self, pin: EpisodePin | SeasonPin) -> None:
        self._fault("put_numbering")
        if isinstance(pin, EpisodePin):
            key = ("e", pin.kinopub_id, pin.season, pin.episode)
        else:
            key = ("s", pin.kinopub_id, pin.season, pin.from_episode)
        with self._lock:
            self._numbering[key] = pin


class InMemoryLoginStateStore(_Store):
    kind = "login_state"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._states: dict[str, tuple[str, int]] = {}

    def put(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None:
        self._fault("put")
        with self._lock:
            self._states[state] = (json.dumps(dict(data)), _expiry(expires_at))

    def consume(self, state: str, now: datetime) -> dict[str, str] | None:
        self._fault("consume")
        with self._lock:
            stored = self._states.get(state)
            if stored is None or stored[1] <= now.timestamp():
                return None
            del self._states[state]
            data: dict[str, str] = json.loads(stored[0])
            return data


class InMemoryAuditProgressStore(_Store):
    kind = "audit_progress"

    def __init__(self, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._progress: tuple[str, int] | None = None  # JSON, expires_at

    def load(self, now: datetime) -> dict[str, Any] | None:
        self._fault("load")
        with self._lock:
            if self._progress is None or self._progress[1] <= now.timestamp():
                return None
            document: dict[str, Any] = json.loads(self._progress[0])
            return document

    def save(self, progress: Mapping[str, Any], expires_at: datetime) -> None:
        self._fault("save")
        encoded = json.dumps(progress, ensure_ascii=False)
        with self._lock:
            self._progress = (encoded, _expiry(expires_at))

    def clear(self) -> None:
        self._fault("clear")
        with self._lock:
            self._progress = None


def memory_sync_stores(
    *,
    kinopub_tokens: InMemoryTokenStore | None = None,
    trakt_tokens: InMemoryTokenStore | None = None,
    faults: Faults | None = None,
) -> SyncStores:
    """Every store of one account, empty, in memory (token stores without a secret unless given)."""
    return SyncStores(
        lease=InMemoryLeaseStore(faults=faults),
        sync_state=InMemorySyncStateStore(faults=faults),
        known_items=InMemoryKnownItemStore(faults=faults),
        mappings=InMemoryMappingStore(faults=faults),
        ledger=InMemoryLedgerStore(faults=faults),
        unmatched=InMemoryUnmatchedStore(faults=faults),
        failures=InMemoryItemFailureStore(faults=faults),
        reports=InMemoryReportStore(faults=faults),
        pins=InMemoryPinStore(faults=faults),
        kinopub_tokens=kinopub_tokens or InMemoryTokenStore(faults=faults),
        trakt_tokens=trakt_tokens or InMemoryTokenStore(faults=faults),
        audit_progress=InMemoryAuditProgressStore(faults=faults),
    )
