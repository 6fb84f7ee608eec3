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

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import KinotraktError, OutOfTime, RateLimited
from kinotrakt.http import CallCounter
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.observability import logger
from kinotrakt.storage.ports import (
    ItemFailureStore,
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
from kinotrakt.sync.collect import collect
from kinotrakt.sync.dedupe import RemoteIndex, build_remote_index, dedupe
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
from kinotrakt.sync.model import CollectResult, CompletedView, Rewatches
from kinotrakt.sync.push import Pusher, PushResult
from kinotrakt.sync.report import HttpCalls, ItemNote, KeptPlay, RunError, SyncReport, UnmatchedNote, watermark_text
from kinotrakt.sync.scan import RunProgress, ScanDecision, ScanPlan, plan_scan, settle_scan
from kinotrakt.trakt.client import TraktClient

# An item Kinopub cannot serve (an HTML page, invalid JSON) holds the watermark back, so its views are not
# skipped for good by a passing glitch; after this many runs in a row it is recorded as unmatched
# (``kinopub_error``) instead, so that one broken item cannot stop the watermark forever.
MAX_ITEM_FAILURES = 3
# Of a run's time budget, the share (at least this many seconds, at most half) kept for mapping and pushing.
PUSH_RESERVE_SHARE = 0.3
MIN_PUSH_RESERVE_SECONDS = 30.0


@dataclass(frozen=True)
class SyncOptions:
    batch_size: int = 100
    overlap: timedelta = timedelta(hours=72)
    full_rescan_every: timedelta = timedelta(hours=24)
    dry_run: bool = False
    lease: timedelta = timedelta(minutes=15)
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
    # Step 2: every item, or the recent history only (and the items pinned since the last run).
    plan = plan_scan(state, clock.now(), full_rescan_every=options.full_rescan_every, overlap=options.overlap)
    report.full_scan = plan.full_scan
    ledger = stores.ledger.load()
    numbering = stores.pins.load_numbering()

    # Step 3: the completed views; items that failed to read hold the watermark back.
    collected = _collect(deps, options, plan, ledger)
    views = expand_pinned_episodes(collected.views, numbering)
    _report_collected(report, collected, views)
    failed = _record_failures(stores.failures, stores.unmatched, collected, report.started_at)
    report.unmatched += failed.given_up

    # Steps 4-7. The ledger remembers what is already on Trakt per view: nothing new → no Trakt call at all.
    fresh = [view for view in views if not _already_synced(view, ledger)]
    report.skipped_duplicates = len(views) - len(fresh)
    left_over: list[CompletedView] = []
    if fresh:
        plays = ViewsToPlays(
            deps.trakt,
            deps.clock,
            deps.deadline,
            options,
            ledger=ledger,
            ledger_store=stores.ledger,
            mappings=stores.mappings,
            pins=stores.pins,
            numbering=numbering,
            unmatched=stores.unmatched,
        )
        left_over = plays.run(fresh, report)

    # Step 8: what the scan remembers, and whether the watermark moves.
    progress = RunProgress(
        examined=frozenset(collected.examined),
        failed=frozenset(f.kinopub_id for f in collected.failures),
        left_over=frozenset(view.kinopub_id for view in left_over),
        interrupted=collected.interrupted or bool(left_over),
        holding_back=failed.holding_back,
    )
    decision = settle_scan(plan, progress, dry_run=options.dry_run)
    report.status = decision.status
    _store_decision(stores.sync_state, decision)


# --- step 3: collect -------------------------------------------------------------------------------------------


def _collect(deps: SyncDeps, options: SyncOptions, plan: ScanPlan, ledger: Ledger) -> CollectResult:
    """Completed views, read only. Reading stops early enough to leave time to map and push what was read: a
    library too big for one run then progresses run by run instead of re-reading the same items until the
    deadline."""
    budget = deps.deadline.remaining()
    reserve = min(budget / 2, max(MIN_PUSH_RESERVE_SECONDS, budget * PUSH_RESERVE_SHARE))
    return collect(
        deps.kinopub,
        since=plan.since,
        sent_watched_at=ledger.watched_at_by_view,
        rewatches=options.rewatches,
        skip=plan.already_scanned,
        also=plan.also_read,
        stop=lambda: deps.deadline.remaining() < reserve,
    )


def _report_collected(report: SyncReport, collected: CollectResult, views: Sequence[CompletedView]) -> None:
    if collected.rate_limited is not None:
        report.stopped_by(collected.rate_limited)
    elif collected.interrupted:
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
    """Steps 4-7 for the views the ledger does not know, a batch at a time: map a slice to Trakt ids → read
    Trakt's own history once → dedupe → send each batch as soon as it is full → send the rest (a dry run only
    counts it) → record what happened, also when the deadline stopped the run.

    Trakt paces lookups (500 GETs per 5 minutes) and writes (1 per second) separately, so sending while mapping
    lets the writes fill the lookups' waits; and a run stopped by its deadline keeps every batch it sent."""

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
    ) -> None:
        self._trakt = trakt
        self._clock = clock
        self._batch_size = options.batch_size
        self._dry_run = options.dry_run
        self._ledger = ledger
        self._ledger_store = ledger_store
        self._unmatched_store = unmatched
        self._cache = MappingCache(mappings, clock)
        self._mapper = Mapper(trakt, self._cache, pins.load(), clock, numbering)
        self._previously_unmatched = {item.key for item in unmatched.load()}
        self._pusher = Pusher(trakt, ledger_store, clock, deadline, options.batch_size, self._not_found)
        # What the run has done so far, kept as it goes so that a stop loses nothing.
        self._unmatched: list[UnmatchedItem] = []
        self._duplicates: list[MappedView] = []
        self._planned: list[MappedView] = []  # deduped, not sent yet
        self._pushed = PushResult()
        self._seen: set[str] = set()  # dedupe keys met earlier in this run
        self._settled: set[str] = set()  # view_refs settled this run: unmatched, duplicate, sent or not_found
        self._remote: RemoteIndex | None = None

    def run(self, fresh: Sequence[CompletedView], report: SyncReport) -> list[CompletedView]:
        """Returns the views left for the next run when the deadline, or a rate limit Trakt set, stopped this
        one (after a rate limit the transport sends Trakt nothing more: not one more request in this run)."""
        try:
            for start in range(0, len(fresh), self._batch_size):
                mapped = self._map_slice(fresh[start : start + self._batch_size])
                if mapped:
                    self._dedupe(mapped, self._remote_index(fresh))
                    self._send_full_batches()
            self._finish(report)
            return []
        except (OutOfTime, RateLimited) as exc:
            report.stopped_by(exc)
            why = "Trakt asked for a pause" if isinstance(exc, RateLimited) else "the Lambda deadline is near"
            logger.warning(f"stopping early: {why}", extra={"error": str(exc)})
            self._settled.update(c.view.view_ref for c in [*self._pushed.added, *self._pushed.not_found])
            return [view for view in fresh if view.view_ref not in self._settled]
        finally:
            self._cache.flush()
            self._record_outcome(report)

    def _map_slice(self, views: Sequence[CompletedView]) -> list[MappedView]:
        mapped = MapResult()
        try:
            self._mapper.map(views, mapped)
        finally:
            # What was found unmatched before a stop is recorded too.
            self._unmatched.extend(mapped.unmatched)
            self._settled.update(view.view_ref for view in mapped.unmatched_views)
        return mapped.mapped

    def _remote_index(self, fresh: Sequence[CompletedView]) -> RemoteIndex:
        """Trakt's history, read once, before the first slice is deduped, for the window of every view that may
        be sent. The views' own times are enough; views the cache already knows as unmatched are left out, so
        an old unmatched episode does not widen every run's read."""
        if self._remote is None:
            window = [v for v in fresh if v.view_ref not in self._settled and not self._mapper.known_unmatched(v)]
            self._remote = build_remote_index(self._trakt, window, self._clock.now())
        return self._remote

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


def _count_added(report: SyncReport, added: Sequence[MappedView]) -> None:
    report.added_movies = sum(1 for c in added if c.kind == "movie")
    report.added_episodes = sum(1 for c in added if c.kind == "episode")
    report.added = [f"{c.view.label} @ {minute_or_unknown(c.view.watched_at)}" for c in added]


def _remember(ledger: LedgerStore, duplicates: Sequence[MappedView], clock: Clock) -> None:
    if duplicates:
        now = clock.now()
        ledger.add([LedgerEntry(c.key, c.view.view_ref, minute_or_unknown(c.view.watched_at), now) for c in duplicates])


# --- step 8: the scan and the watermark ----------------------------------------------------------------------


def _store_decision(sync_state: SyncStateStore, decision: ScanDecision) -> None:
    if decision.reread_done is not None:
        sync_state.clear_reread(decision.reread_done)
    if decision.scan_progress is not None:
        sync_state.set_scan_progress(decision.scan_progress)
    if decision.watermark is not None:
        sync_state.advance_watermark(decision.watermark)
    if decision.last_full_scan is not None:
        sync_state.set_last_full_scan(decision.last_full_scan)
    if decision.clear_scan_progress:
        sync_state.set_scan_progress(None)
