"""The audit end to end, through the real handler (``{"action": "audit"}``): moto + fake Kinopub + fake Trakt.

Each test seeds a Trakt history the way users arrive with one — another app's double scrobbles, another tool's
re-import, rewatches, plays of unknown date, plays the user removed — and checks, from the fake's own plays, what
the audit reports and what its fixes leave in the history. The promise under every test: a play that is not an
exact duplicate (same kind, same Trakt id, same minute) is never removed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.base import RecordedRequest
from devkit.fakes.fake_trakt import CLOUDFLARE_429, CLOUDFLARE_RETRY_AFTER, FakeTrakt
from devkit.sandbox import REPO, FakeLambdaContext, Sandbox, load_handler, patched_environ, sandbox
from kinotrakt.observability import logger as powertools_logger
from kinotrakt.observability import metrics
from kinotrakt.storage.ports import LeaseHolder, SyncStores
from tests.integration.test_real_kinopub_data import VIENNA_TRAKT, seed_vienna, watch_parts
from tests.integration.test_sync_handler import emf_metrics
from tests.integration.test_sync_pipeline import (
    BM_KP,
    BM_TRAKT,
    DAY,
    HOUR,
    INCEPTION_KP,
    INCEPTION_TRAKT,
    T0,
    minute,
    seed_basic,
)

AUDIT = {"action": "audit"}
EVERY_FIX = {"action": "audit", "fix": ["duplicates", "missing", "removed"]}
# Movies only Trakt knows (watched elsewhere): a long history of other plays.
OTHER_MOVIES = range(50_001, 50_041)


def at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def identity(play: dict[str, Any]) -> tuple[str, int, str]:
    """Same kind, same Trakt id, same minute (unknown dates are Trakt's 1970-01-01)."""
    kind = play["type"]
    return kind, play[kind]["ids"]["trakt"], play["watched_at"][:16]


def plays_by_id(trakt: FakeTrakt) -> dict[int, tuple[str, int, str]]:
    return {play["id"]: identity(play) for play in trakt.plays()}


def assert_only_exact_duplicates_removed(before: dict[int, tuple[str, int, str]], trakt: FakeTrakt) -> set[int]:
    """Every play gone since ``before`` had a play of the same identity with a lower id, which is still there."""
    after = plays_by_id(trakt)
    gone = set(before) - set(after)
    for history_id in gone:
        kept = [other for other, same in after.items() if same == before[history_id]]
        assert kept, f"play {history_id} was removed with every other play of {before[history_id]}"
        assert min(kept) < history_id, f"play {history_id} was removed, but an older play was not kept"
    return gone


def expected_extras(trakt: FakeTrakt) -> set[int]:
    """Every play but the oldest of each identity: what --fix duplicates must remove, no more, no less."""
    by_identity: dict[tuple[str, int, str], list[int]] = {}
    for history_id, same in plays_by_id(trakt).items():
        by_identity.setdefault(same, []).append(history_id)
    return {i for ids in by_identity.values() for i in sorted(ids)[1:]}


def removed_ids(request: RecordedRequest) -> list[int]:
    assert isinstance(request.json, dict)
    ids: list[int] = request.json["ids"]
    return ids


def seed_other_movies(trakt: FakeTrakt) -> None:
    for number, trakt_id in enumerate(OTHER_MOVIES):
        trakt.add_movie(trakt_id, f"Elsewhere {number}", 1990 + number % 30, f"tt{7_000_000 + number}")


def seed(kinopub: Any, trakt: FakeTrakt) -> None:
    seed_basic(kinopub, trakt)
    seed_other_movies(trakt)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime.now(UTC))


@pytest.fixture
def box(clock: VirtualClock) -> Iterator[Sandbox]:
    metrics.clear_metrics()
    # The fakes on the same virtual clock: the times they record are the run's.
    with sandbox(seed=seed, clock=clock, fake_clock=clock.time) as sb:
        yield sb


@pytest.fixture
def synced(box: Sandbox) -> Sandbox:
    """The basic library synced: 2 movies and 3 Black Mirror episodes on Trakt, one play each."""
    assert box.invoke()["status"] == "ok"
    box.trakt.clear_requests()
    box.kinopub.clear_requests()
    return box


