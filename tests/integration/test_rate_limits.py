"""A rate limit the run cannot wait out, at each step of the sync, through the real handler on a virtual clock.

Trakt past its GET budget answers with Cloudflare's HTML 429 and ``Retry-After: 300``; its API's own 429 on a
write can ask for longer; Kinopub answers 429 too. Sleeping minutes inside a Lambda is not an option
(docs/trakt.md#limits-and-errors, 2026), so the run stops asking that service at once, keeps what it has, ends
``partial`` with ``rate_limited`` and ``resume_after``, and the next run carries on: nothing lost, nothing sent
twice, the watermark unmoved meanwhile. The GET budget itself is remembered from one run to the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.base import FakeServer, RecordedRequest
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import CLOUDFLARE_429, CLOUDFLARE_RETRY_AFTER, FakeTrakt
from devkit.sandbox import Sandbox, sandbox
from kinotrakt.clock import parse_iso

T0 = 1_750_000_000  # 2025-06-15T15:06:40Z
HOUR = 3600
DAY = 24 * HOUR
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

UNKNOWN_SHOW_KP = 301  # on Kinopub, not on Trakt: unmatched
BM_KP, BM_TRAKT, BM_IMDB = 201, 41793, "tt2085059"
ARRIVAL_KP, INCEPTION_KP = 102, 101
SHERLOCK_KP, SHERLOCK_TRAKT, SHERLOCK_IMDB = 401, 19792, "tt1475582"


def minute(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
    """Newest first on Kinopub: a show Trakt does not know, four Black Mirror episodes (one of unknown time),
    two movies, one Sherlock episode. With batches of 2 the run sends each full batch as it reads: Black
    Mirror's four and the two movies go out before Sherlock (the last item read) is mapped."""
    kp.add_series(UNKNOWN_SHOW_KP, "Неизвестный / Unknown Show", 2020, 9999991, {1: 2})
    kp.watch(UNKNOWN_SHOW_KP, season=1, episode=1, at=T0 + 5 * DAY)
    kp.add_series(BM_KP, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3, 2: 4})
    for episode in (1, 2, 3):
        kp.watch(BM_KP, season=1, episode=episode, at=T0 + 2 * DAY + episode * HOUR)
    kp.set_state(BM_KP, season=2, episode=1, status=1, updated=None)  # marked watched, no time anywhere
    kp.add_movie(ARRIVAL_KP, "Прибытие / Arrival", 2016, 2543164)
    kp.watch(ARRIVAL_KP, at=T0 + DAY)
    kp.add_movie(INCEPTION_KP, "Начало / Inception", 2010, 1375666)
    kp.watch(INCEPTION_KP, at=T0)
    kp.add_series(SHERLOCK_KP, "Шерлок / Sherlock", 2010, 1475582, {1: 3})
    kp.watch(SHERLOCK_KP, season=1, episode=1, at=T0 - DAY)
    tr.add_movie(16662, "Inception", 2010, "tt1375666")
    tr.add_movie(190430, "Arrival", 2016, "tt2543164")
    tr.add_show(BM_TRAKT, "Black Mirror", 2011, BM_IMDB, {1: 3, 2: 4})
    tr.add_show(SHERLOCK_TRAKT, "Sherlock", 2010, SHERLOCK_IMDB, {1: 3})


def expected_keys(tr: FakeTrakt) -> set[str]:
    return {
        *(f"episode:{tr.episode_id(BM_TRAKT, 1, e)}:{minute(T0 + 2 * DAY + e * HOUR)}" for e in (1, 2, 3)),
        f"episode:{tr.episode_id(BM_TRAKT, 2, 1)}:unknown",
        f"movie:tt2543164:{minute(T0 + DAY)}",
        f"movie:tt1375666:{minute(T0)}",
        f"episode:{tr.episode_id(SHERLOCK_TRAKT, 1, 1)}:{minute(T0 - DAY)}",
    }


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def box(clock: VirtualClock) -> Iterator[Sandbox]:
    with sandbox(seed=seed, clock=clock, env={"SYNC_BATCH_SIZE": "2"}) as sb:
        yield sb


def fail_nth(fake: FakeServer, method: str, path: str, n: int, **fault: object) -> None:
    """Answer the ``n``-th request matching ``method`` + ``path`` with the fault; the ones before go through."""
    if n > 1:
        fake.add_fault(method, path, times=n - 1)  # no status: answered by the fake as usual
    fake.add_fault(method, path, **fault)  # type: ignore[arg-type]


