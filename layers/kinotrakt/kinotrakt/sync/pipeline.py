"""One sync run, top to bottom:

1. take the lease (another run holds it: ``skipped``), and count the Trakt reads the last runs made in the
   5 minutes before (Trakt's GET budget is per user; this run's reads are stored when it ends);
2. plan the scan (``scan.py``: every item, or the recent history only);
3. collect the completed views from Kinopub (``collect.py``), and let items that failed to read hold the
   watermark back;
4-7. turn the views the ledger does not know yet into Trakt plays, a batch at a time (:class:`ViewsToPlays`:
   map → remote index → dedupe → push);
8. settle the scan: what to remember, and whether the watermark moves (``scan.py``);
9. store the report and release the lease.

Each step has typed input and output; this module sequences them and fills the report from what they did.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import ItemRefused, KinotraktError, OutOfTime, RateLimited
from kinotrakt.http import CallCounter
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.models import HistoryItem
from kinotrakt.observability import logger
from kinotrakt.storage.ports import (
    DEFAULT_LEASE,
    ItemFailureStore,
    KnownItem,
    KnownItems,
    Ledger,
    LedgerEntry,
    LedgerStore,
    MappingStore,
    NumberingPins,
    PinStore,
    SyncStateStore,
    SyncStores,
    UnmatchedItem,
    UnmatchedStore,
)
from kinotrakt.sync.collect import (
    HistoryWindow,
    ItemRead,
    ReadingList,
    extra_items,
    log_collected,
    note_broken_rows,
    read_history,
    read_items,
    reading_list,
)
from kinotrakt.sync.dedupe import HISTORY_KINDS, RemoteIndex, dedupe
from kinotrakt.sync.keys import minute_or_unknown, unmatched_item_key
from kinotrakt.sync.mapping import (
    MappedView,
    Mapper,
    MappingCache,
    MapResult,
    expand_pinned_episodes,
    refused_miss,
    unmatched_item,
)
from kinotrakt.sync.model import MOVIE_TYPES, SERIES_TYPES, CollectResult, CompletedView, Rewatches, ViewKind
from kinotrakt.sync.push import Pusher, PushResult
from kinotrakt.sync.report import HttpCalls, ItemNote, KeptPlay, RunError, SyncReport, UnmatchedNote, watermark_text
from kinotrakt.sync.scan import RunProgress, ScanDecision, ScanPlan, item_state, plan_scan, settle_scan
from kinotrakt.trakt.client import TraktClient

# An item Kinopub cannot serve (an HTML page, invalid JSON) holds the watermark back, so its views are not
# skipped for good by a passing glitch; after this many runs in a row it is recorded as unmatched
# (``kinopub_error``) instead, so that one broken item cannot stop the watermark forever.
MAX_ITEM_FAILURES = 3
# Of a run's time budget, the share (at least this many seconds, at most half) kept, when reading stops, for
# mapping and pushing what was read. Views are pushed while reading goes on, so what is left then is the last
# batch or two, not the whole library.
PUSH_RESERVE_SHARE = 0.05
MIN_PUSH_RESERVE_SECONDS = 30.0


@dataclass(frozen=True)
class SyncOptions:
    batch_size: int = 100
    overlap: timedelta = timedelta(hours=72)
    full_rescan_every: timedelta = timedelta(hours=24)
    dry_run: bool = False
    lease: timedelta = DEFAULT_LEASE
    rewatches: Rewatches = "new_play"


class ReadBudget(Protocol):
    """The Trakt transport's GET budget (``http.Transport``): what earlier runs spent, and what is spent now."""

    def seed_get_times(self, sent_at: Iterable[datetime]) -> None: ...

    def get_times(self) -> list[datetime]: ...


@dataclass
class SyncDeps:
    kinopub: KinopubClient
    trakt: TraktClient
    stores: SyncStores
    clock: Clock
    deadline: Deadline
    counter: CallCounter = field(default_factory=CallCounter)
    # Trakt counts its GET budget per user, not per run: the reads of the runs before this one still count.
    trakt_reads: ReadBudget | None = None


