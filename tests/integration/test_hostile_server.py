"""The real clients (KinopubClient, TraktClient, both OAuth refreshers) against a malicious server on loopback
(devkit/fakes/hostile.py): truncated bodies, broken gzip, a gzip bomb, JSON nested 50,000 deep, answers that
drip one byte at a time, redirects to another host. Whatever it sends, a run gets a typed error a report can
carry — never a crash, never a stall, never a write or a refresh sent twice, never a token sent elsewhere.

Backoff waits run on a virtual clock; only the time-limit cases spend real time (about a second each)."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes import hostile
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.hostile import HostileServer
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Clock, Deadline, SystemClock
from kinotrakt.errors import (
    BadResponse,
    KinotraktError,
    OutOfTime,
    TokenRefreshOutcomeUnknown,
)
from kinotrakt.http import CallCounter, Limits, Transport
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.oauth import KinopubOAuth
from kinotrakt.kinopub.oauth import make_token_keeper as kinopub_keeper
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenKeeper
from kinotrakt.trakt.client import TraktClient, TraktWriteOutcomeUnknown, trakt_transport
from kinotrakt.trakt.oauth import TraktOAuth
from kinotrakt.trakt.oauth import make_token_keeper as trakt_keeper

INCEPTION = "tt1375666"
ACCESS = {"kinopub": "kp-access-token-0123456789", "trakt": "tr-access-token-0123456789"}
REFRESH = {"kinopub": "kp-refresh-token-0123456789", "trakt": "tr-refresh-token-0123456789"}
PLAY = {"ids": {"imdb": INCEPTION}, "watched_at": "2026-10-01T20:00:00.000Z"}
JSON_OK = b'{"status": 200}'


@dataclass
class Clients:
    """Both services' clients wired to one hostile server the way the sync wires them to the real ones."""

    server: HostileServer
    stores: dict[str, InMemoryTokenStore]
    keepers: dict[str, TokenKeeper]
    kinopub: KinopubClient
    trakt: TraktClient

    def secret(self, service: str) -> ServiceSecret:
        return self.stores[service].load().secret


def connect(
    server: HostileServer,
    *,
    clock: Clock | None = None,
    total_seconds: float = 10.0,
    remaining: float | None = None,
    expiring: bool = False,
) -> Clients:
    """``expiring``: the stored access tokens expire in a minute, so the next call refreshes first."""
    clock = clock or VirtualClock()
    now = int(clock.now().timestamp())
    deadline = Deadline(clock, remaining, margin=0)
    limits = Limits(read_timeout=5, total_seconds=total_seconds)
    stores = {
        service: InMemoryTokenStore(
            ServiceSecret(
                client_id=f"{service}-client",
                client_secret=SecretStr(f"{service}-client-secret-0123456789"),
                access_token=SecretStr(ACCESS[service]),
                refresh_token=SecretStr(REFRESH[service]),
                issued_at=now - 7 * 86400,
                expires_at=now + (60 if expiring else 30 * 86400),
            )
        )
        for service in ("kinopub", "trakt")
    }
    kinopub_http = Transport(
        "kinopub", clock=clock, deadline=deadline, counter=CallCounter(), user_agent="kinotrakt/test", limits=limits
    )
    trakt_http = trakt_transport(
        post_interval_seconds=1.0, clock=clock, deadline=deadline, counter=CallCounter(), limits=limits
    )
    keepers = {
        "kinopub": kinopub_keeper(stores["kinopub"], KinopubOAuth(kinopub_http, server.base_url, "", ""), clock),
        "trakt": trakt_keeper(stores["trakt"], TraktOAuth(trakt_http, server.base_url, "", ""), clock),
    }
    return Clients(
        server,
        stores,
        keepers,
        KinopubClient(kinopub_http, server.base_url, keepers["kinopub"]),
        TraktClient(trakt_http, server.base_url, "trakt-client", keepers["trakt"]),
    )


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile_server:
        yield hostile_server


Read = Callable[[Clients], object]
SINCE = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
READS: dict[str, Read] = {
    "kinopub /v1/history": lambda c: c.kinopub.history_page(1),
    "trakt /search/imdb": lambda c: c.trakt.search_imdb(INCEPTION, "movie"),
    "trakt /sync/history (bearer)": lambda c: c.trakt.history("movies", SINCE, SINCE + timedelta(days=1)),
}
REFRESHES = ("kinopub", "trakt")


def write(clients: Clients) -> object:
    return clients.trakt.add_to_history([PLAY], [])


def refresh(clients: Clients, service: str) -> object:
    return clients.keepers[service].access_token()