def pollute(trakt: FakeTrakt) -> dict[str, list[int]]:
    """A history as other tools leave it; returns the ids of each kind of play added."""
    bm = trakt.episode_id(BM_TRAKT, 1, 2)
    other = OTHER_MOVIES[0]
    return {
        # another app scrobbled Inception in the very minute kinotrakt sent it (its own seconds)
        "double scrobble": [trakt.add_play("movie", INCEPTION_TRAKT, at(T0 + 5), action="scrobble")],
        # another sync tool re-imported the Black Mirror episode at the same minute, twice
        "re-import": [trakt.add_play("episode", bm, at(T0 + 2 * DAY + 2 * HOUR), action="watch") for _ in range(2)],
        # Inception watched again the next day: a rewatch, never a duplicate
        "rewatch": [trakt.add_play("movie", INCEPTION_TRAKT, at(T0 + DAY), action="scrobble")],
        # a movie watched elsewhere, marked watched (unknown date) three times, and once with a date
        "unknown": [trakt.add_play("movie", other, "unknown") for _ in range(3)],
        "dated": [trakt.add_play("movie", other, at(T0 - 30 * DAY), action="checkin")],
    }


# --- what an audit reports ----------------------------------------------------------------------------------


def test_an_audit_reports_the_exact_duplicates_from_every_source_and_writes_nothing(synced: Sandbox) -> None:
    # Given a synced library and a history other tools polluted
    added = pollute(synced.trakt)
    before = plays_by_id(synced.trakt)

    # When the user asks for an audit (report only)
    report = synced.invoke(AUDIT)

    # Then the extra plays are counted: the scrobble in kinotrakt's minute, both re-imports, two of the three
    # unknown-date plays (per item) — not the rewatch, not the dated play of the unknown-date movie
    assert report["status"] == "ok"
    assert report["duplicates_found"] == 1 + 2 + 2
    extras = {i for entry in report["duplicates"] for i in entry["extra"]}
    assert extras == {*added["double scrobble"], *added["re-import"], *added["unknown"][1:]}
    assert extras == expected_extras(synced.trakt)
    assert {entry["title"] for entry in report["duplicates"]} == {
        "Inception (2010)",
        "Black Mirror S01E02",
        "Elsewhere 0 (1990)",
    }
    unknown = next(entry for entry in report["duplicates"] if entry["title"] == "Elsewhere 0 (1990)")
    assert (unknown["watched_at"], unknown["kept"]) == ("unknown", added["unknown"][0])
    # and nothing else is wrong, and nothing was written: every play is still there, no write was sent
    assert (report["missing_on_trakt"], report["unexpected_plays"], report["duplicates_removed"]) == (0, 0, 0)
    assert report["views_checked"] == 5
    assert plays_by_id(synced.trakt) == before
    assert not [r for r in synced.trakt.requests if r.method == "POST" and r.path.startswith("/sync")]


def test_an_audits_trakt_reads_count_in_the_get_budget_the_next_run_starts_from(synced: Sandbox) -> None:
    # Given a synced library whose last run's Trakt reads are remembered
    before = synced.stores().sync_state.load().trakt_reads
    pollute(synced.trakt)

    # When an audit reads Trakt's history
    report = synced.invoke(AUDIT)

    # Then its GETs are remembered beside the sync's (Trakt counts the budget per user, whatever run asks)
    gets = [r for r in synced.trakt.requests if r.method == "GET"]
    assert report["status"] == "ok"
    assert gets
    assert len(synced.stores().sync_state.load().trakt_reads) == len(before) + len(gets)