def run_sync(deps: SyncDeps, options: SyncOptions, run_id: str) -> SyncReport:
    """One run. Handled failures end in the report; unexpected exceptions propagate after cleanup."""
    clock, stores = deps.clock, deps.stores
    report = SyncReport(run_id=run_id, started_at=clock.now(), dry_run=options.dry_run)
    if not stores.lease.acquire(run_id, report.started_at, report.started_at + options.lease):
        report.status = "skipped"
        holder = stores.lease.holder(report.started_at)
        if holder is not None:
            report.lease_held_since, report.lease_held_until = holder.taken_at, holder.expires_at
        report.watermark = stores.sync_state.load().watermark
        report.finished_at = clock.now()
        logger.info(
            "another run holds the lease; skipping",
            extra={
                "lease_held_since": watermark_text(report.lease_held_since),
                "lease_held_until": watermark_text(report.lease_held_until),
            },
        )
        return report
    try:
        _run(deps, options, report)
    except KinotraktError as exc:
        report.status = exc.run_status
        report.stopped_by(exc)
        log = logger.error if exc.run_status == "failed" else logger.warning
        log("sync run stopped", extra={"error_code": exc.code, "error": str(exc)})
    except Exception as exc:
        report.status = "failed"
        report.error = RunError("unexpected", type(exc).__name__)
        raise
    finally:
        report.finished_at = clock.now()
        report.http_calls = HttpCalls(deps.counter.total("kinopub"), deps.counter.total("trakt"))
        try:
            report.watermark = stores.sync_state.load().watermark
            stores.reports.put(report.to_dict(), report.finished_at)
            if deps.trakt_reads is not None and report.http_calls.trakt:
                stores.sync_state.set_trakt_reads(deps.trakt_reads.get_times())
        finally:
            stores.lease.release(run_id)
    return report


def _run(deps: SyncDeps, options: SyncOptions, report: SyncReport) -> None:
    clock, stores = deps.clock, deps.stores
    state = stores.sync_state.load()
    if deps.trakt_reads is not None:
        deps.trakt_reads.seed_get_times(state.trakt_reads)
    # Step 2: the recent history or every item that can still change (and the items pinned since the last run).
    known = stores.known_items.load()
    plan = plan_scan(
        state,
        known,
        clock.now(),
        full_rescan_every=options.full_rescan_every,
        overlap=options.overlap,
    )
    report.full_scan = plan.full_scan
    ledger = stores.ledger.load()
    numbering = stores.pins.load_numbering()

    # Step 3: the history window (a full scan that goes on from the book pages none), then what to read.
    window = read_history(deps.kinopub, plan.since) if plan.page_history else HistoryWindow()
    from_book = [known.items[item_id] for item_id in plan.from_book | plan.also_read if item_id in known.items]
    reading = reading_list(window, from_book, skip=plan.already_scanned, also=plan.also_read)
    collected = CollectResult(history_pages=window.pages, full_scan=plan.full_scan)
    note_broken_rows(window, collected)

    # Steps 3-7, as the items are read: each view the ledger does not know yet goes on to map → remote index →
    # dedupe → push while the next items are read, so Trakt's limits wait alongside Kinopub's answers.
    syncing = _Syncing(deps, options, report, ledger, numbering, reading)
    try:
        syncing.read_and_push(collected)
    except KinotraktError:
        # Whatever stopped the run, what it settled stays settled (the book), and the rest is read again.
        _settle(deps, options, plan, known, reading, syncing, collected, holding_back=False, stopped=True)
        raise
    failed = _record_failures(stores.failures, stores.unmatched, collected, report.started_at)
    report.unmatched += failed.given_up

    # Step 8: what the scan remembers, and whether the watermark moves.
    decision = _settle(
        deps, options, plan, known, reading, syncing, collected, holding_back=failed.holding_back, stopped=False
    )
    report.status = decision.status


