"""In-memory twins of the storage ports, for unit tests, the chaos suite and the benchmark.

They keep the AWS adapters' semantics, checked by the same contract suite
(``tests/unit/test_storage_contract.py``): versions refuse stale writes, expiry is judged against the
``now`` the caller passes, the watermark only moves forward, the lease belongs to its owner, an OAuth state
is consumed once. Values go through the same text forms as in DynamoDB (JSON, ``iso_z`` timestamps, whole
epoch seconds for expiry), so a value that DynamoDB would not round-trip does not round-trip here either.

``faults`` is called with the method's name before each operation: a chaos test raises a throttling
error from it to see how the sync copes with a storage call that fails.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import count
from typing import Any

from kinotrakt.clock import iso_z, parse_iso
from kinotrakt.errors import ConcurrentTokenWrite
from kinotrakt.storage.ports import (
    EpisodePin,
    Ledger,
    LedgerEntry,
    NumberingPins,
    Pin,
    SeasonPin,
    ServiceSecret,
    StoredSecret,
    SyncState,
    UnmatchedItem,
)

Faults = Callable[[str], None]


def _expiry(value: datetime) -> int:
    # Whole epoch seconds, rounded up, exactly as DynamoStateStore writes its TTL attribute.
    return math.ceil(value.timestamp())


class InMemoryTokenStore:
    """One service's secret; versions are counters (``"1"``, ``"2"``, ...), ``None`` before any value."""

    def __init__(self, secret: ServiceSecret | None = None, *, faults: Faults | None = None) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._raw: str | None = None if secret is None else secret.to_json()
        self._version = 0 if secret is None else 1
        self.writes: list[ServiceSecret] = []

    def _fault(self, operation: str) -> None:
        if self._faults is not None:
            self._faults(operation)

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