def test_the_report_has_the_contract_fields_and_is_stored_and_logged_as_an_audit(synced: Sandbox) -> None:
    pollute(synced.trakt)
    lines: list[dict[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(powertools_logger.registered_formatter.format(record)))

    capture = Capture()
    logging.getLogger("kinotrakt").addHandler(capture)
    try:
        report = synced.invoke({**AUDIT, "execution_id": "audit-1"})
    finally:
        logging.getLogger("kinotrakt").removeHandler(capture)

    for name in ("duplicates_found", "duplicates_removed", "missing_on_trakt", "unexpected_plays"):
        assert isinstance(report[name], int)
    assert report["run_id"] == "audit-1"
    assert report["action"] == "audit"
    assert set(report["http_calls"]) == {"kinopub", "trakt"}
    assert report["started_at"].endswith("Z")
    assert report["finished_at"].endswith("Z")
    finished = [line for line in lines if line["message"] == "audit run finished"]
    assert len(finished) == 1
    assert finished[0]["duplicates_found"] == report["duplicates_found"] == 5
    stored = synced.stores().reports.latest(1)[0]
    assert stored == report


def test_the_audit_emits_its_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.clear_metrics()
    with sandbox(seed=seed) as box:  # the system clock: the real lambda_handler path, which flushes metrics
        box.invoke()
        pollute(box.trakt)
        capsys.readouterr()
        box.invoke(AUDIT)
    values = emf_metrics(capsys.readouterr().out)
    assert values["AuditDuplicatesFound"] == 5
    assert values["AuditDuplicatesRemoved"] == 0
    assert values["RunFailed"] == values["RunPartial"] == 0


# --- --fix duplicates ----------------------------------------------------------------------------------------


def test_fix_duplicates_keeps_the_oldest_play_of_each_viewing_and_removes_exactly_the_extra_ones(
    synced: Sandbox,
) -> None:
    # Given the polluted history
    added = pollute(synced.trakt)
    before = plays_by_id(synced.trakt)
    extras = expected_extras(synced.trakt)

    # When the audit runs with --fix duplicates
    report = synced.invoke({"action": "audit", "fix": ["duplicates"]})

    # Then exactly the extra plays are gone: kinotrakt's own Inception play, the first Black Mirror play, the
    # first unknown-date play, the rewatch and the dated play all stay
    assert report["status"] == "ok"
    gone = assert_only_exact_duplicates_removed(before, synced.trakt)
    assert gone == extras
    assert report["duplicates_removed"] == report["duplicates_found"] == len(extras) == 5
    kept = set(plays_by_id(synced.trakt))
    assert {*added["rewatch"], *added["dated"], added["unknown"][0]} <= kept
    assert synced.trakt.duplicate_keys() == []
    # And a second audit finds the history clean
    again = synced.invoke(AUDIT)
    assert (again["duplicates_found"], again["missing_on_trakt"], again["unexpected_plays"]) == (0, 0, 0)


def test_removals_are_paced_as_writes_and_hold_at_most_100_ids(box: Sandbox, clock: VirtualClock) -> None:
    # Given 250 extra plays of one movie in one minute, 5 extra plays each of 10 more
    trakt = box.trakt
    trakt.add_plays([("movie", OTHER_MOVIES[0], at(T0))] * 251, action="scrobble")
    for trakt_id in OTHER_MOVIES[1:11]:
        trakt.add_plays([("movie", trakt_id, at(T0 + trakt_id))] * 6, action="scrobble")
    before = plays_by_id(trakt)

    # When they are fixed
    report = box.invoke({"action": "audit", "fix": ["duplicates"]})

    # Then every request carried at most 100 ids, and they were at least a second apart, start to start
    removals = [r for r in trakt.requests if r.path == "/sync/history/remove"]
    sizes = [len(removed_ids(r)) for r in removals]
    assert (max(sizes), sum(sizes)) == (100, 300)
    starts = [r.at for r in removals]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts))
    assert report["duplicates_removed"] == 250 + 50
    assert assert_only_exact_duplicates_removed(before, trakt) == expected_extras_of(before)


def expected_extras_of(plays: dict[int, tuple[str, int, str]]) -> set[int]:
    firsts: dict[tuple[str, int, str], int] = {}
    for history_id in sorted(plays):
        firsts.setdefault(plays[history_id], history_id)
    return set(plays) - set(firsts.values())


@pytest.mark.parametrize(
    ("fault", "applied"),
    [({"action": "apply_then_drop"}, True), ({"action": "drop"}, False), ({"status": 502}, False)],
    ids=["applied-then-dropped", "dropped-before", "bad-gateway"],
)
def test_a_lost_removal_answer_is_read_again_before_anything_else_is_removed(
    box: Sandbox, fault: dict[str, Any], applied: bool
) -> None:
    # Given 150 extra plays (two requests' worth), and the first removal's answer lost
    trakt = box.trakt
    for trakt_id in OTHER_MOVIES[:30]:
        trakt.add_plays([("movie", trakt_id, at(T0 + trakt_id * 60))] * 6, action="scrobble")
    before = plays_by_id(trakt)
    trakt.add_fault("POST", r"/sync/history/remove", **fault)

    # When the audit fixes them
    report = box.invoke({"action": "audit", "fix": ["duplicates"]})

    # Then right after the lost answer Trakt's history was read again, before any other removal was sent
    paths = [(r.method, r.path) for r in trakt.requests if r.path.startswith("/sync")]
    first = paths.index(("POST", "/sync/history/remove"))
    assert paths[first + 1] == ("GET", "/sync/history/movies")
    # and in the end exactly the extra plays are gone, each counted once
    assert report["status"] == "ok"
    assert assert_only_exact_duplicates_removed(before, trakt) == expected_extras_of(before)
    assert report["duplicates_removed"] == 150
    removals = [r for r in trakt.requests if r.path == "/sync/history/remove"]
    sent = Counter(i for r in removals for i in removed_ids(r))
    # a request that was applied is never sent again; one that was not is sent once more
    assert max(sent.values()) == (1 if applied else 2)


