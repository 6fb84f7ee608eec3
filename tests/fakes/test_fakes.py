"""The fakes obey what the real services do (docs/trakt.md, docs/kinopub.md), talked to over real loopback HTTP."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from urllib3.util import SKIP_HEADER

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt, pkce_s256
from devkit.fakes.library import generate_library, seed_demo_library, unix


class ManualClock:
    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def trakt() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def kinopub() -> Iterator[FakeKinopub]:
    with FakeKinopub() as fake:
        yield fake
    assert fake.errors == []


def plain() -> requests.Session:
    return requests.Session()


def trakt_session(fake: FakeTrakt, token: str | None = None) -> requests.Session:
    session = requests.Session()
    session.headers.update({"User-Agent": "kinotrakt/test", "trakt-api-key": fake.client_id, "trakt-api-version": "2"})
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def authed(fake: FakeTrakt) -> requests.Session:
    return trakt_session(fake, fake.issue_tokens()["access_token"])


def kinopub_session(fake: FakeKinopub) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.issue_tokens()['access_token']}"
    return session


# ---------------------------------------------------------------------------------------------- Trakt


def test_trakt_stores_watched_at_to_the_minute_and_never_dedupes(trakt: FakeTrakt) -> None:
    trakt.add_movie(481, "The Matrix", 1999, "tt0133093")
    session = authed(trakt)
    for seconds in ("37.123", "59.999"):
        body = {"movies": [{"ids": {"imdb": "tt0133093"}, "watched_at": f"2025-05-01T18:30:{seconds}Z"}]}
        answer = session.post(f"{trakt.base_url}/sync/history", json=body)
        assert answer.status_code == 201
        assert answer.json()["added"] == {"movies": 1, "episodes": 0}

    history = session.get(f"{trakt.base_url}/sync/history/movies").json()

    assert [play["watched_at"] for play in history] == ["2025-05-01T18:30:00.000Z"] * 2
    assert history[0]["id"] > history[1]["id"]
    assert trakt.duplicate_keys() == ["movie:tt0133093:2025-05-01T18:30Z"]


def test_trakt_reports_not_found_items_as_sent_and_unknown_dates(trakt: FakeTrakt) -> None:
    trakt.add_show(41793, "Black Mirror", 2011, "tt2085059", {1: 3})
    trakt.add_movie(7, "No IMDb", 2001, None)
    episode = trakt.episode_id(41793, 1, 2)
    missing = {"ids": {"imdb": "tt9999999"}, "watched_at": "2025-01-01T00:00:00.000Z"}

    answer = authed(trakt).post(
        f"{trakt.base_url}/sync/history",
        json={
            "movies": [missing, {"ids": {"trakt": 7}, "watched_at": "unknown"}],
            "episodes": [{"ids": {"trakt": episode}, "watched_at": "2025-01-02T03:04:05Z"}, {"ids": {"trakt": 1}}],
        },
    )

    assert answer.status_code == 201
    assert answer.json() == {
        "added": {"movies": 1, "episodes": 1},
        "updated": {"movies": 0, "episodes": 0},
        "not_found": {"movies": [missing], "shows": [], "seasons": [], "episodes": [{"ids": {"trakt": 1}}]},
    }
    assert sorted(trakt.play_keys()) == [f"episode:{episode}:2025-01-02T03:04Z", "movie:trakt:7:unknown"]
    assert trakt.plays("movie")[0]["watched_at"] == "1970-01-01T00:00:00.000Z"


def test_trakt_history_caps_limit_at_250_and_paginates_newest_first(trakt: FakeTrakt) -> None:
    trakt.add_movie(1, "Movie", 2000, "tt0000001")
    trakt.add_plays([("movie", 1, _minute_iso(n)) for n in range(600)])
    session = authed(trakt)

    first = session.get(f"{trakt.base_url}/sync/history/movies", params={"limit": 1000})
    last = session.get(f"{trakt.base_url}/sync/history/movies", params={"limit": 1000, "page": 3})

    assert len(first.json()) == 250
    assert first.headers["X-Pagination-Limit"] == "250"
    assert first.headers["X-Pagination-Page-Count"] == "3"
    assert first.headers["X-Pagination-Item-Count"] == "600"
    assert last.headers["X-Pagination-Page"] == "3"
    assert len(last.json()) == 100
    assert first.json()[0]["watched_at"] == _minute_iso(599)
    assert last.json()[-1]["watched_at"] == _minute_iso(0)
    default = session.get(f"{trakt.base_url}/sync/history/movies")
    assert len(default.json()) == 10
    assert default.headers["X-Pagination-Limit"] == "10"


def test_trakt_history_date_filters_are_inclusive(trakt: FakeTrakt) -> None:
    trakt.add_movie(1, "Movie", 2000, "tt0000001")
    trakt.add_plays([("movie", 1, _minute_iso(n)) for n in range(10)])

    answer = authed(trakt).get(
        f"{trakt.base_url}/sync/history/movies",
        params={"start_at": _minute_iso(3), "end_at": _minute_iso(6), "limit": "250"},
    )

    assert [p["watched_at"] for p in answer.json()] == [_minute_iso(n) for n in (6, 5, 4, 3)]
    per_item = authed(trakt).get(f"{trakt.base_url}/sync/history/movies/1", params={"limit": 3})
    assert per_item.headers["X-Pagination-Item-Count"] == "10"


def test_trakt_refresh_tokens_are_single_use(trakt: FakeTrakt) -> None:
    tokens = trakt.issue_tokens()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": trakt.client_id,
        "client_secret": trakt.client_secret,
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
    }
    session = trakt_session(trakt)

    renewed = session.post(f"{trakt.base_url}/oauth/token", json=form)
    again = session.post(f"{trakt.base_url}/oauth/token", json=form)

    assert renewed.status_code == 200
    assert renewed.json()["token_type"] == "bearer"
    assert renewed.json()["refresh_token"] != tokens["refresh_token"]
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    old = trakt_session(trakt, tokens["access_token"]).get(f"{trakt.base_url}/users/settings")
    new = trakt_session(trakt, renewed.json()["access_token"]).get(f"{trakt.base_url}/users/settings")
    assert old.status_code == 401
    assert new.json()["user"]["username"] == trakt.username


def test_trakt_without_user_agent_gets_cloudflare_html(trakt: FakeTrakt) -> None:
    answer = plain().get(
        f"{trakt.base_url}/sync/history/movies",
        headers={"User-Agent": SKIP_HEADER, "trakt-api-key": trakt.client_id, "trakt-api-version": "2"},
    )

    assert answer.status_code == 403
    assert answer.headers["server"] == "cloudflare"
    assert answer.headers["content-type"].startswith("text/html")
    assert "Cloudflare" in answer.text


def test_trakt_rejects_bad_api_key_and_version_with_json(trakt: FakeTrakt) -> None:
    session = trakt_session(trakt)
    bad_key = session.get(f"{trakt.base_url}/search/movie", params={"query": "x"}, headers={"trakt-api-key": "no"})
    bad_version = session.get(
        f"{trakt.base_url}/search/movie", params={"query": "x"}, headers={"trakt-api-version": "1"}
    )

    assert bad_key.status_code == 403
    assert bad_key.json()["error"] == "invalid api key"
    assert bad_version.status_code == 400


def test_trakt_locked_endpoints_need_a_valid_bearer(trakt: FakeTrakt) -> None:
    tokens = trakt.issue_tokens()
    trakt.expire_access_token(tokens["access_token"])

    missing = trakt_session(trakt).get(f"{trakt.base_url}/sync/last_activities")
    expired = trakt_session(trakt, tokens["access_token"]).get(f"{trakt.base_url}/sync/last_activities")

    assert missing.status_code == 401
    assert missing.json()["error"] == "invalid_token"
    assert expired.status_code == 401


def test_trakt_locked_account_answers_423(trakt: FakeTrakt) -> None:
    trakt.locked = True

    answer = authed(trakt).get(f"{trakt.base_url}/sync/history/movies")

    assert answer.status_code == 423


def test_trakt_device_flow(trakt: FakeTrakt) -> None:
    clock = ManualClock()
    trakt.clock = clock
    session = trakt_session(trakt)
    code = session.post(f"{trakt.base_url}/oauth/device/code", json={"client_id": trakt.client_id}).json()
    poll = {"code": code["device_code"], "client_id": trakt.client_id, "client_secret": trakt.client_secret}

    pending = session.post(f"{trakt.base_url}/oauth/device/token", json=poll)
    too_fast = session.post(f"{trakt.base_url}/oauth/device/token", json=poll)
    trakt.approve_device(code["user_code"])
    clock.now += code["interval"]
    approved = session.post(f"{trakt.base_url}/oauth/device/token", json=poll)
    clock.now += code["interval"]
    reused = session.post(f"{trakt.base_url}/oauth/device/token", json=poll)
    unknown = session.post(f"{trakt.base_url}/oauth/device/token", json={**poll, "code": "nope"})

    assert set(code) == {"device_code", "user_code", "verification_url", "expires_in", "interval"}
    assert pending.status_code == 400
    with pytest.raises(ValueError, match=r".+"):
        pending.json()
    assert too_fast.status_code == 429
    assert approved.status_code == 200
    assert trakt.token_is_valid(approved.json()["access_token"])
    assert reused.status_code == 409
    assert unknown.status_code == 404


@pytest.mark.parametrize(("outcome", "status"), [("deny", 418), ("expire", 410)])
def test_trakt_device_flow_denied_or_expired(trakt: FakeTrakt, outcome: str, status: int) -> None:
    session = trakt_session(trakt)
    code = session.post(f"{trakt.base_url}/oauth/device/code", json={"client_id": trakt.client_id}).json()
    (trakt.deny_device if outcome == "deny" else trakt.expire_device)(code["user_code"])

    answer = session.post(
        f"{trakt.base_url}/oauth/device/token",
        json={"code": code["device_code"], "client_id": trakt.client_id, "client_secret": trakt.client_secret},
    )

    assert answer.status_code == status


def test_trakt_authorization_code_flow_with_pkce(trakt: FakeTrakt) -> None:
    verifier = "v" * 64
    redirect_uri = "https://example.execute-api.eu-west-1.amazonaws.com/trakt/callback"

    def authorize() -> tuple[str, dict[str, list[str]]]:
        page = plain().get(
            f"{trakt.base_url}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": trakt.client_id,
                "redirect_uri": redirect_uri,
                "state": "s1",
                "code_challenge": pkce_s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200
        links = _links(page.text)
        assert parse_qs(urlsplit(links["deny"]).query) == {"error": ["access_denied"], "state": ["s1"]}
        return links["approve"], parse_qs(urlsplit(links["approve"]).query)

    def exchange(code: str, code_verifier: str) -> requests.Response:
        return trakt_session(trakt).post(
            f"{trakt.base_url}/oauth/token",
            json={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": trakt.client_id,
                "client_secret": trakt.client_secret,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )

    approve, query = authorize()
    assert approve.startswith(redirect_uri + "?")
    assert query["state"] == ["s1"]
    wrong = exchange(query["code"][0], "w" * 64)
    _, query = authorize()
    good = exchange(query["code"][0], verifier)
    replay = exchange(query["code"][0], verifier)

    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert good.status_code == 200
    assert set(good.json()) == {"access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"}
    assert good.json()["expires_in"] == 7 * 24 * 3600
    assert replay.status_code == 400


def test_trakt_authorize_auto_approve_redirects() -> None:
    with FakeTrakt(auto_approve=True) as trakt:
        answer = plain().get(
            f"{trakt.base_url}/oauth/authorize",
            params={"response_type": "code", "client_id": trakt.client_id, "redirect_uri": "http://x/cb", "state": "z"},
            allow_redirects=False,
        )

    assert answer.status_code == 302
    assert re.fullmatch(r"http://x/cb\?code=[0-9a-f]+&state=z", answer.headers["Location"])


def test_trakt_search(trakt: FakeTrakt) -> None:
    trakt.add_movie(74950, "Kon-Tiki", 2012, "tt1613750")
    trakt.add_movie(27001, "Kon-Tiki", 1950, None)
    trakt.add_show(162004, "The Beatles: Get Back", 2021, "tt9735318", {1: 3})
    session = trakt_session(trakt)

    as_show = session.get(f"{trakt.base_url}/search/imdb/tt9735318", params={"type": "show"}).json()
    as_movie = session.get(f"{trakt.base_url}/search/imdb/tt9735318", params={"type": "movie"}).json()
    any_type = session.get(f"{trakt.base_url}/search/imdb/tt9735318").json()
    by_year = session.get(f"{trakt.base_url}/search/movie", params={"query": r"Kon\-Tiki", "years": "2012"}).json()
    both = session.get(f"{trakt.base_url}/search/movie", params={"query": "kon-tiki"}).json()
    escaped = session.get(f"{trakt.base_url}/search/show", params={"query": r"The Beatles\: Get Back"}).json()

    assert [r["show"]["ids"]["trakt"] for r in as_show] == [162004]
    assert as_movie == as_show  # (2026) IMDb lookups ignore `type` (test_fake_trakt_2026.py)
    assert [r["type"] for r in any_type] == ["show"]
    assert [r["movie"]["ids"]["trakt"] for r in by_year] == [74950]
    assert {r["movie"]["year"] for r in both} == {1950, 2012}
    assert escaped[0]["show"]["ids"]["imdb"] == "tt9735318"


def test_trakt_text_search_matches_translations_but_shows_the_title(trakt: FakeTrakt) -> None:
    trakt.add_movie(900, "The Rider", 2020, None, aliases=("Ездок",))
    trakt.add_movie(901, "Ride", 2020, None)

    hits = trakt_session(trakt).get(f"{trakt.base_url}/search/movie", params={"query": "Ездок"}).json()

    assert [(h["movie"]["title"], h["movie"]["ids"]["trakt"]) for h in hits] == [("The Rider", 900)]


def test_trakt_episode_details_can_be_set_one_by_one(trakt: FakeTrakt) -> None:
    trakt.add_show(65553, "Star Wars Rebels", 2014, "tt2930604", {4: 16}, runtime=22)
    trakt.set_episode(65553, 4, 16, title="Family Reunion (2)", runtime=23, first_aired="2018-03-05T01:00:00Z")

    seasons = (
        trakt_session(trakt)
        .get(f"{trakt.base_url}/shows/tt2930604/seasons", params={"extended": "full,episodes"})
        .json()
    )

    last = seasons[0]["episodes"][-1]
    assert (last["title"], last["runtime"], last["first_aired"]) == (
        "Family Reunion (2)",
        23,
        "2018-03-05T01:00:00.000Z",
    )
    assert seasons[0]["episodes"][0]["runtime"] == 22


def test_trakt_seasons(trakt: FakeTrakt) -> None:
    trakt.add_show(41793, "Black Mirror", 2011, "tt2085059", {1: ["The National Anthem", "b", "c"], 2: 4})
    session = trakt_session(trakt)

    extended = session.get(f"{trakt.base_url}/shows/41793/seasons", params={"extended": "episodes"}).json()
    plain = session.get(f"{trakt.base_url}/shows/black-mirror/seasons").json()
    season = session.get(f"{trakt.base_url}/shows/41793/seasons/2").json()
    unknown = session.get(f"{trakt.base_url}/shows/999/seasons")

    assert [s["number"] for s in extended] == [1, 2]
    assert extended[0]["episodes"][0] == {
        "season": 1,
        "number": 1,
        "title": "The National Anthem",
        "ids": {
            "trakt": trakt.episode_id(41793, 1, 1),
            "tvdb": 417930102,
            "imdb": None,
            "tmdb": 417930103,
            "tvrage": 0,
        },
    }
    assert "episodes" not in plain[0]
    assert [e["number"] for e in season] == [1, 2, 3, 4]
    assert unknown.status_code == 404


def test_trakt_last_activities_and_remove(trakt: FakeTrakt) -> None:
    trakt.add_movie(1, "Movie", 2000, "tt0000001")
    session = authed(trakt)
    before = session.get(f"{trakt.base_url}/sync/last_activities").json()
    session.post(f"{trakt.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 1}}]})
    added = session.get(f"{trakt.base_url}/sync/last_activities").json()
    history_id = trakt.plays()[0]["id"]

    removed = session.post(f"{trakt.base_url}/sync/history/remove", json={"ids": [history_id, 12345]})
    after = session.get(f"{trakt.base_url}/sync/last_activities").json()

    assert added["movies"]["watched_at"] > before["movies"]["watched_at"]
    assert added["episodes"]["watched_at"] == before["episodes"]["watched_at"]
    assert removed.json()["deleted"] == {"movies": 1, "episodes": 0}
    assert removed.json()["not_found"]["ids"] == [12345]
    assert after["movies"]["watched_at"] > added["movies"]["watched_at"]
    assert trakt.plays() == []


def test_trakt_enforced_write_limit_answers_429_with_retry_after() -> None:
    clock = ManualClock()
    with FakeTrakt(clock=clock, enforce_limits=True) as trakt:
        trakt.add_movie(1, "Movie", 2000, "tt0000001")
        session = authed(trakt)
        body = {"movies": [{"ids": {"trakt": 1}, "watched_at": "2025-01-01T00:00:00Z"}]}
        first = session.post(f"{trakt.base_url}/sync/history", json=body)
        clock.now += 0.5
        second = session.post(f"{trakt.base_url}/sync/history", json=body)
        clock.now += 0.5
        third = session.post(f"{trakt.base_url}/sync/history", json=body)

    assert [first.status_code, second.status_code, third.status_code] == [201, 429, 201]
    assert second.headers["Retry-After"] == "1"
    assert '"AUTHED_API_POST_LIMIT"' in second.headers["X-Ratelimit"]
    assert len(trakt.plays()) == 2


def test_trakt_is_thread_safe(trakt: FakeTrakt) -> None:
    trakt.add_movie(1, "Movie", 2000, "tt0000001")
    token = trakt.issue_tokens()["access_token"]

    def post_many() -> None:
        session = trakt_session(trakt, token)
        for _ in range(25):
            session.post(f"{trakt.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 1}}]})

    threads = [threading.Thread(target=post_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(trakt.plays()) == 200
    assert len({p["id"] for p in trakt.plays()}) == 200
    assert len(trakt.calls("POST", "/sync/history")) == 200


# ---------------------------------------------------------------------------------------------- Kinopub


def test_kinopub_history_pagination_counts_pages(kinopub: FakeKinopub) -> None:
    kinopub.add_series(1, "Сериал / Show", 2020, 1234567, {1: 60, 2: 60})
    for number in range(1, 61):
        kinopub.watch(1, season=1, episode=number, at=unix("2025-01-01T00:00:00") + number * 3600)
        kinopub.watch(1, season=2, episode=number, at=unix("2025-02-01T00:00:00") + number * 3600)
    session = kinopub_session(kinopub)

    page = session.get(f"{kinopub.base_url}/v1/history", params={"perpage": 500, "page": 2}).json()
    default = session.get(f"{kinopub.base_url}/v1/history").json()

    assert page["status"] == 200
    assert page["pagination"] == {"total": 3, "current": 2, "perpage": 50, "total_items": 120}
    assert len(page["history"]) == 50
    assert default["pagination"]["perpage"] == 20
    newest = default["history"][0]
    assert newest["media"] | {"thumbnail": None} == {
        "id": kinopub.media_id(1, season=2, episode=60),
        "number": 60,
        "snumber": 2,
        "title": "Эпизод 60 / Episode 60",
        "duration": 2700,
        "thumbnail": None,
    }
    assert newest["item"]["imdb"] == 1234567
    assert {"time", "counter", "first_seen", "last_seen", "deleted"} <= set(newest)
    seen = [row["last_seen"] for row in default["history"]]
    assert seen == sorted(seen, reverse=True)


def test_kinopub_history_string_numbers() -> None:
    with FakeKinopub(string_numbers=True) as kinopub:
        kinopub.add_movie(1, "Фильм / Movie", 2020, None)
        kinopub.watch(1, at=unix("2025-01-01T00:00:00"))
        body = kinopub_session(kinopub).get(f"{kinopub.base_url}/v1/history").json()

    assert body["pagination"] == {"total": "1", "current": "1", "perpage": "20", "total_items": "1"}


def test_kinopub_watching_shapes_match_the_recording(kinopub: FakeKinopub) -> None:
    kinopub.add_series(8632, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3, 2: 4})
    kinopub.mark_watched_without_play(8632, season=1, at=1562358731)
    kinopub.watch(8632, season=2, episode=1, at=1562358740)
    kinopub.add_movie(25130, "Вена / Vienna", 2016, None, type="documovie", videos=3)
    kinopub.watch(25130, video=1, at=1613861969)
    kinopub.watch(25130, video=2, at=1541874577)
    session = kinopub_session(kinopub)

    series = session.get(f"{kinopub.base_url}/v1/watching", params={"id": 8632}).json()
    movie = session.get(f"{kinopub.base_url}/v1/watching", params={"id": 25130}).json()

    assert series["status"] == 200
    assert list(series["item"]) == ["id", "title", "type", "seasons", "watched"]
    first, second = series["item"]["seasons"]
    assert {e["updated"] for e in first["episodes"]} == {1562358731}
    assert (first["watched"], first["status"], second["watched"], second["status"]) == (3, 1, 1, 0)
    assert set(first["episodes"][0]) == {"id", "number", "title", "duration", "time", "status", "updated"}
    assert series["item"]["watched"] == 1
    assert list(movie["item"]) == ["id", "title", "type", "status", "videos"]
    assert movie["item"]["status"] == 0
    assert [v["status"] for v in movie["item"]["videos"]] == [1, 1, -1]
    assert movie["item"]["videos"][2]["updated"] is None
    assert kinopub.history[kinopub.media_id(25130, video=1)].counter == 1
    assert len(kinopub.history) == 3  # the bulk-marked season left no history rows


def test_kinopub_serves_extras_parts_specials_and_merged_episodes_with_their_durations(kinopub: FakeKinopub) -> None:
    # Given a film with a trailer, and a show with specials (season 0) and a 45-minute episode among 22-minute ones
    kinopub.add_movie(1, "Дюна / Dune", 2021, 1160419, videos=[("Дюна / Dune", 9360), ("Трейлер / Trailer", 180)])
    kinopub.add_series(
        2,
        "Повстанцы / Rebels",
        2014,
        2930604,
        {0: ["Пилот / Pilot"], 4: ["Эпизод 1 / Episode 1", ("Финал / Finale", 2700)]},
        duration=1330,
    )
    kinopub.watch(1, video=1, at=unix("2025-10-10T21:40:05"))
    session = kinopub_session(kinopub)

    film = session.get(f"{kinopub.base_url}/v1/watching", params={"id": 1}).json()["item"]
    show = session.get(f"{kinopub.base_url}/v1/watching", params={"id": 2}).json()["item"]

    # Then each video and episode carries its own duration, and an unopened trailer stays status -1
    assert [(v["title"], v["duration"], v["status"]) for v in film["videos"]] == [
        ("Дюна / Dune", 9360, 1),
        ("Трейлер / Trailer", 180, -1),
    ]
    assert [s["number"] for s in show["seasons"]] == [0, 4]
    assert [e["duration"] for e in show["seasons"][1]["episodes"]] == [1330, 2700]


def test_kinopub_catalog_removal_keeps_watching(kinopub: FakeKinopub) -> None:
    kinopub.add_movie(113, "Матрица / The Matrix", 1999, 133093)
    kinopub.watch(113, at=1526413371)
    session = kinopub_session(kinopub)
    item = session.get(f"{kinopub.base_url}/v1/items/113").json()

    kinopub.remove_from_catalog(113)
    gone = session.get(f"{kinopub.base_url}/v1/items/113")
    watching = session.get(f"{kinopub.base_url}/v1/watching", params={"id": 113})

    assert item["item"]["imdb"] == 133093
    assert item["item"]["videos"][0]["watching"] == {"status": 1, "time": 6600}
    assert gone.status_code == 404
    assert gone.json() == {"status": 404, "error": "Requested item or video not found."}
    assert watching.status_code == 200


def test_kinopub_unknown_path_is_an_html_404(kinopub: FakeKinopub) -> None:
    answer = kinopub_session(kinopub).get(f"{kinopub.base_url}/v1/nothing-here")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.lstrip().startswith("<!DOCTYPE html>")


def test_kinopub_auth_by_header_or_query(kinopub: FakeKinopub) -> None:
    token = kinopub.issue_tokens()["access_token"]

    anonymous = plain().get(f"{kinopub.base_url}/v1/user")
    by_query = plain().get(f"{kinopub.base_url}/v1/user", params={"access_token": token})
    kinopub.expire_access_token()
    expired = plain().get(f"{kinopub.base_url}/v1/user", headers={"Authorization": f"Bearer {token}"})

    assert anonymous.status_code == 401
    assert anonymous.json() == {"status": 401, "error": "unauthorized"}
    assert by_query.json()["user"]["username"] == kinopub.username
    assert expired.status_code == 401


def test_kinopub_records_mutating_gets(kinopub: FakeKinopub) -> None:
    session = kinopub_session(kinopub)

    toggled = session.get(f"{kinopub.base_url}/v1/watching/toggle", params={"id": 1, "video": 1})
    session.get(f"{kinopub.base_url}/v1/history/clear-for-item", params={"id": 1})
    session.get(f"{kinopub.base_url}/v1/watching", params={"id": 1})

    assert toggled.json() == {"status": 200}
    assert [m.path for m in kinopub.mutations] == ["/v1/watching/toggle", "/v1/history/clear-for-item"]


def test_kinopub_device_flow_and_rotating_refresh(kinopub: FakeKinopub) -> None:
    client = {"client_id": kinopub.client_id, "client_secret": kinopub.client_secret}
    code = plain().post(f"{kinopub.base_url}/oauth2/device", params={"grant_type": "device_code", **client}).json()
    poll = {"grant_type": "device_token", "code": code["code"], **client}

    pending = plain().post(f"{kinopub.base_url}/oauth2/device", data=poll)
    kinopub.approve_device(code["user_code"])
    tokens = plain().post(f"{kinopub.base_url}/oauth2/device", data=poll).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **client}
    renewed = plain().post(f"{kinopub.base_url}/oauth2/token", data=refresh)
    dead = plain().post(f"{kinopub.base_url}/oauth2/token", data=refresh)

    assert code["interval"] == "5"
    assert {"code", "user_code", "verification_uri", "expires_in"} <= set(code)
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    assert {"access_token", "token_type", "expires_in", "refresh_token", "scope"} <= set(tokens)
    assert renewed.status_code == 200
    assert not kinopub.token_is_valid(tokens["access_token"])
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_refresh_token"


def test_kinopub_device_code_expiry() -> None:
    clock = ManualClock()
    with FakeKinopub(clock=clock) as kinopub:
        client = {"client_id": kinopub.client_id, "client_secret": kinopub.client_secret}
        code = plain().post(f"{kinopub.base_url}/oauth2/device", data={"grant_type": "device_code", **client})
        clock.now += 301
        answer = plain().post(
            f"{kinopub.base_url}/oauth2/device",
            data={"grant_type": "device_token", "code": code.json()["code"], **client},
        )

    assert answer.json()["error"] == "code_expired"


def test_kinopub_refresh_only_on_device_endpoint() -> None:
    with FakeKinopub(refresh_on_device_endpoint_only=True) as kinopub:
        tokens = kinopub.issue_tokens()
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": kinopub.client_id,
            "client_secret": kinopub.client_secret,
        }
        modern = plain().post(f"{kinopub.base_url}/oauth2/token", data=refresh)
        legacy = plain().post(f"{kinopub.base_url}/oauth2/device", data=refresh)

    assert modern.status_code == 404
    assert modern.headers["content-type"].startswith("text/html")
    assert legacy.status_code == 200


def test_kinopub_can_require_a_browser_user_agent() -> None:
    with FakeKinopub(require_browser_ua=True) as kinopub:
        session = kinopub_session(kinopub)
        blocked = session.get(f"{kinopub.base_url}/v1/user", headers={"User-Agent": "kinotrakt/0.1.0"})
        allowed = session.get(f"{kinopub.base_url}/v1/user", headers={"User-Agent": "Mozilla/5.0 kinotrakt"})

    assert blocked.status_code == 403
    assert allowed.status_code == 200


# ---------------------------------------------------------------------------------------------- faults


def test_fault_scripts_statuses_then_recovers(trakt: FakeTrakt) -> None:
    session = authed(trakt)
    fault = trakt.add_fault("GET", r"/sync/history/movies", status=429, headers={"Retry-After": "7"}, times=2)

    answers = [session.get(f"{trakt.base_url}/sync/history/movies") for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert fault.fired == 2
    assert not fault.active
    assert [r.fault for r in trakt.calls("GET", "/sync/history")] == ["respond:429", "respond:429", None]


def test_fault_forever_until_cleared(trakt: FakeTrakt) -> None:
    trakt.add_fault("*", r"/search/.*", status=502, body="<html>Bad gateway</html>", content_type="text/html", times=-1)
    session = trakt_session(trakt)

    failed = [session.get(f"{trakt.base_url}/search/movie", params={"query": "x"}).status_code for _ in range(3)]
    trakt.clear_faults()

    assert failed == [502, 502, 502]
    assert session.get(f"{trakt.base_url}/search/movie", params={"query": "x"}).status_code == 200


def test_apply_then_drop_applies_the_play_but_the_client_sees_a_connection_error(trakt: FakeTrakt) -> None:
    trakt.add_movie(481, "The Matrix", 1999, "tt0133093")
    trakt.add_fault("POST", r"/sync/history", action="apply_then_drop")
    session = authed(trakt)
    body = {"movies": [{"ids": {"imdb": "tt0133093"}, "watched_at": "2025-05-01T18:30:41Z"}]}

    with pytest.raises(requests.ConnectionError):
        session.post(f"{trakt.base_url}/sync/history", json=body)

    assert trakt.play_keys() == ["movie:tt0133093:2025-05-01T18:30Z"]
    recorded = trakt.calls("POST", "/sync/history")[0]
    assert (recorded.fault, recorded.status, recorded.json) == ("apply_then_drop", None, body)
    assert session.get(f"{trakt.base_url}/sync/history/movies").status_code == 200  # the next call is fine


def test_drop_hangs_up_before_handling(trakt: FakeTrakt) -> None:
    trakt.add_movie(481, "The Matrix", 1999, "tt0133093")
    trakt.add_fault("POST", r"/sync/history", action="drop")

    with pytest.raises(requests.ConnectionError):
        authed(trakt).post(f"{trakt.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 481}}]})

    assert trakt.plays() == []


def test_delay_makes_the_client_time_out_after_the_state_changed(trakt: FakeTrakt) -> None:
    trakt.add_movie(481, "The Matrix", 1999, "tt0133093")
    trakt.add_fault("POST", r"/sync/history", delay=0.3)
    session = authed(trakt)
    started = time.monotonic()

    with pytest.raises(requests.Timeout):
        session.post(f"{trakt.base_url}/sync/history", json={"movies": [{"ids": {"trakt": 481}}]}, timeout=0.1)

    assert time.monotonic() - started < 0.3
    assert len(trakt.plays()) == 1
    assert trakt.calls("POST")[0].fault == "delay:0.3"


def test_server_can_stop_and_restart_on_the_same_port(kinopub: FakeKinopub) -> None:
    session = kinopub_session(kinopub)
    assert session.get(f"{kinopub.base_url}/v1/user").status_code == 200
    url = kinopub.base_url

    kinopub.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/v1/user", timeout=2)
    assert kinopub.start() == url
    assert session.get(f"{url}/v1/user").status_code == 200


def test_requests_are_recorded_with_the_injected_clock() -> None:
    clock = ManualClock(1234.5)
    with FakeKinopub(clock=clock) as kinopub:
        kinopub_session(kinopub).get(f"{kinopub.base_url}/v1/watching", params={"id": "7"})

    (recorded,) = kinopub.calls(path_prefix="/v1/")
    assert (recorded.method, recorded.path, recorded.query, recorded.at) == ("GET", "/v1/watching", {"id": "7"}, 1234.5)
    assert recorded.headers["authorization"].startswith("Bearer ")
    assert recorded.status == 404


# ---------------------------------------------------------------------------------------------- libraries


def test_demo_library_expectations_hold_for_a_reference_sync() -> None:
    """A deliberately naive implementation of the sync over HTTP must land exactly on the documented outcome
    (docs/ARCHITECTURE.md#one-views-way-from-kinopub-to-a-trakt-play)."""
    with FakeKinopub() as kinopub, FakeTrakt() as trakt:
        demo = seed_demo_library(kinopub, trakt)
        report = _reference_sync(kinopub, trakt)
        again = _reference_sync(kinopub, trakt)

        assert kinopub.mutations == []
        assert kinopub.errors == trakt.errors == []
        assert sorted(trakt.play_keys()) == demo.expected_trakt_keys()
    assert trakt.duplicate_keys() == []
    assert report == demo.expected_counts()
    assert again["added_movies"] == again["added_episodes"] == 0
    assert demo.expected_counts() == {
        "candidates": 25,
        "added_movies": 7,
        "added_episodes": 12,
        "skipped_duplicates": 1,
        "not_found": 0,
        "unmatched": 5,
    }
    assert {v.reason for v in demo.unmatched} == {
        "no_imdb_not_found",
        "episode_not_on_trakt",
        "numbering_mismatch",
        "merged_episode",
    }
    assert len({v.key for v in demo.to_add}) == len(demo.to_add)


def test_generated_library_is_deterministic_and_consistent() -> None:
    def build() -> tuple[Any, list[str], list[int]]:
        kinopub, trakt = FakeKinopub(), FakeTrakt()
        summary = generate_library(3, 40, 6, 150, 0.25, kinopub=kinopub, trakt=trakt)
        return summary, sorted(trakt.play_keys()), [r.last_seen for r in kinopub.history.values()]

    first, second = build(), build()

    summary = first[0]
    assert first == second
    assert summary.completed_movies + summary.completed_episodes + summary.in_progress == 40 + 150
    assert len(first[1]) == summary.skipped_duplicates > 0
    assert summary.history_rows == 190
    assert max(first[2]) < unix("2026-11-01T00:00:00")


# ---------------------------------------------------------------------------------------------- helpers


def _minute_iso(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:00.000Z", time.gmtime(1_735_689_600 + n * 60))


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("id") and found.get("href"):
            self.links[str(found["id"])] = str(found["href"])


def _links(page: str) -> dict[str, str]:
    parser = _LinkParser()
    parser.feed(page)
    return parser.links


def _numbering_trusted(view: dict[str, Any], trakt_season: list[dict[str, Any]], episode: dict[str, Any]) -> bool:
    """Issue 12 in a few lines: season 0 or a longer Kinopub season needs the English title to agree; a shorter
    one (against aired episodes) stops at the first episode lasting two Trakt episodes."""
    kinopub = view["kinopub_season"]
    if view["season"] == 0 or len(kinopub) > len(trakt_season):
        return bool(view["ep_title"].split(" / ")[-1].lower() == episode["title"].lower())
    if len(kinopub) < len(trakt_season):
        for ep, first, second in zip(kinopub, trakt_season, trakt_season[1:], strict=False):
            if abs(ep["duration"] - 60 * (first["runtime"] + second["runtime"])) < 0.15 * 60 * first["runtime"] * 2:
                return bool(view["ep"] < ep["number"])
    return True


def _reference_sync(kinopub: FakeKinopub, trakt: FakeTrakt) -> dict[str, int]:
    kp = kinopub_session(kinopub)
    tr = authed(trakt)
    kp_url, tr_url = kinopub.base_url, trakt.base_url

    rows: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        body = kp.get(f"{kp_url}/v1/history", params={"page": page, "perpage": 50}).json()
        rows += body["history"]
        pages = int(body["pagination"]["total"])
        page += 1
    live = [r for r in rows if not r["deleted"]]
    last_seen = {r["media"]["id"]: r["last_seen"] for r in live}

    views: list[dict[str, Any]] = []  # kind, imdb, title, year, at, season, episode
    for item_id in dict.fromkeys(r["item"]["id"] for r in live):
        meta = next(r["item"] for r in live if r["item"]["id"] == item_id)
        item = kp.get(f"{kp_url}/v1/watching", params={"id": item_id}).json()["item"]
        raw = meta["imdb"]
        imdb = (raw if str(raw).startswith("tt") else f"tt{int(raw):07d}") if raw else None
        base = {"imdb": imdb, "title": item["title"].split(" / ")[-1], "year": meta["year"]}
        if "videos" in item:
            # A trailer (under 40% of the longest video) neither counts nor blocks.
            longest = max(v["duration"] for v in item["videos"])
            parts = [v for v in item["videos"] if v["duration"] >= 0.4 * longest]
            if all(v["status"] == 1 for v in parts):
                at = max((v["updated"] or last_seen[v["id"]]) for v in parts)
                views.append({**base, "kind": "movie", "at": at})
            continue
        for season in item["seasons"]:
            episodes = season["episodes"]
            for ep in episodes:
                if ep["status"] == 1:
                    at = ep["updated"] or last_seen[ep["id"]]
                    views.append(
                        {**base, "kind": "episode", "at": at, "season": season["number"], "ep": ep["number"]}
                        | {"ep_title": ep["title"], "kinopub_season": episodes}
                    )

    report = dict.fromkeys(("added_movies", "added_episodes", "skipped_duplicates", "not_found", "unmatched"), 0)
    report["candidates"] = len(views)
    remote = set()
    for section in ("movies", "episodes"):
        for play in tr.get(f"{tr_url}/sync/history/{section}", params={"limit": 250}).json():
            minute = play["watched_at"][:16] + "Z"
            if section == "movies":
                remote.add(f"movie:{play['movie']['ids']['imdb']}:{minute}")
                remote.add(f"movie:trakt:{play['movie']['ids']['trakt']}:{minute}")
            else:
                remote.add(f"episode:{play['episode']['ids']['trakt']}:{minute}")
    payload: dict[str, list[dict[str, Any]]] = {"movies": [], "episodes": []}
    for view in views:
        minute = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(view["at"]))
        watched_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(view["at"]))
        if view["kind"] == "movie":
            imdb, ids = view["imdb"], {"imdb": view["imdb"]}
            key = f"movie:{imdb}:{minute}"
            if imdb is None:
                query = re.sub(r"([-+&|!(){}\[\]^\"~*?:/])", r"\\\1", view["title"])
                found = tr.get(f"{tr_url}/search/movie", params={"query": query, "years": view["year"]}).json()
                if len(found) != 1:
                    report["unmatched"] += 1
                    continue
                ids = found[0]["movie"]["ids"]
                key = f"movie:{ids['imdb']}:{minute}" if ids["imdb"] else f"movie:trakt:{ids['trakt']}:{minute}"
                ids = {"imdb": ids["imdb"]} if ids["imdb"] else {"trakt": ids["trakt"]}
            entry = {"ids": ids, "watched_at": watched_at}
            section = "movies"
        else:
            seasons = tr.get(f"{tr_url}/shows/{view['imdb']}/seasons", params={"extended": "full,episodes"}).json()
            trakt_season: list[dict[str, Any]] = next(
                (s["episodes"] for s in seasons if s["number"] == view["season"]), []
            )
            episode = next((e for e in trakt_season if e["number"] == view["ep"]), None)
            if episode is None or not _numbering_trusted(view, trakt_season, episode):
                report["unmatched"] += 1
                continue
            episode_id = episode["ids"]["trakt"]
            key = f"episode:{episode_id}:{minute}"
            entry = {"ids": {"trakt": episode_id}, "watched_at": watched_at}
            section = "episodes"
        if key in remote:
            report["skipped_duplicates"] += 1
            continue
        remote.add(key)
        payload[section].append(entry)
    if payload["movies"] or payload["episodes"]:
        answer = tr.post(f"{tr_url}/sync/history", json=payload).json()
        report["added_movies"] = answer["added"]["movies"]
        report["added_episodes"] = answer["added"]["episodes"]
        report["not_found"] = len(answer["not_found"]["movies"]) + len(answer["not_found"]["episodes"])
    return report