CLOUDFLARE = {
    "status": 429,
    "body": CLOUDFLARE_429,
    "headers": {"Server": "cloudflare", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)},
    "content_type": "text/html; charset=UTF-8",
}
API_429 = {
    "status": 429,
    "body": json.dumps({"error": "rate limit exceeded"}),
    "headers": {"Retry-After": "600", "X-Ratelimit": json.dumps({"name": "AUTHED_API_POST_LIMIT", "remaining": 0})},
}
KINOPUB_429 = {
    "status": 429,
    "body": json.dumps({"status": 429, "error": "Too Many Requests"}),
    "headers": {"Retry-After": "900"},
}


@dataclass(frozen=True)
class Step:
    service: str  # the service that rate-limits the run
    method: str
    path: str
    nth: int
    fault: dict[str, object]
    pause: int  # its Retry-After, seconds
    sent_before: int  # plays on Trakt when the run stops
    unmatched_recorded: bool  # the unknown show was mapped (and found unmatched) before the stop


STEPS = [
    pytest.param(Step("trakt", "GET", f"/shows/{SHERLOCK_IMDB}/seasons", 1, CLOUDFLARE, 300, 6, True), id="mapping"),
    pytest.param(Step("trakt", "GET", r"/sync/history/(?:movies|episodes)", 1, CLOUDFLARE, 300, 0, True), id="index"),
    pytest.param(Step("trakt", "POST", r"/sync/history", 2, API_429, 600, 2, True), id="push"),
    pytest.param(Step("trakt", "GET", r"/sync/history/episodes/\d+", 1, CLOUDFLARE, 300, 2, True), id="any-play"),
    pytest.param(Step("kinopub", "GET", r"/v1/watching", 3, KINOPUB_429, 900, 4, True), id="kinopub-collect"),
    pytest.param(Step("kinopub", "GET", r"/v1/history", 1, KINOPUB_429, 900, 0, False), id="kinopub-history"),
]


def fake_of(box: Sandbox, service: str) -> FakeServer:
    return box.trakt if service == "trakt" else box.kinopub


def accepted_items(requests: list[RecordedRequest]) -> int:
    """Plays in every history write Trakt accepted (a 429 is refused before it is applied)."""
    writes = [r.json for r in requests if r.method == "POST" and r.path == "/sync/history" and r.status == 201]
    return sum(len(body.get("movies", [])) + len(body.get("episodes", [])) for body in writes if body is not None)


@pytest.mark.parametrize("step", STEPS)
def test_a_long_rate_limit_stops_that_service_keeps_what_was_done_and_the_next_run_carries_on(
    box: Sandbox, clock: VirtualClock, step: Step
) -> None:
    # Given the service answers one request of this step with a 429 that asks for minutes
    fake = fake_of(box, step.service)
    fail_nth(fake, step.method, step.path, step.nth, **step.fault)

    # When the scheduled run meets it
    report = box.invoke()

    # Then the run ends partial, rate_limited, naming the service and when it may be asked again
    assert report["status"] == "partial"
    assert report["error"]["code"] == "rate_limited"
    name = "Trakt" if step.service == "trakt" else "Kinopub"
    assert report["error"]["message"].startswith(f"{name} rate limit")
    assert report["resume_after"] is not None
    assert report["resume_after"] in report["error"]["message"]
    resume_after = parse_iso(report["resume_after"])
    started = parse_iso(report["started_at"])
    assert started + timedelta(seconds=step.pause) <= resume_after
    assert resume_after <= parse_iso(report["finished_at"]) + timedelta(seconds=step.pause + 1)
    # and not one more request reached that service after its 429, while it never waited minutes for it
    limited = [i for i, r in enumerate(fake.requests) if r.status == 429]
    assert len(limited) == 1
    assert fake.requests[limited[0] + 1 :] == []
    assert clock.slept < 60
    # and what was sent before the stop is on Trakt once, the watermark did not move
    keys = box.trakt.play_keys()
    assert len(keys) == step.sent_before
    assert report["added_movies"] + report["added_episodes"] == step.sent_before
    assert set(keys) <= expected_keys(box.trakt)
    assert report["watermark"] is None
    assert box.stores().sync_state.load().watermark is None
    # and what the run found unmatched is recorded
    unmatched = {item.kinopub_id for item in box.stores().unmatched.load()}
    assert unmatched == ({UNKNOWN_SHOW_KP} if step.unmatched_recorded else set())

    # When the next scheduled run comes after the pause
    clock.advance((resume_after - clock.now()).total_seconds() + 15 * 60)
    after = box.invoke()

    # Then it finishes the job: every view on Trakt exactly once, nothing sent twice, the watermark moves
    assert after["status"] == "ok", after["error"]
    assert after["resume_after"] is None
    assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
    assert box.trakt.duplicate_keys() == []
    assert accepted_items(box.trakt.requests) == len(expected_keys(box.trakt))
    assert after["watermark"] is not None
    # and a show table read before the stop was kept in the cache, not read again
    tables = [r for r in box.trakt.requests if r.path == f"/shows/{BM_IMDB}/seasons" and r.status == 200]
    assert len(tables) == 1


