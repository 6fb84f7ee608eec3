"""Which Kinopub items a run reads, and what it stores about that when it ends: the rule that keeps a view
from ever being skipped. Pure functions: the stored state, the time and what the run achieved go in, a
decision comes out; the pipeline does the reading and the storing.

- A run reads either only the history rows newer than ``watermark - overlap`` (incremental), or every item in
  history (a full scan): on the first run, and every ``FULL_RESCAN_HOURS``. Marking a title watched by hand
  on Kinopub changes its ``/v1/watching`` state without playing anything, so its ``/v1/history`` row need not
  move: only re-reading every item catches such a view.
- The watermark moves only when everything read was synced (or recorded as unmatched), and only to the time
  the reading started: a view finished while the run was reading is newer than the watermark, so the next run
  still sees it.
- A full scan too big for one run remembers the items it finished (``scan_done``) and goes on where it
  stopped, instead of starting over and never getting past the same point.
- An item the user pinned since the last run (``reread``) is read whatever its history rows say, so a pin takes
  effect on the next run rather than after the next full rescan; once read, it is no longer asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kinotrakt.storage.ports import SyncState


@dataclass(frozen=True)
class ScanPlan:
    """What a run reads."""

    started: datetime  # when this run started reading Kinopub
    full_scan: bool  # every item in history, not only the recent rows
    since: datetime | None  # history rows older than this are not read (None: every row)
    already_scanned: frozenset[int]  # items an unfinished full scan finished in earlier runs: not read again
    scan_started: datetime | None  # when that unfinished full scan began (the stored last_full_scan)
    also_read: frozenset[int] = frozenset()  # items pinned since the last run: read whatever their history says


@dataclass(frozen=True)
class RunProgress:
    """What a run achieved, as far as the scan is concerned."""

    examined: frozenset[int]  # Kinopub items read this run
    failed: frozenset[int]  # items that could not be read
    left_over: frozenset[int]  # items with views the deadline left for the next run
    interrupted: bool  # reading or sending stopped early (the deadline)
    holding_back: bool  # an item that failed to read still holds the watermark back

    @property
    def unfinished(self) -> frozenset[int]:
        """Items with a view not synced: unreadable, or left for the next run."""
        return self.failed | self.left_over


@dataclass(frozen=True)
class ScanDecision:
    """What to store when the run ends (``None``/``False``: leave it as it is)."""

    status: Literal["ok", "partial"]
    reread_done: frozenset[int] | None = None  # pinned items this run read: no longer asked for
    scan_progress: frozenset[int] | None = None  # the unfinished full scan's finished items
    watermark: datetime | None = None  # move the watermark forward to this
    last_full_scan: datetime | None = None
    clear_scan_progress: bool = False  # the full scan is complete


def plan_scan(state: SyncState, now: datetime, *, full_rescan_every: timedelta, overlap: timedelta) -> ScanPlan:
    full_scan = (
        bool(state.scan_done)  # a full scan that did not fit in earlier runs goes on where it stopped
        or state.watermark is None
        or state.last_full_scan is None
        or now - state.last_full_scan >= full_rescan_every
    )
    return ScanPlan(
        started=now,
        full_scan=full_scan,
        since=None if full_scan or state.watermark is None else state.watermark - overlap,
        already_scanned=state.scan_done if full_scan else frozenset(),
        scan_started=state.last_full_scan,
        also_read=state.reread,
    )


def settle_scan(plan: ScanPlan, progress: RunProgress, *, dry_run: bool) -> ScanDecision:
    complete = not progress.interrupted and not progress.holding_back
    if dry_run:
        # A dry run writes nothing, not even its progress: the real run reads the same items again.
        return ScanDecision("ok" if complete else "partial")
    # A pinned item counts as read once it was examined (or failed, and is held back as such) and nothing of it
    # was left for the next run.
    reread_done = plan.also_read & ((progress.examined | progress.failed) - progress.left_over)
    if not complete:
        if not plan.full_scan:
            return ScanDecision("partial", reread_done=reread_done)
        # Remember the items this scan has finished, so the next run does not read them again.
        done = plan.already_scanned | (progress.examined - progress.unfinished)
        # The scan's first run marks when it started reading: the run that completes it moves the watermark there.
        started = plan.started if done and not plan.already_scanned else None
        return ScanDecision("partial", reread_done=reread_done, scan_progress=done, last_full_scan=started)
    # Everything read was synced: the watermark moves to when the reading started. For a full scan spread over
    # runs that is its first run: an item finished there is not read again, so a view it gained since must
    # stay newer than the watermark (the chaos suite lost such a view when the last run's start was used).
    read_since = plan.scan_started if plan.already_scanned and plan.scan_started else plan.started
    return ScanDecision(
        "ok",
        reread_done=reread_done,
        watermark=read_since,
        last_full_scan=read_since if plan.full_scan else None,
        clear_scan_progress=bool(plan.already_scanned),
    )
