"""Pure rules of steps 4 and 6: how a view becomes Trakt ids, and when two plays are the same play."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from devkit.clock import VirtualClock
from devkit.memory import InMemoryMappingStore
from kinotrakt.clock import iso_z, minute_z
from kinotrakt.kinopub.models import original_title
from kinotrakt.storage.ports import Pin
from kinotrakt.sync import keys
from kinotrakt.sync.keys import episode_key, movie_key
from kinotrakt.sync.mapping import Mapper, MappingCache
from kinotrakt.sync.model import CompletedView
from kinotrakt.trakt.models import Episode, Ids, Movie, SearchHit, Season, Show

WHEN = datetime(2025, 6, 15, 15, 6, 40, tzinfo=UTC)
# hypothesis takes naive bounds and adds the time zone itself
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001


class CatalogStub:
    """Trakt's catalog as the mapper sees it; counts the calls so caching can be checked.

    Like the real service (2026): ``/shows/{id}/seasons`` takes a Trakt id or an IMDb id and answers None (404)
    for what it does not know; ``/search/imdb`` ignores ``type`` and also finds ``listed_elsewhere`` (IMDb ids
    Trakt lists under another id)."""

    def __init__(self) -> None:
        self.movies: list[Movie] = []
        self.shows: list[Show] = []
        self.seasons: dict[int, list[Season]] = {}
        self.listed_elsewhere: dict[str, Show] = {}
        self.calls: list[str] = []
        self.translations: dict[int, str] = {}  # Trakt id → a translated title the text search also matches

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        self.calls.append(f"imdb:{imdb}")
        hits = [SearchHit(type="movie", movie=m) for m in self.movies if m.ids.imdb == imdb]
        hits += [SearchHit(type="show", show=s) for s in self.shows if s.ids.imdb == imdb]
        if imdb in self.listed_elsewhere:
            hits.append(SearchHit(type="show", show=self.listed_elsewhere[imdb]))
        return hits

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]:
        """Like Trakt: the query matches titles and translations, the years filter is a year or a range."""
        self.calls.append(f"text:{kind}:{query}")
        pool = self.shows if kind == "show" else self.movies
        low, high = (years, years) if isinstance(years, int) else (years or (None, None))

        def matches(media: Movie | Show) -> bool:
            names = [media.title or "", self.translations.get(media.ids.trakt or 0, "")]
            in_years = low is None or (media.year is not None and low <= media.year <= (high or low))
            return in_years and any(query.lower() in name.lower() for name in names if name)

        return [SearchHit(type=kind, **{kind: m}) for m in pool if matches(m)]

    def show_seasons(self, show: int | str) -> list[Season] | None:
        self.calls.append(f"seasons:{show}")
        by_imdb = {s.ids.imdb: s.ids.trakt for s in self.shows if s.ids.imdb}
        trakt_id = by_imdb.get(str(show)) or (int(show) if str(show).isdigit() else None)
        return self.seasons.get(trakt_id) if trakt_id is not None else None


def movie(kp_id: int, original: str, year: int | None, imdb: str | None) -> CompletedView:
    return CompletedView("movie", kp_id, "movie", f"Фильм / {original}", original, year, imdb, WHEN, "updated")


def episode(kp_id: int, imdb: str | None, season: int, number: int) -> CompletedView:
    return CompletedView("episode", kp_id, "serial", "Шоу / Show", "Show", 2011, imdb, WHEN, "updated", season, number)


def mapper(
    catalog: CatalogStub, store: InMemoryMappingStore, pins: dict[int, Pin] | None = None
) -> tuple[Mapper, MappingCache]:
    clock = VirtualClock(WHEN + timedelta(days=400))
    cache = MappingCache(store, clock)
    return Mapper(catalog, cache, pins or {}, clock), cache


def test_a_movie_with_imdb_needs_no_lookup_and_keys_by_imdb_and_minute() -> None:
    catalog = CatalogStub()
    result = mapper(catalog, InMemoryMappingStore())[0].map([movie(1, "Inception", 2010, "tt1375666")])
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
    result = mapper(catalog, InMemoryMappingStore())[0].map(
        [movie(10, "Kon-Tiki", 2012, None), movie(11, "Solaris", 2002, None), movie(12, "Nothing", 1999, None)]
    )
    assert [(m.view.kinopub_id, m.key) for m in result.mapped] == [(10, "movie:tt1613750:2025-06-15T15:06Z")]
    assert {(u.kinopub_id, u.reason) for u in result.unmatched} == {(11, "ambiguous"), (12, "no_imdb_not_found")}


def titled(kp_id: int, title: str, year: int | None) -> CompletedView:
    return CompletedView("movie", kp_id, "movie", title, original_title(title), year, None, WHEN, "updated")


def test_a_title_search_accepts_a_single_hit_a_year_off_when_none_has_the_exact_year() -> None:
    # Given Trakt's years for three films differ from Kinopub's by one, and two remakes tie a year either side
    catalog = CatalogStub()
    catalog.movies = [
        Movie(title="Legend No. 17", year=2012, ids=Ids(trakt=1)),
        Movie(title="Stalker", year=1979, ids=Ids(trakt=2)),
        Movie(title="Stalker", year=1981, ids=Ids(trakt=3)),
        Movie(title="Solaris", year=1972, ids=Ids(trakt=4)),
        Movie(title="Solaris", year=1973, ids=Ids(trakt=5)),
    ]

    result = mapper(catalog, InMemoryMappingStore())[0].map(
        [
            titled(10, "Легенда №17 / Legend No. 17", 2013),
            titled(11, "Сталкер / Stalker", 1980),
            titled(12, "Солярис / Solaris", 1972),
        ]
    )

    # Then the single hit a year off is accepted, the exact year wins over one a year off, a tie is refused
    assert {(m.view.kinopub_id, m.movie_trakt_id) for m in result.mapped} == {(10, 1), (12, 4)}
    (tie,) = result.unmatched
    assert (tie.kinopub_id, tie.reason) == (11, "ambiguous")
    assert "“Stalker” (1979), “Stalker” (1981)" in tie.detail


def test_the_russian_title_finds_what_the_original_does_not_but_only_as_the_one_hit() -> None:
    # Given Trakt knows two films by their English titles only, with Russian translations
    catalog = CatalogStub()
    catalog.movies = [
        Movie(title="The Rider", year=2020, ids=Ids(trakt=21, imdb="tt9000021")),
        Movie(title="Brother", year=1997, ids=Ids(trakt=22)),
        Movie(title="Brother 2", year=1998, ids=Ids(trakt=23)),
    ]
    catalog.translations = {21: "Ездок", 22: "Брат", 23: "Брат 2"}

    result = mapper(catalog, InMemoryMappingStore())[0].map(
        [titled(30, "Ездок", 2020), titled(31, "Брат / Brat", 1997), titled(32, "Ездок", None)]
    )

    # Then "Ездок" is found through its translation (a single hit within a year); "Брат" matches two films
    # within a year either side and is refused; without a year the Russian title is not tried at all
    assert [(m.view.kinopub_id, m.key) for m in result.mapped] == [(30, "movie:tt9000021:2025-06-15T15:06Z")]
    assert {(u.kinopub_id, u.reason) for u in result.unmatched} == {(31, "ambiguous"), (32, "no_imdb_not_found")}
    assert "text:movie:Brat" in catalog.calls
    assert "text:movie:Брат" in catalog.calls


def black_mirror(catalog: CatalogStub) -> None:
    catalog.shows = [Show(title="Black Mirror", year=2011, ids=Ids(trakt=41793, imdb="tt2085059"))]
    catalog.seasons[41793] = [
        Season(number=1, episodes=[Episode(season=1, number=n, ids=Ids(trakt=100 + n)) for n in (1, 2, 3)])
    ]


def test_episodes_map_with_one_lookup_per_show_by_its_imdb_id_which_is_cached() -> None:
    # Given a show Trakt knows by its IMDb id
    catalog = CatalogStub()
    black_mirror(catalog)
    state = InMemoryMappingStore()
    views = [episode(5, "tt2085059", 1, 2), episode(5, "tt2085059", 1, 3), episode(5, "tt2085059", 1, 9)]

    # When its episodes are mapped
    first, cache = mapper(catalog, state)
    result = first.map(views)
    cache.flush()  # what the pipeline does after mapping

    # Then one call, the season table asked with the IMDb id itself, maps them all (no search first)
    assert [m.key for m in result.mapped] == ["episode:102:2025-06-15T15:06Z", "episode:103:2025-06-15T15:06Z"]
    assert [(u.season, u.episode, u.reason) for u in result.unmatched] == [(1, 9, "episode_not_on_trakt")]
    assert catalog.calls == ["seasons:tt2085059"]
    # And a later run within the cache's life asks Trakt nothing
    catalog.calls.clear()
    again, _ = mapper(catalog, state)
    assert [m.key for m in again.map(views[:1]).mapped] == ["episode:102:2025-06-15T15:06Z"]
    assert catalog.calls == []


def test_the_cached_season_table_keeps_only_what_the_numbering_rules_compare() -> None:
    # Given a season table whose episodes carry titles, air dates and runtimes (extended=full)
    catalog = CatalogStub()
    black_mirror(catalog)
    detailed = Episode(season=1, number=1, title="The National Anthem", first_aired=WHEN, runtime=44, ids=Ids(trakt=7))
    catalog.seasons[41793] = [Season(number=1, episodes=[detailed])]
    state = InMemoryMappingStore()

    # When it is fetched and cached
    first, cache = mapper(catalog, state)
    first.map([episode(5, "tt2085059", 1, 1)])
    cache.flush()

    # Then the stored form is the compact table (columns per season), under the id it was asked with
    stored = state.load(WHEN)["seasons:tt2085059"]
    assert set(stored) == {"v", "fetched_at", "seasons"}
    assert stored["seasons"] == {
        "1": {"n": [1], "id": [7], "rt": [44], "air": [int(WHEN.timestamp()) // 3600], "t": ["The National Anthem"]}
    }


def test_a_show_cached_under_its_trakt_id_by_an_older_deployment_keeps_working() -> None:
    # Given the cache of the search-then-seasons scheme: the IMDb id → Trakt id, and the season table by Trakt id
    catalog = CatalogStub()
    black_mirror(catalog)
    state = InMemoryMappingStore()
    later = WHEN + timedelta(days=500)
    table = {"fetched_at": int(later.timestamp()), "episodes": {"1:2": 102}}
    state.put(
        {
            "show:imdb:tt2085059": ({"trakt": 41793}, later + timedelta(days=30)),
            "seasons:41793": (table, later + timedelta(days=1)),
        }
    )

    # When its episodes are mapped, Then the cached show id answers; the season table, cached in the older
    # ids-only form that lacks what the numbering rules compare, is read again by that Trakt id: one call
    result = mapper(catalog, state)[0].map([episode(5, "tt2085059", 1, 2)])
    assert [(m.episode_trakt_id, m.show_trakt_id) for m in result.mapped] == [(102, 41793)]
    assert catalog.calls == ["seasons:41793"]

    # And once the season table has expired, it is read again by that Trakt id: still one call
    catalog.calls.clear()
    state = InMemoryMappingStore()
    state.put({"show:imdb:tt2085059": ({"trakt": 41793}, later + timedelta(days=30))})
    result = mapper(catalog, state)[0].map([episode(5, "tt2085059", 1, 3)])
    assert [m.episode_trakt_id for m in result.mapped] == [103]
    assert catalog.calls == ["seasons:41793"]


def test_a_404_for_the_imdb_id_falls_back_to_the_imdb_search_once() -> None:
    # Given an IMDb id Trakt lists under another show id: /shows/{imdb} answers 404, /search/imdb finds it
    catalog = CatalogStub()
    black_mirror(catalog)
    catalog.listed_elsewhere["tt9999999"] = Show(title="Black Mirror", year=2011, ids=Ids(trakt=41793))
    state = InMemoryMappingStore()

    # When two of its episodes are mapped
    first, cache = mapper(catalog, state)
    result = first.map([episode(5, "tt9999999", 1, 1), episode(5, "tt9999999", 1, 2)])
    cache.flush()

    # Then the 404 led to one search and the show's table by its Trakt id, for both episodes
    assert [m.episode_trakt_id for m in result.mapped] == [101, 102]
    assert catalog.calls == ["seasons:tt9999999", "imdb:tt9999999", "seasons:41793"]
    # and the next run goes straight to the show's id
    catalog.calls.clear()
    assert [m.episode_trakt_id for m in mapper(catalog, state)[0].map([episode(5, "tt9999999", 1, 3)]).mapped] == [103]
    assert catalog.calls == []


def test_an_imdb_search_that_finds_only_a_movie_leaves_the_show_unmatched() -> None:
    # Given an IMDb id that is a movie on Trakt (the search ignores `type` and returns it)
    catalog = CatalogStub()
    catalog.movies = [Movie(title="Inception", year=2010, ids=Ids(trakt=1, imdb="tt1375666"))]
    state = InMemoryMappingStore()

    # When a Kinopub series with that IMDb id is mapped, twice in one run
    first, cache = mapper(catalog, state)
    result = first.map([episode(5, "tt1375666", 1, 1), episode(5, "tt1375666", 1, 2)])
    cache.flush()

    # Then nothing is guessed: both episodes are unmatched, after one 404 and one search
    assert result.mapped == []
    assert {(u.reason, u.detail) for u in result.unmatched} == {
        ("show_not_found", "Trakt has no show with IMDb tt1375666")
    }
    assert catalog.calls == ["seasons:tt1375666", "imdb:tt1375666"]
    # and the next run does not ask again while the negative answer is cached
    catalog.calls.clear()
    assert mapper(catalog, state)[0].map([episode(5, "tt1375666", 1, 1)]).mapped == []
    assert catalog.calls == []


def test_a_pinned_show_trakt_does_not_have_is_unmatched_and_asked_once() -> None:
    catalog = CatalogStub()
    pins = {5: Pin(5, "show", 404)}
    result = mapper(catalog, InMemoryMappingStore(), pins)[0].map([episode(5, None, 1, 1), episode(5, None, 1, 2)])
    assert {u.reason for u in result.unmatched} == {"show_not_found"}
    assert catalog.calls == ["seasons:404"]


def test_a_pin_wins_over_search_and_shifts_seasons() -> None:
    catalog = CatalogStub()
    catalog.seasons[7] = [Season(number=2, episodes=[Episode(season=2, number=1, ids=Ids(trakt=701))])]
    pins = {5: Pin(5, "show", 7, season_offset=1), 6: Pin(6, "movie", 99)}
    result = mapper(catalog, InMemoryMappingStore(), pins)[0].map([episode(5, None, 1, 1), movie(6, "X", 2000, None)])
    assert [m.key for m in result.mapped] == ["episode:701:2025-06-15T15:06Z", "movie:trakt:99:2025-06-15T15:06Z"]
    assert catalog.calls == ["seasons:7"]


@given(times, st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=999_999))
def test_views_in_the_same_minute_share_a_key_and_other_minutes_do_not(when: datetime, second: int, micro: int) -> None:
    same_minute = when.replace(second=second, microsecond=micro)
    assert movie_key(when, imdb="tt1") == movie_key(same_minute, imdb="tt1")
    assert episode_key(when, trakt_episode_id=5) == episode_key(same_minute, trakt_episode_id=5)
    assert movie_key(when, imdb="tt1") != movie_key(when + timedelta(minutes=1), imdb="tt1")
    assert movie_key(None, imdb="tt1") == "movie:tt1:unknown"


def test_every_stored_key_keeps_the_format_deployed_data_uses() -> None:
    # The ledger, the unmatched list and the mapping cache hold these keys across runs (and versions): a new
    # format would re-send plays already sent, or forget what is cached.
    assert keys.movie_key(WHEN, imdb="tt1375666") == "movie:tt1375666:2025-06-15T15:06Z"
    assert keys.movie_key(WHEN, imdb=None, trakt_id=16662) == "movie:trakt:16662:2025-06-15T15:06Z"
    assert keys.episode_key(None, trakt_episode_id=73640) == "episode:73640:unknown"
    assert keys.has_unknown_time("episode:73640:unknown")
    assert not keys.has_unknown_time("episode:73640:2025-06-15T15:06Z")
    assert keys.movie_view_ref(101) == movie(101, "Inception", 2010, None).view_ref == "movie:101"
    assert keys.episode_view_ref(5, 1, 2) == episode(5, None, 1, 2).view_ref == "episode:5:1:2"
    assert keys.episode_view_ref(5, 4, 15, pin_part=1) == "episode:5:4:15:1"
    assert keys.unmatched_item_key(9) == movie(9, "Rider", 2020, None).unmatched_key == "item:9"
    assert keys.unmatched_episode_key(7, 10, 1) == episode(7, None, 10, 1).unmatched_key == "episode:7:10:1"
    assert keys.movie_imdb_key("tt0111161") == "movie:imdb:tt0111161"
    assert keys.movie_title_key(501) == "movie:title:501"
    assert keys.show_imdb_key("tt2085059") == "show:imdb:tt2085059"
    assert keys.show_title_key(777) == "show:title:777"
    assert keys.seasons_key(41793) == "seasons:41793"
    assert keys.seasons_key("tt2085059") == "seasons:tt2085059"


def test_the_mapper_caches_under_the_stored_keys() -> None:
    # Given a show asked for by its IMDb id, a show without one (found by title), a show Trakt lists under
    # another IMDb id, a movie searched by title, and a movie Trakt answered not_found for
    catalog = CatalogStub()
    catalog.shows = [
        Show(title="Black Mirror", year=2011, ids=Ids(trakt=41793, imdb="tt2085059")),
        Show(title="Show", year=2011, ids=Ids(trakt=500)),
    ]
    catalog.listed_elsewhere["tt9999999"] = Show(title="Black Mirror", year=2011, ids=Ids(trakt=41793))
    catalog.seasons[41793] = [Season(number=1, episodes=[Episode(season=1, number=2, ids=Ids(trakt=102))])]
    catalog.seasons[500] = [Season(number=1, episodes=[Episode(season=1, number=2, ids=Ids(trakt=502))])]
    catalog.movies = [Movie(title="Kon-Tiki", year=2012, ids=Ids(trakt=1, imdb="tt1613750"))]
    store = InMemoryMappingStore()
    first, cache = mapper(catalog, store)
    first.map(
        [
            episode(5, "tt2085059", 1, 2),
            episode(6, None, 1, 2),
            episode(7, "tt9999999", 1, 2),
            movie(10, "Kon-Tiki", 2012, None),
        ]
    )
    first.record_movie_not_found(movie(11, "Gone", 2001, "tt0000011"))
    # When the cache is written back
    cache.flush()
    # Then every entry is under its stored key
    cached = store.load(WHEN + timedelta(days=400))
    assert set(cached) == {
        "seasons:tt2085059",
        "show:title:6",
        "seasons:500",
        "show:imdb:tt9999999",
        "seasons:41793",
        "movie:title:10",
        "movie:imdb:tt0000011",
    }
    assert cached["seasons:tt2085059"]["seasons"]["1"]["id"] == [102]
    assert cached["seasons:500"]["seasons"]["1"]["id"] == [502]


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))])


# hypothesis takes naive bounds and adds the zone itself
MOMENTS = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=ZONES)  # noqa: DTZ001


@given(MOMENTS)
def test_a_time_keys_by_its_utc_minute_whatever_the_zone_it_came_in(moment: datetime) -> None:
    # The texts are remembered per instant (clock.py): the same instant in another zone is the same key,
    # and it is always the UTC text, never the zone's own
    utc = moment.astimezone(UTC)
    assert minute_z(moment) == minute_z(utc) == utc.strftime("%Y-%m-%dT%H:%MZ")
    assert iso_z(moment) == iso_z(utc) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert episode_key(moment, trakt_episode_id=7) == f"episode:7:{utc.strftime('%Y-%m-%dT%H:%MZ')}"
