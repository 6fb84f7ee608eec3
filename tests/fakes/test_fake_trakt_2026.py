"""The fake Trakt behaves as the real one does in 2026 (docs/trakt.md, its **2026** facts):
the 500-GET budget and Cloudflare's 429, IMDb lookups that ignore ``type``, ``/shows/{imdb}/seasons``,
``extended=full``, the write answer's ``updated`` block, removing plays by history id, a deleted API app,
and a device poll with a wrong client secret. Over real loopback HTTP, on the fake's own clock."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from urllib3.util import SKIP_HEADER

from devkit.fakes.fake_trakt import FakeTrakt
from tests.fakes.test_fakes import ManualClock, authed, trakt_session

GAME_OF_THRONES = "tt0944947"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limited(clock: ManualClock) -> Iterator[FakeTrakt]:
    with FakeTrakt(clock=clock, enforce_limits=True) as fake:
        fake.add_movie(1, "Inception", 2010, "tt1375666")
        yield fake
    assert fake.errors == []


@pytest.fixture
def trakt() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_show(
            1390,
            "Game of Thrones",
            2011,
            GAME_OF_THRONES,
            {0: ["Inside Game of Thrones", "15-Minute Preview"], 1: ["Winter Is Coming", "The Kingsroad"], 2: 1},
            slug="game-of-thrones",
            episode_imdb={(1, 1): "tt1480055", (1, 2): "tt1668746"},
        )
        fake.add_movie(14701, "The Avengers", 2012, "tt0848228")
        yield fake
    assert fake.errors == []


# --- the GET budget ------------------------------------------------------------------------------------


def test_past_500_gets_in_5_minutes_cloudflare_answers_an_html_429(limited: FakeTrakt, clock: ManualClock) -> None:
    # Given 500 GETs in under 5 minutes, public lookups and 🔒 reads mixed (one budget per user)
    public, private = trakt_session(limited), authed(limited)
    for n in range(500):
        session = public if n % 2 else private
        path = "/search/imdb/tt1375666" if n % 2 else "/sync/history/movies"
        assert session.get(f"{limited.base_url}{path}").status_code == 200
        clock.now += 0.5

    # When one more GET is sent
    refused = public.get(f"{limited.base_url}/search/imdb/tt1375666")

    # Then Cloudflare, not the API, answers: HTML, Retry-After 300, server cloudflare, no X-Ratelimit
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "rate limited" in refused.text
    assert refused.headers["Retry-After"] == "300"
    assert refused.headers["server"] == "cloudflare"
    assert "X-Ratelimit" not in refused.headers
    # and once the oldest GET is 5 minutes old, the next one goes through again
    clock.now = limited.requests[0].at + 300
    assert public.get(f"{limited.base_url}/search/imdb/tt1375666").status_code == 200


def test_500_gets_spread_over_more_than_5_minutes_are_never_refused(limited: FakeTrakt, clock: ManualClock) -> None:
    # Given a client that keeps to 450 GETs per 5 minutes
    session = trakt_session(limited)

    # When it sends 1,000 GETs
    statuses = set()
    for _ in range(1000):
        statuses.add(session.get(f"{limited.base_url}/movies/1").status_code)
        clock.now += 300 / 450

    # Then none was refused
    assert statuses == {200}


def test_writes_keep_the_apis_own_json_429_with_x_ratelimit(limited: FakeTrakt, clock: ManualClock) -> None:
    # Given a write just accepted
    session = authed(limited)
    body = {"movies": [{"ids": {"trakt": 1}, "watched_at": "2025-01-01T00:00:00Z"}]}
    assert session.post(f"{limited.base_url}/sync/history", json=body).status_code == 201

    # When the next write comes half a second later
    clock.now += 0.5
    refused = session.post(f"{limited.base_url}/sync/history", json=body)

    # Then Trakt's API refuses it in JSON, with its X-Ratelimit header (the GET budget is Cloudflare's, not this)
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate limit exceeded"}
    assert json.loads(refused.headers["X-Ratelimit"])["name"] == "AUTHED_API_POST_LIMIT"
    assert refused.headers["server"] != "cloudflare"


# --- lookups ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asked", ["movie", "show", "episode", None])
def test_an_imdb_lookup_ignores_type_and_is_not_paginated(trakt: FakeTrakt, asked: str | None) -> None:
    session = trakt_session(trakt)
    params = {} if asked is None else {"type": asked}

    # When each kind of IMDb id is looked up, whatever type is asked for
    show = session.get(f"{trakt.base_url}/search/imdb/{GAME_OF_THRONES}", params=params)
    movie = session.get(f"{trakt.base_url}/search/imdb/tt0848228", params=params).json()
    episode = session.get(f"{trakt.base_url}/search/imdb/tt1480055", params=params).json()

    # Then what has that id comes back, with its own type, an id lookup's null score, and no pagination
    assert [(hit["type"], hit["score"], hit["show"]["ids"]["trakt"]) for hit in show.json()] == [("show", None, 1390)]
    assert "X-Pagination-Page" not in show.headers
    assert [(hit["type"], hit["movie"]["ids"]["trakt"]) for hit in movie] == [("movie", 14701)]
    assert [(hit["type"], hit["episode"]["season"], hit["episode"]["number"]) for hit in episode] == [("episode", 1, 1)]
    assert episode[0]["show"]["ids"]["imdb"] == GAME_OF_THRONES


@pytest.mark.parametrize("ref", ["1390", "game-of-thrones", GAME_OF_THRONES])
def test_a_show_and_its_seasons_answer_to_a_trakt_id_a_slug_or_an_imdb_id(trakt: FakeTrakt, ref: str) -> None:
    session = trakt_session(trakt)

    summary = session.get(f"{trakt.base_url}/shows/{ref}")
    seasons = session.get(f"{trakt.base_url}/shows/{ref}/seasons", params={"extended": "episodes"})

    assert summary.json()["ids"]["trakt"] == 1390
    assert [(s["number"], len(s["episodes"])) for s in seasons.json()] == [(0, 2), (1, 2), (2, 1)]


def test_seasons_with_episodes_carry_ids_specials_and_null_imdb_ids(trakt: FakeTrakt) -> None:
    # When the season table is read with episodes only
    seasons = trakt_session(trakt).get(
        f"{trakt.base_url}/shows/{GAME_OF_THRONES}/seasons", params={"extended": "episodes"}
    )

    # Then each episode is a summary (as recorded: season, number, title, ids) and specials are season 0
    specials, first = seasons.json()[0], seasons.json()[1]
    assert specials["number"] == 0
    assert set(first["episodes"][0]) == {"season", "number", "title", "ids"}
    assert first["episodes"][0]["ids"]["imdb"] == "tt1480055"
    # and an episode Trakt has no IMDb id for says null, not a missing key
    assert [e["ids"]["imdb"] for e in specials["episodes"]] == [None, None]
    assert set(first) == {"number", "ids", "episodes"}


@pytest.mark.parametrize("extended", ["full,episodes", "episodes,full"])
def test_full_episodes_add_the_details_of_each_episode(trakt: FakeTrakt, extended: str) -> None:
    # When the season table is read with extended=full,episodes
    seasons = trakt_session(trakt).get(f"{trakt.base_url}/shows/{GAME_OF_THRONES}/seasons?extended={extended}")

    # Then episodes carry their details, as the real full answer does
    winter = seasons.json()[1]["episodes"][0]
    assert winter["title"] == "Winter Is Coming"
    assert winter["first_aired"] == "2011-01-01T01:00:00.000Z"
    assert winter["runtime"] == 45
    assert winter["number_abs"] == 1
    assert isinstance(winter["overview"], str)
    assert seasons.json()[2]["episodes"][0]["first_aired"] == "2012-01-01T01:00:00.000Z"
    # and each season its own (title, episode count, first aired)
    assert seasons.json()[0]["title"] == "Specials"
    assert seasons.json()[1]["episode_count"] == 2


def test_full_details_on_lookups_and_summaries_only_when_asked(trakt: FakeTrakt) -> None:
    session = trakt_session(trakt)

    brief = session.get(f"{trakt.base_url}/search/imdb/tt0848228").json()[0]["movie"]
    full = session.get(f"{trakt.base_url}/search/imdb/tt0848228", params={"extended": "full"}).json()[0]["movie"]
    show = session.get(f"{trakt.base_url}/shows/1390", params={"extended": "full"}).json()

    assert set(brief) == {"title", "year", "ids"}
    assert {"overview", "released", "runtime", "genres", "certification"} <= set(full)
    assert {"overview", "first_aired", "airs", "network", "status", "aired_episodes"} <= set(show)
    assert show["aired_episodes"] == 3  # specials are not counted


# --- writes ----------------------------------------------------------------------------------------------


def test_a_history_write_answers_added_updated_and_not_found(trakt: FakeTrakt) -> None:
    episode = trakt.episode_id(1390, 1, 1)

    answer = authed(trakt).post(
        f"{trakt.base_url}/sync/history",
        json={"episodes": [{"ids": {"trakt": episode}, "watched_at": "2025-01-01T00:00:00Z"}]},
    )

    assert 200 <= answer.status_code < 300
    assert answer.json() == {
        "added": {"movies": 0, "episodes": 1},
        "updated": {"movies": 0, "episodes": 0},
        "not_found": {"movies": [], "shows": [], "seasons": [], "episodes": []},
    }


def test_removing_plays_by_history_id_removes_only_those(trakt: FakeTrakt) -> None:
    # Given a movie played three times and an episode once
    keep, drop, also_drop = (trakt.add_play("movie", 14701, f"2025-0{m}-01T20:00:00Z") for m in (1, 2, 3))
    episode_play = trakt.add_play("episode", trakt.episode_id(1390, 1, 1), "2025-04-01T20:00:00Z")

    # When two of the movie's plays and the episode's are removed by history id, with one id Trakt never had
    answer = authed(trakt).post(
        f"{trakt.base_url}/sync/history/remove", json={"ids": [drop, also_drop, episode_play, 999_999]}
    )

    # Then exactly those plays are gone, and the answer counts them and names the unknown id
    assert answer.status_code == 200
    assert answer.json() == {
        "deleted": {"movies": 2, "episodes": 1},
        "not_found": {"movies": [], "shows": [], "seasons": [], "episodes": [], "ids": [999_999]},
    }
    assert [play["id"] for play in trakt.plays()] == [keep]


def test_removing_plays_by_anything_but_integer_history_ids_is_refused_whole(trakt: FakeTrakt) -> None:
    # Given a play (history id 1)
    play = trakt.add_play("movie", 14701, "2025-01-01T20:00:00Z")

    # When a removal names it as true, as text, and by its number
    answers = [
        authed(trakt).post(f"{trakt.base_url}/sync/history/remove", json={"ids": [value, 999]})
        for value in (True, str(play))
    ]

    # Then each request fails validation and nothing is removed (a bool is not the id 1)
    assert [answer.status_code for answer in answers] == [422, 422]
    assert [p["id"] for p in trakt.plays()] == [play]


def test_removing_plays_is_paced_as_a_write(limited: FakeTrakt, clock: ManualClock) -> None:
    # Given a history write just made
    session = authed(limited)
    play = limited.add_play("movie", 1, "2025-01-01T20:00:00Z")
    session.post(f"{limited.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 1}}]})

    # When a removal follows within the second, and again a second later
    clock.now += 0.2
    early = session.post(f"{limited.base_url}/sync/history/remove", json={"ids": [play]})
    clock.now += 1
    later = session.post(f"{limited.base_url}/sync/history/remove", json={"ids": [play]})

    # Then the first is refused like any write, and the second removes the play
    assert early.status_code == 429
    assert "X-Ratelimit" in early.headers
    assert later.json()["deleted"] == {"movies": 1, "episodes": 0}


# --- a deleted API app -----------------------------------------------------------------------------------


def test_a_deleted_app_gets_a_json_403_on_every_request(trakt: FakeTrakt) -> None:
    # Given a linked account, then Trakt deletes the API app (2026: non-VIP accounts' apps)
    tokens = trakt.issue_tokens()
    trakt.app_deleted = True
    public, private = trakt_session(trakt), trakt_session(trakt, tokens["access_token"])
    client = {"client_id": trakt.client_id, "client_secret": trakt.client_secret}

    # When anything is asked with its client id: public lookups, 🔒 reads and writes, OAuth
    answers = [
        public.get(f"{trakt.base_url}/search/imdb/{GAME_OF_THRONES}"),
        public.get(f"{trakt.base_url}/shows/1390/seasons", params={"extended": "episodes"}),
        private.get(f"{trakt.base_url}/sync/last_activities"),
        private.post(f"{trakt.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 14701}}]}),
        public.post(f"{trakt.base_url}/oauth/device/code", json={"client_id": trakt.client_id}),
        public.post(
            f"{trakt.base_url}/oauth/token",
            json={**client, "refresh_token": tokens["refresh_token"], "grant_type": "refresh_token"},
        ),
    ]

    # Then every answer is a JSON 403, and nothing was written
    assert [answer.status_code for answer in answers] == [403] * 6
    assert all(answer.headers["content-type"] == "application/json" for answer in answers)
    assert all("error" in answer.json() for answer in answers)
    assert trakt.plays() == []


def test_a_deleted_app_is_still_behind_cloudflare(trakt: FakeTrakt) -> None:
    # Given a deleted app, When a request comes without a User-Agent, Then Cloudflare's HTML 403 answers first
    trakt.app_deleted = True
    answer = requests.Session().get(
        f"{trakt.base_url}/search/imdb/{GAME_OF_THRONES}",
        headers={"User-Agent": SKIP_HEADER, "trakt-api-key": trakt.client_id, "trakt-api-version": "2"},
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")


# --- device flow -----------------------------------------------------------------------------------------


def test_a_device_poll_with_a_wrong_client_secret_is_a_400_with_a_json_error(trakt: FakeTrakt) -> None:
    session = trakt_session(trakt)
    code = session.post(f"{trakt.base_url}/oauth/device/code", json={"client_id": trakt.client_id}).json()
    poll = {"code": code["device_code"], "client_id": trakt.client_id}

    wrong = session.post(f"{trakt.base_url}/oauth/device/token", json={**poll, "client_secret": "not-it"})
    pending = session.post(f"{trakt.base_url}/oauth/device/token", json={**poll, "client_secret": trakt.client_secret})

    # Both are 400s; only the wrong secret's carries a JSON error (pending has no JSON body)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    assert pending.status_code == 400
    with pytest.raises(ValueError, match=r".+"):
        pending.json()
