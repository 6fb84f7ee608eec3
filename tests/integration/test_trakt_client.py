"""TraktClient against the fake Trakt on loopback: headers, reads, pagination, the write, every error class,
the 401 refresh, and the no-blind-resend rule. Time is a VirtualClock shared with the fake."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import CLOUDFLARE_403, FakeTrakt
from devkit.memory import InMemoryTokenStore
from kinotrakt import __version__
from kinotrakt.clock import Deadline, iso_z
from kinotrakt.errors import (
    BadResponse,
    KinotraktError,
    OutcomeUnknown,
    TraktAccountError,
    TraktAccountLimit,
    TraktAccountLocked,
    TraktAppRejected,
    TraktCloudflareBlocked,
    TraktUnauthorized,
    TraktVipRequired,
)
from kinotrakt.http import CallCounter, Transport
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenKeeper
from kinotrakt.trakt.client import TraktClient, TraktWriteOutcomeUnknown, trakt_transport
from kinotrakt.trakt.oauth import TraktOAuth, make_token_keeper

BREAKING_BAD = "tt0903747"
INCEPTION = "tt1375666"


@dataclass
class Trakt:
    """The fake, and a client wired to it exactly as the sync wires the real one."""

    fake: FakeTrakt
    clock: VirtualClock
    store: InMemoryTokenStore
    transport: Transport
    keeper: TokenKeeper
    client: TraktClient
    saves_at: list[int]  # how many requests the fake had seen when each token pair was saved

    @property
    def access_token(self) -> str:
        token = self.store.load().secret.access_token
        assert token is not None
        return token.get_secret_value()

    @property
    def refresh_token(self) -> str:
        token = self.store.load().secret.refresh_token
        assert token is not None
        return token.get_secret_value()


def connect(fake: FakeTrakt, clock: VirtualClock, *, remaining: float | None = None, interval: float = 1.0) -> Trakt:
    tokens = fake.issue_tokens()
    secret = ServiceSecret(
        client_id=fake.client_id,
        client_secret=SecretStr(fake.client_secret),
        access_token=SecretStr(tokens["access_token"]),
        refresh_token=SecretStr(tokens["refresh_token"]),
        issued_at=tokens["created_at"],
        expires_at=tokens["created_at"] + tokens["expires_in"],
    )
    saves_at: list[int] = []
    store = InMemoryTokenStore(
        secret, faults=lambda operation: saves_at.append(len(fake.requests)) if operation == "save" else None
    )
    transport = trakt_transport(
        post_interval_seconds=interval,
        clock=clock,
        deadline=Deadline(clock, remaining, margin=0),
        counter=CallCounter(),
    )
    oauth = TraktOAuth(transport, fake.base_url, fake.client_id, fake.client_secret)
    keeper = make_token_keeper(store, oauth, clock)
    client = TraktClient(transport, fake.base_url, fake.client_id, keeper)
    return Trakt(fake, clock, store, transport, keeper, client, saves_at)


@pytest.fixture
def trakt() -> Iterator[Trakt]:
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time) as fake:
        fake.add_movie(1, "Inception", 2010, INCEPTION)
        fake.add_movie(2, "Mission: Impossible", 1996, "tt0117060")
        fake.add_show(10, "Breaking Bad", 2008, BREAKING_BAD, {0: 1, 1: 7, 2: 13})
        yield connect(fake, clock)


# --- headers -----------------------------------------------------------------------------------------------


def test_every_call_carries_trakts_required_headers_and_a_bearer_only_where_needed(trakt: Trakt) -> None:
    # When the client makes a public and a protected call
    trakt.client.search_imdb(INCEPTION, "movie")
    trakt.client.user_settings()

    # Then both carry JSON, the API key, version 2 and kinotrakt's User-Agent (Cloudflare blocks without one)
    search, activities = trakt.fake.requests
    for request in (search, activities):
        assert request.headers["content-type"] == "application/json"
        assert request.headers["trakt-api-key"] == trakt.fake.client_id
        assert request.headers["trakt-api-version"] == "2"
        assert request.headers["user-agent"] == f"kinotrakt/{__version__}"
    # and only the 🔒 call carries the user's token
    assert "authorization" not in search.headers
    assert activities.headers["authorization"] == f"Bearer {trakt.access_token}"


# --- mapping reads -----------------------------------------------------------------------------------------


def test_an_imdb_search_asks_for_one_type_and_returns_hits_of_that_type(trakt: Trakt) -> None:
    # When the show behind an IMDb id is looked up
    hits = trakt.client.search_imdb(BREAKING_BAD, "show")

    # Then the request named the type, and the hit is the show
    assert trakt.fake.requests[-1].query["type"] == "show"
    assert [(hit.type, hit.show.ids.trakt if hit.show else None) for hit in hits] == [("show", 10)]


def test_hits_of_another_type_than_asked_for_are_dropped(trakt: Trakt) -> None:
    # Given Trakt answers an IMDb lookup with an episode and a show (an IMDb id can name either)
    answer = [
        {"type": "episode", "score": 1000, "episode": {"season": 1, "number": 1, "ids": {"trakt": 5}}},
        {"type": "show", "score": 1000, "show": {"title": "Breaking Bad", "year": 2008, "ids": {"trakt": 10}}},
    ]
    trakt.fake.add_fault("GET", r"/search/imdb/.*", status=200, body=json.dumps(answer))

    # When a show is looked up, Then only the show is returned
    assert [hit.type for hit in trakt.client.search_imdb(BREAKING_BAD, "show")] == ["show"]


def test_a_title_with_search_syntax_is_searched_as_written(trakt: Trakt) -> None:
    # When a movie whose title holds a Lucene special (`:`) is searched by title and year
    hits = trakt.client.search_text("movie", "Mission: Impossible", 1996)

    # Then Trakt received the escaped query and the year, and the one movie is found
    request = trakt.fake.requests[-1]
    assert request.path == "/search/movie"
    assert request.query == {"query": "Mission\\: Impossible", "years": "1996"}
    assert [hit.movie.ids.trakt for hit in hits if hit.movie] == [2]


def test_a_title_search_can_span_a_year_either_side(trakt: Trakt) -> None:
    trakt.client.search_text("movie", "Legend No. 17", (2012, 2014))

    assert trakt.fake.requests[-1].query == {"query": "Legend No. 17", "years": "2012-2014"}


def test_a_pin_is_checked_by_trakt_id_or_slug(trakt: Trakt) -> None:
    trakt.fake.add_movie(16662, "Inception", 2010, "tt1375666", slug="inception-2010")

    by_slug = trakt.client.movie("inception-2010")
    show = trakt.client.show("10")

    assert (by_slug.ids.trakt, by_slug.title) == (16662, "Inception")
    assert show.ids.trakt == 10
    assert [r.path for r in trakt.fake.requests] == ["/movies/inception-2010", "/shows/10"]


@pytest.mark.parametrize("show", [10, BREAKING_BAD, "breaking-bad"])
def test_every_season_and_episode_of_a_show_comes_in_one_call(trakt: Trakt, show: int | str) -> None:
    # When the season table of a show is read, by its Trakt id, its IMDb id or its slug
    seasons = trakt.client.show_seasons(show)

    # Then one request brought every season (specials included) with episode ids and details
    assert seasons is not None
    assert len(trakt.fake.requests) == 1
    assert trakt.fake.requests[0].path == f"/shows/{show}/seasons"
    assert trakt.fake.requests[0].query == {"extended": "full,episodes"}
    assert [(season.number, len(season.episodes)) for season in seasons] == [(0, 1), (1, 7), (2, 13)]
    s2e5 = seasons[2].episodes[4]
    assert (s2e5.season, s2e5.number, s2e5.ids.trakt) == (2, 5, FakeTrakt.episode_id(10, 2, 5))
    assert (s2e5.title, s2e5.runtime) == ("Episode 5", 45)
    assert s2e5.first_aired == datetime(2009, 1, 29, 1, 0, tzinfo=UTC)


def test_a_show_trakt_does_not_have_is_none_not_an_error(trakt: Trakt) -> None:
    # When the season table of an IMDb id Trakt does not list is asked for, Then the answer is "no such show"
    assert trakt.client.show_seasons("tt0000404") is None
    assert [request.status for request in trakt.fake.requests] == [404]


def test_an_imdb_lookup_keeps_only_the_asked_type_though_trakt_ignores_it(trakt: Trakt) -> None:
    # Given an IMDb id Trakt has as a movie (the real service answers whatever has the id, whatever the type)
    # When it is looked up as a show, Then nothing comes back; as a movie, the movie
    assert trakt.client.search_imdb(INCEPTION, "show") == []
    assert [hit.movie.ids.trakt for hit in trakt.client.search_imdb(INCEPTION, "movie") if hit.movie] == [1]


# --- the remote index ----------------------------------------------------------------------------------------


def test_history_reads_every_page_of_250(trakt: Trakt) -> None:
    # Given 600 movie plays, one a day, and a few episode plays
    start = trakt.clock.now() - timedelta(days=700)
    trakt.fake.add_plays([("movie", 1, iso_z(start + timedelta(days=n))) for n in range(600)])
    trakt.fake.add_play("episode", FakeTrakt.episode_id(10, 1, 1), iso_z(start))

    # When the movie history of the whole window is read
    items = trakt.client.history("movies", start - timedelta(days=1), trakt.clock.now())

    # Then all 600 plays came back, newest first, in exactly the 3 pages the page count announced
    assert len(items) == 600
    assert all(item.type == "movie" for item in items)
    assert items[0].watched_at > items[-1].watched_at
    pages = trakt.fake.calls("GET", "/sync/history/movies")
    assert [(r.query["page"], r.query["limit"]) for r in pages] == [("1", "250"), ("2", "250"), ("3", "250")]
    assert pages[0].query["start_at"] == iso_z(start - timedelta(days=1))


def test_history_bounds_select_the_window(trakt: Trakt) -> None:
    # Given plays inside and outside a window
    now = trakt.clock.now()
    trakt.fake.add_play("movie", 1, iso_z(now - timedelta(days=10)))
    inside = trakt.fake.add_play("movie", 2, iso_z(now - timedelta(days=2)))

    # When the last 3 days are read, Then only the play inside comes back, with one page read
    items = trakt.client.history("movies", now - timedelta(days=3), now)
    assert [item.id for item in items] == [inside]
    assert len(trakt.fake.requests) == 1


def test_one_items_history_is_read_without_date_bounds(trakt: Trakt) -> None:
    # Given plays of one episode, one with an unknown time, and a play of another episode
    episode = FakeTrakt.episode_id(10, 1, 2)
    trakt.fake.add_play("episode", episode, "unknown")
    trakt.fake.add_play("episode", episode, "2020-05-01T20:00:00Z")
    trakt.fake.add_play("episode", FakeTrakt.episode_id(10, 1, 3), "2020-05-01T21:00:00Z")

    # When that episode's history is read
    items = trakt.client.item_history("episodes", episode)

    # Then both of its plays come back, whatever their date
    assert [item.episode.ids.trakt for item in items if item.episode] == [episode, episode]
    assert trakt.fake.requests[-1].path == f"/sync/history/episodes/{episode}"
    assert "start_at" not in trakt.fake.requests[-1].query


def test_the_linked_accounts_name_is_read_from_its_settings(trakt: Trakt) -> None:
    # When the user's settings are read, Then the username is the linked account's
    assert trakt.client.user_settings()["user"]["username"] == trakt.fake.username


# --- the write -----------------------------------------------------------------------------------------------


def test_a_history_post_adds_plays_and_reports_what_trakt_did_not_find(trakt: Trakt) -> None:
    # When a batch with a known movie, an unknown movie and a known episode is posted
    episode = FakeTrakt.episode_id(10, 2, 1)
    result = trakt.client.add_to_history(
        movies=[
            {"ids": {"imdb": INCEPTION}, "watched_at": "2024-03-01T20:15:42.000Z"},
            {"ids": {"imdb": "tt9999999"}, "watched_at": "2024-03-02T20:00:00.000Z"},
        ],
        episodes=[{"ids": {"trakt": episode}, "watched_at": "2024-03-03T21:00:00.000Z"}],
    )

    # Then Trakt added two plays (to the minute) and echoed the unknown one back as not_found
    assert (result.added.movies, result.added.episodes) == (1, 1)
    assert [item.ids.imdb for item in result.not_found.movies] == ["tt9999999"]
    assert result.not_found.episodes == []
    assert sorted(trakt.fake.play_keys()) == [
        f"episode:{episode}:2024-03-03T21:00Z",
        f"movie:{INCEPTION}:2024-03-01T20:15Z",
    ]


def test_a_post_dropped_after_it_was_applied_is_outcome_unknown_and_never_a_second_play(trakt: Trakt) -> None:
    # Given Trakt applies the next history POST and then hangs up before answering
    trakt.fake.add_fault("POST", r"/sync/history", action="apply_then_drop")
    movies = [{"ids": {"imdb": INCEPTION}, "watched_at": "2024-03-01T20:15:00.000Z"}]

    # When the batch is posted
    with pytest.raises(TraktWriteOutcomeUnknown) as caught:
        trakt.client.add_to_history(movies=movies, episodes=[])

    # Then the caller learns the outcome is unknown and gets the batch back, for the re-read rule
    assert isinstance(caught.value, OutcomeUnknown)
    assert caught.value.movies == movies
    assert caught.value.episodes == []
    # and the POST was sent exactly once, so Trakt holds exactly one play
    assert len(trakt.fake.calls("POST", "/sync/history")) == 1
    assert trakt.fake.play_keys() == [f"movie:{INCEPTION}:2024-03-01T20:15Z"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 521, 522])
def test_a_post_answered_with_a_server_error_is_never_re_sent(trakt: Trakt, status: int) -> None:
    # Given Trakt fails the next history POST with a server error
    trakt.fake.add_fault("POST", r"/sync/history", status=status, body="<html>oops</html>", content_type="text/html")

    # When a batch is posted, Then the outcome is unknown and nothing was sent twice
    with pytest.raises(TraktWriteOutcomeUnknown, match=f"HTTP {status}"):
        trakt.client.add_to_history(movies=[], episodes=[{"ids": {"trakt": FakeTrakt.episode_id(10, 1, 1)}}])
    assert len(trakt.fake.calls("POST", "/sync/history")) == 1


def test_a_get_that_meets_server_errors_is_retried_after_a_backoff(trakt: Trakt) -> None:
    # Given Trakt is overloaded for two answers
    trakt.fake.add_fault("GET", r"/users/settings", status=503, times=2)

    # When the account settings are read, Then the third attempt answers, after waiting on the virtual clock
    trakt.client.user_settings()
    assert len(trakt.fake.calls("GET", "/users/settings")) == 3
    assert trakt.clock.slept > 0


# --- the 401 and token rotation ------------------------------------------------------------------------------


def test_a_401_refreshes_once_persists_the_new_pair_then_retries(trakt: Trakt) -> None:
    # Given Trakt no longer accepts the stored access token (it still looks valid to us)
    old_access, old_refresh = trakt.access_token, trakt.refresh_token
    trakt.fake.expire_access_token(old_access)

    # When a protected call is made
    trakt.client.user_settings()

    # Then: the call, one refresh, the stored pair replaced, and the retry with the new token
    paths = [r.path for r in trakt.fake.requests]
    assert paths == ["/users/settings", "/oauth/token", "/users/settings"]
    assert trakt.fake.requests[1].json is not None
    assert trakt.fake.requests[1].json["refresh_token"] == old_refresh
    assert trakt.access_token != old_access
    assert trakt.refresh_token != old_refresh
    assert trakt.fake.requests[2].headers["authorization"] == f"Bearer {trakt.access_token}"
    # The new pair was written after the refresh answered and before the retry was sent
    assert trakt.saves_at == [2]


def test_a_token_close_to_expiry_is_refreshed_and_stored_before_the_call(trakt: Trakt) -> None:
    # Given an access token that expires within Trakt's margin
    trakt.clock.advance(7 * 24 * 3600 - 3600)

    # When a protected call is made
    trakt.client.history("episodes", trakt.clock.now() - timedelta(days=1), trakt.clock.now())

    # Then the refresh came first and the rotated pair was stored before the call went out
    assert [r.path for r in trakt.fake.requests] == ["/oauth/token", "/sync/history/episodes"]
    assert trakt.saves_at == [1]
    assert trakt.fake.requests[1].headers["authorization"] == f"Bearer {trakt.access_token}"
    assert trakt.fake.token_is_valid(trakt.access_token)


def test_a_post_refused_with_401_is_sent_again_with_the_new_token_and_adds_one_play(trakt: Trakt) -> None:
    # Given Trakt refuses the stored access token
    trakt.fake.expire_access_token(trakt.access_token)

    # When a batch is posted
    result = trakt.client.add_to_history(
        movies=[{"ids": {"imdb": INCEPTION}, "watched_at": "2024-01-01T10:00:00Z"}], episodes=[]
    )

    # Then the refused POST (not processed) was repeated once with the new token: one play
    assert result.added.movies == 1
    assert len(trakt.fake.play_keys()) == 1


def test_a_401_that_survives_the_refresh_is_a_clear_relink_error(trakt: Trakt) -> None:
    # Given Trakt answers 401 twice in a row
    trakt.fake.add_fault("GET", r"/users/settings", status=401, body='{"error":"invalid_token"}', times=2)

    # When a protected call is made, Then exactly one refresh was tried and the user is told to re-link
    with pytest.raises(TraktUnauthorized, match="link trakt"):
        trakt.client.user_settings()
    assert len(trakt.fake.calls("POST", "/oauth/token")) == 1
    assert trakt.keeper.refreshes == 1


def test_concurrent_401s_cause_a_single_refresh(trakt: Trakt) -> None:
    # Given the access token dies while four readers use it
    trakt.fake.expire_access_token(trakt.access_token)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            trakt.client.user_settings()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # When they all meet the 401 at about the same time
    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then only one refresh reached Trakt (a second would have burnt the single-use refresh token)
    assert errors == []
    assert len(trakt.fake.calls("POST", "/oauth/token")) == 1


# --- errors the user must act on ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error"),
    [
        (403, CLOUDFLARE_403, "text/html; charset=utf-8", TraktCloudflareBlocked),
        (403, '{"error":"invalid api key"}', "application/json", TraktAppRejected),
        (420, '{"error":"account limit exceeded"}', "application/json", TraktAccountLimit),
        (423, '{"error":"locked"}', "application/json", TraktAccountLocked),
        (426, '{"error":"vip only"}', "application/json", TraktVipRequired),
    ],
)
def test_account_and_access_answers_become_their_typed_errors(
    trakt: Trakt, status: int, body: str, content_type: str, error: type[TraktAccountError]
) -> None:
    # Given Trakt answers the history POST with one of its account/access statuses
    trakt.fake.add_fault("POST", r"/sync/history", status=status, body=body, content_type=content_type)

    # When a batch is posted, Then the typed error stops the run with what the user must do
    with pytest.raises(error) as caught:
        trakt.client.add_to_history(movies=[{"ids": {"imdb": INCEPTION}}], episodes=[])
    assert caught.value.run_status == "failed"
    assert f"HTTP {status}" in str(caught.value)
    assert trakt.fake.play_keys() == []


def test_a_locked_account_stops_reads_too(trakt: Trakt) -> None:
    # Given Trakt has locked the account (the fair-use rule against duplicate floods)
    trakt.fake.locked = True

    # When the remote index is read, Then the run is told to stop and why
    with pytest.raises(TraktAccountLocked, match="contact Trakt support"):
        trakt.client.history("movies", trakt.clock.now() - timedelta(days=1), trakt.clock.now())


def test_a_wrong_api_key_is_reported_as_a_rejected_app(trakt: Trakt) -> None:
    # Given a client configured with a client_id Trakt does not know
    client = TraktClient(trakt.transport, trakt.fake.base_url, "not-our-app", trakt.keeper)

    # When it searches, Then the user is told the app was rejected and to set up a new client id
    with pytest.raises(TraktAppRejected, match="kinotrakt setup"):
        client.search_imdb(INCEPTION, "movie")


def test_an_app_trakt_deleted_is_rejected_on_public_and_private_calls_alike(trakt: Trakt) -> None:
    # Given Trakt deleted the API app (2026: the apps of non-VIP accounts)
    trakt.fake.app_deleted = True

    # When a public lookup and a 🔒 read are made
    for call in (lambda: trakt.client.search_imdb(INCEPTION, "movie"), trakt.client.user_settings):
        with pytest.raises(TraktAppRejected) as caught:
            call()

        # Then each says what happened and what to do: VIP to create an app, then setup with the new client id
        message = str(caught.value)
        assert caught.value.code == "trakt_app_rejected"
        assert caught.value.run_status == "failed"
        assert "may have been deleted or not approved" in message
        assert "VIP" in message
        assert "kinotrakt setup" in message
    # and no call was made twice (a 403 is not retried)
    assert len(trakt.fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        (422, '{"error":"validation failed"}', "application/json", "HTTP 422"),
        (200, "<!DOCTYPE html><html><body>maintenance</body></html>", "text/html", "HTML"),
        (200, "{not json", "application/json", "invalid JSON"),
        (200, '[{"number": "one"}]', "application/json", "unexpected shape"),
    ],
)
def test_unexpected_answers_are_bad_responses_naming_the_endpoint(
    trakt: Trakt, status: int, body: str, content_type: str, reason: str
) -> None:
    # Given Trakt answers the seasons call with something its API does not promise
    trakt.fake.add_fault("GET", r"/shows/10/seasons", status=status, body=body, content_type=content_type)

    # When the season table is read, Then a BadResponse names the endpoint and what was wrong
    with pytest.raises(BadResponse, match=reason) as caught:
        trakt.client.show_seasons(10)
    assert caught.value.path == "/shows/10/seasons"


def test_no_error_message_ever_contains_a_token(trakt: Trakt) -> None:
    # Given the tokens and the client secret in play
    secrets = [trakt.access_token, trakt.refresh_token, trakt.fake.client_secret]
    seen: list[KinotraktError] = []

    # When calls fail in every way (with the tokens rotated along the way)
    trakt.fake.expire_access_token(trakt.access_token)
    trakt.fake.add_fault("GET", r"/users/settings", status=401, times=2)
    trakt.fake.add_fault("POST", r"/sync/history", action="apply_then_drop")
    trakt.fake.add_fault("POST", r"/sync/history", status=502)
    trakt.fake.add_fault("POST", r"/sync/history", status=403, body=CLOUDFLARE_403, content_type="text/html")
    trakt.fake.add_fault("GET", r"/sync/history/movies", status=200, body='[{"id": "x"}]')
    calls: list[Callable[[], object]] = [
        trakt.client.user_settings,
        lambda: trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}}], []),
        lambda: trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}}], []),
        lambda: trakt.client.add_to_history([{"ids": {"imdb": INCEPTION}}], []),
        lambda: trakt.client.history("movies", trakt.clock.now() - timedelta(days=1), trakt.clock.now()),
    ]
    for call in calls:
        with pytest.raises(KinotraktError) as caught:
            call()
        seen.append(caught.value)
    secrets += [trakt.access_token, trakt.refresh_token]

    # Then no message or repr carries any of them
    assert len(seen) == 5
    for error in seen:
        for secret in secrets:
            assert secret not in str(error)
            assert secret not in repr(error)
