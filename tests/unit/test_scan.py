"""The scan and watermark rule, as a table: what a run reads given the stored state and the book of known items,
and what it stores when it ends given what it achieved. A wrong row here is a view that is never synced, or a
view read forever."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from kinotrakt.storage.ports import KnownItem, KnownItems, KnownItemState, SyncState
from kinotrakt.sync.scan import RunProgress, ScanDecision, ScanPlan, item_state, plan_scan, settle_scan

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EVERY = timedelta(hours=24)
OVERLAP = timedelta(hours=72)
WATERMARK = NOW - timedelta(hours=1)
RECENT_FULL = NOW - timedelta(hours=5)
SCAN_BEGAN = NOW - timedelta(hours=2)
NONE: frozenset[int] = frozenset()


def book(states: dict[int, KnownItemState], *, covers_history: bool = True) -> KnownItems:
    return KnownItems({item_id: KnownItem(item_id, state) for item_id, state in states.items()}, covers_history)


NO_BOOK = KnownItems()
BOOK = book({1: "complete", 2: "open", 3: "open"})
RESUMING = book({1: "complete", 2: "open", 3: "to_read", 4: "to_read", 5: "to_read"})


def plan(state: SyncState, known: KnownItems = BOOK) -> ScanPlan:
    return plan_scan(state, known, NOW, full_rescan_every=EVERY, overlap=OVERLAP)


@dataclass(frozen=True)
class Planned:
    full_scan: bool
    page_history: bool
    since: datetime | None
    from_book: frozenset[int] = NONE
    already_scanned: frozenset[int] = NONE


INCREMENTAL = SyncState(watermark=WATERMARK, last_full_scan=RECENT_FULL)
FULL = SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY)
RESUMED = SyncState(watermark=WATERMARK, last_full_scan=SCAN_BEGAN)
LEGACY = SyncState(watermark=WATERMARK, last_full_scan=SCAN_BEGAN, scan_done=frozenset({1, 2}))

PLANS = {
    "first run: every page, every item": (SyncState(), NO_BOOK, Planned(True, True, None)),
    "incremental: the overlap before the watermark": (INCREMENTAL, BOOK, Planned(False, True, WATERMARK - OVERLAP)),
    "full rescan due, the book covers history: the recent rows and the book's open items": (
        FULL,
        BOOK,
        Planned(True, True, WATERMARK - OVERLAP, from_book=frozenset({2, 3})),
    ),
    "full rescan due, no book yet (a deployment from before it): every page": (
        FULL,
        NO_BOOK,
        Planned(True, True, None),
    ),
    "full rescan due, a book that does not cover history yet: every page": (
        FULL,
        replace(BOOK, covers_history=False),
        Planned(True, True, None),
    ),
    "full rescan not due yet": (
        SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY + timedelta(seconds=1)),
        BOOK,
        Planned(False, True, WATERMARK - OVERLAP),
    ),
    "no full scan ever stored": (SyncState(watermark=WATERMARK), BOOK, Planned(True, True, None)),
    "a full scan that stopped goes on with what it kept, paging nothing, even when a rescan is not due": (
        RESUMED,
        RESUMING,
        Planned(True, False, None, from_book=frozenset({3, 4, 5})),
    ),
    "the first backfill that stopped goes on the same way (no watermark yet)": (
        SyncState(last_full_scan=SCAN_BEGAN),
        RESUMING,
        Planned(True, False, None, from_book=frozenset({3, 4, 5})),
    ),
    "a full scan an older version began pages history again, skipping what it finished": (
        LEGACY,
        NO_BOOK,
        Planned(True, True, None, already_scanned=frozenset({1, 2})),
    ),
    "items pinned since the last run are read too, in an incremental run": (
        replace(INCREMENTAL, reread=frozenset({7})),
        BOOK,
        Planned(False, True, WATERMARK - OVERLAP),
    ),
}


@pytest.mark.parametrize(("state", "known", "expected"), PLANS.values(), ids=PLANS.keys())
def test_what_a_run_reads(state: SyncState, known: KnownItems, expected: Planned) -> None:
    planned = plan(state, known)
    assert (
        planned.full_scan,
        planned.page_history,
        planned.since,
        planned.from_book,
        planned.already_scanned,
    ) == (
        expected.full_scan,
        expected.page_history,
        expected.since,
        expected.from_book,
        expected.already_scanned,
    )
    assert planned.started == NOW
    assert planned.scan_started == state.last_full_scan
    assert planned.also_read == state.reread


TO_DO = frozenset({3, 4, 5})
DONE = RunProgress(TO_DO, examined=TO_DO, failed=NONE, left_over=NONE, interrupted=False, holding_back=False)
DONE = replace(DONE, complete=frozenset({3}))
SETTLED = {3: "complete", 4: "open", 5: "open"}
STOPPED = replace(DONE, left_over=frozenset({5}), interrupted=True)
UNREAD = replace(DONE, to_do=TO_DO | {6}, examined=frozenset({3, 4}), interrupted=True)
FAILING = replace(DONE, failed=frozenset({4}), holding_back=True)
GAVE_UP = replace(DONE, failed=frozenset({4}))
STOPPED_AT_ONCE = RunProgress(TO_DO, NONE, NONE, NONE, interrupted=True, holding_back=False)
PINNED = replace(INCREMENTAL, reread=frozenset({4, 5, 9}))


def settled(**changes: KnownItemState) -> dict[int, KnownItemState]:
    states: dict[int, KnownItemState] = {3: "complete", 4: "open", 5: "open"}
    states.update({int(name.removeprefix("i")): state for name, state in changes.items()})
    return states


SETTLEMENTS = {
    "first run, everything synced: the book now covers history": (
        SyncState(),
        NO_BOOK,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), covers_history=True, watermark=NOW, last_full_scan=NOW),
    ),
    "incremental, everything synced: the watermark moves to the reading's start": (
        INCREMENTAL,
        BOOK,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), watermark=NOW),
    ),
    "rescan from the book, everything synced": (
        FULL,
        BOOK,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), watermark=NOW, last_full_scan=NOW),
    ),
    "rescan paging every page (no book yet), everything synced: the book now covers history": (
        FULL,
        NO_BOOK,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), covers_history=True, watermark=NOW, last_full_scan=NOW),
    ),
    "incremental, interrupted: nothing moves; what was settled is kept, the rest stays open": (
        INCREMENTAL,
        BOOK,
        STOPPED,
        False,
        ScanDecision("partial", NONE, settled()),
    ),
    "incremental, a failed item holds back: nothing moves, the item stays open": (
        INCREMENTAL,
        BOOK,
        FAILING,
        False,
        ScanDecision("partial", NONE, settled()),
    ),
    "first run stopped: what it left is kept to read, with the scan's start; the book covers history": (
        SyncState(),
        NO_BOOK,
        UNREAD,
        False,
        ScanDecision("partial", NONE, settled(i5="to_read", i6="to_read"), covers_history=True, last_full_scan=NOW),
    ),
    "full scan, views left for the next run: their item is read again": (
        FULL,
        BOOK,
        STOPPED,
        False,
        ScanDecision("partial", NONE, settled(i5="to_read"), last_full_scan=NOW),
    ),
    "full scan, a failed item holds back: it is read again": (
        FULL,
        NO_BOOK,
        FAILING,
        False,
        ScanDecision("partial", NONE, settled(i4="to_read"), covers_history=True, last_full_scan=NOW),
    ),
    "full scan stopped before any item: every item is kept to read, and the scan's start": (
        FULL,
        BOOK,
        STOPPED_AT_ONCE,
        False,
        ScanDecision("partial", NONE, {3: "to_read", 4: "to_read", 5: "to_read"}, last_full_scan=NOW),
    ),
    "resumed full scan, interrupted again: the rest stays to read, its start stays": (
        RESUMED,
        RESUMING,
        STOPPED,
        False,
        ScanDecision("partial", NONE, settled(i5="to_read")),
    ),
    "resumed full scan completes: the watermark goes to when the scan began": (
        RESUMED,
        RESUMING,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), watermark=SCAN_BEGAN, last_full_scan=SCAN_BEGAN),
    ),
    "a failed item a completed scan gave up on stays open for the next rescans": (
        FULL,
        BOOK,
        GAVE_UP,
        False,
        ScanDecision("ok", NONE, settled(), watermark=NOW, last_full_scan=NOW),
    ),
    "an older version's unfinished scan stops again: its rest goes into the book, its progress is forgotten": (
        LEGACY,
        NO_BOOK,
        STOPPED,
        False,
        ScanDecision("partial", NONE, settled(i5="to_read"), clear_scan_progress=True),
    ),
    "an older version's unfinished scan completes: the watermark goes to when it began": (
        LEGACY,
        NO_BOOK,
        DONE,
        False,
        ScanDecision("ok", NONE, settled(), watermark=SCAN_BEGAN, last_full_scan=SCAN_BEGAN, clear_scan_progress=True),
    ),
    "dry run, everything read: ok, nothing stored": (FULL, BOOK, DONE, True, ScanDecision("ok")),
    "dry run, interrupted: partial, nothing stored (not even progress)": (
        FULL,
        BOOK,
        STOPPED,
        True,
        ScanDecision("partial"),
    ),
    "dry run of a resumed scan: nothing stored": (RESUMED, RESUMING, DONE, True, ScanDecision("ok")),
    "pinned items read are no longer asked for; one the run did not read stays": (
        PINNED,
        BOOK,
        DONE,
        False,
        ScanDecision("ok", frozenset({4, 5}), settled(), watermark=NOW),
    ),
    "a pinned item left for the next run stays asked for": (
        PINNED,
        BOOK,
        STOPPED,
        False,
        ScanDecision("partial", frozenset({4}), settled()),
    ),
    "a pinned item that failed to read was read (the failure holds the watermark back instead)": (
        PINNED,
        BOOK,
        FAILING,
        False,
        ScanDecision("partial", frozenset({4, 5}), settled()),
    ),
    "dry run: pinned items stay asked for": (PINNED, BOOK, DONE, True, ScanDecision("ok")),
}


@pytest.mark.parametrize(
    ("state", "known", "progress", "dry_run", "expected"), SETTLEMENTS.values(), ids=SETTLEMENTS.keys()
)
def test_what_a_run_stores_when_it_ends(
    state: SyncState, known: KnownItems, progress: RunProgress, dry_run: bool, expected: ScanDecision
) -> None:
    assert settle_scan(plan(state, known), progress, dry_run=dry_run) == expected


ITEM_STATES = {
    "every episode watched, every view in the ledger: complete": (True, ["e:1", "e:2"], {"e:1", "e:2"}, "complete"),
    "a view not in the ledger (unmatched, or not sent yet): open": (True, ["e:1", "e:2"], {"e:1"}, "open"),
    "an episode not watched yet, though every view is in the ledger: open": (False, ["e:1"], {"e:1"}, "open"),
    "a film whose parts are not all watched: open": (False, [], set(), "open"),
}


@pytest.mark.parametrize(("whole", "views", "ledger", "expected"), ITEM_STATES.values(), ids=ITEM_STATES.keys())
def test_when_a_read_item_is_complete(whole: bool, views: list[str], ledger: set[str], expected: str) -> None:
    assert item_state(whole, views, ledger) == expected


def stored_after(state: SyncState, known: KnownItems, decision: ScanDecision) -> tuple[SyncState, KnownItems]:
    """The stores after the pipeline applied ``decision`` (the watermark only moves forward)."""
    watermark = state.watermark
    if decision.watermark is not None and (watermark is None or decision.watermark > watermark):
        watermark = decision.watermark
    scan_done = frozenset() if decision.clear_scan_progress else state.scan_done
    reread = state.reread - (decision.reread_done or frozenset())
    items = dict(known.items)
    items.update((item_id, KnownItem(item_id, item)) for item_id, item in decision.items.items())
    return (
        SyncState(watermark, decision.last_full_scan or state.last_full_scan, scan_done, reread),
        KnownItems(items, known.covers_history or decision.covers_history),
    )


def test_a_backfill_over_three_runs_reads_every_item_once_and_pages_history_once() -> None:
    # Given a first run over a history of items 1-6, which takes three runs an hour apart
    state, known = SyncState(), NO_BOOK
    read: list[int] = []
    paged = 0
    runs = [({1, 2}, True), ({3, 4}, True), ({5, 6}, False)]
    for hour, (items, stopped) in enumerate(runs):
        now = NOW + timedelta(hours=hour)
        planned = plan_scan(state, known, now, full_rescan_every=EVERY, overlap=OVERLAP)
        assert planned.full_scan
        to_do = frozenset(range(1, 7)) if planned.page_history else planned.from_book
        paged += planned.page_history
        read += sorted(items)
        progress = RunProgress(to_do, frozenset(items), NONE, NONE, interrupted=stopped, holding_back=False)
        decision = settle_scan(planned, progress, dry_run=False)
        state, known = stored_after(state, known, decision)
        # While it is unfinished, the watermark stays unset
        if stopped:
            assert decision.status == "partial"
            assert state.watermark is None
    # Then history was paged once, every item was read once, and the watermark and the full-scan time are the
    # first run's start
    assert paged == 1
    assert read == [1, 2, 3, 4, 5, 6]
    assert state == SyncState(watermark=NOW, last_full_scan=NOW)
    assert known.in_state("to_read") == NONE
    assert known.covers_history
    # and the run after it is incremental again, from that watermark
    after = plan_scan(state, known, NOW + timedelta(hours=3), full_rescan_every=EVERY, overlap=OVERLAP)
    assert (after.full_scan, after.since) == (False, NOW - OVERLAP)


def test_the_daily_rescan_reads_only_the_items_that_can_still_change() -> None:
    # Given a book after the backfill: items 1-3 complete, 4-5 open
    state = SyncState(watermark=NOW - timedelta(days=1), last_full_scan=NOW - timedelta(days=1))
    known = book({1: "complete", 2: "complete", 3: "complete", 4: "open", 5: "open"})
    # When the rescan comes due, and item 4's last episode was watched since (everything now in the ledger)
    planned = plan(state, known)
    assert planned.from_book == frozenset({4, 5})
    progress = RunProgress(frozenset({4, 5}), frozenset({4, 5}), NONE, NONE, False, False, complete=frozenset({4}))
    state, known = stored_after(state, known, settle_scan(planned, progress, dry_run=False))
    # Then the next rescan reads only item 5
    tomorrow = plan_scan(state, known, NOW + EVERY, full_rescan_every=EVERY, overlap=OVERLAP)
    assert tomorrow.from_book == frozenset({5})