# --- truncated, undecodable, oversized, hostile JSON ---------------------------------------------------------


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_truncated_answer_to_a_read_is_retried_then_a_bad_response(server: HostileServer, read: Read) -> None:
    # Given a server that promises 2,000 bytes and hangs up after 100
    server.answer = hostile.truncated(b'{"history": [' + b" " * 1986 + b"]}", sent=100)
    clients = connect(server)

    # When the read is made, Then it was tried again (5 attempts) and ends as a "next run" error
    with pytest.raises(BadResponse, match="cut off") as caught:
        read(clients)
    assert caught.value.run_status == "partial"
    assert len(server.requests) == 5


def test_a_truncated_answer_to_a_history_write_is_outcome_unknown_and_never_resent(server: HostileServer) -> None:
    # Given Trakt acted on the write, and its answer is cut off
    server.answer = hostile.truncated(b'{"added": {"movies": 1, "episodes": 0}}', sent=10, status="201 Created")
    clients = connect(server)

    # When the batch is posted, Then the pipeline learns the outcome is unknown (it re-reads history before
    # anything is sent again), with the batch it must look for; it was sent exactly once
    with pytest.raises(TraktWriteOutcomeUnknown) as caught:
        write(clients)
    assert caught.value.movies == [PLAY]
    assert [request.method for request in server.requests] == ["POST"]


@pytest.mark.parametrize("service", REFRESHES)
def test_a_truncated_answer_to_a_refresh_stores_nothing_and_says_what_happens_next(
    server: HostileServer, service: str
) -> None:
    # Given an access token about to expire, and a token endpoint whose answer is cut off
    server.answer = hostile.truncated(b'{"access_token": "new-access-token", "refresh_token": "n"}', sent=20)
    clients = connect(server, expiring=True)
    before = clients.stores[service].load()

    # When a token is needed
    with pytest.raises(TokenRefreshOutcomeUnknown) as caught:
        refresh(clients, service)

    # Then the refresh was sent once, the secret is untouched, and the message says the next run refreshes
    # again and when the user would have to link again
    assert len(server.requests) == 1
    assert clients.stores[service].load() == before
    assert caught.value.run_status == "partial"
    assert f"kinotrakt link {service}" in str(caught.value)


@pytest.mark.parametrize("service", REFRESHES)
def test_a_lost_refresh_answer_gives_way_to_a_pair_another_writer_stored_meanwhile(
    server: HostileServer, service: str
) -> None:
    # Given a token endpoint whose answer is cut off, while another writer (a re-link) stores a fresh pair
    clients = connect(server, expiring=True)
    store = clients.stores[service]
    relinked = clients.secret(service).model_copy(
        update={"access_token": SecretStr("relinked-access-token"), "expires_at": 4_102_444_800}
    )

    def relink_then_cut_off(sock: socket.socket) -> None:
        store.save(relinked, expected_version=store.load().version)
        hostile.truncated(b'{"access_token": "lost-access-token"}', sent=5)(sock)

    server.answer = relink_then_cut_off

    # When a token is needed, Then the other writer's pair is used, and nothing of ours overwrote it
    assert refresh(clients, service) == "relinked-access-token"
    assert clients.secret(service) == relinked
    assert len(server.requests) == 1


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_broken_gzip_answer_to_a_read_is_a_bad_response(server: HostileServer, read: Read) -> None:
    server.answer = hostile.broken_gzip()
    clients = connect(server)

    with pytest.raises(BadResponse, match="decompressed"):
        read(clients)
    assert len(server.requests) == 5


def test_a_broken_gzip_answer_to_a_write_is_outcome_unknown(server: HostileServer) -> None:
    server.answer = hostile.broken_gzip(status="201 Created")
    clients = connect(server)

    with pytest.raises(TraktWriteOutcomeUnknown):
        write(clients)
    assert len(server.requests) == 1


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_gzip_bomb_is_refused_without_being_inflated(server: HostileServer, read: Read) -> None:
    # Given a ~200 KB gzip answer that inflates to 200 MiB
    server.answer = hostile.gzip_bomb(200 * 1024 * 1024)
    clients = connect(server)

    # When the read is made
    tracemalloc.start()
    try:
        with pytest.raises(BadResponse, match="more than 5 MiB") as caught:
            read(clients)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Then it is refused at the 5 MiB cap (memory stays near it), once: asking again would only repeat it
    assert peak < 16 * 1024 * 1024
    assert caught.value.run_status == "partial"
    assert len(server.requests) == 1


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_json_nested_50000_deep_is_a_bad_response_not_a_recursion_error(server: HostileServer, read: Read) -> None:
    server.answer = hostile.deep_json(50_000)
    clients = connect(server)

    with pytest.raises(BadResponse, match="nested too deeply"):
        read(clients)


