"""One contract per storage port: the in-memory twin and the DynamoDB adapter (moto) must behave the same,
so what the sync's unit tests learn on the twin holds on AWS. Each section is one port."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devkit.memory import InMemoryLoginStateStore, InMemoryTokenStore, memory_sync_stores
from kinotrakt.audit.report import AuditReport, DuplicatePlays, MissingView
from kinotrakt.config import Settings
from kinotrakt.storage.aws import aws_login_stores, aws_sync_stores
from kinotrakt.storage.dynamo import (
    DynamoKnownItemStore,
    DynamoLoginStateStore,
    DynamoMappingStore,
    Table,
    dynamo_sync_stores,
)
from kinotrakt.storage.dynamo.audit import split_utf8
from kinotrakt.storage.dynamo.known_items import COMPACT_AFTER
from kinotrakt.storage.dynamo.reports import MAX_REPORT_BYTES
from kinotrakt.storage.ports import (
    EpisodePin,
    KnownItem,
    KnownItems,
    KnownItemState,
    LeaseHolder,
    LedgerEntry,
    LoginStateStore,
    Pin,
    SeasonPin,
    SyncStores,
    UnmatchedItem,
)
from kinotrakt.sync.report import LIST_LIMIT, RunError, SyncReport, UnmatchedNote, fit_report
from tests.conftest import STATE_TABLE

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)


@dataclass
class Backend:
    stores: SyncStores
    login_states: LoginStateStore
    # DynamoDB operations sent, by name (DynamoDB only: the in-memory twin has no calls to count).
    calls: Counter[str] | None = None


def _counting(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb.*", count)
    return calls


def dynamo_backend(session: boto3.Session, account_id: str = "acct-a") -> Backend:
    """Every state port on one account's slice of the table (the token stores are not part of this contract)."""
    client = session.client("dynamodb")
    table = Table(client, STATE_TABLE, account_id, sleep=lambda _: None)
    stores = dynamo_sync_stores(table, kinopub_tokens=InMemoryTokenStore(), trakt_tokens=InMemoryTokenStore())
    return Backend(stores, DynamoLoginStateStore(table), _counting(client))


@pytest.fixture(params=["memory", "dynamo"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend(memory_sync_stores(), InMemoryLoginStateStore())
    request.getfixturevalue("state_table")
    return dynamo_backend(request.getfixturevalue("aws"))


def entries(
    count: int, *, start: int = 0, sent_at: datetime = T0, minute: str = "2026-10-01T20:15Z"
) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            key=f"episode:{900000 + number}:{minute}",
            view_ref=f"episode:{number // 20}:{number}",
            watched_at=minute,
            sent_at=sent_at,
        )
        for number in range(start, start + count)
    ]


# --- lease ------------------------------------------------------------------------------------------------


def test_a_free_lease_is_taken_and_then_refused_to_a_second_run(backend: Backend) -> None:
    # Given nobody holds the lease
    lease = backend.stores.lease
    # When one run takes it
    assert lease.acquire("run-1", T0, T0 + LEASE) is True
    # Then a concurrent run (and the same run again) is refused until it expires
    assert lease.acquire("run-2", T0 + timedelta(minutes=1), T0 + LEASE) is False
    assert lease.acquire("run-1", T0 + LEASE - timedelta(seconds=1), T0 + 2 * LEASE) is False


def test_a_held_lease_says_who_holds_it_since_when_and_until_when(backend: Backend) -> None:
    lease = backend.stores.lease
    # Given nobody holds the lease, then one run takes it
    assert lease.holder(T0) is None
    lease.acquire("run-1", T0, T0 + LEASE)
    # When a second run looks a minute later
    holder = lease.holder(T0 + timedelta(minutes=1))
    # Then it learns whose it is, since when and until when; once expired, nobody holds it
    assert holder == LeaseHolder("run-1", T0, T0 + LEASE)
    assert lease.holder(T0 + LEASE) is None


def test_an_expired_lease_is_taken_over(backend: Backend) -> None:
    # Given a run that died holding the lease
    lease = backend.stores.lease
    lease.acquire("crashed", T0, T0 + LEASE)
    # When the next scheduled run comes after the lease's expiry
    taken = lease.acquire("next", T0 + LEASE + timedelta(seconds=1), T0 + 2 * LEASE)
    # Then it runs, and holds the lease in its turn
    assert taken is True
    assert lease.acquire("third", T0 + LEASE + timedelta(minutes=1), T0 + 2 * LEASE) is False


def test_only_the_owner_releases_the_lease(backend: Backend) -> None:
    lease = backend.stores.lease
    lease.acquire("run-1", T0, T0 + LEASE)
    # When another run tries to release it, it stays held
    lease.release("run-2")
    assert lease.acquire("run-3", T0 + timedelta(seconds=5), T0 + LEASE) is False
    # When its owner releases it, the next run gets it at once
    lease.release("run-1")
    assert lease.acquire("run-3", T0 + timedelta(seconds=6), T0 + LEASE) is True


def test_a_run_that_outlived_its_lease_does_not_release_the_successors(backend: Backend) -> None:
    # Given run-1's lease expired and run-2 took it over
    lease = backend.stores.lease
    lease.acquire("run-1", T0, T0 + LEASE)
    lease.acquire("run-2", T0 + LEASE + timedelta(seconds=1), T0 + 2 * LEASE)
    # When the slow run-1 finally finishes and releases
    lease.release("run-1")
    # Then run-2 still holds it
    assert lease.acquire("run-3", T0 + LEASE + timedelta(minutes=1), T0 + 2 * LEASE) is False


# --- sync state: watermark and scan bookkeeping ------------------------------------------------------------


def test_the_watermark_only_moves_forward(backend: Backend) -> None:
    sync_state = backend.stores.sync_state
    assert sync_state.load().watermark is None
    # When a run succeeds, its start time becomes the watermark
    assert sync_state.advance_watermark(T0) == T0
    # When an older run (started earlier, finished later) tries to store its older start time
    assert sync_state.advance_watermark(T0 - timedelta(hours=1)) == T0
    # Then the stored value is unchanged; the same value is a no-op and a newer one moves it
    assert sync_state.load().watermark == T0
    assert sync_state.advance_watermark(T0) == T0
    later = T0 + timedelta(minutes=30, milliseconds=250)
    assert sync_state.advance_watermark(later) == later
    assert sync_state.load().watermark == later