def test_answers_lost_again_and_again_stop_the_audit_partial_and_it_finishes_next_time(box: Sandbox) -> None:
    trakt = box.trakt
    trakt.add_plays([("movie", OTHER_MOVIES[0], at(T0))] * 4, action="scrobble")
    before = plays_by_id(trakt)
    trakt.add_fault("POST", r"/sync/history/remove", action="drop", times=3)

    first = box.invoke({"action": "audit", "fix": ["duplicates"]})
    assert first["status"] == "partial"
    assert first["error"]["code"] == "outcome_unknown"
    assert plays_by_id(trakt) == before

    second = box.invoke({"action": "audit", "fix": ["duplicates"]})
    assert second["status"] == "ok"
    assert second["runs"] == 2
    assert assert_only_exact_duplicates_removed(before, trakt) == expected_extras_of(before)
    assert second["duplicates_removed"] == second["duplicates_found"] == 3


# --- missing and unexpected plays -----------------------------------------------------------------------------


def test_missing_views_are_told_apart_and_each_fix_sends_only_its_own(synced: Sandbox, clock: VirtualClock) -> None:
    # Given one view finished since the last sync (never sent), and one kinotrakt sent that the user removed
    trakt, kinopub = synced.trakt, synced.kinopub
    now = int(clock.now().timestamp())
    kinopub.watch(BM_KP, season=2, episode=1, at=now - HOUR)
    never_sent = f"episode:{trakt.episode_id(BM_TRAKT, 2, 1)}:{minute(now - HOUR)}"
    removed = next(p for p in trakt.plays() if p["type"] == "movie" and p["movie"]["ids"]["trakt"] == INCEPTION_TRAKT)
    trakt.remove_play(removed["id"])
    removed_key = f"movie:tt1375666:{minute(T0)}"

    # When the audit reports
    report = synced.invoke(AUDIT)

    # Then both are missing, each with its reason
    assert report["missing_on_trakt"] == 2
    assert (report["missing_never_sent"], report["missing_removed_on_trakt"]) == (1, 1)
    reasons = {entry["title"]: entry["reason"] for entry in report["missing"]}
    assert reasons == {
        "Черное зеркало / Black Mirror S02E01": "never_sent",
        "Начало / Inception (2010)": "removed_on_trakt",
    }

    # When --fix missing runs: only the never-sent view goes to Trakt
    fixed = synced.invoke({"action": "audit", "fix": ["missing"]})
    assert fixed["missing_resent"] == 1
    assert never_sent in trakt.play_keys()
    assert removed_key not in trakt.play_keys()

    # When --fix removed runs: the view the user removed comes back, once
    restored = synced.invoke({"action": "audit", "fix": ["removed"]})
    assert restored["missing_resent"] == 1
    assert trakt.play_keys().count(removed_key) == 1
    assert trakt.duplicate_keys() == []
    assert synced.invoke(AUDIT)["missing_on_trakt"] == 0
    # and the sync, run again, sends nothing twice
    again = synced.invoke()
    assert again["added_movies"] + again["added_episodes"] == 0


def test_a_play_whose_view_is_no_longer_finished_is_reported_and_never_removed(synced: Sandbox) -> None:
    # Given an episode kinotrakt sent, since marked unwatched on Kinopub
    synced.kinopub.set_state(BM_KP, season=1, episode=3, status=0, updated=T0 + 5 * DAY)
    before = plays_by_id(synced.trakt)

    # When an audit with every fix runs
    report = synced.invoke(EVERY_FIX)

    # Then the play is reported as unexpected, with Trakt's title, and stays on Trakt
    assert report["unexpected_plays"] == 1
    assert report["unexpected"][0]["title"] == "Black Mirror S01E03"
    assert report["unexpected"][0]["reason"] == "no longer finished on Kinopub"
    assert plays_by_id(synced.trakt) == before