def test_a_kinopub_rate_limit_keeps_an_incremental_runs_watermark(box: Sandbox, clock: VirtualClock) -> None:
    # Given a synced library
    first = box.invoke()
    assert first["status"] == "ok"
    watermark = box.stores().sync_state.load().watermark
    # When two episodes are finished, and Kinopub rate-limits the next run after it read the first item
    clock.advance(HOUR)
    now = int(clock.now().timestamp())
    box.kinopub.watch(BM_KP, season=2, episode=2, at=now - 60)
    box.kinopub.watch(SHERLOCK_KP, season=1, episode=2, at=now - 120)
    fail_nth(box.kinopub, "GET", r"/v1/watching", 2, **KINOPUB_429)
    report = box.invoke()
    # Then what was read (Black Mirror's new episode) is on Trakt, the watermark stays, Kinopub heard nothing more
    assert (report["status"], report["error"]["code"]) == ("partial", "rate_limited")
    assert report["added_episodes"] == 1
    assert box.stores().sync_state.load().watermark == watermark
    assert box.kinopub.requests[-1].status == 429
    # When the next run comes, Sherlock's episode follows, and nothing is sent twice
    clock.advance(HOUR)
    assert box.invoke()["status"] == "ok"
    assert box.trakt.duplicate_keys() == []
    assert accepted_items(box.trakt.requests) == len(expected_keys(box.trakt)) + 2
    moved = box.stores().sync_state.load().watermark
    assert watermark is not None
    assert moved is not None
    assert moved > watermark


# --- the GET budget, from one run to the next ------------------------------------------------------------------

SHOWS = 300  # one season-table read each: two such runs a minute apart need more than Trakt's 500 GETs


def many_shows(kp: FakeKinopub, tr: FakeTrakt) -> None:
    """Twice SHOWS shows on both sides; the first SHOWS have a finished episode, the others are not started."""
    for n in range(2 * SHOWS):
        imdb = 5_000_000 + n
        kp.add_series(10_000 + n, f"Сериал {n} / Show {n}", 2020, imdb, {1: 2})
        tr.add_show(90_000 + n, f"Show {n}", 2020, f"tt{imdb:07d}", {1: 2})
        if n < SHOWS:
            kp.watch(10_000 + n, season=1, episode=1, at=T0 + n * 60)


def test_two_runs_a_minute_apart_share_one_get_budget_and_never_meet_cloudflare(clock: VirtualClock) -> None:
    with sandbox(seed=many_shows, clock=clock, fake_clock=clock.time) as box:
        # Given Trakt enforcing its real budget: past 500 GETs in 5 minutes Cloudflare answers 429
        box.trakt.enforce_limits = True
        # When a run reads SHOWS season tables
        first = box.invoke()
        assert first["status"] == "ok"
        first_reads = [r.at for r in box.trakt.requests if r.method == "GET"]
        assert len(first_reads) > SHOWS
        # and a minute later the next run has SHOWS newly watched shows to look up
        clock.advance(60)
        now = int(clock.now().timestamp())
        for n in range(SHOWS, 2 * SHOWS):
            box.kinopub.watch(10_000 + n, season=1, episode=1, at=now - 30)
        slept_before = clock.slept
        second = box.invoke()

        # Then the second run counted the first run's reads: it waited for them to leave the window instead of
        # going past Trakt's limit, and Cloudflare never answered
        assert [r.status for r in box.trakt.requests if r.status == 429] == []
        assert second["status"] == "ok", second["error"]
        assert second["added_episodes"] == SHOWS
        assert clock.slept - slept_before > 200
        reads = sorted(r.at for r in box.trakt.requests if r.method == "GET")
        busiest = max(sum(1 for at in reads if start <= at < start + 300) for start in reads)
        assert busiest <= 450
        assert box.trakt.duplicate_keys() == []
        # and what it spent is remembered for the run after it
        assert len(box.stores().sync_state.load().trakt_reads) > SHOWS - 150
