"""Contract tests from real recordings (tests/fixtures/trakt, MIT, from fuzeman/trakt.py): kinotrakt's models
read every recorded Trakt answer, and the fake Trakt answers the same requests with the same shapes (the fake
is only as good as its likeness to the real service)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter

from devkit.fakes.fake_trakt import FakeTrakt
from kinotrakt.trakt.models import Episode, SearchHit, Season
from tests.contract.shapes import ADDED_IN_2026, differences, shape_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "trakt"
GAME_OF_THRONES_IMDB = "tt0944947"  # the show of shows_1390_seasons.json; the recording does not repeat it


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


@dataclass(frozen=True)
class Recording:
    file: str
    path: str
    params: dict[str, str]
    model: Any  # what kinotrakt's client reads that answer as

    def __str__(self) -> str:
        return self.file


RECORDINGS = [
    Recording("shows_1390_seasons.json", "/shows/1390/seasons", {"extended": "episodes"}, list[Season]),
    Recording(
        "shows_game-of-thrones_seasons.json", "/shows/game-of-thrones/seasons", {"extended": "episodes"}, list[Season]
    ),
    # The recorded body has the extended=full fields of each episode (see the fixtures' README).
    Recording("shows_1390_seasons_1.json", "/shows/1390/seasons/1", {"extended": "full"}, list[Episode]),
    Recording(
        "search_imdb_tt0903747_extended_full.json", "/search/imdb/tt0903747", {"extended": "full"}, list[SearchHit]
    ),
    Recording(
        "search_imdb_tt0848228_extended_full.json", "/search/imdb/tt0848228", {"extended": "full"}, list[SearchHit]
    ),
    Recording("search_movie_query_the-avengers.json", "/search/movie", {"query": "The Avengers"}, list[SearchHit]),
    Recording("search_show_query_breaking-bad.json", "/search/show", {"query": "Breaking Bad"}, list[SearchHit]),
]


def test_every_recording_in_the_fixtures_is_checked() -> None:
    assert sorted(r.file for r in RECORDINGS) == sorted(path.name for path in FIXTURES.glob("*.json"))
    assert (FIXTURES / "LICENSE-trakt.py.rst").read_text("utf-8").count("Dean Gardiner") == 1


# --- our models read the real answers ------------------------------------------------------------------------


@pytest.mark.parametrize("recording", RECORDINGS, ids=str)
def test_every_recorded_answer_parses_with_our_models(recording: Recording) -> None:
    data = recorded(recording.file)
    parsed = TypeAdapter(recording.model).validate_python(data)
    assert len(parsed) == len(data) > 0


@pytest.mark.parametrize("file", ["shows_1390_seasons.json", "shows_game-of-thrones_seasons.json"])
def test_a_recorded_season_table_gives_every_episode_id_specials_included(file: str) -> None:
    seasons = TypeAdapter(list[Season]).validate_python(recorded(file))

    # Season 0 holds the specials; every episode has its own Trakt id, which is all a play needs
    assert [(s.number, len(s.episodes)) for s in seasons] == [
        (0, 23),
        (1, 10),
        (2, 10),
        (3, 10),
        (4, 10),
        (5, 10),
        (6, 10),
    ]
    assert all(e.ids.trakt is not None and e.season == s.number for s in seasons for e in s.episodes)
    # An episode Trakt has no IMDb id for reads as None (specials), the others keep theirs
    assert {e.ids.imdb for e in seasons[0].episodes} == {None}
    assert seasons[1].episodes[0].ids.imdb == "tt1480055"
    assert seasons[1].episodes[0].title == "Winter Is Coming"


def test_recorded_full_episodes_give_titles_air_dates_and_runtimes() -> None:
    episodes = TypeAdapter(list[Episode]).validate_python(recorded("shows_1390_seasons_1.json"))

    first = episodes[0]
    assert (first.season, first.number, first.title, first.runtime) == (1, 1, "Winter Is Coming", 61)
    assert first.first_aired == datetime(2011, 4, 18, 1, 0, tzinfo=UTC)
    assert all(e.first_aired is not None and e.runtime for e in episodes)


def test_recorded_imdb_lookups_and_text_searches_give_typed_hits() -> None:
    (show,) = TypeAdapter(list[SearchHit]).validate_python(recorded("search_imdb_tt0903747_extended_full.json"))
    (movie,) = TypeAdapter(list[SearchHit]).validate_python(recorded("search_imdb_tt0848228_extended_full.json"))
    movies = TypeAdapter(list[SearchHit]).validate_python(recorded("search_movie_query_the-avengers.json"))
    shows = TypeAdapter(list[SearchHit]).validate_python(recorded("search_show_query_breaking-bad.json"))

    # An id lookup has no score; its hit names its type and carries the ids mapping needs
    assert (show.type, show.score, show.media and show.media.ids.trakt) == ("show", None, 1388)
    assert (movie.type, movie.score, movie.media and movie.media.ids.imdb) == ("movie", None, "tt0848228")
    # Text searches score their hits, best first
    assert all(hit.type == "movie" and hit.media is not None for hit in movies)
    assert all(hit.type == "show" and hit.media is not None for hit in shows)
    assert movies[0].media is not None
    assert (movies[0].media.title, movies[0].media.year) == ("The Avengers", 2012)
    assert [hit.score for hit in shows] == sorted((hit.score or 0.0 for hit in shows), reverse=True)


# --- the fake answers the same requests with the same shapes ------------------------------------------------


def seed_from_recordings(fake: FakeTrakt) -> None:
    """The fake's catalog holds what the recordings show of Trakt's: the movies and shows of the searches (each
    show with a season, so it has air dates) and Game of Thrones with its recorded seasons and episodes."""
    for hit in recorded("search_movie_query_the-avengers.json"):
        movie = hit["movie"]
        ids = movie["ids"]
        fake.add_movie(ids["trakt"], movie["title"], movie["year"], ids["imdb"], ids["slug"], tmdb=ids["tmdb"])
    for hit in recorded("search_show_query_breaking-bad.json"):
        show = hit["show"]
        ids = show["ids"]
        fake.add_show(
            ids["trakt"],
            show["title"],
            show["year"],
            ids["imdb"],
            {1: 7},
            slug=ids["slug"],
            tmdb=ids["tmdb"],
            tvdb=ids["tvdb"],
            tvrage=ids["tvrage"],
        )
    seasons = recorded("shows_1390_seasons.json")
    fake.add_show(
        1390,
        "Game of Thrones",
        2011,
        GAME_OF_THRONES_IMDB,
        {season["number"]: [episode["title"] for episode in season["episodes"]] for season in seasons},
        slug="game-of-thrones",
        episode_imdb={
            (episode["season"], episode["number"]): episode["ids"]["imdb"]
            for season in seasons
            for episode in season["episodes"]
            if episode["ids"]["imdb"]
        },
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as server:
        seed_from_recordings(server)
        yield server
    assert server.errors == []


def ask(fake: FakeTrakt, recording: Recording) -> requests.Response:
    session = requests.Session()
    session.headers.update(
        {"User-Agent": "kinotrakt/contract", "trakt-api-key": fake.client_id, "trakt-api-version": "2"}
    )
    return session.get(fake.base_url + recording.path, params=recording.params, timeout=10)


@pytest.mark.parametrize("recording", RECORDINGS, ids=str)
def test_the_fake_answers_each_recorded_request_with_the_recorded_shape(fake: FakeTrakt, recording: Recording) -> None:
    # When the fake gets the request the recording answers
    answer = ask(fake, recording)

    # Then it answers it, with the same keys and value types at every level (2026 additions aside)
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, list)
    assert body
    assert differences(shape_of(recorded(recording.file)), shape_of(body)) == []
    # and what it answers reads with the same models as the real answer
    TypeAdapter(recording.model).validate_python(body)


def test_the_fake_answers_a_full_episode_with_fields_the_2026_contract_added(fake: FakeTrakt) -> None:
    # The one allowance the shape comparison makes is used, and only for 2026 additions
    body = ask(fake, RECORDINGS[2]).json()
    extra = set(body[0]) - set(recorded(RECORDINGS[2].file)[0])
    assert extra
    assert extra <= ADDED_IN_2026


# --- the comparison itself tells shapes apart -----------------------------------------------------------------


def test_the_same_shape_with_other_values_has_no_differences() -> None:
    real = [{"ids": {"trakt": 1, "imdb": None}, "score": 1.5}, {"ids": {"trakt": 2, "imdb": "tt1"}, "score": 3}]
    fake = [{"ids": {"trakt": 9, "imdb": "tt9"}, "score": 7}]
    assert differences(shape_of(real), shape_of(fake)) == []


@pytest.mark.parametrize(
    ("fake", "problem"),
    [
        ([{"ids": {"trakt": 1}, "title": "x"}], "$[].ids.tvdb: recorded, missing in the fake"),
        ([{"ids": {"trakt": "1", "tvdb": 2}, "title": "x"}], "$[].ids.trakt: the fake answers ['string']"),
        ([{"ids": {"trakt": 1, "tvdb": None}, "title": "x"}], "$[].ids.tvdb: the fake answers ['null']"),
        ([{"ids": {"trakt": 1, "tvdb": 2}, "title": "x", "sparkle": 1}], "$[].sparkle: in the fake, neither"),
        ([{"ids": {"trakt": 1, "tvdb": 2}, "title": ["x"]}], "$[].title: the fake answers ['array']"),
        ([], "$[]: recorded with items, always empty in the fake"),
    ],
)
def test_each_kind_of_difference_is_reported(fake: list[dict[str, Any]], problem: str) -> None:
    real = [{"ids": {"trakt": 1, "tvdb": 2}, "title": "Winter Is Coming"}]
    found = differences(shape_of(real), shape_of(fake))
    assert len(found) == 1
    assert found[0].startswith(problem)


def test_a_2026_addition_is_allowed_and_nothing_else() -> None:
    real = [{"title": "x"}]
    assert differences(shape_of(real), shape_of([{"title": "y", "episode_type": "standard"}])) == []
    assert differences(shape_of(real), shape_of([{"title": "y", "episode_type": "standard"}]), added=frozenset()) != []
