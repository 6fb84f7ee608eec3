"""Trakt's rate limits, met on a virtual clock against the fake Trakt with its limits switched on: writes
1 per second, GETs within TRAKT_GET_LIMIT per 5 minutes, Retry-After, and the Lambda deadline. Nothing really
sleeps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import FakeTrakt
from kinotrakt.clock import Deadline
from kinotrakt.errors import OutOfTime, RateLimited
from kinotrakt.http import CallCounter
from kinotrakt.trakt.client import TraktClient, trakt_transport
from tests.integration.test_trakt_client import INCEPTION, connect


@pytest.fixture
def fake() -> Iterator[tuple[FakeTrakt, VirtualClock]]:
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time, enforce_limits=True) as server:
        server.add_movie(1, "Inception", 2010, INCEPTION)
        yield server, clock


def _statuses(fake: FakeTrakt) -> set[int | None]:
    return {request.status for request in fake.requests}


@pytest.mark.parametrize("interval", [1.0, 2.5])
def test_history_writes_are_never_closer_than_the_interval(
    fake: tuple[FakeTrakt, VirtualClock], interval: float
) -> None:
    # Given TRAKT_POST_INTERVAL_SECONDS and a fake Trakt that answers 429 to writes under 1 s apart
    server, clock = fake
    trakt = connect(server, clock, interval=interval)

    # When twelve batches are posted back to back
    for minute in range(12):
        trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}, "watched_at": f"2024-01-01T10:{minute:02d}:00Z"}], [])

    # Then Trakt received them at least the interval apart (start to start), and never had to refuse one
    times = [request.at for request in server.calls("POST", "/sync/history")]
    assert len(times) == 12
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= interval - 1e-3
    assert _statuses(server) == {201}
    assert clock.slept == pytest.approx(11 * interval, abs=1e-3)


def test_a_retry_after_is_waited_out_before_the_write_is_sent_again(fake: tuple[FakeTrakt, VirtualClock]) -> None:
    # Given Trakt refuses the next write with 429 and Retry-After: 30
    server, clock = fake
    trakt = connect(server, clock)
    server.add_fault("POST", r"/sync/history", status=429, headers={"Retry-After": "30"})

    # When a batch is posted
    result = trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}, "watched_at": "2024-01-01T10:00:00Z"}], [])

    # Then it was sent again 30 s (plus under a second of jitter) later, and Trakt holds one play
    first, second = (request.at for request in server.calls("POST", "/sync/history"))
    assert 30 <= second - first <= 31
    assert result.added.movies == 1
    assert len(server.play_keys()) == 1


def test_the_get_budget_holds_over_1200_gets(fake: tuple[FakeTrakt, VirtualClock]) -> None:
    # Given a fake Trakt whose Cloudflare answers 429 past 500 GETs in 5 minutes (2026), and the client's
    # default budget (TRAKT_GET_LIMIT=450)
    server, clock = fake
    trakt = connect(server, clock)

    # When 1,200 lookups are made as fast as the client allows
    for _ in range(1200):
        trakt.client.search_imdb(INCEPTION, "movie")

    # Then no GET was refused, and no 5-minute window held more than 450 of them
    assert _statuses(server) == {200}
    times = [request.at for request in server.requests]
    assert max(sum(1 for at in times if start <= at < start + 300) for start in times) == 450
    # and the client waited for the window to reopen twice instead of hammering Trakt
    assert clock.slept == pytest.approx(600, abs=1)


@pytest.mark.parametrize("limit", [10, 100])
def test_the_get_budget_is_trakt_get_limit(fake: tuple[FakeTrakt, VirtualClock], limit: int) -> None:
    # Given TRAKT_GET_LIMIT set to another budget
    server, clock = fake
    transport = trakt_transport(
        post_interval_seconds=1.0,
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        get_limit=limit,
    )
    client = TraktClient(transport, server.base_url, server.client_id, connect(server, clock).keeper)

    # When twice as many lookups are made
    for _ in range(2 * limit):
        client.search_imdb(INCEPTION, "movie")

    # Then each 5-minute window held exactly that many
    times = [request.at for request in server.requests]
    assert max(sum(1 for at in times if start <= at < start + 300) for start in times) == limit
    assert clock.slept == pytest.approx(300, abs=1)


def test_a_retry_after_past_the_deadline_stops_the_run_without_sleeping(fake: tuple[FakeTrakt, VirtualClock]) -> None:
    # Given 100 s left in the Lambda and Trakt asking for 600 s
    server, clock = fake
    trakt = connect(server, clock, remaining=100)
    server.add_fault("GET", r"/sync/history/movies", status=429, headers={"Retry-After": "600"})
    asked_at = clock.now()

    # When the remote index is read, Then the run stops at once, rate limited until Trakt's time (partial;
    # a later run resumes), and sends Trakt nothing more
    with pytest.raises(RateLimited) as caught:
        trakt.client.history("movies", clock.now() - timedelta(days=3), clock.now())
    assert caught.value.run_status == "partial"
    assert caught.value.resume_after == asked_at + timedelta(seconds=600)
    assert clock.slept == 0
    with pytest.raises(RateLimited):
        trakt.client.search_imdb(INCEPTION, "movie")
    assert len(server.requests) == 1


def test_write_spacing_past_the_deadline_stops_before_sending(fake: tuple[FakeTrakt, VirtualClock]) -> None:
    # Given a 5 s write interval, one batch just sent, and 3 s left
    server, clock = fake
    trakt = connect(server, clock, remaining=3, interval=5)
    trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}, "watched_at": "2024-01-01T10:00:00Z"}], [])

    # When the next batch is due, Then it is not sent, nothing slept, and Trakt holds one play
    with pytest.raises(OutOfTime):
        trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}, "watched_at": "2024-01-01T11:00:00Z"}], [])
    assert clock.slept == 0
    assert len(server.calls("POST", "/sync/history")) == 1
