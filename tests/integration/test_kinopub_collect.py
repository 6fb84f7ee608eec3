"""The Kinopub client and the collector over loopback HTTP: the fixture library, paging, the watermark cut-off,
per-item faults, 401 mid-run, and the read-only allow-list."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.base import FakeServer, RecordedRequest, Response, json_response
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Deadline, utc_from_epoch
from kinotrakt.config import DEFAULT_KINOPUB_USER_AGENT
from kinotrakt.errors import BadResponse, ForbiddenPath, RelinkRequired
from kinotrakt.http import CallCounter, Limits, Transport
from kinotrakt.kinopub.client import KinopubClient, check_allowed, send
from kinotrakt.kinopub.oauth import KinopubOAuth, make_token_keeper
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.sync.collect import collect
from kinotrakt.sync.model import CompletedView
from kinotrakt.tokens import TokenGrant, TokenKeeper, kinopub_margin

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kinopub"
LIBRARY: dict[str, Any] = json.loads((FIXTURES / "library.json").read_text("utf-8"))
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "library_expected.json").read_text("utf-8"))

MUTATING_PATHS = [
    "/v1/watching/toggle",
    "/v1/watching/marktime",
    "/v1/watching/togglewatchlist",
    "/v1/items/vote",
    "/v1/history/clear-for-item",
    "/v1/history/clear-for-media",
    "/v1/history/clear-all",
]


def kinopub_transport(clock: VirtualClock, user_agent: str = DEFAULT_KINOPUB_USER_AGENT) -> Transport:
    # A deadline without a limit on a virtual clock: backoff is simulated, never slept.
    return Transport(
        "kinopub",
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        user_agent=user_agent,
        limits=Limits(read_timeout=5),
        rng=random.Random(7),
    )


@dataclass
class Linked:
    """A Kinopub account linked to the fake: stored tokens, the keeper, the client, and the store's writes
    with how many requests the fake had received at that moment."""

    fake: FakeKinopub
    store: InMemoryTokenStore
    keeper: TokenKeeper
    client: KinopubClient
    transport: Transport
    writes_at: list[int] = field(default_factory=list)


def link(fake: FakeKinopub, clock: VirtualClock, *, expires_in: int | None = None) -> Linked:
    pair = fake.issue_tokens()
    now = int(clock.time())
    secret = ServiceSecret(
        client_id=fake.client_id,
        client_secret=SecretStr(fake.client_secret),
        access_token=SecretStr(pair["access_token"]),
        refresh_token=SecretStr(pair["refresh_token"]),
        issued_at=now,
        expires_at=now + (pair["expires_in"] if expires_in is None else expires_in),
    )
    writes_at: list[int] = []

    def record(operation: str) -> None:
        if operation == "save":
            writes_at.append(len(fake.requests))

    store = InMemoryTokenStore(secret, faults=record)
    transport = kinopub_transport(clock)
    keeper = make_token_keeper(store, KinopubOAuth(transport, fake.base_url, "", ""), clock)
    return Linked(fake, store, keeper, KinopubClient(transport, fake.base_url, keeper), transport, writes_at)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> Iterator[FakeKinopub]:
    with FakeKinopub(clock=clock.time, string_numbers=True) as server:
        yield server


def seed_movies(fake: FakeKinopub, count: int, newest: int = 1_700_000_000) -> list[int]:
    """``count`` watched movies, item ids 1.., item 1 the most recently watched."""
    ids = []
    for n in range(1, count + 1):
        fake.add_movie(n, f"Фильм {n} / Film {n}", 2000 + n % 20, 1_000_000 + n)
        fake.watch(n, at=newest - n * 3600)
        ids.append(n)
    return ids


def summary(views: list[CompletedView]) -> list[list[object]]:
    """The columns of library_expected.json's views."""
    return [
        [
            view.view_ref,
            view.watched_at.strftime("%Y-%m-%dT%H:%M:%SZ") if view.watched_at else None,
            view.watched_at_source,
            view.imdb,
            view.media_id,
        ]
        for view in views
    ]


def watching_ids(fake: FakeServer) -> list[int]:
    return [int(request.query["id"]) for request in fake.calls("GET", "/v1/watching")]


# --- the fixture library over HTTP -----------------------------------------------------------------------------