def test_an_unknown_time_view_counts_as_present_with_any_play_of_its_item(box: Sandbox) -> None:
    # Given an episode finished on Kinopub with no time at all, and Trakt holding a dated play of it
    box.kinopub.set_state(BM_KP, season=2, episode=2, status=1, updated=None)
    box.trakt.add_play("episode", box.trakt.episode_id(BM_TRAKT, 2, 2), at(T0), action="scrobble")
    box.invoke()

    # Then the audit does not call it missing, and no play of it is a duplicate
    report = box.invoke(AUDIT)
    assert report["missing_on_trakt"] == 0
    assert report["duplicates_found"] == 0


# --- stopped audits continue where they stopped ---------------------------------------------------------------


def long_history(trakt: FakeTrakt) -> None:
    """600 plays over a year, every 7th duplicated in its minute (another app), some unknown-date ones."""
    for number in range(600):
        trakt_id = OTHER_MOVIES[number % len(OTHER_MOVIES)]
        when = at(T0 - number * 12 * HOUR)
        trakt.add_play("movie", trakt_id, when, action="scrobble")
        if number % 7 == 0:
            trakt.add_play("movie", trakt_id, when, action="scrobble")
    for trakt_id in OTHER_MOVIES[:3]:
        trakt.add_plays([("movie", trakt_id, "unknown")] * 2, action="watch")


def test_an_audit_stopped_by_the_deadline_continues_where_it_stopped(clock: VirtualClock) -> None:
    # Given a long history, and Trakt's GET budget so small the audit waits for it (on the virtual clock) and a
    # Lambda timeout that lets it read only part of the history before the deadline
    with sandbox(seed=seed, clock=clock, fake_clock=clock.time, env={"TRAKT_GET_LIMIT": "1"}) as box:
        box.invoke()
        long_history(box.trakt)
        before = plays_by_id(box.trakt)
        extras = expected_extras(box.trakt)

        # When audits with --fix duplicates run, one per hour, each stopped by its deadline
        reports = []
        for _ in range(12):
            reports.append(box.invoke({"action": "audit", "fix": ["duplicates"]}, timeout_seconds=400))
            if reports[-1]["status"] == "ok":
                break
            clock.advance(HOUR)

        # Then the first runs stopped partial (out of time) and the last finished the audit they started
        assert [r["status"] for r in reports[:-1]] == ["partial"] * (len(reports) - 1)
        assert {r["error"]["code"] for r in reports[:-1]} == {"out_of_time"}
        assert len(reports) >= 2
        final = reports[-1]
        assert final["status"] == "ok"
        assert final["runs"] == len(reports)
        assert len({r["audit_id"] for r in reports}) == 1
        # and together they read each play once and removed exactly the extra ones
        assert final["plays_read"] == len(before)
        assert final["duplicates_found"] == final["duplicates_removed"] == len(extras)
        assert assert_only_exact_duplicates_removed(before, box.trakt) == extras
        # and the next audit starts afresh
        assert box.invoke(AUDIT)["runs"] == 1


def test_a_view_a_sync_sent_at_another_minute_since_the_audit_judged_it_is_not_sent_again(
    box: Sandbox, clock: VirtualClock
) -> None:
    # Given a library never synced, and an audit asked to fix what is missing whose first write Trakt refuses
    # with a long 429: the audit has judged every view missing, and stops before sending them
    box.trakt.add_fault("POST", r"/sync/history$", status=429, body="{}", headers={"Retry-After": "600"})
    first = box.invoke({"action": "audit", "fix": ["missing"]})
    assert (first["status"], first["error"]["code"]) == ("partial", "rate_limited")
    assert first["missing_on_trakt"] == 5
    assert box.trakt.plays() == []

    # When Inception is watched again on Kinopub, and the hourly sync sends everything at today's times
    clock.advance(20 * 60)
    box.kinopub.watch(INCEPTION_KP, at=int(clock.now().timestamp()) - 60)
    assert box.invoke()["added_movies"] == 2
    # and the audit goes on
    clock.advance(20 * 60)
    second = box.invoke({"action": "audit", "fix": ["missing"]})

    # Then it sends nothing: Inception's play is the one the sync sent at its new time, not a second one at the
    # time the audit judged it by
    assert second["status"] == "ok"
    assert len([p for p in box.trakt.plays() if p["type"] == "movie"]) == 2
    assert box.trakt.duplicate_keys() == []
    assert [p["movie"]["ids"]["trakt"] for p in box.trakt.plays() if p["type"] == "movie"].count(INCEPTION_TRAKT) == 1