def test_json_nested_50000_deep_in_a_write_answer_is_outcome_unknown(server: HostileServer) -> None:
    server.answer = hostile.deep_json(50_000, status="201 Created")
    clients = connect(server)

    with pytest.raises(TraktWriteOutcomeUnknown):
        write(clients)
    assert len(server.requests) == 1


@pytest.mark.parametrize("service", REFRESHES)
def test_json_nested_50000_deep_in_a_refresh_answer_is_a_lost_refresh(server: HostileServer, service: str) -> None:
    server.answer = hostile.deep_json(50_000)
    clients = connect(server, expiring=True)
    before = clients.stores[service].load()

    with pytest.raises(TokenRefreshOutcomeUnknown):
        refresh(clients, service)
    assert clients.stores[service].load() == before
    assert len(server.requests) == 1


# --- a server that sends one byte a second -------------------------------------------------------------------


@pytest.mark.parametrize("head", [False, True], ids=["body", "status line and headers"])
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_an_answer_dripping_one_byte_a_second_is_cut_at_the_total_limit(
    server: HostileServer, read: Read, head: bool
) -> None:
    # Given a server that sends one byte a second (every byte well inside the 5 s per-read timeout), and a
    # total limit of 1 s per request
    server.answer = hostile.drip(b'{"history": []}' * 10, interval=1.0, head=head)
    clients = connect(server, total_seconds=1.0)

    # When the read is made
    started = time.monotonic()
    with pytest.raises(BadResponse, match="longer than 1 s"):
        read(clients)

    # Then it gave up at the limit, once (slowness is not retried), instead of reading for minutes
    assert time.monotonic() - started < 3
    assert len(server.requests) == 1


def test_a_write_whose_answer_drips_is_outcome_unknown_at_the_total_limit(server: HostileServer) -> None:
    server.answer = hostile.drip(b'{"added": {"movies": 1}}', interval=1.0, status="201 Created")
    clients = connect(server, total_seconds=1.0)

    started = time.monotonic()
    with pytest.raises(TraktWriteOutcomeUnknown):
        write(clients)
    assert time.monotonic() - started < 3
    assert len(server.requests) == 1


def test_the_run_deadline_cuts_a_dripping_answer_before_the_total_limit(server: HostileServer) -> None:
    # Given a run with 1 s left (real time) and a generous total limit per request
    server.answer = hostile.drip(b'{"history": []}' * 10, interval=1.0)
    clients = connect(server, clock=SystemClock(), remaining=1.0, total_seconds=30.0)

    # When Kinopub is read, Then the run stops with OutOfTime at its deadline
    started = time.monotonic()
    with pytest.raises(OutOfTime):
        clients.kinopub.history_page(1)
    assert time.monotonic() - started < 3


# --- redirects ---------------------------------------------------------------------------------------------

CALLS: dict[str, Callable[[Clients], object]] = {
    **READS,
    "trakt POST /sync/history": write,
    "kinopub refresh": lambda c: refresh(c, "kinopub"),
    "trakt refresh": lambda c: refresh(c, "trakt"),
}


@pytest.mark.parametrize("status", ["302 Found", "307 Temporary Redirect", "308 Permanent Redirect"])
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_redirect_to_another_host_is_refused_and_the_other_host_sees_nothing(
    server: HostileServer, call: Callable[[Clients], object], status: str
) -> None:
    # Given a service that redirects every request to another host
    with HostileServer(hostile.respond("200 OK", JSON_OK)) as elsewhere:
        server.answer = hostile.redirect(f"{elsewhere.base_url}/collect", status)
        clients = connect(server, expiring=True)

        # When any call is made, Then it ends in a typed error and the other host never got a request
        # (so never a token, a refresh token or a client secret)
        with pytest.raises(KinotraktError):
            call(clients)
        assert elsewhere.requests == []
    assert len(server.requests) >= 1


def test_a_finished_requests_time_limit_never_cuts_the_next_request_on_the_same_connection() -> None:
    # Given a 1 s limit per request, and a kept-alive connection to a service whose second answer takes 0.6 s
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time) as fake:
        transport = trakt_transport(
            post_interval_seconds=1.0,
            clock=clock,
            deadline=Deadline(clock, None, 0),
            counter=CallCounter(),
            limits=Limits(total_seconds=1.0),
        )
        client = TraktClient(transport, fake.base_url, fake.client_id, connect(HostileServer()).keepers["trakt"])
        client.search_imdb(INCEPTION, "movie")
        time.sleep(0.6)
        fake.add_fault("GET", r"/search/imdb/.*", delay=0.6)

        # When the second request is in flight as the first one's limit passes (at 1 s)
        client.search_imdb(INCEPTION, "movie")

    # Then it was answered on the same connection, uncut
    assert [request.status for request in fake.requests] == [200, 200]
