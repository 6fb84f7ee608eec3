"""The scan and watermark rule, as a table: what a run reads given the stored state, and what it stores when it
ends given what it achieved. A wrong row here is a view that is never synced, or a view read forever."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from kinotrakt.storage.ports import SyncState
from kinotrakt.sync.scan import RunProgress, ScanDecision, ScanPlan, plan_scan, settle_scan

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EVERY = timedelta(hours=24)
OVERLAP = timedelta(hours=72)
WATERMARK = NOW - timedelta(hours=1)
RECENT_FULL = NOW - timedelta(hours=5)
SCAN_BEGAN = NOW - timedelta(hours=2)


def plan(state: SyncState) -> ScanPlan:
    return plan_scan(state, NOW, full_rescan_every=EVERY, overlap=OVERLAP)


@dataclass(frozen=True)
class Planned:
    full_scan: bool
    since: datetime | None
    already_scanned: frozenset[int] = frozenset()


PLANS = {
    "first run: every item": (SyncState(), Planned(full_scan=True, since=None)),
    "incremental: the overlap before the watermark": (
        SyncState(watermark=WATERMARK, last_full_scan=RECENT_FULL),
        Planned(full_scan=False, since=WATERMARK - OVERLAP),
    ),
    "full rescan due": (
        SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY),
        Planned(full_scan=True, since=None),
    ),
    "full rescan not due yet": (
        SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY + timedelta(seconds=1)),
        Planned(full_scan=False, since=WATERMARK - OVERLAP),
    ),
    "no full scan ever stored": (SyncState(watermark=WATERMARK), Planned(full_scan=True, since=None)),
    "an unfinished full scan goes on, even when a rescan is not due": (
        SyncState(watermark=WATERMARK, last_full_scan=SCAN_BEGAN, scan_done=frozenset({1, 2})),
        Planned(full_scan=True, since=None, already_scanned=frozenset({1, 2})),
    ),
    "items pinned since the last run are read too, in an incremental run": (
        SyncState(watermark=WATERMARK, last_full_scan=RECENT_FULL, reread=frozenset({7})),
        Planned(full_scan=False, since=WATERMARK - OVERLAP),
    ),
}


@pytest.mark.parametrize(("state", "expected"), PLANS.values(), ids=PLANS.keys())
def test_what_a_run_reads(state: SyncState, expected: Planned) -> None:
    planned = plan(state)
    assert (planned.full_scan, planned.since, planned.already_scanned) == (
        expected.full_scan,
        expected.since,
        expected.already_scanned,
    )
    assert planned.started == NOW
    assert planned.scan_started == state.last_full_scan
    assert planned.also_read == state.reread


INCREMENTAL = SyncState(watermark=WATERMARK, last_full_scan=RECENT_FULL)
FULL = SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY)
RESUMED = SyncState(watermark=WATERMARK, last_full_scan=SCAN_BEGAN, scan_done=frozenset({1, 2}))
NONE: frozenset[int] = frozenset()
DONE = RunProgress(examined=frozenset({3, 4, 5}), failed=NONE, left_over=NONE, interrupted=False, holding_back=False)
STOPPED = replace(DONE, left_over=frozenset({5}), interrupted=True)
FAILING = replace(DONE, failed=frozenset({4}), holding_back=True)
STOPPED_AT_ONCE = RunProgress(NONE, NONE, NONE, interrupted=True, holding_back=False)
PINNED = SyncState(watermark=WATERMARK, last_full_scan=RECENT_FULL, reread=frozenset({4, 5, 9}))

SETTLEMENTS = {
    "first run, everything synced": (
        SyncState(),
        DONE,
        False,
        ScanDecision("ok", reread_done=NONE, watermark=NOW, last_full_scan=NOW),
    ),
    "incremental, everything synced: the watermark moves to the reading's start": (
        INCREMENTAL,
        DONE,
        False,
        ScanDecision("ok", reread_done=NONE, watermark=NOW),
    ),
    "due full rescan, everything synced": (
        FULL,
        DONE,
        False,
        ScanDecision("ok", reread_done=NONE, watermark=NOW, last_full_scan=NOW),
    ),
    "incremental, interrupted: nothing moves": (INCREMENTAL, STOPPED, False, ScanDecision("partial", NONE)),
    "incremental, a failed item holds back: nothing moves": (
        INCREMENTAL,
        FAILING,
        False,
        ScanDecision("partial", NONE),
    ),
    "full scan, interrupted: its finished items and its start are kept": (
        FULL,
        STOPPED,
        False,
        ScanDecision("partial", NONE, scan_progress=frozenset({3, 4}), last_full_scan=NOW),
    ),
    "full scan, a failed item holds back: the item stays unfinished": (
        FULL,
        FAILING,
        False,
        ScanDecision("partial", NONE, scan_progress=frozenset({3, 5}), last_full_scan=NOW),
    ),
    "full scan stopped before any item: no progress, no start": (
        FULL,
        STOPPED_AT_ONCE,
        False,
        ScanDecision("partial", NONE, scan_progress=frozenset()),
    ),
    "resumed full scan, interrupted again: progress grows, its start stays": (
        RESUMED,
        STOPPED,
        False,
        ScanDecision("partial", NONE, scan_progress=frozenset({1, 2, 3, 4})),
    ),
    "resumed full scan completes: the watermark goes to when the scan began": (
        RESUMED,
        DONE,
        False,
        ScanDecision("ok", NONE, watermark=SCAN_BEGAN, last_full_scan=SCAN_BEGAN, clear_scan_progress=True),
    ),
    "dry run, everything read: ok, nothing stored": (FULL, DONE, True, ScanDecision("ok")),
    "dry run, interrupted: partial, nothing stored (not even progress)": (
        FULL,
        STOPPED,
        True,
        ScanDecision("partial"),
    ),
    "dry run of a resumed scan: nothing stored": (RESUMED, DONE, True, ScanDecision("ok")),
    "pinned items read are no longer asked for; one the run did not read stays": (
        PINNED,
        DONE,
        False,
        ScanDecision("ok", reread_done=frozenset({4, 5}), watermark=NOW),
    ),
    "a pinned item left for the next run stays asked for": (
        PINNED,
        STOPPED,
        False,
        ScanDecision("partial", reread_done=frozenset({4})),
    ),
    "a pinned item that failed to read was read (the failure holds the watermark back instead)": (
        PINNED,
        FAILING,
        False,
        ScanDecision("partial", reread_done=frozenset({4, 5})),
    ),
    "dry run: pinned items stay asked for": (PINNED, DONE, True, ScanDecision("ok")),
}


@pytest.mark.parametrize(("state", "progress", "dry_run", "expected"), SETTLEMENTS.values(), ids=SETTLEMENTS.keys())
def test_what_a_run_stores_when_it_ends(
    state: SyncState, progress: RunProgress, dry_run: bool, expected: ScanDecision
) -> None:
    assert settle_scan(plan(state), progress, dry_run=dry_run) == expected


def stored_after(state: SyncState, decision: ScanDecision) -> SyncState:
    """The state store after the pipeline applied ``decision`` (the watermark only moves forward)."""
    watermark = state.watermark
    if decision.watermark is not None and (watermark is None or decision.watermark > watermark):
        watermark = decision.watermark
    scan_done = state.scan_done if decision.scan_progress is None else decision.scan_progress
    if decision.clear_scan_progress:
        scan_done = frozenset()
    reread = state.reread - (decision.reread_done or frozenset())
    return SyncState(watermark, decision.last_full_scan or state.last_full_scan, scan_done, reread)


def test_a_full_scan_resumed_over_three_runs_never_reads_an_item_twice_and_keeps_its_start() -> None:
    # Given a due full rescan of items 1-6, which takes three runs an hour apart
    state = SyncState(watermark=WATERMARK, last_full_scan=NOW - EVERY)
    read: list[int] = []
    runs = [({1, 2}, True), ({3, 4}, True), ({5, 6}, False)]
    for hour, (items, stopped) in enumerate(runs):
        now = NOW + timedelta(hours=hour)
        planned = plan_scan(state, now, full_rescan_every=EVERY, overlap=OVERLAP)
        assert planned.full_scan
        assert not planned.already_scanned & items
        read += sorted(items)
        progress = RunProgress(frozenset(items), NONE, NONE, interrupted=stopped, holding_back=False)
        decision = settle_scan(planned, progress, dry_run=False)
        state = stored_after(state, decision)
        # While it is unfinished, the watermark stays where it was
        if stopped:
            assert decision.status == "partial"
            assert state.watermark == WATERMARK
    # Then every item was read once, and the watermark and the full-scan time are the first run's start
    assert read == [1, 2, 3, 4, 5, 6]
    assert state == SyncState(watermark=NOW, last_full_scan=NOW, scan_done=frozenset())
    # and the run after it is incremental again, from that watermark
    after = plan_scan(state, NOW + timedelta(hours=3), full_rescan_every=EVERY, overlap=OVERLAP)
    assert (after.full_scan, after.since) == (False, NOW - OVERLAP)