def test_fix_missing_takes_a_play_between_a_films_parts_for_its_viewing(clock: VirtualClock) -> None:
    # Given a 3-part film on Trakt at its last part's minute but not in the ledger (the run that sent it crashed
    # before recording it), and its last part opened again a week later: its time moved
    with sandbox(seed=seed_vienna, clock=clock, fake_clock=clock.time) as box:
        first_time = watch_parts(box, clock, (1, 2, 3))
        box.trakt.add_play("movie", VIENNA_TRAKT, minute(first_time))
        clock.advance(7 * DAY)
        watch_parts(box, clock, (3,))
        clock.advance(HOUR)

        # When an audit runs before any sync, asked to fix what is missing
        report = box.invoke({"action": "audit", "fix": ["missing"]})

        # Then the film has no play at its new time, but the one on Trakt is its viewing's: nothing is sent
        assert report["status"] == "ok"
        assert report["missing_on_trakt"] == 1
        assert [(m["reason"], m["fixed"]) for m in report["missing"]] == [("never_sent", "on_trakt")]
        assert report["missing_resent"] == 0
        assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(first_time)}"]


def test_a_rate_limited_audit_continues_where_it_stopped(box: Sandbox, clock: VirtualClock) -> None:
    # Given a long history, and Cloudflare's 429 on the audit's third history read
    box.invoke()
    long_history(box.trakt)
    before = plays_by_id(box.trakt)
    box.trakt.add_fault("GET", r"/sync/history/movies", times=2)  # answered as usual
    box.trakt.add_fault(
        "GET",
        r"/sync/history/movies",
        status=429,
        body=CLOUDFLARE_429,
        headers={"Server": "cloudflare", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)},
        content_type="text/html; charset=UTF-8",
        times=1,
    )

    first = box.invoke(AUDIT)
    assert first["status"] == "partial"
    assert first["error"]["code"] == "rate_limited"
    waited = datetime.fromisoformat(first["resume_after"]) - clock.now()  # to the second, rounded up, as a sync's
    assert timedelta(seconds=CLOUDFLARE_RETRY_AFTER) <= waited < timedelta(seconds=CLOUDFLARE_RETRY_AFTER + 1)

    clock.advance(10 * 60)
    second = box.invoke(AUDIT)
    assert second["status"] == "ok"
    assert second["runs"] == 2
    assert second["plays_read"] == len(before)
    assert second["duplicates_found"] == len(expected_extras(box.trakt))


# --- the events, the lease, DRY_RUN ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"action": "audit", "fix": ["everything"]},
        {"action": "audit", "fix": "duplicates"},
        {"fix": ["duplicates"]},
        {"action": "audit", "fixes": ["duplicates"]},
        {"action": "audit", "dry_run": True},
        {"action": "repair"},
    ],
)
def test_audit_events_other_than_the_contract_are_refused_before_any_call(box: Sandbox, event: object) -> None:
    with pytest.raises(ValueError, match="unexpected sync event") as refused:
        box.invoke(event)
    assert '{"action": "audit"' in str(refused.value)
    assert box.kinopub.requests == []
    assert box.trakt.requests == []


def test_the_monthly_schedules_audit_event_is_accepted(box: Sandbox) -> None:
    # events/audit.json is the template's AuditSchedule Input filled in (tests/infrastructure check that)
    event = json.loads((REPO / "events" / "audit.json").read_text())
    report = box.invoke(event)
    assert (report["status"], report["run_id"], report["fix"]) == ("ok", event["execution_id"], [])


def test_an_audit_is_skipped_while_a_sync_runs(box: Sandbox, clock: VirtualClock) -> None:
    # Given a sync in progress (its lease held)
    now = clock.now()
    assert box.stores().lease.acquire("a-running-sync", now, now + timedelta(minutes=5))
    # When an audit is invoked, it is skipped without a call
    report = box.invoke(EVERY_FIX)
    assert report["status"] == "skipped"
    assert box.trakt.requests == []
    assert box.kinopub.requests == []