class LibraryServer(FakeServer):
    """Serves the fixture library's recorded-style bodies as they are, seven history rows a page."""

    TOKEN = "library-token"
    PAGE_SIZE = 7

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", r"/v1/history", self._history)
        self.route("GET", r"/v1/watching", self._watching)

    def precheck(self, request: RecordedRequest) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return json_response(401, {"status": 401, "error": "unauthorized"})
        return None

    def _history(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        page = int(request.query["page"])
        rows = LIBRARY["history"]
        chunk = rows[(page - 1) * self.PAGE_SIZE : page * self.PAGE_SIZE]
        total = str(math.ceil(len(rows) / self.PAGE_SIZE))  # Kinopub sends it as a string at times
        return json_response(200, {"status": 200, "history": chunk, "pagination": {"total": total}})

    def _watching(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        body = LIBRARY["watching"].get(request.query["id"])
        if body is None:
            return json_response(404, {"status": 404, "error": "Requested item or video not found."})
        return json_response(200, body)


class NeverRefresh:
    def __call__(self, secret: ServiceSecret) -> TokenGrant:
        raise AssertionError("the library's token never expires")


def test_the_fixture_library_read_over_http_yields_exactly_the_expected_views(clock: VirtualClock) -> None:
    # Given the fixture library served over loopback and an account linked to it
    store = InMemoryTokenStore(
        ServiceSecret(
            client_id="xbmc",
            client_secret=SecretStr("secret"),
            access_token=SecretStr(LibraryServer.TOKEN),
            refresh_token=SecretStr("unused"),
            expires_at=int(clock.time()) + 86_400,
        )
    )
    keeper = TokenKeeper("kinopub", store, NeverRefresh(), clock, kinopub_margin)
    with LibraryServer() as server:
        client = KinopubClient(kinopub_transport(clock), server.base_url, keeper)

        # When the collector does a full scan through the real client
        result = collect(client, since=None)

    # Then it returns exactly the expected views, times and failures
    assert summary(result.views) == EXPECTED["views"]
    assert [f.kinopub_id for f in result.failures] == [kinopub_id for kinopub_id, _ in EXPECTED["failures"]]
    for failure, (_, reason) in zip(result.failures, EXPECTED["failures"], strict=True):
        assert reason in failure.reason
    assert [[s.kinopub_id, s.reason] for s in result.skipped] == EXPECTED["skipped"]
    # reading four history pages and each examined item's state once, every request a read with the browser UA
    assert [r.query["page"] for r in server.calls("GET", "/v1/history")] == ["1", "2", "3", "4"]
    assert all(r.query["perpage"] == "50" for r in server.calls("GET", "/v1/history"))
    assert len(watching_ids(server)) == len(set(watching_ids(server))) == 16
    assert {r.method for r in server.requests} == {"GET"}
    assert all("Mozilla" in r.headers["user-agent"] for r in server.requests)


# --- paging and the watermark ---------------------------------------------------------------------------------


def test_a_full_scan_pages_through_every_history_page(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given 120 watched movies: three pages of 50, the page count sent as a string
    seed_movies(fake, 120)
    account = link(fake, clock)

    # When the collector runs for the first time
    result = collect(account.client, since=None)

    # Then it read every page and every item once, and found every movie
    assert [r.query["page"] for r in fake.calls("GET", "/v1/history")] == ["1", "2", "3"]
    assert watching_ids(fake) == list(range(1, 121))
    assert len(result.views) == 120
    assert result.history_pages == 3
    assert result.full_scan


def test_an_incremental_run_stops_at_the_first_page_older_than_the_watermark(
    fake: FakeKinopub, clock: VirtualClock
) -> None:
    # Given 120 movies watched an hour apart, and a watermark (minus overlap) 60.5 hours before the newest
    seed_movies(fake, 120, newest=1_700_000_000)
    account = link(fake, clock)
    since = utc_from_epoch(1_700_000_000 - 60 * 3600 - 1800)

    # When the collector runs incrementally
    result = collect(account.client, since=since)

    # Then it read two pages (the second reached older rows) and examined only the 60 recent items
    assert [r.query["page"] for r in fake.calls("GET", "/v1/history")] == ["1", "2"]
    assert watching_ids(fake) == list(range(1, 61))
    assert [view.kinopub_id for view in result.views] == list(range(1, 61))
    assert not result.full_scan


def test_a_title_marked_watched_long_ago_is_found_again_by_a_full_scan(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given a series played long ago, whose last episode was later marked watched by hand (no new history row)
    fake.add_series(8632, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3})
    fake.watch(8632, season=1, episode=1, at=1_562_358_000)
    fake.mark_watched_without_play(8632, season=1, episode=3, at=1_700_000_000)
    account = link(fake, clock)

    # When an incremental run looks only at recent history, and a full rescan at everything
    incremental = collect(account.client, since=utc_from_epoch(1_690_000_000))
    full = collect(account.client, since=None)

    # Then only the full rescan sees the hand-marked episode, at its own updated time
    assert incremental.views == []
    assert [(v.episode, v.watched_at) for v in full.views] == [
        (1, utc_from_epoch(1_562_358_000)),
        (3, utc_from_epoch(1_700_000_000)),
    ]


# --- per-item faults ------------------------------------------------------------------------------------------


def test_one_broken_item_is_reported_and_never_stops_the_others(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given five watched movies, and /v1/watching answering, in order: a 404, an HTML page, invalid JSON,
    # a 500 (then the real answer), and the real answer
    seed_movies(fake, 5)
    fake.add_fault(
        "GET", r"/v1/watching", status=404, body='{"status": 404, "error": "Requested item or video not found."}'
    )
    fake.add_fault(
        "GET", r"/v1/watching", status=200, body="<!DOCTYPE html><html>maintenance</html>", content_type="text/html"
    )
    fake.add_fault("GET", r"/v1/watching", status=200, body='{"status": 200, "item": {')
    fake.add_fault("GET", r"/v1/watching", status=500, body='{"status": 500}')
    account = link(fake, clock)

    # When the collector runs
    result = collect(account.client, since=None)

    # Then the first three items are reported with their reason, the last two are collected
    reasons = {failure.kinopub_id: failure.reason for failure in result.failures}
    assert set(reasons) == {1, 2, 3}
    assert "HTTP 404" in reasons[1]
    assert "Requested item or video not found" in reasons[1]
    assert "HTML" in reasons[2]
    assert "invalid JSON" in reasons[3]
    assert [view.kinopub_id for view in result.views] == [4, 5]
    # and the 500 was retried once after a simulated backoff
    assert watching_ids(fake) == [1, 2, 3, 4, 4, 5]
    assert clock.slept > 0


def test_an_unreadable_history_page_is_not_an_item_failure(fake: FakeKinopub, clock: VirtualClock) -> None:
    seed_movies(fake, 3)
    fake.add_fault("GET", r"/v1/history", status=200, body="<html>oops</html>", content_type="text/html")
    account = link(fake, clock)

    with pytest.raises(BadResponse, match=r"/v1/history.*HTML"):
        collect(account.client, since=None)


def test_kinopub_refusing_a_non_browser_user_agent_is_explained(clock: VirtualClock) -> None:
    with FakeKinopub(clock=clock.time, require_browser_ua=True) as strict:
        seed_movies(strict, 1)
        account = link(strict, clock)
        account.client = KinopubClient(kinopub_transport(clock, "python-requests/2"), strict.base_url, account.keeper)

        with pytest.raises(BadResponse, match="KINOPUB_USER_AGENT"):
            account.client.history_page(1)

        # while the default, browser-like User-Agent is served
        assert len(link(strict, clock).client.history_page(1).rows) == 1


# --- tokens ---------------------------------------------------------------------------------------------------


def test_a_401_mid_run_costs_one_refresh_and_one_retry(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given a linked account whose access token Kinopub rejects once, on the second item
    seed_movies(fake, 3)
    account = link(fake, clock)
    fake.add_fault("GET", r"/v1/watching")  # the first item answers normally
    fake.add_fault("GET", r"/v1/watching", status=401, body='{"status": 401, "error": "unauthorized"}')

    # When the collector runs
    result = collect(account.client, since=None)

    # Then every item is collected after exactly one refresh and one retry
    assert [view.kinopub_id for view in result.views] == [1, 2, 3]
    assert account.keeper.refreshes == 1
    assert len(fake.calls("POST", "/oauth2/token")) == 1
    assert watching_ids(fake) == [1, 2, 2, 3]
    # and the rotated pair was stored right after the refresh, before the retried request was sent
    paths = [f"{r.method} {r.path}" for r in fake.requests]
    (written_at,) = account.writes_at
    assert paths[written_at - 1] == "POST /oauth2/token"
    assert paths[written_at] == "GET /v1/watching"
    stored = account.store.load().secret
    assert stored.access_token is not None
    assert fake.token_is_valid(stored.access_token.get_secret_value())
    assert fake.requests[written_at].headers["authorization"] == f"Bearer {stored.access_token.get_secret_value()}"


def test_a_401_after_a_fresh_token_means_relinking(fake: FakeKinopub, clock: VirtualClock) -> None:
    seed_movies(fake, 1)
    account = link(fake, clock)
    fake.add_fault("GET", r"/v1/history", status=401, body='{"status": 401, "error": "unauthorized"}', times=2)

    with pytest.raises(RelinkRequired, match="kinotrakt link kinopub"):
        collect(account.client, since=None)
    assert account.keeper.refreshes == 1


def test_a_token_about_to_expire_is_refreshed_and_stored_before_the_first_read(
    fake: FakeKinopub, clock: VirtualClock
) -> None:
    # Given stored tokens that expire within Kinopub's 10-minute margin
    seed_movies(fake, 1)
    account = link(fake, clock, expires_in=300)

    # When the collector starts
    collect(account.client, since=None)

    # Then the first request is the refresh, the pair is stored, and only then history is read
    paths = [f"{r.method} {r.path}" for r in fake.requests]
    assert paths[:2] == ["POST /oauth2/token", "GET /v1/history"]
    assert account.writes_at == [1]


# --- the allow-list -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MUTATING_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_mutating_endpoints_cannot_be_requested(fake: FakeKinopub, clock: VirtualClock, method: str, path: str) -> None:
    # Given a linked account
    account = link(fake, clock)

    # When anything tries to send a request to a mutating endpoint through the Kinopub package
    with pytest.raises(ForbiddenPath):
        send(account.transport, fake.base_url, method, path, params={"id": 1}, token="t")

    # Then it is refused before any I/O
    assert fake.requests == []
    assert fake.mutations == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/watching/"),
        ("GET", "/v1/watching/movies"),
        ("GET", "/v1/history/"),
        ("GET", "/v1/items/12/vote"),
        ("GET", "/v1/items/012"),
        ("GET", "/v1/items/"),
        ("GET", "/v1/bookmarks"),
        ("GET", "/v1/watching%2Ftoggle"),
        ("GET", "/v1/watching/../watching/toggle"),
        ("POST", "/v1/history"),
        ("GET", "/oauth2/token"),
        ("DELETE", "/v1/items/12"),
    ],
)
def test_only_exact_read_only_paths_pass_the_allow_list(method: str, path: str) -> None:
    with pytest.raises(ForbiddenPath):
        check_allowed(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/history"),
        ("GET", "/v1/watching"),
        ("GET", "/v1/items/8632"),
        ("GET", "/v1/user"),
        ("POST", "/v1/device/notify"),
        ("POST", "/oauth2/device"),
        ("POST", "/oauth2/token"),
    ],
)
def test_the_read_only_endpoints_pass_the_allow_list(method: str, path: str) -> None:
    check_allowed(method, path)


def test_a_full_collect_never_touches_a_mutating_endpoint(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given a library with movies, a series, and tokens that need a refresh on the way
    seed_movies(fake, 60)
    fake.add_series(8632, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3, 2: 4})
    fake.mark_watched_without_play(8632, season=1, at=1_562_358_731)
    fake.watch(8632, season=2, episode=1, at=1_562_358_740)
    account = link(fake, clock, expires_in=60)

    # When the collector does a full scan
    collect(account.client, since=None)

    # Then only allow-listed reads (and the refresh) were sent, and the fake saw no mutation at all
    assert fake.mutations == []
    assert {(r.method, r.path) for r in fake.requests} == {
        ("POST", "/oauth2/token"),
        ("GET", "/v1/history"),
        ("GET", "/v1/watching"),
    }