class _Syncing:
    """Steps 3-7 of one run, item by item: read an item, expand its pinned episodes, hand the views the ledger
    does not know to :class:`ViewsToPlays` a batch at a time; and note, per item, what the scan needs to settle
    it (its views, whether Kinopub has it all watched)."""

    def __init__(
        self,
        deps: SyncDeps,
        options: SyncOptions,
        report: SyncReport,
        ledger: Ledger,
        numbering: NumberingPins,
        reading: ReadingList,
    ) -> None:
        self._deps = deps
        self._options = options
        self._report = report
        self._ledger = ledger
        self._numbering = numbering
        self._reading = reading
        self.views: list[CompletedView] = []
        self.views_by_item: dict[int, list[CompletedView]] = {}
        self.described: dict[int, HistoryItem] = {item.id: item for item in reading.items}
        self.whole: set[int] = set()
        self.synced_before: set[str] = set()  # view refs the ledger already held at this view's minute
        self.waiting: list[CompletedView] = []  # views read, not handed to ViewsToPlays yet (a batch fills)
        self.plays: ViewsToPlays | None = None
        self._collected = CollectResult()

    def read_and_push(self, collected: CollectResult) -> None:
        deps, options = self._deps, self._options
        self._collected = collected
        budget = deps.deadline.remaining()
        reserve = min(budget / 2, max(MIN_PUSH_RESERVE_SECONDS, budget * PUSH_RESERVE_SHARE))
        items = itertools.chain(self._reading.items, extra_items(deps.kinopub, self._reading.catalog, (), collected))
        reader = read_items(
            deps.kinopub,
            items,
            self._reading.last_seen,
            collected,
            sent_watched_at=self._ledger.watched_at_by_view,
            rewatches=options.rewatches,
            stop=lambda: deps.deadline.remaining() < reserve,
        )
        try:
            for read in reader:
                self.waiting += self._note(read)
                if len(self.waiting) >= options.batch_size:
                    going, self.waiting = self._plays().add(self.waiting), []
                    if not going:
                        # Trakt stopped the run (the deadline): reading more would only be read again.
                        collected.interrupted = True
                        break
            reader.close()
            log_collected(collected)
            _report_collected(self._report, collected, self.views)
            if self.waiting:
                waiting, self.waiting = self.waiting, []
                self._plays().add(waiting)
            if self.plays is not None:
                self.plays.send_rest()
        finally:
            if self.plays is not None:
                self.plays.record_outcome()

    def _note(self, read: ItemRead) -> list[CompletedView]:
        """The item's views (pinned episodes expanded); returns those the ledger does not know yet."""
        views = expand_pinned_episodes(read.views, self._numbering)
        self.described[read.item_id] = read.item
        self.views += views
        self.views_by_item[read.item_id] = views
        if read.whole:
            self.whole.add(read.item_id)
        fresh: list[CompletedView] = []
        for view in views:
            if _already_synced(view, self._ledger):
                self.synced_before.add(view.view_ref)
            else:
                fresh.append(view)
        self._report.skipped_duplicates += len(views) - len(fresh)
        return fresh

    def _plays(self) -> ViewsToPlays:
        if self.plays is None:
            deps, stores = self._deps, self._deps.stores
            self.plays = ViewsToPlays(
                deps.trakt,
                deps.clock,
                deps.deadline,
                self._options,
                ledger=self._ledger,
                ledger_store=stores.ledger,
                mappings=stores.mappings,
                pins=stores.pins,
                numbering=self._numbering,
                unmatched=stores.unmatched,
                report=self._report,
                oldest_to_come=self._oldest_to_come,
            )
        return self.plays

    def _oldest_to_come(self, kind: ViewKind) -> datetime | None:
        """How far back the views of the items not read yet may go, as their history rows tell."""
        done = set(self._collected.examined) | {f.kinopub_id for f in self._collected.failures}
        return self._reading.oldest_seen(MOVIE_TYPES if kind == "movie" else SERIES_TYPES, done)

    def left_over(self) -> frozenset[int]:
        """Items with a view this run read but did not settle (also one not handed on yet, when an error stopped
        the run)."""
        unsettled = [*self.waiting, *([] if self.plays is None else self.plays.unsettled())]
        return frozenset(view.kinopub_id for view in unsettled)

    def in_ledger(self) -> set[str]:
        """Every view ref of this run that the ledger holds now (sent before, sent now, or found on Trakt)."""
        return self.synced_before | (set() if self.plays is None else self.plays.in_ledger())


