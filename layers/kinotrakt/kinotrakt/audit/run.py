"""One audit run, top to bottom:

1. take the lease (a sync, or another audit, holds it: ``skipped``): an audit never runs beside a sync;
2. continue the unfinished audit, or start one;
3. Kinopub: every completed view, through the sync's own collector, and its dedupe key — the ledger's, for a view
   the sync sent (or found) at that minute, else the sync's mapping (cached) — over several runs if need be;
4. the plays the ledger remembers for views Kinopub no longer shows finished (*suspects*);
5. with ``--fix duplicates``: the extra plays earlier runs of this audit found and left, read again and removed;
6. Trakt's history, window by window, newest first: its exact duplicates (removed at once with ``--fix
   duplicates``), the views of those minutes present or missing, the suspects present;
7. once every play is read, the views and suspects of unknown time (matched by item, as the sync's dedupe does);
8. with ``--fix missing`` / ``--fix removed``: those views through the sync's dedupe and push;
9. the progress saved for the next audit (or cleared: this one is complete), the report stored, the lease released.

Without a fix nothing is written to Trakt. A stop (the deadline, a rate limit, a lost answer) keeps everything done
so far: the next audit continues where this one stopped."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args

from kinotrakt.audit.history import DuplicateGroup, Play, Window, exact_duplicates, read_window
from kinotrakt.audit.progress import (
    PROGRESS_TTL,
    AuditProgress,
    DuplicateNote,
    FixOutcome,
    MissingNote,
    MissingReason,
    Suspect,
    UnexpectedNote,
    ViewRecord,
    minute_time,
)
from kinotrakt.audit.removal import Removals, remove_extras, reread, spans
from kinotrakt.audit.report import AuditReport
from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import KinotraktError, OutOfTime, RateLimited
from kinotrakt.http import CallCounter
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.observability import logger
from kinotrakt.storage.ports import DEFAULT_LEASE, AuditProgressStore, SyncStores
from kinotrakt.sync.collect import collect
from kinotrakt.sync.dedupe import build_remote_index, dedupe
from kinotrakt.sync.keys import UNKNOWN, minute_or_unknown, parse_key, view_ref_item
from kinotrakt.sync.mapping import MappedView, Mapper, MappingCache, expand_pinned_episodes
from kinotrakt.sync.model import CompletedView, Rewatches
from kinotrakt.sync.push import Pusher, PushResult
from kinotrakt.sync.report import HttpCalls, ItemNote, RunError
from kinotrakt.trakt.client import TraktClient
from kinotrakt.trakt.models import HistoryKind

if TYPE_CHECKING:
    from kinotrakt.sync.pipeline import ReadBudget

Fix = Literal["duplicates", "missing", "removed"]
FIXES: tuple[Fix, ...] = get_args(Fix)
HISTORY_KINDS: tuple[HistoryKind, ...] = ("movies", "episodes")
# Of a run's time, the share (at least this many seconds, at most half) kept after reading Kinopub for mapping
# what was read and going on with Trakt's history, as the sync keeps it for pushing.
KINOPUB_RESERVE_SHARE = 0.3
MIN_KINOPUB_RESERVE_SECONDS = 30.0


@dataclass(frozen=True)
class AuditOptions:
    fixes: frozenset[Fix] = frozenset()
    batch_size: int = 100
    rewatches: Rewatches = "new_play"
    lease: timedelta = DEFAULT_LEASE
    dry_run: bool = False  # DRY_RUN: the report only, whatever fixes were asked


@dataclass
class AuditDeps:
    kinopub: KinopubClient
    trakt: TraktClient
    stores: SyncStores
    clock: Clock
    deadline: Deadline
    counter: CallCounter
    on_step: Callable[[str], None] | None = None  # what the audit is doing now (the CLI's progress line)
    # Trakt counts its GET budget per user: an audit's reads and the syncs' share it (see sync/pipeline.py).
    trakt_reads: ReadBudget | None = None


def run_audit(deps: AuditDeps, options: AuditOptions, run_id: str) -> AuditReport:
    """One run of the audit. Handled failures end in the report; unexpected exceptions propagate after the
    progress and the report are stored."""
    clock, stores = deps.clock, deps.stores
    report = AuditReport(run_id=run_id, started_at=clock.now(), fix=sorted(options.fixes), dry_run=options.dry_run)
    if not stores.lease.acquire(run_id, report.started_at, report.started_at + options.lease):
        report.status = "skipped"
        report.finished_at = clock.now()
        logger.info("a sync or another audit holds the lease; skipping the audit")
        return report
    progress: AuditProgress | None = None
    complete = False
    if deps.trakt_reads is not None:
        deps.trakt_reads.seed_get_times(stores.sync_state.load().trakt_reads)
    try:
        progress = _continue_or_start(stores.audit_progress, clock.now(), run_id)
        Audit(deps, options, progress).run()
        complete = True
    except KinotraktError as exc:
        report.status = exc.run_status
        report.error = RunError(exc.code, str(exc))
        if isinstance(exc, RateLimited):
            report.resume_after = exc.resume_after
        log = logger.error if exc.run_status == "failed" else logger.warning
        log("audit run stopped", extra={"error_code": exc.code, "error": str(exc)})
    except Exception as exc:
        report.status = "failed"
        report.error = RunError("unexpected", type(exc).__name__)
        raise
    finally:
        report.finished_at = clock.now()
        report.http_calls = HttpCalls(deps.counter.total("kinopub"), deps.counter.total("trakt"))
        try:
            if progress is not None:
                _settle(stores.audit_progress, progress, complete, report.finished_at)
                report.fill(progress)
                if report.status == "ok" and report.unreadable_items:
                    # As a sync with an item it could not read: the views of those items were not checked (nor
                    # repaired), so the audit is not done with them; the next audit reads them again.
                    report.status = "partial"
            stores.reports.put(report.to_dict(), report.finished_at)
            if deps.trakt_reads is not None and report.http_calls.trakt:
                stores.sync_state.set_trakt_reads(deps.trakt_reads.get_times())
        finally:
            stores.lease.release(run_id)
    return report


def _continue_or_start(store: AuditProgressStore, now: datetime, run_id: str) -> AuditProgress:
    stored = store.load(now)
    progress = AuditProgress.from_json(stored) if stored is not None else None
    if progress is None:
        if stored is not None:
            logger.warning("the stored audit progress is of another version; a new audit starts")
        progress = AuditProgress(audit_id=run_id or uuid.uuid4().hex, started_at=now)
    else:
        logger.info(
            "continuing the audit where it stopped",
            extra={"audit_id": progress.audit_id, "runs": progress.runs, "started_at": progress.started_at.isoformat()},
        )
    progress.runs += 1
    return progress


def _settle(store: AuditProgressStore, progress: AuditProgress, complete: bool, now: datetime) -> None:
    if complete:
        store.clear()
    else:
        store.save(progress.to_json(), now + PROGRESS_TTL)


class Audit:
    """Steps 3-8 on one audit's progress; each step picks up where an earlier run left it."""

    def __init__(self, deps: AuditDeps, options: AuditOptions, progress: AuditProgress) -> None:
        self._deps = deps
        self._trakt = deps.trakt
        self._deadline = deps.deadline
        self._options = options
        self._fixes: frozenset[Fix] = frozenset() if options.dry_run else options.fixes
        self._progress = progress
        self._ledger = deps.stores.ledger.load()
        self._needed: set[str] | None = None

    def run(self) -> None:
        progress = self._progress
        if not progress.kinopub_done:
            self._read_kinopub()
        if progress.suspects is None:
            progress.suspects = self._suspects()
        if "duplicates" in self._fixes:
            self._remove_found_earlier()
        for kind in HISTORY_KINDS:
            while not progress.history[kind].done:
                if self._deadline.expired():
                    raise OutOfTime("the Lambda deadline is near; the next audit reads Trakt's history on from here")
                self._step(f"reading Trakt's history ({kind}): {progress.plays_read} plays so far")
                self._window(read_window(self._trakt, kind, progress.history[kind].end_at))
        self._unknown_times()
        wanted: set[MissingReason] = set()
        if "missing" in self._fixes:
            wanted.add("never_sent")
        if "removed" in self._fixes:
            wanted.add("removed_on_trakt")
        if wanted:
            self._resend(wanted)

    def _step(self, text: str) -> None:
        if self._deps.on_step is not None:
            self._deps.on_step(text)

    # --- step 3: Kinopub --------------------------------------------------------------------------------------

    def _read_kinopub(self) -> None:
        """Every completed view and its key. Kinopub reading stops in time to map what was read; an item counts as
        read only once its views are recorded, so a stop in the middle leaves it to the next run."""
        deps, progress = self._deps, self._progress
        self._step("reading every finished view on Kinopub")
        budget = self._deadline.remaining()
        reserve = min(budget / 2, max(MIN_KINOPUB_RESERVE_SECONDS, budget * KINOPUB_RESERVE_SHARE))
        collected = collect(
            deps.kinopub,
            since=None,
            sent_watched_at=self._ledger.watched_at_by_view,
            rewatches=self._options.rewatches,
            skip=progress.examined,
            stop=lambda: self._deadline.remaining() < reserve,
        )
        known = {note.kinopub_id for note in progress.unreadable}
        progress.unreadable += [
            ItemNote(f.kinopub_id, f.title, f.reason) for f in collected.failures if f.kinopub_id not in known
        ]
        numbering = deps.stores.pins.load_numbering()
        views_by_item: dict[int, list[CompletedView]] = {}
        for view in expand_pinned_episodes(collected.views, numbering):
            views_by_item.setdefault(view.kinopub_id, []).append(view)
        done = set(collected.examined) - set(views_by_item)  # read, nothing finished to record
        self._step(f"finding the Trakt ids of {sum(map(len, views_by_item.values()))} finished views")
        cache = MappingCache(deps.stores.mappings, deps.clock)
        mapper = Mapper(self._trakt, cache, deps.stores.pins.load(), deps.clock, numbering)
        sent_keys = self._sent_keys()
        try:
            for item_id, views in views_by_item.items():
                self._record(views, sent_keys, mapper)
                done.add(item_id)
        except (OutOfTime, RateLimited):
            logger.warning(
                "audit mapping stopped; the next audit goes on", extra={"items_left": len(views_by_item) - len(done)}
            )
            raise
        finally:
            cache.flush()
            progress.examined |= done
        if collected.interrupted:
            raise OutOfTime("Kinopub reading paused to keep time; the next audit goes on from here")
        progress.kinopub_done = True

    def _sent_keys(self) -> dict[tuple[str, str], str]:
        """The ledger's key of each view at each minute it was sent (or found on Trakt) with."""
        keys: dict[tuple[str, str], str] = {}
        for key, view_ref in self._ledger.view_by_key.items():
            try:
                keys[(view_ref, parse_key(key).minute)] = key
            except ValueError:
                continue
        return keys

    def _record(self, views: Sequence[CompletedView], sent_keys: dict[tuple[str, str], str], mapper: Mapper) -> None:
        progress = self._progress
        records: list[ViewRecord] = []
        to_map: list[CompletedView] = []
        for view in views:
            key = sent_keys.get((view.view_ref, minute_or_unknown(view.watched_at)))
            if key is None:
                to_map.append(view)
            else:
                records.append(ViewRecord.of(MappedView(view, key)))
        if to_map:
            mapped = mapper.map(to_map)
            records += [ViewRecord.of(candidate) for candidate in mapped.mapped]
            found = {candidate.view.view_ref for candidate in mapped.mapped}
            progress.unmatched_refs |= {view.view_ref for view in to_map} - found
            progress.unmatched += len(to_map) - len(mapped.mapped)
        progress.views += records
        progress.views_checked += len(records)

    # --- step 4: the ledger's plays of views no longer finished ---------------------------------------------

    def _suspects(self) -> list[Suspect]:
        progress = self._progress
        finished = {record.view_ref for record in progress.views} | progress.unmatched_refs
        unreadable = {note.kinopub_id for note in progress.unreadable}
        suspects = []
        for key, view_ref in self._ledger.view_by_key.items():
            if view_ref in finished:
                continue
            try:
                parse_key(key)
                item = view_ref_item(view_ref)
            except ValueError:
                continue
            if item in unreadable:
                continue  # Kinopub could not say: not judged
            if item in progress.examined:
                suspects.append(Suspect(key, view_ref, "no longer finished on Kinopub"))
            else:
                suspects.append(Suspect(key, view_ref, "no longer in Kinopub's history"))
        return suspects

    # --- steps 5-6: duplicates, and the history window by window --------------------------------------------

    def _remove_found_earlier(self) -> None:
        """Extra plays earlier runs of this audit found without removing them: read again first (they may have
        changed since), then removed, a span of history at a time, so a run that stops keeps what it did."""
        progress = self._progress
        left = [
            DuplicateGroup(note.identity, note.kind, note.title, note.watched_at, note.kept, note.left)
            for note in progress.duplicates
            if note.left
        ]
        if left:
            self._step(f"removing {sum(len(group.extra) for group in left)} duplicate plays found earlier")
        for span in spans(left):
            if self._deadline.expired():
                raise OutOfTime("the Lambda deadline is near; the next audit removes the remaining duplicate plays")
            fresh, gone = reread(self._trakt, span)
            done = Removals()
            try:
                remove_extras(self._trakt, fresh, self._deadline, done)
            finally:
                progress.duplicates = [_with_removed(note, done, gone) for note in progress.duplicates]

    def _window(self, window: Window) -> None:
        progress = self._progress
        groups = exact_duplicates(window.plays)
        done = Removals()
        if groups and "duplicates" in self._fixes:
            try:
                remove_extras(self._trakt, groups, self._deadline, done)
            except Exception:
                # The window is read again next time; the plays removed meanwhile are recorded now (the read
                # again will not see them), the rest is found again then.
                progress.duplicates += [
                    _note(dataclasses.replace(g, extra=tuple(done.by_identity[g.identity])), done)
                    for g in groups
                    if done.by_identity.get(g.identity)
                ]
                raise
        progress.duplicates += [_note(group, done) for group in groups]
        progress.plays_read += len(window.plays)
        self._judge(window)
        state = progress.history[window.kind]
        state.end_at = window.next_end_at
        state.done = window.until is None

    def _judge(self, window: Window) -> None:
        """The views and suspects of the window's minutes: found, or not."""
        progress = self._progress
        present: dict[str, Play] = {key: play for play in window.plays for key in play.keys}
        needed = self._needed_items()
        for play in window.plays if needed else ():
            for item in play.items & needed:
                progress.items_with_plays.setdefault(item, play.label)
        kind = "movie" if window.kind == "movies" else "episode"
        waiting: list[ViewRecord] = []
        for record in progress.views:
            if record.kind != kind or record.watched_at is None or not window.covers(record.watched_at):
                waiting.append(record)
            elif record.key not in present:
                progress.missing.append(MissingNote(record, self._why_missing(record)))
        progress.views = waiting
        assert progress.suspects is not None  # noqa: S101 - set before the history is read
        still: list[Suspect] = []
        for suspect in progress.suspects:
            when = minute_time(suspect.minute)
            if parse_key(suspect.key).kind != kind or when is None or not window.covers(when):
                still.append(suspect)
            elif suspect.key in present:
                play = present[suspect.key]
                progress.unexpected.append(UnexpectedNote(play.label, suspect.minute, suspect.view_ref, suspect.reason))
        progress.suspects = still

    def _needed_items(self) -> set[str]:
        """The movies and episodes of unknown-time views and suspects: any play of theirs counts (step 7)."""
        if self._needed is None:
            progress = self._progress
            unknown_keys = [r.key for r in progress.views if r.watched_at is None]
            unknown_keys += [s.key for s in progress.suspects or [] if s.minute == UNKNOWN]
            self._needed = {parse_key(key).item for key in unknown_keys}
        return self._needed

    def _why_missing(self, record: ViewRecord) -> MissingReason:
        return "removed_on_trakt" if record.key in self._ledger.keys else "never_sent"

    # --- step 7: unknown times ---------------------------------------------------------------------------------

    def _unknown_times(self) -> None:
        """A view of unknown time is on Trakt when its movie or episode has any play, and so is a suspect of
        unknown time (docs/ARCHITECTURE.md#dedupe-keys)."""
        progress = self._progress
        for record in progress.views:
            if parse_key(record.key).item not in progress.items_with_plays:
                progress.missing.append(MissingNote(record, self._why_missing(record)))
        progress.views = []
        for suspect in progress.suspects or []:
            title = progress.items_with_plays.get(parse_key(suspect.key).item)
            if title is not None:
                progress.unexpected.append(UnexpectedNote(title, suspect.minute, suspect.view_ref, suspect.reason))
        progress.suspects = []

    # --- step 8: sending missing views again -------------------------------------------------------------------

    def _resend(self, reasons: Collection[MissingReason]) -> None:
        """Through the sync's own dedupe (Trakt read again for their window, the ledger, the run's own keys) and
        push (the ledger written after each batch, a lost answer re-read, never re-sent blindly). A view the user
        removed on Trakt is in the ledger, so the dedupe is given the ledger without it: Trakt's own history is
        then what keeps it from being sent twice."""
        deps, progress = self._deps, self._progress
        todo = [n for n in progress.missing if n.reason in reasons and n.outcome is None]
        if not todo:
            return
        # A view a sync has sent at another minute since this audit judged it (an audit that stopped and went on
        # later; the view's time moved meanwhile: a part opened again, a rewatch) is on Trakt as that play: the
        # stored judgement is stale, and sending it would be a second play of one viewing.
        sent = self._ledger.watched_at_by_view
        superseded = {
            note.view.view_ref
            for note in todo
            if sent.get(note.view.view_ref, minute_or_unknown(note.view.watched_at))
            != minute_or_unknown(note.view.watched_at)
        }
        todo = [note for note in todo if note.view.view_ref not in superseded]
        self._step(f"sending {len(todo)} missing views to Trakt")
        candidates = [note.view.mapped() for note in todo]
        removed = {note.view.key for note in todo if note.reason == "removed_on_trakt"}
        ledger = dataclasses.replace(self._ledger, keys=self._ledger.keys - removed)
        remote = build_remote_index(self._trakt, [c.view for c in candidates], deps.clock.now())
        deduped = dedupe(candidates, remote, ledger, self._trakt, set())
        # By view: the dedupe may find a view's play at another minute than its own (a film's earlier part).
        outcomes: dict[str, FixOutcome] = dict.fromkeys(superseded, "on_trakt")
        outcomes.update({c.view.view_ref: "on_trakt" for c in deduped.duplicates})
        outcomes.update({c.view.view_ref: "trakt_refused" for c, _ in deduped.undecided})
        not_found: list[MappedView] = []
        pushed = PushResult()
        pusher = Pusher(
            self._trakt, deps.stores.ledger, deps.clock, self._deadline, self._options.batch_size, not_found.append
        )
        try:
            pusher.push(deduped.to_send, pushed)
        finally:
            outcomes.update({c.view.view_ref: "resent" for c in pushed.added})
            outcomes.update({c.view.view_ref: "trakt_not_found" for c in not_found})
            progress.missing = [
                note
                if note.outcome is not None or note.reason not in reasons
                else dataclasses.replace(note, outcome=outcomes.get(note.view.view_ref))
                for note in progress.missing
            ]


