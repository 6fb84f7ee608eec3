"""One schedule, start to finish: seed a world, run the real handler under faults, converge, check.

A schedule (all drawn from its seed):
1. a small random library in both fakes, both accounts linked;
2. 1-4 runs under the schedule's fault profile — syncs, and now and then an audit with some of its fixes — the
   world moving on between runs (views finished, plays from other apps, other tools' duplicates, a play the
   user removes, tokens expiring), scheduled runs ``RUN_GAP`` apart on a virtual clock;
3. convergence: up to two more syncs with faults still possible, then faults cleared, until a sync ends ``ok``;
4. a day later (a full rescan, expired Kinopub token), clean syncs until ``ok``;
5. audits with every fix (faults possible in the first two) until one that started after the world stopped
   moving ends ``ok``: the history must then hold no exact duplicate, and every view the user removed is back;
6. the promises of :mod:`chaos.checks`, after every run and at the end.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from chaos import checks
from chaos.faults import REFRESH_ANSWER_CUT, RELINKED, Armed, Profile, arm_run
from chaos.library import UNKNOWN, ViewKind, ViewSpec, build_library, minute_of, other_app_play
from chaos.world import ChaosClock, World, chaos_world
from devkit.sandbox import FakeLambdaContext, link_secret, load_handler
from kinotrakt.clock import iso_z
from kinotrakt.observability import logger, metrics
from kinotrakt.storage.ports import SyncState, SyncStores

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RUN_GAP = 15 * 60  # the EventBridge schedule's rate; longer than the lease (timeout + 60 s), as in production
LAMBDA_TIMEOUT = 600.0
# SYNC_OVERLAP_HOURS: mostly the default; short overlaps make a watermark that runs ahead show at once.
OVERLAP_HOURS = (72.0, 72.0, 72.0, 6.0, 0.1)
FULL_RESCAN = timedelta(hours=24)  # FULL_RESCAN_HOURS default
CHAOS_RUNS = (1, 4)
CONVERGE_WITH_FAULTS = 2  # runs in which faults are still possible before they are cleared
CONVERGE_CLEAN = 8  # clean runs allowed to reach ok; more means the sync does not converge
WARP_CALLS = (1, 60)  # the clock call at which the deadline arrives (a run makes 3-100, 22 typically)
FULL_SCAN_WARP_CALLS = (4, 30)  # a full scan's: while it reads the items or pushes their first plays
NESTED_CALLS = (2, 12)  # the DynamoDB call during which a second invocation starts (a run makes 1-25)
BATCH_SIZES = ("1", "2", "3", "5", "100")
AUDIT_SHARE = 0.25  # of the runs in the chaos phase, audits (each with a random set of fixes)
FIXES = ("duplicates", "missing", "removed")

LEASE_HELD = "lease held by another invocation"
NESTED = "second invocation during a run"
DEADLINE = "lambda deadline at a random step"
FULL_SCAN_DEADLINE = "lambda deadline during a full scan"


@dataclass
class ScheduleResult:
    seed: int
    runs: int = 0
    converge_runs: int | None = None  # runs after the chaos phase until one ended ok
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # "partial: out_of_time", "crashed: ClientError", ...
    armed: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  # plays of ours on Trakt that duplicate another, and those an audit removed as such
    lost: int = 0
    leaked: int = 0
    wrong: int = 0
    removed_wrongly: int = 0
    removed: int = 0  # plays audits removed (each an exact duplicate, or counted in removed_wrongly)
    removals_unanswered: int = 0  # removal requests whose answer the audit never got whole (a fault fired on them)
    lease_violations: int = 0
    views: int = 0
    problems: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # one line per run: what was armed, how it ended
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(
            self.duplicates
            or self.lost
            or self.leaked
            or self.wrong
            or self.removed_wrongly
            or self.lease_violations
            or self.converge_runs is None
            or self.problems
        )


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every line the ``kinotrakt`` logger writes, at every level, formatted as CloudWatch would get it;
    nothing goes to stdout meanwhile."""
    target = logging.getLogger(logger.name)
    handlers, level, propagate = list(target.handlers), target.level, target.propagate
    lines: list[str] = []
    capture = _Lines(lines)
    capture.setFormatter(logger.registered_formatter)
    target.handlers = [capture]
    target.setLevel(logging.DEBUG)
    target.propagate = False
    try:
        yield lines
    finally:
        target.handlers = handlers
        target.setLevel(level)
        target.propagate = propagate