def _report_collected(report: SyncReport, collected: CollectResult, views: Sequence[CompletedView]) -> None:
    if collected.rate_limited is not None:
        report.stopped_by(collected.rate_limited)
    elif collected.interrupted and (report.error is None or report.error.code != RateLimited.code):
        # (A rate limit Trakt set, which stopped the reading, stays the run's error: it says when to go on.)
        report.error = RunError("out_of_time", "Kinopub reading paused; the next run continues")
    report.candidates = len(views)
    report.items_examined = collected.items_examined
    report.skipped_items = [ItemNote(s.kinopub_id, s.title, s.reason) for s in collected.skipped]
    report.kept_plays = [KeptPlay(k.view.label, k.detail) for k in collected.kept]
    report.failed_items = [ItemNote(f.kinopub_id, f.title, f.reason) for f in collected.failures]


@dataclass(frozen=True)
class FailedItems:
    given_up: int  # items recorded as unmatched (kinopub_error) this run
    holding_back: bool  # some failed item still holds the watermark back


def _record_failures(
    failures: ItemFailureStore, unmatched: UnmatchedStore, collected: CollectResult, seen_at: datetime
) -> FailedItems:
    """Count each failed item's runs in a row, forget the items that read fine again, and give up (record as
    unmatched) on those that failed MAX_ITEM_FAILURES runs in a row."""
    failed_ids = {f.kinopub_id for f in collected.failures}
    recovered = (set(failures.load()) & set(collected.examined)) - failed_ids
    if recovered:
        failures.clear(recovered)
        unmatched.remove(unmatched_item_key(item_id) for item_id in recovered)
    if not collected.failures:
        return FailedItems(given_up=0, holding_back=False)
    counts = failures.record(failed_ids)
    given_up = [f for f in collected.failures if counts.get(f.kinopub_id, 0) >= MAX_ITEM_FAILURES]
    if given_up:
        unmatched.put(
            [
                UnmatchedItem(
                    unmatched_item_key(f.kinopub_id),
                    f.kinopub_id,
                    f.title,
                    "kinopub_error",
                    f"failed to read {MAX_ITEM_FAILURES} runs in a row: {f.reason}",
                    seen_at=seen_at,
                )
                for f in given_up
            ]
        )
    for failure in collected.failures:
        logger.warning(
            "kinopub item could not be read",
            extra={"kinopub_id": failure.kinopub_id, "title": failure.title, "reason": failure.reason},
        )
    return FailedItems(given_up=len(given_up), holding_back=len(given_up) < len(collected.failures))


def _already_synced(view: CompletedView, ledger: Ledger) -> bool:
    return ledger.watched_at_by_view.get(view.view_ref) == minute_or_unknown(view.watched_at)


# --- steps 4-7: map, remote index, dedupe, push --------------------------------------------------------------


