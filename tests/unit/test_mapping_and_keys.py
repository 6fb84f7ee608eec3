"""Pure rules of steps 4 and 6: how a view becomes Trakt ids, and when two plays are the same play."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from devkit.clock import VirtualClock
from devkit.memory import InMemoryStateStore
from kinotrakt.storage.ports import Pin
from kinotrakt.sync.keys import episode_key, movie_key
from kinotrakt.sync.mapping import Mapper, MappingCache
from kinotrakt.sync.model import CompletedView
from kinotrakt.trakt.models import Episode, Ids, Movie, SearchHit, Season, Show

WHEN = datetime(2025, 6, 15, 15, 6, 40, tzinfo=UTC)
# hypothesis takes naive bounds and adds the time zone itself
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001


class CatalogStub:
    """Trakt's catalog as the mapper sees it; counts the calls so caching can be checked."""

    def __init__(self) -> None:
        self.movies: list[Movie] = []
        self.shows: list[Show] = []
        self.seasons: dict[int, list[Season]] = {}
        self.calls: list[str] = []

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        self.calls.append(f"imdb:{imdb}:{type}")
        pool = self.shows if type == "show" else self.movies
        return [SearchHit(type=type, **{type: m}) for m in pool if m.ids.imdb == imdb]

    def search_text(self, kind: Literal["movie", "show"], query: str, year: int | None) -> list[SearchHit]:
        self.calls.append(f"text:{kind}:{query}")
        pool = self.shows if kind == "show" else self.movies
        return [SearchHit(type=kind, **{kind: m}) for m in pool if query.lower() in (m.title or "").lower()]

    def show_seasons(self, show_trakt_id: int) -> list[Season]:
        self.calls.append(f"seasons:{show_trakt_id}")
        return self.seasons.get(show_trakt_id, [])


def movie(kp_id: int, original: str, year: int | None, imdb: str | None) -> CompletedView:
    return CompletedView("movie", kp_id, "movie", f"Фильм / {original}", original, year, imdb, WHEN, "updated")


def episode(kp_id: int, imdb: str | None, season: int, number: int) -> CompletedView:
    return CompletedView("episode", kp_id, "serial", "Шоу / Show", "Show", 2011, imdb, WHEN, "updated", season, number)


def mapper(
    catalog: CatalogStub, state: InMemoryStateStore, pins: dict[int, Pin] | None = None
) -> tuple[Mapper, MappingCache]:
    clock = VirtualClock(WHEN + timedelta(days=400))
    cache = MappingCache(state, clock)
    return Mapper(catalog, cache, pins or {}, clock), cache


def test_a_movie_with_imdb_needs_no_lookup_and_keys_by_imdb_and_minute() -> None:
    catalog = CatalogStub()
    result = mapper(catalog, InMemoryStateStore())[0].map([movie(1, "Inception", 2010, "tt1375666")])
    assert [m.key for m in result.mapped] == ["movie:tt1375666:2025-06-15T15:06Z"]
    assert result.mapped[0].payload("x") == {"ids": {"imdb": "tt1375666"}, "watched_at": "x"}
    assert catalog.calls == []


def test_a_title_search_is_accepted_only_when_exactly_one_item_has_that_title_and_year() -> None:
    catalog = CatalogStub()
    catalog.movies = [
        Movie(title="Kon-Tiki", year=2012, ids=Ids(trakt=1, imdb="tt1613750")),
        Movie(title="Kon-Tiki", year=1950, ids=Ids(trakt=2)),
        Movie(title="Solaris", year=2002, ids=Ids(trakt=3)),
        Movie(title="Solaris", year=2002, ids=Ids(trakt=4)),
    ]
    result = mapper(catalog, InMemoryStateStore())[0].map(
        [movie(10, "Kon-Tiki", 2012, None), movie(11, "Solaris", 2002, None), movie(12, "Nothing", 1999, None)]
    )
    assert [(m.view.kinopub_id, m.key) for m in result.mapped] == [(10, "movie:tt1613750:2025-06-15T15:06Z")]
    assert {(u.kinopub_id, u.reason) for u in result.unmatched} == {(11, "ambiguous"), (12, "no_imdb_not_found")}


def test_episodes_map_through_the_show_and_one_season_table_which_is_cached() -> None:
    catalog = CatalogStub()
    catalog.shows = [Show(title="Black Mirror", year=2011, ids=Ids(trakt=41793, imdb="tt2085059"))]
    catalog.seasons[41793] = [
        Season(number=1, episodes=[Episode(season=1, number=n, ids=Ids(trakt=100 + n)) for n in (1, 2, 3)])
    ]
    state = InMemoryStateStore()
    views = [episode(5, "tt2085059", 1, 2), episode(5, "tt2085059", 1, 9)]
    first, cache = mapper(catalog, state)
    result = first.map(views)
    cache.flush()  # what the pipeline does after mapping
    assert [m.key for m in result.mapped] == ["episode:102:2025-06-15T15:06Z"]
    assert [(u.season, u.episode, u.reason) for u in result.unmatched] == [(1, 9, "episode_not_on_trakt")]
    assert catalog.calls == ["imdb:tt2085059:show", "seasons:41793"]
    # A later run within the cache's life asks Trakt nothing
    catalog.calls.clear()
    again, _ = mapper(catalog, state)
    assert [m.key for m in again.map(views[:1]).mapped] == ["episode:102:2025-06-15T15:06Z"]
    assert catalog.calls == []


def test_a_pin_wins_over_search_and_shifts_seasons() -> None:
    catalog = CatalogStub()
    catalog.seasons[7] = [Season(number=2, episodes=[Episode(season=2, number=1, ids=Ids(trakt=701))])]
    pins = {5: Pin(5, "show", 7, season_offset=1), 6: Pin(6, "movie", 99)}
    result = mapper(catalog, InMemoryStateStore(), pins)[0].map([episode(5, None, 1, 1), movie(6, "X", 2000, None)])
    assert [m.key for m in result.mapped] == ["episode:701:2025-06-15T15:06Z", "movie:trakt:99:2025-06-15T15:06Z"]
    assert all(not call.startswith(("imdb:", "text:")) for call in catalog.calls)


@given(times, st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=999_999))
def test_views_in_the_same_minute_share_a_key_and_other_minutes_do_not(when: datetime, second: int, micro: int) -> None:
    same_minute = when.replace(second=second, microsecond=micro)
    assert movie_key(when, imdb="tt1") == movie_key(same_minute, imdb="tt1")
    assert episode_key(when, trakt_episode_id=5) == episode_key(same_minute, trakt_episode_id=5)
    assert movie_key(when, imdb="tt1") != movie_key(when + timedelta(minutes=1), imdb="tt1")
    assert movie_key(None, imdb="tt1") == "movie:tt1:unknown"
