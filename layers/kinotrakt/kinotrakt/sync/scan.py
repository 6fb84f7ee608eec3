"""Which Kinopub items a run reads, and what it stores about that when it ends: the rule that keeps a view
from ever being skipped. Pure functions: the stored state, the book of known items, the time and what the run
achieved go in, a decision comes out; the pipeline does the reading and the storing.

- A run reads the history rows newer than ``watermark - overlap`` (incremental), or every item (a full scan):
  on the first run, and every ``FULL_RESCAN_HOURS``. Marking a title watched by hand on Kinopub changes its
  ``/v1/watching`` state without playing anything, so its ``/v1/history`` row need not move: only re-reading
  the items catches such a view.
- The book of known items (:class:`~kinotrakt.storage.ports.KnownItem`) remembers every item the sync has met
  in history, and which can still change. Once a full scan has paged the whole history (``covers_history``),
  a rescan reads the recent history rows and the *open* items of the book, not every page and every item:
  a *complete* item (every part or episode watched, every view in the ledger) has nothing a rescan could find.
  What can still change on it shows up in history — a new episode played, a film played again — where the
  incremental window reads it. The trade: a complete item marked watched again *by hand* (no history row) is
  not read again (README, "What gets synced").
- The watermark moves only when everything read was synced (or recorded as unmatched), and only to the time
  the reading started: a view finished while the run was reading is newer than the watermark, so the next run
  still sees it.
- A full scan too big for one run keeps what it has left to read in the book (``to_read``: the item with what
  its history rows said), and the next runs read those without paging history again, until none is left.
  An item counts as finished as soon as all its views are settled, whatever stopped the run.
- An item the user pinned since the last run (``reread``) is read whatever its history rows say, so a pin takes
  effect on the next run rather than after the next full rescan; once read, it is no longer asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from kinotrakt.storage.ports import KnownItems, KnownItemState, SyncState


@dataclass(frozen=True)
class ScanPlan:
    """What a run reads."""

    started: datetime  # when this run started reading Kinopub
    full_scan: bool  # every item that can still change, not only the recent rows
    page_history: bool  # page /v1/history (False: a full scan goes on from what it kept)
    since: datetime | None  # history rows older than this are not read (None: every page)
    from_book: frozenset[int]  # items read from the book: the open ones (a rescan), or a scan's rest
    already_scanned: frozenset[int]  # items an unfinished full scan of an older version finished: not read again
    scan_started: datetime | None  # when that unfinished full scan began (the stored last_full_scan)
    also_read: frozenset[int] = frozenset()  # items pinned since the last run: read whatever their history says

    @property
    def pages_everything(self) -> bool:
        """Every history page and every item in it is read: afterwards the book holds every item in history."""
        return self.page_history and self.since is None and not self.already_scanned


@dataclass(frozen=True)
class RunProgress:
    """What a run achieved, as far as the scan is concerned."""

    to_do: frozenset[int]  # every item this run was to read (its history window, the book's, the pinned ones)
    examined: frozenset[int]  # Kinopub items read this run
    failed: frozenset[int]  # items that could not be read
    left_over: frozenset[int]  # items with views the run stopped before settling
    interrupted: bool  # reading or sending stopped early (the deadline, a stop)
    holding_back: bool  # an item that failed to read still holds the watermark back
    complete: frozenset[int] = frozenset()  # items read with everything watched and every view in the ledger

    @property
    def unfinished(self) -> frozenset[int]:
        """Items with a view not synced: unreadable, or left for the next run."""
        return self.failed | self.left_over

    @property
    def finished(self) -> frozenset[int]:
        return self.examined - self.unfinished


@dataclass(frozen=True)
class ScanDecision:
    """What to store when the run ends (``None``/``False``/empty: leave it as it is)."""

    status: Literal["ok", "partial"]
    reread_done: frozenset[int] | None = None  # pinned items this run read: no longer asked for
    items: Mapping[int, KnownItemState] = field(default_factory=dict)  # the book's new state of these items
    covers_history: bool = False  # the book now holds every item in history
    watermark: datetime | None = None  # move the watermark forward to this
    last_full_scan: datetime | None = None
    clear_scan_progress: bool = False  # forget an older version's unfinished full scan (now in the book)


def plan_scan(
    state: SyncState, book: KnownItems, now: datetime, *, full_rescan_every: timedelta, overlap: timedelta
) -> ScanPlan:
    since = None if state.watermark is None else state.watermark - overlap
    to_read = book.in_state("to_read")
    if to_read:
        # A full scan that did not fit in earlier runs goes on with what it kept, without paging history.
        return ScanPlan(now, True, False, None, to_read, frozenset(), state.last_full_scan, state.reread)
    if state.scan_done:
        # Begun by a version without the book: it pages history again, skipping what it finished.
        return ScanPlan(now, True, True, None, frozenset(), state.scan_done, state.last_full_scan, state.reread)
    last = state.last_full_scan
    first = state.watermark is None or last is None
    due = last is None or first or now - last >= full_rescan_every
    if not due:
        return ScanPlan(now, False, True, since, frozenset(), frozenset(), state.last_full_scan, state.reread)
    if first or not book.covers_history:
        return ScanPlan(now, True, True, None, frozenset(), frozenset(), state.last_full_scan, state.reread)
    # The book holds every item: the recent rows, and every item that can still change.
    return ScanPlan(now, True, True, since, book.in_state("open"), frozenset(), state.last_full_scan, state.reread)


def item_state(whole_on_kinopub: bool, view_refs: Iterable[str], in_ledger: Set[str]) -> KnownItemState:
    """An item just read is complete when Kinopub has every feature part / every episode it lists watched and
    every one of its views is in the ledger (sent, or found on Trakt); otherwise it stays open (an episode to
    come, a view unmatched: a rescan reads it again)."""
    return "complete" if whole_on_kinopub and all(ref in in_ledger for ref in view_refs) else "open"


def settle_scan(plan: ScanPlan, progress: RunProgress, *, dry_run: bool) -> ScanDecision:
    complete = not progress.interrupted and not progress.holding_back
    if dry_run:
        # A dry run writes nothing, not even its progress: the real run reads the same items again.
        return ScanDecision("ok" if complete else "partial")
    # A pinned item counts as read once it was examined (or failed, and is held back as such) and nothing of it
    # was left for the next run.
    reread_done = plan.also_read & ((progress.examined | progress.failed) - progress.left_over)
    # Every item read and settled gets its state; the rest of a full scan that stopped is kept to read next
    # (an item that failed too: it is read again, whatever its history says by then); the rest of an
    # incremental run, or a failed item a completed scan gave up on, stays open for the rescans.
    rest: KnownItemState = "to_read" if plan.full_scan and not complete else "open"
    items: dict[int, KnownItemState] = dict.fromkeys(progress.to_do - progress.finished, rest)
    items.update((item_id, "complete" if item_id in progress.complete else "open") for item_id in progress.finished)
    covers_history = plan.pages_everything
    if not complete:
        # The scan's first run marks when it started reading: the run that completes it moves the watermark there.
        first_run = plan.full_scan and plan.page_history and not plan.already_scanned
        return ScanDecision(
            "partial",
            reread_done=reread_done,
            items=items,
            covers_history=covers_history,
            last_full_scan=plan.started if first_run and "to_read" in items.values() else None,
            clear_scan_progress=bool(plan.already_scanned),
        )
    # Everything read was synced: the watermark moves to when the reading started. For a full scan spread over
    # runs that is its first run: an item finished there is not read again, so a view it gained since must
    # stay newer than the watermark (the chaos suite lost such a view when the last run's start was used).
    resumed = not plan.page_history or bool(plan.already_scanned)
    read_since = plan.scan_started if resumed and plan.scan_started else plan.started
    return ScanDecision(
        "ok",
        reread_done=reread_done,
        items=items,
        covers_history=covers_history,
        watermark=read_since,
        last_full_scan=read_since if plan.full_scan else None,
        clear_scan_progress=bool(plan.already_scanned),
    )