class ViewsToPlays:
    """Steps 4-7 for the views the ledger does not know, a batch at a time, as the reading hands them in: map a
    slice to Trakt ids → read Trakt's own history (once for the window the views need, more only when an older
    view comes) → dedupe → send each batch as soon as it is full; at the end send the rest (a dry run only
    counts it) and record what happened, also when the deadline stopped the run.

    Trakt paces lookups (500 GETs per 5 minutes) and writes (1 per second) separately, so sending while mapping
    and reading lets the writes and Kinopub's answers fill the lookups' waits; and a run stopped by its
    deadline keeps every batch it sent."""

    def __init__(
        self,
        trakt: TraktClient,
        clock: Clock,
        deadline: Deadline,
        options: SyncOptions,
        *,
        ledger: Ledger,
        ledger_store: LedgerStore,
        mappings: MappingStore,
        pins: PinStore,
        numbering: NumberingPins,
        unmatched: UnmatchedStore,
        report: SyncReport,
        oldest_to_come: Callable[[ViewKind], datetime | None] = lambda _: None,
    ) -> None:
        self._trakt = trakt
        self._clock = clock
        self._batch_size = options.batch_size
        self._dry_run = options.dry_run
        self._ledger = ledger
        self._ledger_store = ledger_store
        self._unmatched_store = unmatched
        self._report = report
        self._oldest_to_come = oldest_to_come
        self._cache = MappingCache(mappings, clock)
        self._mapper = Mapper(trakt, self._cache, pins.load(), clock, numbering)
        self._previously_unmatched = {item.key for item in unmatched.load()}
        self._pusher = Pusher(
            trakt, ledger_store, clock, deadline, options.batch_size, self._not_found, on_refused=self._refused
        )
        # What the run has done so far, kept as it goes so that a stop loses nothing.
        self._fresh: list[CompletedView] = []  # every view handed in
        self._unmatched: list[UnmatchedItem] = []
        self._duplicates: list[MappedView] = []
        self._planned: list[MappedView] = []  # deduped, not sent yet
        self._pushed = PushResult()
        self._seen: set[str] = set()  # dedupe keys met earlier in this run
        self._settled: set[str] = set()  # view_refs settled this run: unmatched, duplicate, sent or not_found
        self._remote = RemoteIndex()
        self._stopped = False
        self._done = False  # the rest was sent: nothing handed in is left

    def add(self, fresh: Sequence[CompletedView]) -> bool:
        """Map, dedupe and send every full batch of these views; False once the deadline, or a rate limit Trakt set, has
        stopped the run (what was not settled is then left for the next run; after a rate limit the transport sends
        Trakt nothing more: not one more request in this run)."""
        self._fresh.extend(fresh)
        if self._stopped:
            return False
        try:
            for start in range(0, len(fresh), self._batch_size):
                mapped = self._map_slice(fresh[start : start + self._batch_size])
                if mapped:
                    self._cover_remote_index(mapped)
                    self._dedupe(mapped, self._remote)
                    self._send_full_batches()
        except (OutOfTime, RateLimited) as exc:
            self._stop(exc)
        return not self._stopped

    def send_rest(self) -> None:
        """Send what is planned (a dry run only counts it)."""
        if self._stopped:
            return
        try:
            self._finish(self._report)
        except (OutOfTime, RateLimited) as exc:
            self._stop(exc)
            return
        self._done = True

    def record_outcome(self) -> None:
        """Keep what was done: the mapping cache, and the outcome in the report, the log and the state."""
        self._cache.flush()
        self._record_outcome(self._report)

    def unsettled(self) -> list[CompletedView]:
        """The views handed in that are neither sent, found on Trakt, nor unmatched (a stop left them)."""
        if self._done:
            return []  # every view was sent, found or unmatched (or, in a dry run, counted)
        settled = self._settled | {c.view.view_ref for c in [*self._pushed.added, *self._pushed.not_found]}
        return [view for view in self._fresh if view.view_ref not in settled]

    def in_ledger(self) -> set[str]:
        """The view refs this run put in the ledger: sent, or found already on Trakt."""
        if self._dry_run:
            return set()
        return {c.view.view_ref for c in [*self._pushed.added, *self._duplicates]}

    def _stop(self, exc: OutOfTime | RateLimited) -> None:
        self._stopped = True
        self._report.stopped_by(exc)
        why = "Trakt asked for a pause" if isinstance(exc, RateLimited) else "the Lambda deadline is near"
        logger.warning(f"stopping early: {why}", extra={"error": str(exc)})

    def _map_slice(self, views: Sequence[CompletedView]) -> list[MappedView]:
        mapped = MapResult()
        try:
            self._mapper.map(views, mapped)
        finally:
            # What was found unmatched before a stop is recorded too.
            self._unmatched.extend(mapped.unmatched)
            self._settled.update(view.view_ref for view in mapped.unmatched_views)
        return mapped.mapped

    def _cover_remote_index(self, mapped: Sequence[MappedView]) -> None:
        """Trakt's history, read before the first slice of a kind is deduped, for the window of every view of
        that kind that may be sent: those handed in so far and, as history guesses, those still to be read —
        so a run reads it once. The views' own times are enough; views the cache already knows as unmatched
        are left out, so an old unmatched episode does not widen every run's read. A later view older than the
        window reads only the part missing."""
        now = self._clock.now()
        for view_kind, history_kind in HISTORY_KINDS:
            times = [at for c in mapped if c.kind == view_kind for at in self._window_times(c.view)]
            if not times:
                continue
            oldest = min(times)
            if history_kind not in self._remote.since:
                oldest = min([oldest, *self._oldest_pending(view_kind), *_present(self._oldest_to_come(view_kind))])
            self._remote.cover(self._trakt, history_kind, oldest, now)

    def _window_times(self, view: CompletedView) -> list[datetime]:
        """The times Trakt's history must cover for this view: its own, and for a film of several parts the
        ledger has no record of, its earliest part's too (a play of it may be there: ``played_between_parts``)."""
        times = [] if view.watched_at is None else [view.watched_at]
        if view.earliest_part is not None and view.view_ref not in self._ledger.watched_at_by_view:
            times.append(view.earliest_part)
        return times

    def _oldest_pending(self, kind: ViewKind) -> list[datetime]:
        """The oldest time among the views handed in that may still be sent (not settled, not known unmatched):
        checked oldest first, so the cache is probed for a view or two, not for each."""
        pending = sorted(
            (v for v in self._fresh if v.kind == kind and v.watched_at is not None and v.view_ref not in self._settled),
            key=lambda v: v.watched_at or self._clock.now(),
        )
        for view in pending:
            if not self._mapper.known_unmatched(view):
                return [view.watched_at] if view.watched_at is not None else []
        return []

    def _dedupe(self, mapped: Sequence[MappedView], remote: RemoteIndex) -> None:
        deduped = dedupe(mapped, remote, self._ledger, self._trakt, self._seen)
        self._duplicates.extend(deduped.duplicates)
        self._settled.update(c.view.view_ref for c in deduped.duplicates)
        self._planned.extend(deduped.to_send)
        now = self._clock.now()
        for candidate, refused in deduped.undecided:
            miss = refused_miss(refused)
            self._unmatched.append(unmatched_item(candidate.view, miss["miss"], miss["detail"], now))
            self._settled.add(candidate.view.view_ref)

    def _send_full_batches(self) -> None:
        while not self._dry_run and len(self._planned) >= self._batch_size:
            batch, self._planned = self._planned[: self._batch_size], self._planned[self._batch_size :]
            self._pusher.push(batch, self._pushed)

    def _finish(self, report: SyncReport) -> None:
        if self._dry_run:
            _count_added(report, self._planned)
        else:
            self._pusher.push(self._planned, self._pushed)

    def _not_found(self, candidate: MappedView) -> None:
        """Trakt answered not_found for a play we sent: the view becomes unmatched, with the reason found."""
        if candidate.kind == "movie":
            reason, detail = self._mapper.record_movie_not_found(candidate.view)
        else:
            reason, detail = "trakt_not_found", "Trakt answered not_found for the episode id we sent"
        self._unmatched.append(unmatched_item(candidate.view, reason, detail, self._clock.now()))

    def _refused(self, candidate: MappedView, refused: ItemRefused) -> None:
        """Trakt refused the play itself (a 4xx about it, nothing applied): the view is unmatched with the reason,
        and read again by a later full rescan; the rest of its batch went in."""
        detail = (
            f"Trakt refused the play ({refused.path}: HTTP {refused.status}); the daily rescan tries it again, "
            "or pin the item with `kinotrakt map`"
        )
        self._unmatched.append(unmatched_item(candidate.view, "trakt_refused", detail, self._clock.now()))
        self._settled.add(candidate.view.view_ref)

    def _record_outcome(self, report: SyncReport) -> None:
        """What steps 4-7 did, in the report, the log and the state."""
        pushed = self._pushed
        report.skipped_duplicates += len(self._duplicates)
        report.not_found = len(pushed.not_found)
        report.updated_on_trakt = pushed.updated
        report.unmatched += len(self._unmatched) - len(pushed.not_found)
        report.unmatched_items = [
            UnmatchedNote(u.kinopub_id, u.title, u.reason, u.detail, u.season, u.episode) for u in self._unmatched
        ]
        for item in report.unmatched_items:
            # A dry run's unmatched items are not stored: its lines say so, for whoever reads them in the logs.
            logger.info("unmatched item", extra={**asdict(item), "dry_run": self._dry_run})
        if self._dry_run:
            return
        # Plays found on Trakt go in the ledger too, so later runs skip them without asking Trakt again.
        _remember(self._ledger_store, self._duplicates, self._clock)
        _count_added(report, pushed.added)
        if self._unmatched:
            self._unmatched_store.put(self._unmatched)
        resolved = self._previously_unmatched & {c.view.unmatched_key for c in pushed.added}
        if resolved:
            self._unmatched_store.remove(resolved)