def test_a_sync_is_skipped_while_an_audit_runs(box: Sandbox, clock: VirtualClock) -> None:
    # Given a sync invoked in the middle of an audit: as soon as the audit holds the lease
    stores = box.stores()
    during: list[dict[str, Any]] = []

    class SyncStartsDuringTheAudit:
        def acquire(self, owner: str, now: datetime, expires_at: datetime) -> bool:
            taken = stores.lease.acquire(owner, now, expires_at)
            if taken and owner == "the-audit":
                during.append(handle({}, stores))
            return taken

        def release(self, owner: str) -> None:
            stores.lease.release(owner)

        def holder(self, now: datetime) -> LeaseHolder | None:
            return stores.lease.holder(now)

    def handle(event: dict[str, Any], given: SyncStores) -> dict[str, Any]:
        with patched_environ(box.env):
            module = load_handler("sync")
            report: dict[str, Any] = module.handle(event, FakeLambdaContext(clock, 600), stores=given, clock=clock)
            return report

    # When the audit runs
    audit = handle(
        {**AUDIT, "execution_id": "the-audit"}, dataclasses.replace(stores, lease=SyncStartsDuringTheAudit())
    )

    # Then the sync was skipped, and the audit ran
    assert [report["status"] for report in during] == ["skipped"]
    assert audit["status"] == "ok"
    assert box.kinopub.calls("GET", "/v1/history")


def test_with_dry_run_set_an_audit_fixes_nothing(clock: VirtualClock) -> None:
    with sandbox(seed=seed, clock=clock, env={"DRY_RUN": "true"}) as box:
        # Given a polluted history (nothing synced: DRY_RUN) and a view never sent
        pollute(box.trakt)
        before = plays_by_id(box.trakt)
        # When an audit asks for every fix
        report = box.invoke(EVERY_FIX)
        # Then it reports: the re-imported episode's extra play, two unknown-date extras, and three of the five
        # views never sent (other apps' plays are at the minutes of the other two)
        assert report["dry_run"] is True
        assert (report["duplicates_found"], report["missing_never_sent"]) == (3, 3)
        # and changes nothing
        assert (report["duplicates_removed"], report["missing_resent"]) == (0, 0)
        assert plays_by_id(box.trakt) == before
        assert not [r for r in box.trakt.requests if r.method == "POST" and r.path.startswith("/sync")]


# --- continuing across runs, and what the audit cannot judge ----------------------------------------------------


def test_duplicates_found_by_a_report_are_read_again_and_removed_by_a_later_run_that_fixes(clock: VirtualClock) -> None:
    # Given a long history, read by a report-only audit that stopped part way (its GET budget, its deadline)
    with sandbox(seed=seed, clock=clock, fake_clock=clock.time, env={"TRAKT_GET_LIMIT": "1"}) as box:
        while box.invoke()["status"] != "ok":
            clock.advance(HOUR)
        long_history(box.trakt)
        first = box.invoke(AUDIT, timeout_seconds=400)
        assert (first["status"], first["duplicates_removed"]) == ("partial", 0)
        found = [entry for entry in first["duplicates"] if isinstance(entry, dict)]  # the last line may be "... more"
        assert found
        # and, meanwhile, the user removed on trakt.tv the play the report would keep for one viewing
        box.trakt.remove_play(found[0]["kept"])
        before = plays_by_id(box.trakt)

        # When the next audit runs with --fix duplicates, until it is done
        clock.advance(HOUR)
        reports = [box.invoke({"action": "audit", "fix": ["duplicates"]}, timeout_seconds=400)]
        while reports[-1]["status"] == "partial":
            clock.advance(HOUR)
            reports.append(box.invoke({"action": "audit", "fix": ["duplicates"]}, timeout_seconds=400))

        # Then what the report found was read again before removal: the viewing whose kept play the user removed
        # keeps its oldest play still there; every extra play is gone, and nothing else
        assert reports[-1]["status"] == "ok"
        assert assert_only_exact_duplicates_removed(before, box.trakt) == expected_extras_of(before)
        assert box.trakt.duplicate_keys() == []
        assert reports[-1]["duplicates_removed"] == len(expected_extras_of(before))


def test_an_audit_that_must_pause_reading_kinopub_goes_on_next_time(box: Sandbox, clock: VirtualClock) -> None:
    # Given a synced library and a Kinopub that makes the audit wait (429, Retry-After 25 s) until little time is left
    box.invoke()
    box.kinopub.add_fault("GET", r"/v1/watching", status=429, headers={"Retry-After": "25"}, times=3)

    # When an audit runs with 100 s to spare
    first = box.invoke(AUDIT, timeout_seconds=160)

    # Then it stopped reading Kinopub in time, and the next audit read the rest and finished
    assert first["status"] == "partial"
    assert "Kinopub reading paused" in first["error"]["message"]
    second = box.invoke(AUDIT)
    assert (second["status"], second["runs"], second["views_checked"]) == ("ok", 2, 5)
    assert second["missing_on_trakt"] == 0