def test_full_scan_time_round_trips_without_touching_the_watermark(backend: Backend) -> None:
    sync_state = backend.stores.sync_state
    sync_state.advance_watermark(T0)
    sync_state.set_last_full_scan(T0 + timedelta(minutes=1))
    state = sync_state.load()
    assert state.watermark == T0
    assert state.last_full_scan == T0 + timedelta(minutes=1)
    # When a later full scan completes, its time replaces the older one
    sync_state.set_last_full_scan(T0 + timedelta(days=1))
    assert sync_state.load().last_full_scan == T0 + timedelta(days=1)
    assert sync_state.load().watermark == T0


def test_an_unfinished_full_scan_remembers_its_finished_items_until_cleared(backend: Backend) -> None:
    sync_state = backend.stores.sync_state
    sync_state.advance_watermark(T0)
    assert sync_state.load().scan_done == frozenset()
    # When a full scan stops early having finished two items, then two more
    sync_state.set_scan_progress([101, 102])
    sync_state.set_scan_progress([101, 102, 5000, 7])
    # Then the next run sees exactly those, and the watermark is untouched
    state = sync_state.load()
    assert state.scan_done == frozenset({101, 102, 5000, 7})
    assert state.watermark == T0
    # When the scan completes, the progress is cleared
    sync_state.set_scan_progress(None)
    assert sync_state.load().scan_done == frozenset()


def test_the_trakt_reads_of_the_last_runs_are_remembered_never_earlier_than_sent(backend: Backend) -> None:
    sync_state = backend.stores.sync_state
    sync_state.advance_watermark(T0)
    # Given a state without any (as every existing deployment's is)
    assert sync_state.load().trakt_reads == ()
    # When a run that sent 450 GETs over a minute and a half ends (times to the microsecond, in any order)
    sent = [T0 + timedelta(seconds=n * 0.2, microseconds=7 * n) for n in range(450)]
    sync_state.set_trakt_reads(reversed(sent))
    # Then the next run reads them back oldest first, each no earlier than it was sent and at most a tenth later
    reads = sync_state.load().trakt_reads
    assert len(reads) == 450
    assert list(reads) == sorted(reads)
    assert all(at <= read < at + timedelta(seconds=0.1) for at, read in zip(sent, reads, strict=True))
    # and the watermark is untouched; a run with no reads in the window leaves none
    assert sync_state.load().watermark == T0
    sync_state.set_trakt_reads([])
    assert sync_state.load().trakt_reads == ()
    assert sync_state.load().watermark == T0


# --- known items ------------------------------------------------------------------------------------------


def known(item_id: int, state: KnownItemState = "open", *, episodes: int = 2) -> KnownItem:
    if state == "complete":
        return KnownItem(item_id, state)
    seen = {item_id * 100 + n: 1_790_000_000 + n for n in range(episodes)}
    return KnownItem(item_id, state, f"Сериал {item_id} / Show {item_id}", "serial", 2019, "tt0944947", seen)


def test_known_items_round_trip_in_every_state(backend: Backend) -> None:
    store = backend.stores.known_items
    # Given an empty book
    assert store.load() == KnownItems()
    # When a run saves one item in each state (a complete one keeps no metadata)
    items = [known(1, "complete"), known(2, "open"), known(3, "to_read", episodes=40)]
    store.save(items)
    # Then the next run reads them back as they were, and the book does not claim to cover history yet
    book = store.load()
    assert book.items == {item.kinopub_id: item for item in items}
    assert book.covers_history is False
    assert book.in_state("to_read") == frozenset({3})


def test_a_later_save_of_an_item_wins_and_covering_history_stays(backend: Backend) -> None:
    store = backend.stores.known_items
    store.save([known(1, "to_read"), known(2, "to_read")], covers_history=True)
    # When a later run finishes item 1 (complete) and item 2 (still open)
    store.save([known(1, "complete"), known(2, "open")])
    store.save([])
    # Then the book holds the later states, and still covers history
    book = store.load()
    assert book.items == {1: known(1, "complete"), 2: known(2, "open")}
    assert book.covers_history is True


def test_a_large_library_book_loads_whole_in_a_few_queries(backend: Backend) -> None:
    # Given a 2,600-item library left unread by a stopped backfill, each item with its history rows (20,000 rows)
    store = backend.stores.known_items
    store.save([known(n, "to_read", episodes=8) for n in range(1, 2601)])
    if backend.calls is not None:
        backend.calls.clear()
    # When the next run loads it
    book = store.load()
    # Then every item and row is there, for a couple of queries
    assert len(book.items) == 2600
    assert book.items[2600] == known(2600, "to_read", episodes=8)
    if backend.calls is not None:
        assert set(backend.calls) == {"Query"}
        assert backend.calls["Query"] <= 2