def _present(value: datetime | None) -> list[datetime]:
    return [] if value is None else [value]


def _count_added(report: SyncReport, added: Sequence[MappedView]) -> None:
    report.added_movies = sum(1 for c in added if c.kind == "movie")
    report.added_episodes = sum(1 for c in added if c.kind == "episode")
    report.added = [f"{c.view.label} @ {minute_or_unknown(c.view.watched_at)}" for c in added]


def _remember(ledger: LedgerStore, duplicates: Sequence[MappedView], clock: Clock) -> None:
    if duplicates:
        now = clock.now()
        ledger.add([LedgerEntry(c.key, c.view.view_ref, minute_or_unknown(c.view.watched_at), now) for c in duplicates])


# --- step 8: the scan and the watermark ----------------------------------------------------------------------


def _settle(
    deps: SyncDeps,
    options: SyncOptions,
    plan: ScanPlan,
    known: KnownItems,
    reading: ReadingList,
    syncing: _Syncing,
    collected: CollectResult,
    *,
    holding_back: bool,
    stopped: bool,
) -> ScanDecision:
    """Decide (``scan.py``) and store what the scan remembers: the book's items, and whether the watermark moves."""
    failed = frozenset(f.kinopub_id for f in collected.failures)
    left_over = syncing.left_over()
    in_ledger = syncing.in_ledger()
    examined = frozenset(collected.examined)
    complete = frozenset(
        item_id
        for item_id in examined - failed - left_over
        if item_state(item_id in syncing.whole, (v.view_ref for v in syncing.views_by_item.get(item_id, ())), in_ledger)
        == "complete"
    )
    progress = RunProgress(
        to_do=reading.to_do,
        examined=examined,
        failed=failed,
        left_over=left_over,
        interrupted=stopped or collected.interrupted or bool(left_over),
        holding_back=holding_back,
        complete=complete,
    )
    decision = settle_scan(plan, progress, dry_run=options.dry_run)
    changed = _book_changes(decision, known, reading, syncing, in_ledger)
    if changed or (decision.covers_history and not known.covers_history):
        deps.stores.known_items.save(changed, covers_history=decision.covers_history)
    _store_decision(deps.stores.sync_state, decision)
    return decision