def test_views_the_sync_never_mapped_are_mapped_and_a_rate_limit_while_mapping_is_picked_up_later(
    box: Sandbox, clock: VirtualClock
) -> None:
    # Given nothing synced yet (the ledger knows no key), and Trakt rate limiting the show's season table once
    box.trakt.add_fault(
        "GET",
        r"/shows/.+/seasons",
        status=429,
        body=CLOUDFLARE_429,
        headers={"Server": "cloudflare", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)},
        content_type="text/html; charset=UTF-8",
    )
    first = box.invoke(AUDIT)
    assert (first["status"], first["error"]["code"]) == ("partial", "rate_limited")

    # When the next audit runs after the pause
    clock.advance(CLOUDFLARE_RETRY_AFTER + 1)
    second = box.invoke({"action": "audit", "fix": ["missing"]})

    # Then every view was mapped and found missing (never sent), and --fix missing sent them all, once
    assert second["status"] == "ok"
    assert (second["views_checked"], second["missing_never_sent"], second["missing_resent"]) == (5, 5, 5)
    assert len(box.trakt.plays()) == 5
    assert box.trakt.duplicate_keys() == []
    assert box.invoke()["added_movies"] + box.invoke()["added_episodes"] == 0


def test_plays_of_a_title_gone_from_kinopubs_history_are_reported_and_an_unreadable_item_is_not_judged(
    synced: Sandbox,
) -> None:
    # Given the Black Mirror rows deleted from Kinopub's history, and the first title the audit reads (Arrival, the
    # newest row now) answered with an HTML page
    kinopub = synced.kinopub
    for row in list(kinopub.history.values()):
        if row.item_id == BM_KP:
            kinopub.delete_history_row(BM_KP, row.media_id)
    synced.kinopub.add_fault("GET", r"/v1/watching", status=200, body="<html>busy</html>", content_type="text/html")

    report = synced.invoke(AUDIT)

    # Then the three episodes' plays are unexpected, as no longer in Kinopub's history; Arrival is listed as
    # unreadable and neither missing nor unexpected, and the audit is partial, as a sync would be
    assert report["status"] == "partial"
    assert sorted((u["title"], u["reason"]) for u in report["unexpected"]) == [
        (f"Black Mirror S01E0{n}", "no longer in Kinopub's history") for n in (1, 2, 3)
    ]
    assert [item["title"] for item in report["unreadable_items"]] == ["Прибытие / Arrival"]
    assert report["missing_on_trakt"] == 0


def test_a_stored_progress_of_another_version_starts_a_new_audit(synced: Sandbox, clock: VirtualClock) -> None:
    synced.stores().audit_progress.save({"version": 0, "runs": 7}, clock.now() + timedelta(days=1))
    report = synced.invoke(AUDIT)
    assert (report["status"], report["runs"]) == ("ok", 1)


def test_an_audit_before_setup_fails_clearly_and_calls_nothing(clock: VirtualClock) -> None:
    with sandbox(seed=seed, clock=clock, link=False) as box:
        report = box.invoke(EVERY_FIX)
        assert (report["status"], report["error"]["code"]) == ("failed", "not_configured")
        assert "kinotrakt setup" in report["error"]["message"]
        assert box.trakt.requests == []


def test_a_missing_view_of_unknown_time_is_not_sent_when_trakt_refuses_to_list_its_plays(synced: Sandbox) -> None:
    # Given an episode finished with no time at all, never sent, and Trakt refusing (422) to list its plays
    synced.kinopub.set_state(BM_KP, season=2, episode=2, status=1, updated=None)
    synced.trakt.add_fault("GET", r"/sync/history/episodes/\d+", status=422, times=-1)

    # When --fix missing would send it
    report = synced.invoke({"action": "audit", "fix": ["missing"]})

    # Then it is reported missing, and not sent: whether Trakt has a play of it could not be told
    assert report["status"] == "ok"
    assert [(m["title"], m["watched_at"], m["fixed"]) for m in report["missing"]] == [
        ("Черное зеркало / Black Mirror S02E02", "unknown", "trakt_refused")
    ]
    assert not [r for r in synced.trakt.requests if r.method == "POST"]