class InMemoryStateStore:
    """Everything the sync remembers, in dictionaries; one store is one account."""

    def __init__(self, *, faults: Faults | None = None) -> None:
        self._faults = faults
        self._lock = threading.RLock()
        self._lease: tuple[str, int] | None = None  # owner, expires_at
        self._watermark: str | None = None
        self._last_full_scan: str | None = None
        self._last_activities: str | None = None
        self._mappings: dict[str, tuple[str, int | None]] = {}
        self._ledger: dict[tuple[str, int], str] = {}  # (sent_at, sequence) -> JSON entries
        self._ledger_sequence = count()
        self._unmatched: dict[str, UnmatchedItem] = {}
        self._scan_done: set[int] = set()
        self._reread: set[int] = set()
        self._numbering: dict[str, EpisodePin | SeasonPin] = {}
        self._failures: dict[int, int] = {}
        self._reports: dict[str, str] = {}
        self._pins: dict[int, Pin] = {}
        self._oauth: dict[str, tuple[str, int]] = {}

    def _fault(self, operation: str) -> None:
        if self._faults is not None:
            self._faults(operation)

    # lease -------------------------------------------------------------------------------------------------

    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        self._fault("acquire_lease")
        with self._lock:
            if self._lease is not None and self._lease[1] > now.timestamp():
                return False
            self._lease = (owner, _expiry(expires_at))
            return True

    def release_lease(self, owner: str) -> None:
        self._fault("release_lease")
        with self._lock:
            if self._lease is not None and self._lease[0] == owner:
                self._lease = None

    # watermark and scan bookkeeping ------------------------------------------------------------------------

    def load_sync_state(self) -> SyncState:
        self._fault("load_sync_state")
        with self._lock:
            return SyncState(
                watermark=parse_iso(self._watermark) if self._watermark else None,
                last_full_scan=parse_iso(self._last_full_scan) if self._last_full_scan else None,
                last_activities=json.loads(self._last_activities) if self._last_activities else None,
                scan_done=frozenset(self._scan_done),
                reread=frozenset(self._reread),
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

    def set_last_activities(self, value: Mapping[str, Any] | None) -> None:
        self._fault("set_last_activities")
        with self._lock:
            self._last_activities = None if value is None else json.dumps(value)

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

    # mapping cache -----------------------------------------------------------------------------------------

    def load_mappings(self, now: datetime) -> dict[str, dict[str, Any]]:
        self._fault("load_mappings")
        with self._lock:
            return {
                key: json.loads(value)
                for key, (value, expires_at) in self._mappings.items()
                if expires_at is None or expires_at > now.timestamp()
            }

    def put_mappings(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        self._fault("put_mappings")
        encoded = {
            key: (json.dumps(value), None if expires_at is None else _expiry(expires_at))
            for key, (value, expires_at) in entries.items()
        }
        with self._lock:
            self._mappings.update(encoded)

    # ledger ------------------------------------------------------------------------------------------------

    def load_ledger(self) -> Ledger:
        self._fault("load_ledger")
        ledger = Ledger()
        with self._lock:
            batches = [self._ledger[position] for position in sorted(self._ledger)]
        for batch in batches:
            for key, view_ref, watched_at in json.loads(batch):
                ledger.keys.add(key)
                ledger.watched_at_by_view[view_ref] = watched_at
        return ledger

    def add_to_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        self._fault("add_to_ledger")
        if not entries:
            return
        sent_at = iso_z(min(entry.sent_at for entry in entries))
        batch = json.dumps([[entry.key, entry.view_ref, entry.watched_at] for entry in entries])
        with self._lock:
            self._ledger[(sent_at, next(self._ledger_sequence))] = batch

    # unmatched ---------------------------------------------------------------------------------------------

    def put_unmatched(self, items: Sequence[UnmatchedItem]) -> None:
        self._fault("put_unmatched")
        with self._lock:
            self._unmatched.update((item.key, item) for item in items)

    def remove_unmatched(self, keys: Iterable[str]) -> None:
        self._fault("remove_unmatched")
        with self._lock:
            for key in keys:
                self._unmatched.pop(key, None)

    def list_unmatched(self) -> list[UnmatchedItem]:
        self._fault("list_unmatched")
        with self._lock:
            return [self._unmatched[key] for key in sorted(self._unmatched)]

    # item failures -----------------------------------------------------------------------------------------

    def record_item_failures(self, item_ids: Iterable[int]) -> dict[int, int]:
        self._fault("record_item_failures")
        with self._lock:
            counts: dict[int, int] = {}
            for item_id in dict.fromkeys(item_ids):
                self._failures[item_id] = counts[item_id] = self._failures.get(item_id, 0) + 1
            return counts

    def clear_item_failures(self, item_ids: Iterable[int]) -> None:
        self._fault("clear_item_failures")
        with self._lock:
            for item_id in item_ids:
                self._failures.pop(item_id, None)

    def list_item_failures(self) -> dict[int, int]:
        self._fault("list_item_failures")
        with self._lock:
            return dict(self._failures)

    # run reports -------------------------------------------------------------------------------------------

    def put_report(self, report: Mapping[str, Any], at: datetime) -> None:
        self._fault("put_report")
        encoded = json.dumps(report)
        with self._lock:
            self._reports[iso_z(at)] = encoded

    def list_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        self._fault("list_reports")
        with self._lock:
            newest_first = sorted(self._reports, reverse=True)[:limit]
            return [json.loads(self._reports[at]) for at in newest_first]

    # manual mappings ---------------------------------------------------------------------------------------

    def put_pin(self, pin: Pin) -> None:
        self._fault("put_pin")
        with self._lock:
            self._pins[pin.kinopub_id] = pin

    def list_pins(self) -> dict[int, Pin]:
        self._fault("list_pins")
        with self._lock:
            return dict(self._pins)

    def put_numbering_pin(self, pin: EpisodePin | SeasonPin) -> None:
        self._fault("put_numbering_pin")
        key = (
            f"e:{pin.kinopub_id}:{pin.season}:{pin.episode}"
            if isinstance(pin, EpisodePin)
            else f"s:{pin.kinopub_id}:{pin.season}:{pin.from_episode}"
        )
        with self._lock:
            self._numbering[key] = pin

    def list_numbering_pins(self) -> NumberingPins:
        self._fault("list_numbering_pins")
        pins = NumberingPins()
        with self._lock:
            for key in sorted(self._numbering):
                pins.add(self._numbering[key])
        return pins

    # one-time OAuth state ----------------------------------------------------------------------------------

    def put_oauth_state(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None:
        self._fault("put_oauth_state")
        with self._lock:
            self._oauth[state] = (json.dumps(dict(data)), _expiry(expires_at))

    def consume_oauth_state(self, state: str, now: datetime) -> dict[str, str] | None:
        self._fault("consume_oauth_state")
        with self._lock:
            stored = self._oauth.get(state)
            if stored is None or stored[1] <= now.timestamp():
                return None
            del self._oauth[state]
            data: dict[str, str] = json.loads(stored[0])
            return data