def _book_changes(
    decision: ScanDecision, known: KnownItems, reading: ReadingList, syncing: _Syncing, in_ledger: set[str]
) -> list[KnownItem]:
    """The book's records of the items whose state the run decided, where they differ from what it holds. An open
    item keeps the history rows of its media not in the ledger (the fallback times a later view may need); an
    item still to read keeps all of them."""
    if not decision.items:
        return []
    described = syncing.described
    # A complete item keeps no rows: only the others' are converted (a backfill reads some 20,000 rows).
    keeps_rows = {item_id for item_id, state in decision.items.items() if state != "complete"}
    rows: dict[int, dict[int, int]] = {}
    for (item_id, media_id), at in reading.last_seen.items():
        if item_id in keeps_rows:
            rows.setdefault(item_id, {})[media_id] = int(at.timestamp())
    changed: list[KnownItem] = []
    for item_id, state in decision.items.items():
        before = known.items.get(item_id)
        if state == "complete":
            record = KnownItem(item_id, state)
        else:
            seen = rows.get(item_id, {})
            settled = {v.media_id for v in syncing.views_by_item.get(item_id, ()) if v.view_ref in in_ledger}
            if state == "open" and settled:
                seen = {media: at for media, at in seen.items() if media not in settled}
            item = described.get(item_id)
            if item is not None:
                record = KnownItem(item_id, state, item.title, item.type, item.year, item.imdb, seen)
            elif before is not None:
                record = dataclasses.replace(before, state=state, last_seen=seen or before.last_seen)
            else:
                record = KnownItem(item_id, state, last_seen=seen)  # no metadata: read from the catalog
        if record != before:
            changed.append(record)
    return changed


def _store_decision(sync_state: SyncStateStore, decision: ScanDecision) -> None:
    if decision.reread_done is not None:
        sync_state.clear_reread(decision.reread_done)
    if decision.clear_scan_progress:
        sync_state.set_scan_progress(None)
    if decision.watermark is not None:
        sync_state.advance_watermark(decision.watermark)
    if decision.last_full_scan is not None:
        sync_state.set_last_full_scan(decision.last_full_scan)