def _note(group: DuplicateGroup, done: Removals) -> DuplicateNote:
    removed = set(done.by_identity.get(group.identity, ()))
    return DuplicateNote(
        group.label,
        group.kind,
        group.identity,
        group.watched_at,
        group.minute,
        group.kept,
        group.extra,
        tuple(i for i in group.extra if i in removed),
    )


def _with_removed(note: DuplicateNote, done: Removals, gone: set[int]) -> DuplicateNote:
    """``note`` with the plays ``done`` removed, and those found ``gone`` before (someone else removed them)."""
    removed = (set(done.by_identity.get(note.identity, ())) | set(note.removed)) & set(note.extra)
    gone_now = (gone | set(note.gone)) & set(note.extra) - removed
    return dataclasses.replace(
        note,
        removed=tuple(i for i in note.extra if i in removed),
        gone=tuple(i for i in note.extra if i in gone_now),
    )


def wanted_fixes(values: Iterable[str]) -> frozenset[Fix]:
    """The fixes asked for, checked: ValueError names one that is not a fix."""
    fixes: set[Fix] = set()
    for value in values:
        if value not in FIXES:
            raise ValueError(f"unknown fix {value!r}; the fixes are {', '.join(FIXES)}")
        fixes.add(value)
    return frozenset(fixes)