class Schedule:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.result = ScheduleResult(seed)
        self.texts: list[str] = []  # reports and crash traces: checked for secrets with the log lines
        self.lost: dict[str, str] = {}  # view label → why
        self.removed_ours = 0  # plays of ours that audits removed as exact duplicates
        self.user_removed: set[str] = set()  # views whose play the user removed: back only through an audit
        self.run_number = 0
        self.spent: set[str] = set()  # services whose refresh token a cut-off refresh answer spent

    # --- the schedule -------------------------------------------------------------------------------------

    def run(self) -> ScheduleResult:
        began = time.perf_counter()
        rng = self.rng
        clock = ChaosClock(START + timedelta(minutes=rng.randint(0, 100_000)))
        self.profile = Profile.draw(rng)
        overlap = rng.choice(OVERLAP_HOURS)
        self.overlap = timedelta(hours=overlap)
        env = {
            "HTTP_TIMEOUT_SECONDS": str(self.profile.http_timeout),
            "SYNC_BATCH_SIZE": rng.choice(BATCH_SIZES),
            "SYNC_OVERLAP_HOURS": str(overlap),
        }
        try:
            with captured_logs() as lines, chaos_world(clock, env) as world:
                self._play(world, clock)
                self._final_checks(world, lines)
        except Exception as exc:
            self.result.problems.append("harness error: " + "".join(traceback.format_exception(exc))[-2000:])
        # A wrong play is worse than a missing one (the user must find and remove it): it counts as lost too.
        self.result.lost = len(self.lost) + self.result.wrong
        self.result.problems.extend(f"lost: {label} ({why})" for label, why in sorted(self.lost.items()))
        self.result.seconds = time.perf_counter() - began
        return self.result

    def _play(self, world: World, clock: ChaosClock) -> None:
        rng = self.rng
        self.last_report: dict[str, Any] | None = None
        self.world = world
        self.clock = clock
        self.library = build_library(rng, world.kinopub, world.trakt, int(clock.now().timestamp()))
        world.box.link()
        self.module = load_handler("sync")  # its cold-start Settings() read the schedule's environment

        for _ in range(rng.randint(*CHAOS_RUNS)):
            self._between_runs()
            audit = frozenset(f for f in FIXES if rng.random() < 0.5) if rng.random() < AUDIT_SHARE else None
            self._run(intensity=1.0, audit=audit)

        converged = None
        for attempt in range(1, CONVERGE_WITH_FAULTS + CONVERGE_CLEAN + 1):
            self._between_runs()
            if self._run(intensity=0.5 if attempt <= CONVERGE_WITH_FAULTS else 0.0) == "ok":
                converged = attempt
                break
        self.result.converge_runs = converged
        if converged is None:
            self.result.problems.append(f"no run ended ok in {CONVERGE_WITH_FAULTS + CONVERGE_CLEAN} tries")
            return

        # A day later: a full rescan re-examines every item that can still change (also those given up after
        # Kinopub errors, and those with an episode marked watched by hand since).
        clock.advance(FULL_RESCAN.total_seconds())
        for _ in range(CONVERGE_CLEAN):
            self._between_runs(events=False)
            if self._run(intensity=0.0) == "ok":
                self._after_the_rescan()
                break
        else:
            self.result.problems.append("the full rescan a day later did not end ok")
            return

        # Then audits with every fix, until one that started now (not one continued from the chaos phase, which
        # judged the history as it was then) ends ok.
        still = clock.now()
        for attempt in range(1, CONVERGE_WITH_FAULTS + CONVERGE_CLEAN + 1):
            self._between_runs(events=False)
            self._run(intensity=0.5 if attempt <= CONVERGE_WITH_FAULTS else 0.0, audit=frozenset(FIXES))
            report: dict[str, Any] = self.last_report or {}
            started = report.get("audit_started_at")
            if report.get("status") == "ok" and isinstance(started, str) and started >= iso_z(still):
                return
        self.result.problems.append("no audit with every fix ended ok after the world stopped moving")

    # --- one run ------------------------------------------------------------------------------------------

    def _run(self, intensity: float, audit: frozenset[str] | None = None) -> str:
        """One invocation (a sync, or an audit with the ``audit`` fixes); returns how it ended."""
        rng, world, clock = self.rng, self.world, self.clock
        self.run_number += 1
        run_id = f"chaos-{self.seed}-{self.run_number}"
        plays_before = checks.trakt_plays(world)
        requests_before = len(world.trakt.requests)
        armed = arm_run(rng, world, self.profile, intensity=intensity) if intensity > 0 else Armed()
        stores = world.plain_stores()
        sync_state = stores.sync_state.load()
        # A full scan that stopped keeps what it has left to read in the book of known items; the run that goes
        # on reads only those.
        before, resumed = sync_state.watermark, stores.known_items.load().in_state("to_read")

        warp = None
        if DEADLINE in armed.runner:
            warp = rng.randint(*WARP_CALLS)
        elif FULL_SCAN_DEADLINE in armed.runner and self._full_scan_ahead(sync_state, resumed):
            warp = rng.randint(*FULL_SCAN_WARP_CALLS)
        clock.warp_at(warp, LAMBDA_TIMEOUT)
        if LEASE_HELD in armed.runner:
            now = clock.now()
            if stores.lease.acquire("another-invocation", now, now + timedelta(minutes=5)):
                armed.runner[LEASE_HELD] += 1
        if NESTED in armed.runner:
            self._arm_nested(armed, run_id)

        marks = {"kinopub": len(world.kinopub.requests), "trakt": len(world.trakt.requests)}
        report = self._invoke(run_id, world.faulty_stores(), audit)
        self.last_report = report
        run_requests = {
            "kinopub": world.kinopub.requests[marks["kinopub"] :],
            "trakt": world.trakt.requests[marks["trakt"] :],
        }
        world.on_dynamodb_call = None
        for name in (DEADLINE, FULL_SCAN_DEADLINE):
            if name in armed.runner and clock.warped:
                armed.runner[name] += 1
        clock.warp_at(None)
        self._disarm(armed)

        status = str(report["status"]) if report is not None else "crashed"
        error = (report or {}).get("error") or {}
        detail = error.get("code", "") if report is not None else self.texts[-1].strip().splitlines()[-1]
        kind = "" if audit is None else "audit "
        if status in ("partial", "failed", "crashed"):
            self.result.reasons[f"{kind}{status}: {detail.split(':')[0] or 'item errors'}"] += 1
        fired = sorted(name for name, count in armed.fired().items() if count)
        what = "" if audit is None else f"audit fix={','.join(sorted(audit)) or '-'} "
        self.result.trace.append(f"run {self.run_number}: {what}{status} {detail} | fired: {', '.join(fired) or '-'}")
        self.result.runs += 1
        self.result.statuses[f"{kind}{status}"] += 1
        self._check_removals(plays_before, audit)
        self.result.removals_unanswered += sum(
            1
            for request in world.trakt.requests[requests_before:]
            if request.path == "/sync/history/remove" and request.fault is not None and request.fault != "delay:0"
        )
        self._check_run(report if audit is None else None, before, resumed)
        watermark = world.plain_stores().sync_state.load().watermark
        self.result.problems.extend(
            f"run {self.run_number}: {problem}"
            for problem in checks.rate_limit_problems(report, run_requests, before, watermark)
        )
        self._link_again_if_asked(armed, error)
        return status

    def _link_again_if_asked(self, armed: Armed, error: dict[str, Any]) -> None:
        """The owner's answer to the AuthRequired alarm, for a refresh token a cut-off refresh answer spent."""
        fired = armed.fired()
        self.spent.update(service for service, name in REFRESH_ANSWER_CUT.items() if fired.get(name))
        if error.get("code") != "relink_required":
            return
        service = str(error.get("message", "")).split(" ", 1)[0]
        if service in self.spent:
            self.spent.discard(service)
            world = self.world
            fake = world.trakt if service == "trakt" else world.kinopub
            link_secret(world.token_store(service), fake, int(self.clock.now().timestamp()))
            self.result.events[RELINKED] += 1

    def _full_scan_ahead(self, state: SyncState, resumed: frozenset[int]) -> bool:
        """The coming run reads every item that can still change (sync/scan.py;
        docs/ARCHITECTURE.md#the-scan-and-the-watermark)."""
        last = state.last_full_scan
        return bool(resumed) or state.watermark is None or last is None or self.clock.now() - last >= FULL_RESCAN

    def _invoke(self, run_id: str, stores: SyncStores, audit: frozenset[str] | None = None) -> dict[str, Any] | None:
        event: dict[str, Any] = {
            "scheduled_time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "execution_id": run_id,
        }
        if audit is not None:
            event |= {"action": "audit", "fix": sorted(audit)}
        context = FakeLambdaContext(self.clock, LAMBDA_TIMEOUT)
        handler: ModuleType = self.module
        try:
            report: dict[str, Any] = handler.handle(event, context, stores=stores, clock=self.clock)
        except Exception as exc:  # an unexpected error propagates from the handler, as in Lambda
            self.texts.append("".join(traceback.format_exception(exc)))
            return None
        finally:
            metrics.clear_metrics()  # the handler emits per run; nothing here flushes them
        self.texts.append(json.dumps(report))
        return report

    def _arm_nested(self, armed: Armed, run_id: str) -> None:
        """A second invocation of the handler, started while this run is inside its ``at``-th DynamoDB call."""
        world = self.world
        at = self.rng.randint(*NESTED_CALLS)
        calls = 0

        def on_call(operation: str) -> None:
            nonlocal calls
            calls += 1
            if calls != at:
                return
            world.on_dynamodb_call = None
            holder = world.lease_owner()
            nested = self._invoke(f"{run_id}-concurrent", world.plain_stores())
            armed.runner[NESTED] += 1
            status = "crashed" if nested is None else str(nested["status"])
            self.result.statuses[f"concurrent {status}"] += 1
            if holder == run_id and status != "skipped":
                self.result.lease_violations += 1
                self.result.problems.append(f"a second invocation ran ({status}) while run {run_id} held the lease")

        world.on_dynamodb_call = on_call

    def _disarm(self, armed: Armed) -> None:
        world = self.world
        for name, count in armed.fired().items():
            self.result.fired[name] += count
        for name in armed.names():
            self.result.armed[name] += 1
        world.trakt.clear_faults()
        world.kinopub.clear_faults()
        world.storage_faults.clear()
        world.trakt.expire_after = None
        world.trakt.apply_then_status.clear()
        world.kinopub.expire_after = None
        for fake in (world.trakt, world.kinopub):
            self.result.problems.extend(f"fake {type(fake).__name__} crashed: {trace[-500:]}" for trace in fake.errors)
            fake.errors.clear()

    # --- the world moving on between runs -----------------------------------------------------------------

    def _between_runs(self, *, events: bool = True) -> None:
        """Time passes (one schedule interval); things happen during it, all before the next run starts."""
        gap = RUN_GAP + self.rng.randint(0, 300)
        self.clock.advance(gap)
        if events:
            now = int(self.clock.now().timestamp())
            self._kinopub_events(now, gap)
            self._finished_series_events(now, gap)
            self._trakt_events(now)
            self._token_events()

    def _happens(self, event: str) -> bool:
        return self.rng.random() < self.profile.events[event]

    def _kinopub_events(self, now: int, gap: int) -> None:
        rng, kinopub, library = self.rng, self.world.kinopub, self.library

        def during_gap() -> int:
            return now - rng.randint(120, gap - 60)

        if self._happens("kinopub views finished between runs"):
            pending = library.pending(kinopub)
            for view in rng.sample(pending, min(len(pending), rng.randint(1, 3))):
                self._finish(view, during_gap())
                self.result.events["kinopub views finished between runs"] += 1

        if self._happens("kinopub episode marked watched by hand"):
            # Marked by hand leaves no history row: it is found through the item's other, fresh row.
            pending = [v for v in library.pending(kinopub) if v.kind == "episode"]
            if pending:
                played, at = rng.choice(pending), during_gap()
                self._finish(played, at)
                rest = [v for v in library.pending(kinopub) if v.kp_item == played.kp_item]
                if rest:
                    marked = rng.choice(rest)
                    kinopub.mark_watched_without_play(
                        marked.kp_item, season=marked.season, episode=marked.episode, at=at + 60
                    )
                    self.result.events["kinopub episode marked watched by hand"] += 1

        if self._happens("kinopub clock ahead of ours"):
            # Kinopub's `updated` comes from Kinopub's clock: a few seconds ahead, a view finished just
            # before the run looks finished just after it started.
            pending = library.pending(kinopub)
            if pending:
                self._finish(rng.choice(pending), now + rng.randint(1, 30))
                self.result.events["kinopub clock ahead of ours"] += 1

        if self._happens("kinopub film part opened again"):
            # Part 1 of a finished multi-part film played again (the 2021 recording's item 25130): its `updated`
            # moves, the other parts' do not - not a rewatch, never a second play.
            films = library.reopenable(kinopub)
            if films:
                kinopub.watch(rng.choice(films).kp_item, video=1, at=during_gap())
                self.result.events["kinopub film part opened again"] += 1

        if self._happens("kinopub trailer opened"):
            # A trailer next to the film, watched or just opened: never a reason to post or to move the film.
            films = library.with_extras()
            if films:
                film = rng.choice(films)
                trailer = film.videos + rng.randint(1, film.extras)
                kinopub.watch(film.kp_item, video=trailer, at=during_gap(), status=rng.choice((0, 1)))
                self.result.events["kinopub trailer opened"] += 1
        library.note(kinopub)

    def _finished_series_events(self, now: int, gap: int) -> None:
        rng, kinopub, library = self.rng, self.world.kinopub, self.library

        def during_gap() -> int:
            return now - rng.randint(120, gap - 60)

        if self._happens("kinopub new episode of a finished series marked watched by hand"):
            # The next episode of a series watched to the end comes out and is marked watched by hand: no history
            # row. The daily rescan no longer reads a complete series: the view waits for the series' next row.
            finished = library.finished_series(kinopub)
            if finished:
                view = library.air_next_episode(kinopub, rng.choice(finished))
                at = during_gap()
                kinopub.mark_watched_without_play(view.kp_item, season=view.season, episode=view.episode, at=at)
                library.marked_by_hand[view.label] = at
                self.result.events["kinopub new episode of a finished series marked watched by hand"] += 1

        if self._happens("kinopub episode marked watched by hand, nothing played"):
            # No history row at all, on a series whose rows the hourly runs no longer read (older than their
            # overlap): only the daily rescan, which reads every series with an episode to watch, can find it.
            # (Once the first full scan is done: before that, it reads every item anyway.)
            quiet_since = now - self.overlap.total_seconds() - 86_400
            stores = self.world.plain_stores()
            scanned = stores.sync_state.load().watermark is not None and not stores.known_items.load().in_state(
                "to_read"
            )
            pending = [
                v
                for v in library.pending(kinopub)
                if scanned and v.kind == "episode" and (library.discovery(kinopub, v) or now) < quiet_since
            ]
            if pending:
                view, at = rng.choice(pending), during_gap()
                kinopub.mark_watched_without_play(view.kp_item, season=view.season, episode=view.episode, at=at)
                library.marked_quietly[view.label] = at
                self.result.events["kinopub episode marked watched by hand, nothing played"] += 1

        if self._happens("kinopub finished series opened again"):
            # An episode of such a series played a little (its history row moves, nothing else changes): the
            # hourly runs read the series again, and the episode marked by hand with it.
            items = sorted({v.kp_item for v in library.views if v.label in library.marked_by_hand})
            if items:
                item = rng.choice(items)
                timed = {m.id for m in kinopub.items[item].media() if m.updated is not None}
                rows = [r for r in kinopub.history.values() if r.item_id == item and r.media_id in timed]
                if rows:
                    row = rng.choice(sorted(rows, key=lambda r: r.media_id))
                    kinopub.add_history_row(
                        item, row.media_id, first_seen=row.first_seen, last_seen=during_gap(), counter=row.counter + 1
                    )
                    self.result.events["kinopub finished series opened again"] += 1

        library.note(kinopub)

    def _trakt_events(self, now: int) -> None:
        rng, world, library = self.rng, self.world, self.library
        trakt = world.trakt
        known = [view for view in library.views if view.trakt_item is not None]
        plays = checks.trakt_plays(world)
        if known and self._happens("other app's play on trakt"):
            other_app_play(trakt, rng.choice(known), minute_of(now - rng.randint(0, 60 * 86_400)), rng)
            self.result.events["other app's play on trakt"] += 1

        if self._happens("other app's play in the minute of a view not yet synced"):
            waiting = [v for v in checks.expected_views(world, library) if not checks.present(world, library, v, plays)]
            if waiting:
                view = rng.choice(waiting)
                # The other app runs on the true clock: its plays are never in the future.
                minutes = library.acceptable_minutes(world.kinopub, view) - {UNKNOWN}
                past = sorted(m for m in minutes if m <= minute_of(now))
                other_app_play(trakt, view, rng.choice(past) if past else minute_of(now - 86_400), rng)
                self.result.events["other app's play in the minute of a view not yet synced"] += 1

        if self._happens("other app's duplicate of a synced play"):
            synced = [play for play in plays if play.ours and not play.key.endswith(UNKNOWN)]
            if synced:
                play = rng.choice(synced)
                view = next(v for v in known if v.trakt_item == play.item)
                other_app_play(trakt, view, key_minute(play.key), rng)
                self.result.events["other app's duplicate of a synced play"] += 1

        if plays and self._happens("another tool re-imported plays on trakt"):
            # A sync tool that dedupes nothing imports plays already there again, in their own minutes.
            for play in rng.sample(plays, min(len(plays), rng.randint(1, 3))):
                when = (
                    "unknown"
                    if play.key.endswith(UNKNOWN)
                    else f"{key_minute(play.key)[:-1]}:{rng.randint(0, 59):02d}Z"
                )
                kind: ViewKind = "movie" if play.item[0] == "movie" else "episode"
                for _ in range(rng.randint(1, 2)):
                    trakt.add_play(kind, play.item[1], when, action="checkin")
            self.result.events["another tool re-imported plays on trakt"] += 1

        if known and self._happens("a movie or episode marked watched twice with no date on trakt"):
            view = rng.choice(known)
            assert view.trakt_item is not None
            trakt.add_plays([(view.trakt_item[0], view.trakt_item[1], "unknown")] * 2, action="checkin")
            self.result.events["a movie or episode marked watched twice with no date on trakt"] += 1

        if self._happens("the user removed a synced play on trakt"):
            ours = [(play, view) for play in plays if play.ours for view in known if view.trakt_item == play.item]
            if ours:
                play, view = rng.choice(ours)
                trakt.remove_play(play.id)
                self.user_removed.add(view.label)
                self.result.events["the user removed a synced play on trakt"] += 1

    def _token_events(self) -> None:
        world = self.world
        for service, fake in (("trakt", world.trakt), ("kinopub", world.kinopub)):
            name = f"{service} access token expired between runs"
            if self._happens(name):
                token = world.token_store(service).load().secret.access_token
                if token is not None and fake.token_is_valid(token.get_secret_value()):
                    fake.expire_access_token(token.get_secret_value())
                    self.result.events[name] += 1

    def _finish(self, view: ViewSpec, now: int) -> None:
        kinopub = self.world.kinopub
        if view.kind == "episode":
            kinopub.watch(view.kp_item, season=view.season, episode=view.episode, at=now)
            return
        for media in self.library.media(kinopub, view):
            if media.status != 1:
                kinopub.watch(view.kp_item, video=media.number, at=now)

    # --- the checks ---------------------------------------------------------------------------------------

    def _check_run(self, report: dict[str, Any] | None, before: datetime | None, resumed: frozenset[int]) -> None:
        world, library = self.world, self.library
        stores = world.plain_stores()
        plays = checks.trakt_plays(world)
        given_up = {item.kinopub_id for item in stores.unmatched.load() if item.reason == "kinopub_error"}
        watermark = stores.sync_state.load().watermark
        if before is not None and watermark is not None and watermark < before:
            self.result.problems.append(f"the watermark moved back from {before} to {watermark}")
        for view in checks.behind_watermark(world, library, plays, watermark, self.overlap, given_up):
            if view.label not in self.user_removed:  # the sync never puts back what the user removed
                self.lost.setdefault(view.label, f"behind the watermark after run {self.run_number}")
        if report is None or report["status"] != "ok" or report.get("dry_run"):
            return
        # An ok run read everything in its window and synced it (unmatched items do not spoil it:
        # docs/contract.md#sync-report).
        # A full scan that went on from the book reads only what it had left (``resumed``), not the items earlier
        # runs of the scan finished: what changed there since is left to the next runs (the overlap), and the
        # watermark check above watches that.
        since = None if report.get("full_scan") or before is None else (before - self.overlap).timestamp()
        for view in checks.expected_views(world, library):
            discovered = library.discovery(world.kinopub, view)
            went_on = bool(report.get("full_scan") and resumed)
            skipped = view.kp_item in given_up or (went_on and view.kp_item not in resumed)
            if skipped or discovered is None or (since is not None and discovered < since):
                continue
            if not checks.present(world, library, view, plays) and view.label not in self.user_removed:
                self.lost.setdefault(view.label, f"not on Trakt after run {self.run_number} ended ok")

    def _check_removals(self, before: list[checks.PlayRecord], audit: frozenset[str] | None) -> None:
        """Only an audit asked to fix duplicates removes plays, and only exact duplicates of an older play."""
        after = checks.trakt_plays(self.world)
        gone = {play.id for play in before} - {play.id for play in after}
        wrong = checks.removed_wrongly(before, after)
        if gone and (audit is None or "duplicates" not in audit):
            wrong = [play for play in before if play.id in gone]
        self.result.removed += len(gone)
        self.result.removed_wrongly += len(wrong)
        self.result.problems.extend(f"removed, not an exact duplicate: {play.key} (play {play.id})" for play in wrong)
        # An audit keeps each viewing's oldest play: one of ours it removed was a duplicate a sync had sent (after
        # another app's play of that minute, or twice). The audit would hide it from the final count: count it now.
        ours = [play for play in before if play.id in gone and play.ours and play not in wrong]
        self.removed_ours += len(ours)
        self.result.problems.extend(
            f"duplicate play: {play.key} (a sync sent it twice; an audit removed it)" for play in ours
        )

    def _after_the_rescan(self) -> None:
        """What the syncs alone must have done once the daily rescan ended ok, before the audits (whose fixes
        send missing views too, and would hide a view a sync lost): every finished view on Trakt but those whose
        play the user removed, and every episode marked watched by hand on a series with episodes to watch."""
        world, library = self.world, self.library
        plays = checks.trakt_plays(world)
        for view in checks.missing(world, library, plays):
            if view.label not in self.user_removed:
                self.lost.setdefault(view.label, "not on Trakt after convergence and the daily rescan")
        for view in checks.marked_quietly(world, library, plays):
            self.lost.setdefault(view.label, "marked watched by hand, not on Trakt after the daily rescan")

    def _final_checks(self, world: World, lines: list[str]) -> None:
        library = self.library
        plays = checks.trakt_plays(world)
        self.result.views = len(checks.expected_views(world, library))
        duplicates = checks.duplicate_plays(world, library, plays)
        self.result.duplicates = len(duplicates) + self.removed_ours
        self.result.problems.extend(f"duplicate play: {play.key}" for play in duplicates)
        wrong = checks.wrong_plays(world, library, plays)
        self.result.wrong = len(wrong)
        self.result.problems.extend(f"posted but not a completed view: {play.key}" for play in wrong)
        if self.result.converge_runs is not None:
            for view in checks.missing(world, library, plays):
                self.lost.setdefault(view.label, "not on Trakt after convergence and the audit")
            left = world.trakt.duplicate_keys()
            if left and not self.result.problems:
                self.result.problems.extend(f"an exact duplicate the final audit left: {key}" for key in left)
        leaked = checks.leaks([*lines, *self.texts, world.table_dump()], checks.issued_secrets(world))
        self.result.leaked = len(leaked)
        self.result.problems.extend(f"secret in output: {text}" for text in leaked)


def key_minute(key: str) -> str:
    """The minute of a dedupe key (``YYYY-MM-DDTHH:MMZ`` holds a colon itself)."""
    return ":".join(key.rsplit(":", 2)[-2:])


def run_schedule(seed: int) -> ScheduleResult:
    return Schedule(seed).run()