def test_many_saves_still_load_as_one_book(backend: Backend) -> None:
    # Given forty runs that each changed a few items (some of them again)
    store = backend.stores.known_items
    expected: dict[int, KnownItem] = {}
    for run in range(40):
        changed = [known(run, "open"), known(run // 2, "complete")]
        store.save(changed, covers_history=run == 3)
        expected.update((item.kinopub_id, item) for item in changed)
    # When the next run loads the book
    book = store.load()
    # Then it is every item's latest save
    assert book.items == expected
    assert book.covers_history is True


# --- mapping cache ----------------------------------------------------------------------------------------


def test_cached_mappings_expire_at_their_time_and_permanent_ones_stay(backend: Backend) -> None:
    mappings = backend.stores.mappings
    season_table = {"show": 1390, "seasons": {"1": {"1": 73640, "2": 73641}}}
    mappings.put(
        {
            "show:tt0944947": ({"trakt": 1390}, None),
            "seasons:1390": (season_table, T0 + timedelta(hours=24)),
            "miss:movie:Unknown Film:1999": ({"reason": "not_found"}, T0 + timedelta(days=7)),
        }
    )
    assert mappings.load(T0) == {
        "show:tt0944947": {"trakt": 1390},
        "seasons:1390": season_table,
        "miss:movie:Unknown Film:1999": {"reason": "not_found"},
    }
    # When a day has passed, the season table is gone (new episodes must appear), the rest stays
    assert set(mappings.load(T0 + timedelta(hours=24))) == {"show:tt0944947", "miss:movie:Unknown Film:1999"}
    # When a week has passed, the negative result is gone too, so the item is looked up again
    assert set(mappings.load(T0 + timedelta(days=7, seconds=1))) == {"show:tt0944947"}


def test_a_mapping_is_replaced_by_a_newer_value(backend: Backend) -> None:
    mappings = backend.stores.mappings
    mappings.put({"seasons:1390": ({"episodes": 10}, T0 + timedelta(hours=1))})
    mappings.put({"seasons:1390": ({"episodes": 11}, T0 + timedelta(hours=48))})
    assert mappings.load(T0 + timedelta(hours=2)) == {"seasons:1390": {"episodes": 11}}


def test_a_large_library_mapping_cache_loads_whole_in_one_query(backend: Backend) -> None:
    # Given a 600-show library's cache
    store = backend.stores.mappings
    store.put({f"show:tt{n:07d}": ({"trakt": n}, T0 + timedelta(days=1)) for n in range(600)})
    if backend.calls is not None:
        backend.calls.clear()
    # When the sync loads it
    mappings = store.load(T0)
    # Then every entry is there, for one Query, not one call per show
    assert len(mappings) == 600
    assert mappings["show:tt0000599"] == {"trakt": 599}
    if backend.calls is not None:
        assert backend.calls == Counter({"Query": 1})


# --- ledger -----------------------------------------------------------------------------------------------


def test_the_ledger_remembers_every_pushed_batch(backend: Backend) -> None:
    # Given two pushed batches (100 + 50 plays)
    store = backend.stores.ledger
    store.add(entries(100))
    store.add(entries(50, start=100, sent_at=T0 + timedelta(seconds=2)))
    store.add([])
    # When the next run loads the ledger
    ledger = store.load()
    # Then every key and every view's sent watched_at is there
    assert ledger.keys == {entry.key for entry in entries(150)}
    assert ledger.watched_at_by_view["episode:7:149"] == "2026-10-01T20:15Z"
    assert len(ledger.watched_at_by_view) == 150
    # and which view each play was sent for (the audit's question for a play whose view is no longer finished)
    assert ledger.view_by_key == {entry.key: entry.view_ref for entry in entries(150)}


def test_a_big_library_ledger_loads_in_a_few_queries(backend: Backend) -> None:
    # Given 2,500 plays pushed in batches of 100, then a single oversized batch (over DynamoDB's item limit)
    store = backend.stores.ledger
    for batch in range(25):
        store.add(entries(100, start=batch * 100, sent_at=T0 + timedelta(seconds=batch)))
    long_minute = "2026-10-01T20:15Z" + "-" * 60  # makes 5,000 rows ~ 0.8 MB of JSON
    store.add(entries(5000, start=10_000, sent_at=T0 + timedelta(minutes=5), minute=long_minute))
    if backend.calls is not None:
        backend.calls.clear()
    ledger = store.load()
    assert len(ledger.keys) == 7500
    assert {entry.key for entry in entries(2500)} <= ledger.keys
    if backend.calls is not None:
        assert backend.calls["Query"] <= 3
        assert set(backend.calls) == {"Query"}


def test_the_latest_sent_watched_at_of_a_view_wins(backend: Backend) -> None:
    store = backend.stores.ledger
    view = "movie:8821"
    store.add([LedgerEntry("movie:tt0111161:unknown", view, "unknown", T0)])
    store.add([LedgerEntry("movie:tt0111161:2026-10-02T21:00Z", view, "2026-10-02T21:00Z", T0 + timedelta(hours=1))])
    assert store.load().watched_at_by_view[view] == "2026-10-02T21:00Z"


# --- audit progress --------------------------------------------------------------------------------------------


def progress_document(views: int) -> dict[str, Any]:
    """An audit's progress with ``views`` views left to check, Cyrillic titles and all (two bytes a letter)."""
    return {
        "version": 1,
        "titles": {str(n): [f"Черное зеркало {n} / Black Mirror", 2011] for n in range(views // 10)},
        "views": [
            ["episode", n // 10, 1, n % 10 + 1, 0, "2026-10-01T20:15:00.000Z", f"episode:{n}:x"] for n in range(views)
        ],
    }


def test_no_audit_progress_until_one_is_saved_and_none_after_it_is_cleared(backend: Backend) -> None:
    store = backend.stores.audit_progress
    assert store.load(T0) is None
    store.save({"version": 1, "runs": 1}, T0 + timedelta(days=35))
    assert store.load(T0) == {"version": 1, "runs": 1}
    store.clear()
    assert store.load(T0) is None


def test_audit_progress_expires(backend: Backend) -> None:
    store = backend.stores.audit_progress
    store.save({"runs": 1}, T0 + timedelta(days=35))
    assert store.load(T0 + timedelta(days=35) - timedelta(seconds=1)) == {"runs": 1}
    assert store.load(T0 + timedelta(days=35)) is None


def test_audit_progress_larger_than_a_dynamodb_item_round_trips_and_a_save_replaces_it_whole(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    # Given the progress of a large library: some 1.6 MB of JSON, far over DynamoDB's 400 KB item limit
    store = backend.stores.audit_progress
    big = progress_document(20_000)
    store.save(big, T0 + timedelta(days=35))
    assert store.load(T0) == big
    # When a smaller progress replaces it (views judged since)
    small = progress_document(300)
    store.save(small, T0 + timedelta(days=35))
    # Then only the new one is read, and (DynamoDB) no item of the old one is left
    assert store.load(T0) == small
    if backend.calls is not None:
        session = request.getfixturevalue("aws")
        assert len(audit_items(session)) == 2  # the head, and the one part the small document needs
        store.save(big, T0 + timedelta(days=35))
        items = audit_items(session)
        assert len(items) >= 5
        assert max(len(json.dumps(item, ensure_ascii=False).encode()) for item in items) < 400_000
        store.clear()
        assert audit_items(session) == []


def test_the_audit_progress_items_have_their_documented_layout(aws: boto3.Session, state_table: str) -> None:
    # storage/dynamo/table.py: a head naming the generation and its parts, the parts holding the JSON in order
    dynamo_backend(aws, "acct").stores.audit_progress.save({"version": 1, "runs": 2}, T0 + timedelta(days=35))
    head, part = sorted(audit_items(aws), key=lambda item: item["sk"]["S"])
    generation = head["generation"]["S"]
    until = {"N": str(int((T0 + timedelta(days=35)).timestamp()))}
    assert head == {
        "pk": {"S": "acct#audit"},
        "sk": {"S": "head"},
        "generation": {"S": generation},
        "parts": {"N": "1"},
        "expires_at": until,
    }
    assert part == {
        "pk": {"S": "acct#audit"},
        "sk": {"S": f"part#{generation}#00000"},
        "data": {"S": '{"version":1,"runs":2}'},
        "expires_at": until,
    }


def audit_items(session: boto3.Session) -> list[Mapping[str, Any]]:
    pages = session.client("dynamodb").get_paginator("scan").paginate(TableName=STATE_TABLE)
    return [item for page in pages for item in page["Items"] if item["pk"]["S"].endswith("#audit")]


def test_a_part_cut_between_bytes_of_one_letter_reads_back_whole() -> None:
    text = "ё" * 10 + "x"
    pieces = list(split_utf8(text, limit=5))
    assert "".join(pieces) == text
    assert all(len(piece.encode()) <= 5 for piece in pieces)


# --- unmatched --------------------------------------------------------------------------------------------


def test_unmatched_items_are_listed_updated_and_removed(backend: Backend) -> None:
    store = backend.stores.unmatched
    movie = UnmatchedItem("item:501", 501, "Неизвестный фильм", "no_imdb_not_found", "no IMDb id; search found 0")
    episode = UnmatchedItem(
        "episode:77:3:12", 77, "Some Show", "episode_not_on_trakt", "", season=3, episode=12, seen_at=T0
    )
    broken = UnmatchedItem("item:9", 9, "Broken", "kinopub_error", "HTML instead of JSON")
    store.put([movie, episode, broken])
    assert store.load() == [episode, movie, broken]  # by key, as text
    # When the mapping changes and a new reason is recorded, it replaces the old one
    ambiguous = UnmatchedItem("item:501", 501, "Неизвестный фильм", "ambiguous", "2 candidates")
    store.put([ambiguous])
    store.remove(["item:9", "item:9", "item:never-there"])
    assert store.load() == [episode, ambiguous]


# --- item failures ----------------------------------------------------------------------------------------


def test_item_failure_counts_grow_run_after_run_and_clear_on_success(backend: Backend) -> None:
    store = backend.stores.failures
    assert store.record([11, 12]) == {11: 1, 12: 1}
    assert store.record([11, 11]) == {11: 2}  # once per run, however often it was named
    assert store.record([11, 12]) == {11: 3, 12: 2}
    # When item 11 reads fine again
    store.clear([11])
    assert store.record([11, 12]) == {11: 1, 12: 3}
    assert store.record([]) == {}


def test_the_running_failure_counts_are_listed_in_one_read(backend: Backend) -> None:
    store = backend.stores.failures
    assert store.load() == {}
    # Given two items that failed, one of them twice, and a third that failed and then read fine
    store.record([21, 22, 23])
    store.record([21])
    store.clear([23, 99])
    if backend.calls is not None:
        backend.calls.clear()
    # When the next run asks which items are failing
    counts = store.load()
    # Then it gets each one's running count, for one Query
    assert counts == {21: 2, 22: 1}
    if backend.calls is not None:
        assert backend.calls == Counter({"Query": 1})


# --- reports ----------------------------------------------------------------------------------------------


def test_reports_are_listed_newest_first_up_to_the_limit(backend: Backend) -> None:
    store = backend.stores.reports
    for minute in range(12):
        store.put({"status": "ok", "candidates": minute, "watermark": None}, T0 + timedelta(minutes=minute))
    newest = store.latest(limit=3)
    assert [report["candidates"] for report in newest] == [11, 10, 9]
    assert newest[0] == {"status": "ok", "candidates": 11, "watermark": None}
    assert len(store.latest()) == 10
    assert len(store.latest(limit=50)) == 12


def test_a_report_of_twenty_thousand_unmatched_items_is_stored_and_read_back(backend: Backend) -> None:
    # Given a run that left 20,000 views unmatched, each with a long Cyrillic title and a long detail
    title = ("Очень длинное название сериала " * 10)[:300]
    report = SyncReport(run_id="big", started_at=T0, status="ok", candidates=20_000, unmatched=20_000)
    report.unmatched_items = [
        UnmatchedNote(number, f"{title} {number}", "numbering_mismatch", "Подробности " * 80, 1, number % 50 + 1)
        for number in range(20_000)
    ]
    report.added = [f"{title} S01E{number:02d} @ 2026-11-01T12:00Z" for number in range(60)]
    report.error = RunError("bad_response", "Пример " * 300)

    # When it is stored and read back
    backend.stores.reports.put(report.to_dict(), T0)
    (stored,) = backend.stores.reports.latest(limit=1)
    read = SyncReport.from_stored(stored)

    # Then every count is intact, the lists are cut with a line counting what was cut, and the item is small
    assert read is not None
    assert (read.status, read.candidates, read.unmatched) == ("ok", 20_000, 20_000)
    kept = len(read.unmatched_items)
    assert kept <= LIST_LIMIT
    assert stored["unmatched_items"][-1] == f"... and {20_000 - kept} more"
    assert all(entry.title.startswith(title) for entry in read.unmatched_items)
    added = stored["added"]
    assert added[-1] == f"... and {60 - len(added) + 1} more"
    if backend.calls is not None:
        assert len(json.dumps(stored, ensure_ascii=False).encode()) < MAX_REPORT_BYTES < 400 * 1024


def test_a_large_audit_report_is_stored_whole_in_its_counts_and_cut_in_its_lists(backend: Backend) -> None:
    # Given an audit that found 2,000 viewings re-imported 200 times each, with long Cyrillic titles
    title = "Очень длинное название сериала / A Very Long Series Title " * 5
    report = AuditReport(run_id="r", started_at=T0, status="ok", fix=["duplicates"], finished_at=T0)
    report.duplicates = [
        DuplicatePlays(f"{title} {n}", "2026-11-01T12:00Z", n * 1000, list(range(n * 1000 + 1, n * 1000 + 200)), [])
        for n in range(2_000)
    ]
    report.duplicates_found = 2_000 * 199
    report.missing = [MissingView(f"{title} {n}", "unknown", "never_sent", None) for n in range(300)]
    report.missing_on_trakt = report.missing_never_sent = 300

    # When it is stored and read back
    backend.stores.reports.put(report.to_dict(), T0)
    (stored,) = backend.stores.reports.latest(limit=1)
    read = AuditReport.from_stored(stored)

    # Then the counts are intact, the lists cut with a line counting what was cut, and (DynamoDB) the item small
    assert read is not None
    assert (read.status, read.duplicates_found, read.missing_on_trakt, read.fix) == ("ok", 398_000, 300, ["duplicates"])
    assert stored["duplicates"][-1] == f"... and {2_000 - len(read.duplicates)} more"
    if backend.calls is not None:
        assert len(read.duplicates) < LIST_LIMIT
        assert len(json.dumps(stored, ensure_ascii=False).encode()) < MAX_REPORT_BYTES


def test_a_fitted_report_counts_every_entry_cut() -> None:
    # Given a report's lists, already cut once at 50 (three hundred more behind them)
    data = {"status": "ok", "unmatched": 350, "added": [*(f"title {n}" for n in range(50)), "... and 300 more"]}
    # When it is fitted into a small budget
    fitted = fit_report(data, 200)
    # Then fewer entries are kept and the last line counts all the others; nothing else changed
    assert fitted["added"][-1] == f"... and {350 - (len(fitted['added']) - 1)} more"
    assert (fitted["status"], fitted["unmatched"]) == ("ok", 350)
    assert len(json.dumps(fitted)) <= 200
    # and a report that fits is left as it is
    assert fit_report(data, 10_000) == data


def test_dry_runs_are_listed_apart_and_do_not_push_real_runs_out(backend: Backend) -> None:
    store = backend.stores.reports
    # Given two real runs, then many dry runs after them
    store.put({"status": "ok", "candidates": 1}, T0)
    store.put({"status": "ok", "candidates": 2}, T0 + timedelta(minutes=1))
    for minute in range(2, 30):
        store.put({"status": "ok", "dry_run": True, "candidates": minute}, T0 + timedelta(minutes=minute))
    # When the last runs are listed
    real, dry = store.latest(limit=3), store.latest(limit=3, dry_run=True)
    # Then the real runs are all there, and the dry runs are in a list of their own
    assert [report["candidates"] for report in real] == [2, 1]
    assert [report["candidates"] for report in dry] == [29, 28, 27]


def test_a_dry_run_stored_with_the_real_runs_by_an_older_version_is_left_out_of_them(
    aws: boto3.Session, state_table: str
) -> None:
    # Given an older version's table: a dry run between real runs, all under <acct>#report
    store = dynamo_backend(aws, "acct").stores.reports
    client = aws.client("dynamodb")
    for minute, dry in ((0, False), (1, False), (2, True), (3, False)):
        report = json.dumps({"status": "ok", "dry_run": dry, "candidates": minute})
        at = (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        client.put_item(
            TableName=STATE_TABLE,
            Item={"pk": {"S": "acct#report"}, "sk": {"S": at}, "report": {"S": report}, "expires_at": {"N": "9"}},
        )
    # When the last three real runs are listed
    real = store.latest(limit=3)
    # Then they are the three real ones, read past the dry run
    assert [report["candidates"] for report in real] == [3, 1, 0]


# --- pins -------------------------------------------------------------------------------------------------


def test_pins_are_kept_per_kinopub_item(backend: Backend) -> None:
    store = backend.stores.pins
    store.put(Pin(kinopub_id=4242, trakt_type="show", trakt_id=1390, season_offset=1))
    store.put(Pin(kinopub_id=15, trakt_type="movie", trakt_id=481))
    store.put(Pin(kinopub_id=4242, trakt_type="show", trakt_id=1390, season_offset=0))
    assert store.load() == {
        4242: Pin(kinopub_id=4242, trakt_type="show", trakt_id=1390, season_offset=0),
        15: Pin(kinopub_id=15, trakt_type="movie", trakt_id=481),
    }


def test_episode_and_season_pins_are_kept_and_a_season_pin_covers_its_range(backend: Backend) -> None:
    store = backend.stores.pins
    merged = EpisodePin(5, 4, 15, ((4, 15), (4, 16)))
    store.put_numbering(merged)
    store.put_numbering(SeasonPin(5, 4, 4, episode_offset=1, from_episode=16))
    store.put_numbering(SeasonPin(5, 4, 4, episode_offset=2, from_episode=20))
    store.put_numbering(SeasonPin(5, 4, 4, episode_offset=3, from_episode=20))  # replaces the range from 20
    store.put_numbering(SeasonPin(6, 0, 0, episode_offset=-1))

    pins = store.load_numbering()

    assert pins.episode(5, 4, 15) == merged
    assert pins.episode(5, 4, 16) is None
    assert pins.season(5, 4, 15) is None
    assert pins.season(5, 4, 16) == SeasonPin(5, 4, 4, 1, 16)
    assert pins.season(5, 4, 25) == SeasonPin(5, 4, 4, 3, 20)
    assert pins.season(6, 0, 1) == SeasonPin(6, 0, 0, -1, 1)
    assert pins.items() == {5, 6}


def test_items_asked_to_be_read_again_are_kept_until_a_run_clears_them(backend: Backend) -> None:
    store = backend.stores.sync_state
    store.advance_watermark(T0)
    store.request_reread([4242, 15])
    store.request_reread([15, 7])
    store.request_reread([])
    assert store.load().reread == {4242, 15, 7}
    # When a run read 15 and 7 (and 99, never asked for), a pin made meanwhile (8) stays asked for
    store.request_reread([8])
    store.clear_reread([15, 7, 99])
    store.clear_reread([])
    state = store.load()
    assert state.reread == {4242, 8}
    assert state.watermark == T0


def test_an_unmatched_episode_remembers_the_trakt_show_it_was_looked_up_in(backend: Backend) -> None:
    store = backend.stores.unmatched
    shifted = UnmatchedItem("episode:5:2:4", 5, "Black Mirror", "numbering_mismatch", "…", 2, 4, T0, "tt2085059")
    store.put([shifted])
    assert store.load() == [shifted]


# --- one-time login (OAuth) state -----------------------------------------------------------------------------


def test_an_oauth_state_is_consumed_once(backend: Backend) -> None:
    store = backend.login_states
    data = {"code_verifier": "v" * 64, "cookie": "c" * 32}
    store.put("state-1", data, T0 + timedelta(minutes=10))
    # When the callback arrives in time, it gets the data
    assert store.consume("state-1", T0 + timedelta(minutes=2)) == data
    # Then a replay of the same callback finds nothing
    assert store.consume("state-1", T0 + timedelta(minutes=3)) is None


def test_an_expired_or_unknown_oauth_state_is_refused(backend: Backend) -> None:
    store = backend.login_states
    store.put("state-2", {"code_verifier": "v"}, T0 + timedelta(minutes=10))
    assert store.consume("state-2", T0 + timedelta(minutes=10, seconds=1)) is None
    assert store.consume("forged", T0) is None


def test_an_injected_storage_fault_fails_the_operation_before_it_happens() -> None:
    # Given a chaos schedule that throttles ledger writes
    def throttle(operation: str) -> None:
        if operation == "ledger.add":
            raise TimeoutError("injected ThrottlingException")

    stores = memory_sync_stores(faults=throttle)
    # When a batch's keys are recorded
    with pytest.raises(TimeoutError):
        stores.ledger.add(entries(3))
    # Then nothing was recorded, and other operations are untouched
    assert stores.ledger.load().keys == set()
    assert stores.lease.acquire("run", T0, T0 + LEASE) is True


# --- DynamoDB only: what is physically in the table -------------------------------------------------------


def fill_every_kind(backend: Backend) -> None:
    stores = backend.stores
    stores.lease.acquire("run-1", T0, T0 + LEASE)
    stores.sync_state.advance_watermark(T0)
    stores.sync_state.set_last_full_scan(T0)
    stores.mappings.put({"show:tt1": ({"trakt": 1}, T0 + timedelta(days=1)), "movie:x": ({"trakt": 2}, None)})
    stores.ledger.add(entries(3))
    stores.unmatched.put([UnmatchedItem("item:1", 1, "A", "not_found")])
    stores.failures.record([5])
    stores.reports.put({"status": "ok"}, T0)
    stores.pins.put(Pin(1, "movie", 2))
    stores.pins.put_numbering(EpisodePin(1, 1, 1, ((1, 1), (1, 2))))
    stores.sync_state.request_reread([1])
    stores.known_items.save([known(1, "open")], covers_history=True)
    stores.audit_progress.save({"version": 1}, T0 + timedelta(days=35))
    backend.login_states.put("s", {"v": "1"}, T0 + timedelta(minutes=10))


def raw_items(session: boto3.Session) -> list[Mapping[str, Any]]:
    return list(session.client("dynamodb").scan(TableName=STATE_TABLE)["Items"])


def test_every_item_lives_under_the_account_prefix(aws: boto3.Session, state_table: str) -> None:
    fill_every_kind(dynamo_backend(aws, "acct-a"))
    items = raw_items(aws)
    assert len(items) >= 10
    assert all(item["pk"]["S"].startswith("acct-a#") for item in items)
    # Expiring kinds carry the table's TTL attribute as whole epoch seconds
    ttl = {item["sk"]["S"]: int(item["expires_at"]["N"]) for item in items if "expires_at" in item}
    assert ttl["s"] == int((T0 + timedelta(minutes=10)).timestamp())
    assert ttl["lease"] == int((T0 + LEASE).timestamp())
    assert "movie:x" not in ttl


def test_two_accounts_in_one_table_do_not_see_each_other(aws: boto3.Session, state_table: str) -> None:
    alice = dynamo_backend(aws, "alice")
    bob = dynamo_backend(aws, "bob")
    fill_every_kind(alice)
    assert bob.stores.lease.acquire("bob-run", T0, T0 + LEASE) is True
    assert bob.stores.sync_state.load().watermark is None
    assert bob.stores.mappings.load(T0) == {}
    assert bob.stores.ledger.load().keys == set()
    assert bob.stores.unmatched.load() == []
    assert bob.stores.failures.record([5]) == {5: 1}
    assert bob.stores.reports.latest() == []
    assert bob.stores.pins.load() == {}
    assert bob.stores.pins.load_numbering().items() == set()
    assert bob.stores.sync_state.load().reread == frozenset()
    assert bob.stores.known_items.load() == KnownItems()
    assert bob.stores.audit_progress.load(T0) is None
    assert alice.stores.audit_progress.load(T0) == {"version": 1}
    assert bob.login_states.consume("s", T0) is None
    assert alice.login_states.consume("s", T0) == {"v": "1"}


def test_expired_items_that_dynamodb_has_not_deleted_yet_are_not_read(aws: boto3.Session, state_table: str) -> None:
    # DynamoDB's TTL deletes lazily (up to days late); moto never does, which makes it the worst case.
    mappings = dynamo_backend(aws).stores.mappings
    mappings.put({"seasons:1": ({"episodes": 1}, T0)})
    assert any(item["sk"]["S"] == "seasons:1" for item in raw_items(aws))
    assert mappings.load(T0 + timedelta(seconds=1)) == {}


def test_the_item_layout_is_the_one_existing_deployments_hold(aws: boto3.Session, state_table: str) -> None:
    """Deployed tables hold items in this exact form: pk kinds, sk formats, attribute names and JSON forms.
    A change here would strand every existing deployment's watermark, ledger and cache."""
    # Given one item of every kind, written through the adapters
    backend = dynamo_backend(aws, "acct")
    stores = backend.stores
    stores.lease.acquire("run-1", T0, T0 + timedelta(minutes=15, milliseconds=1))
    stores.sync_state.advance_watermark(T0 + timedelta(milliseconds=250))
    stores.sync_state.set_last_full_scan(T0)
    stores.sync_state.set_scan_progress([5, 3])
    stores.sync_state.request_reread([9])
    stores.sync_state.set_trakt_reads([T0 + timedelta(seconds=61, milliseconds=250), T0 + timedelta(seconds=1)])
    stores.mappings.put(
        {
            "show:imdb:tt1": ({"trakt": 1}, T0 + timedelta(days=1)),
            "seasons:1": ({"fetched_at": 5, "episodes": {"1:1": 9}}, None),
        }
    )
    stores.ledger.add(
        [
            LedgerEntry("movie:tt1:2026-10-01T20:15Z", "movie:1", "2026-10-01T20:15Z", T0 + timedelta(seconds=1)),
            LedgerEntry("episode:9:unknown", "episode:2:1:1", "unknown", T0),
        ]
    )
    stores.unmatched.put(
        [
            UnmatchedItem("item:1", 1, "A", "not_found", "d"),
            UnmatchedItem("episode:2:1:3", 2, "B", "episode_not_on_trakt", "", 1, 3, T0, "tt2085059"),
        ]
    )
    stores.failures.record([7, 7, 8])
    stores.failures.record([7])
    stores.reports.put({"status": "ok", "n": 1}, T0)
    stores.reports.put({"status": "ok", "dry_run": True}, T0)
    stores.pins.put(Pin(4, "show", 5, -1))
    stores.pins.put_numbering(EpisodePin(4, 4, 15, ((4, 15), (4, 16))))
    stores.pins.put_numbering(SeasonPin(4, 2, 2, episode_offset=-1, from_episode=5))
    backend.login_states.put("s", {"v": "1"}, T0 + timedelta(minutes=10))
    stores.known_items.save(
        [
            KnownItem(3, "complete"),
            KnownItem(2, "to_read", "Сериал / Show", "serial", 2019, "tt0944947", {21: 1790000000}),
        ],
        covers_history=True,
    )
    # When the table is read raw
    items = sorted(raw_items(aws), key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    book_sk = items[3]["sk"]["S"]
    ledger_sk = items[4]["sk"]["S"]
    # Then every item is exactly as it always was (the ledger's sk ends in a random suffix; so do the book's)
    assert re.fullmatch(r"2026-11-01T12:00:00\.000Z#[0-9a-f]{32}", ledger_sk)
    assert re.fullmatch(r"0000000001#[0-9a-f]{32}#0000", book_sk)
    assert items == [
        {
            "pk": {"S": "acct#dryrun"},
            "sk": {"S": "2026-11-01T12:00:00.000Z"},
            "report": {"S": '{"status": "ok", "dry_run": true}'},
            "expires_at": {"N": "1801310400"},
        },
        {"pk": {"S": "acct#failures"}, "sk": {"S": "7"}, "failures": {"N": "2"}},
        {"pk": {"S": "acct#failures"}, "sk": {"S": "8"}, "failures": {"N": "1"}},
        {
            "pk": {"S": "acct#items"},
            "sk": {"S": book_sk},
            "items": {"S": '[[2,"r","serial",2019,"tt0944947","Сериал / Show",[[21,1790000000]]],[3,"c"]]'},
            "covers_history": {"BOOL": True},
        },
        {
            "pk": {"S": "acct#ledger"},
            "sk": {"S": ledger_sk},
            "entries": {
                "S": '[["movie:tt1:2026-10-01T20:15Z", "movie:1", "2026-10-01T20:15Z"], '
                '["episode:9:unknown", "episode:2:1:1", "unknown"]]'
            },
        },
        {
            "pk": {"S": "acct#map"},
            "sk": {"S": "seasons:1"},
            "value": {"S": '{"fetched_at": 5, "episodes": {"1:1": 9}}'},
        },
        {
            "pk": {"S": "acct#map"},
            "sk": {"S": "show:imdb:tt1"},
            "value": {"S": '{"trakt": 1}'},
            "expires_at": {"N": "1793620800"},
        },
        {
            "pk": {"S": "acct#numbering"},
            "sk": {"S": "e:4:4:15"},
            "trakt_episodes": {"S": "[[4, 15], [4, 16]]"},
        },
        {
            "pk": {"S": "acct#numbering"},
            "sk": {"S": "s:4:2:5"},
            "trakt_season": {"N": "2"},
            "episode_offset": {"N": "-1"},
        },
        {"pk": {"S": "acct#oauth"}, "sk": {"S": "s"}, "data": {"S": '{"v": "1"}'}, "expires_at": {"N": "1793535000"}},
        {
            "pk": {"S": "acct#pin"},
            "sk": {"S": "4"},
            "trakt_type": {"S": "show"},
            "trakt_id": {"N": "5"},
            "season_offset": {"N": "-1"},
        },
        {
            "pk": {"S": "acct#report"},
            "sk": {"S": "2026-11-01T12:00:00.000Z"},
            "report": {"S": '{"status": "ok", "n": 1}'},
            "expires_at": {"N": "1801310400"},
        },
        {
            "pk": {"S": "acct#sync"},
            "sk": {"S": "lease"},
            "owner": {"S": "run-1"},
            "expires_at": {"N": "1793535301"},
            "taken_at": {"S": "2026-11-01T12:00:00.000Z"},
        },
        {
            "pk": {"S": "acct#sync"},
            "sk": {"S": "state"},
            "last_success_at": {"S": "2026-11-01T12:00:00.250Z"},
            "last_full_scan": {"S": "2026-11-01T12:00:00.000Z"},
            "scan_done": {"S": "[3, 5]"},
            "reread": {"NS": ["9"]},
            "trakt_gets": {"S": '{"from":"2026-11-01T12:00:01.000Z","tenths":[0,603]}'},
        },
        {
            "pk": {"S": "acct#unmatched"},
            "sk": {"S": "episode:2:1:3"},
            "kinopub_id": {"N": "2"},
            "title": {"S": "B"},
            "reason": {"S": "episode_not_on_trakt"},
            "detail": {"S": ""},
            "season": {"N": "1"},
            "episode": {"N": "3"},
            "seen_at": {"S": "2026-11-01T12:00:00+00:00"},
            "trakt_show": {"S": "tt2085059"},
        },
        {
            "pk": {"S": "acct#unmatched"},
            "sk": {"S": "item:1"},
            "kinopub_id": {"N": "1"},
            "title": {"S": "A"},
            "reason": {"S": "not_found"},
            "detail": {"S": "d"},
        },
    ]


def test_the_book_of_known_items_stays_a_few_items_however_many_runs_saved(
    aws: boto3.Session, state_table: str
) -> None:
    # Given a hundred runs that each saved a change
    store = dynamo_backend(aws, "acct").stores.known_items
    for run in range(100):
        store.save([known(run % 7, "open"), known(1000 + run, "complete")], covers_history=run == 0)
    # Then the table holds at most COMPACT_AFTER saves of the book, none near DynamoDB's item limit
    items = [item for item in raw_items(aws) if item["pk"]["S"] == "acct#items"]
    assert len({item["sk"]["S"].split("#")[0] for item in items}) <= COMPACT_AFTER
    assert max(len(item["items"]["S"].encode()) for item in items) < 400_000
    # and a new run (a fresh adapter) loads every item's latest state
    book = DynamoKnownItemStore(Table(aws.client("dynamodb"), STATE_TABLE, "acct")).load()
    assert book.items == {
        **{n: known(n, "open") for n in range(7)},
        **{1000 + n: known(1000 + n, "complete") for n in range(100)},
    }
    assert book.covers_history is True


class ThrottlingClient:
    """A DynamoDB client whose BatchWriteItem leaves everything but the first request unprocessed, twice."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.throttled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, **kwargs: Any) -> Any:
        ((table, requests),) = kwargs["RequestItems"].items()
        if self.throttled < 2 and len(requests) > 1:
            self.throttled += 1
            self._client.batch_write_item(RequestItems={table: requests[:1]})
            return {"UnprocessedItems": {table: requests[1:]}}
        return self._client.batch_write_item(**kwargs)


def test_unprocessed_batch_writes_are_retried_with_backoff(aws: boto3.Session, state_table: str) -> None:
    client = ThrottlingClient(aws.client("dynamodb"))
    waits: list[float] = []
    store = DynamoMappingStore(Table(client, STATE_TABLE, "acct-a", sleep=waits.append))  # type: ignore[arg-type]
    store.put({f"show:{n}": ({"trakt": n}, None) for n in range(30)})
    assert len(store.load(T0)) == 30
    assert client.throttled == 2
    assert len(waits) == 2
    assert waits[1] > waits[0]


# --- wiring -----------------------------------------------------------------------------------------------


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield f"http://{host}:{port}"
    server.stop()


def test_aws_endpoint_url_alone_points_the_stores_at_a_moto_server(moto_server: str) -> None:
    # Given a moto server with the deployment's table and secrets, found through AWS_ENDPOINT_URL only
    session = boto3.Session()
    session.client("dynamodb").create_table(
        TableName=STATE_TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sm = session.client("secretsmanager")
    sm.create_secret(Name="kp", SecretString='{"client_id": "kp-app"}')
    sm.create_secret(Name="tr", SecretString='{"client_id": "trakt-app"}')
    settings = Settings(kinopub_secret_id="kp", trakt_secret_id="tr", state_table_name=STATE_TABLE, account_id="me")
    # When the handlers wire their stores from settings
    stores = aws_sync_stores(settings)
    login_states, trakt_tokens = aws_login_stores(settings)
    # Then they talk to that server
    assert stores.kinopub_tokens.load().secret.client_id == "kp-app"
    assert stores.trakt_tokens.load().secret.client_id == "trakt-app"
    assert trakt_tokens.load().secret.client_id == "trakt-app"
    assert stores.lease.acquire("run", T0, T0 + LEASE) is True
    assert session.client("dynamodb").scan(TableName=STATE_TABLE)["Items"][0]["pk"] == {"S": "me#sync"}
    login_states.put("s", {"v": "1"}, T0 + LEASE)
    assert login_states.consume("s", T0) == {"v": "1"}


def test_an_empty_aws_endpoint_url_as_deployed_means_aws_itself(
    aws: boto3.Session, state_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed functions' environment: AWS_ENDPOINT_URL declared by the template, empty
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    aws.client("secretsmanager").create_secret(Name="kp", SecretString='{"client_id": "kp-app"}')
    aws.client("secretsmanager").create_secret(Name="tr", SecretString='{"client_id": "trakt-app"}')
    settings = Settings(kinopub_secret_id="kp", trakt_secret_id="tr", state_table_name=STATE_TABLE, account_id="me")
    # When the handler wires its stores
    stores = aws_sync_stores(settings)
    # Then the empty value is gone, and the stores reach AWS (here moto's) at its own endpoints
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert stores.kinopub_tokens.load().secret.client_id == "kp-app"
    assert stores.lease.acquire("run", T0, T0 + LEASE) is True


def test_aws_stores_names_the_missing_variables() -> None:
    with pytest.raises(ValueError, match="STATE_TABLE_NAME"):
        aws_sync_stores(Settings(kinopub_secret_id="kp", trakt_secret_id="tr"))
    with pytest.raises(ValueError, match="STATE_TABLE_NAME"):
        aws_login_stores(Settings(kinopub_secret_id="kp", trakt_secret_id="tr"))


def test_trakt_reads_this_version_cannot_read_count_as_none(aws: boto3.Session, state_table: str) -> None:
    # Given a state item whose trakt_gets another version wrote in a form this one does not know
    backend = dynamo_backend(aws, "acct")
    backend.stores.sync_state.advance_watermark(T0)
    aws.client("dynamodb").update_item(
        TableName=STATE_TABLE,
        Key={"pk": {"S": "acct#sync"}, "sk": {"S": "state"}},
        UpdateExpression="SET trakt_gets = :v",
        ExpressionAttributeValues={":v": {"S": '{"since": 5}'}},
    )
    # Then the state still reads, without reads (they only pace a run: nothing is lost without them)
    state = backend.stores.sync_state.load()
    assert (state.watermark, state.trakt_reads) == (T0, ())
