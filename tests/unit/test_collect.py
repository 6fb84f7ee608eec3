"""The collector's rules (docs/ARCHITECTURE.md#completion-and-time) on the fixture library and on generated watch
states."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from devkit.clock import VirtualClock
from devkit.memory import InMemoryMappingStore
from kinotrakt.clock import utc_from_epoch
from kinotrakt.errors import BadResponse, ServiceUnavailable
from kinotrakt.kinopub.models import (
    HistoryItem,
    HistoryPage,
    WatchingItem,
    WatchingResponse,
    describe_validation_error,
    parse_history_page,
)
from kinotrakt.storage.ports import NumberingPins
from kinotrakt.sync.collect import HISTORY_PERPAGE, collect, episode_views, movie_view
from kinotrakt.sync.mapping import Mapper, MappingCache
from kinotrakt.sync.model import CompletedView
from kinotrakt.trakt.models import SearchHit, Season, Show

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kinopub"
LIBRARY: dict[str, Any] = json.loads((FIXTURES / "library.json").read_text("utf-8"))
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "library_expected.json").read_text("utf-8"))
MAPPED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # every Trakt episode of the fixture has aired by then
EARLIEST, LATEST = 946_684_800, 4_102_444_799


class LibraryReader:
    """Kinopub's history and watching state from fixture bodies, through the same models as the client."""

    def __init__(
        self,
        history: list[dict[str, Any]],
        watching: dict[str, Any],
        *,
        page_size: int = 7,
        with_pagination: bool = True,
        failing_page: int | None = None,
    ) -> None:
        self.history = history
        self.watching_bodies = watching
        self.page_size = page_size
        self.with_pagination = with_pagination
        self.failing_page = failing_page
        self.pages_read: list[int] = []
        self.watching_calls: list[int] = []
        self.item_calls: list[int] = []

    def history_page(self, page: int, perpage: int = HISTORY_PERPAGE) -> HistoryPage:
        self.pages_read.append(page)
        if page == self.failing_page:
            raise ServiceUnavailable("kinopub", "GET /v1/history: HTTP 503")
        size = min(perpage, self.page_size)
        body: dict[str, Any] = {"status": 200, "history": self.history[(page - 1) * size : page * size]}
        if self.with_pagination:
            body["pagination"] = {"total": str(math.ceil(len(self.history) / size)), "current": str(page)}
        return parse_history_page(body)

    def watching(self, item_id: int) -> WatchingItem:
        self.watching_calls.append(item_id)
        body = self.watching_bodies.get(str(item_id))
        if body is None:
            raise BadResponse("kinopub", "/v1/watching", "Requested item or video not found.", 404)
        try:
            return WatchingResponse.model_validate(body).item
        except ValidationError as exc:
            raise BadResponse("kinopub", "/v1/watching", describe_validation_error(exc)) from None

    def item(self, item_id: int) -> HistoryItem:
        self.item_calls.append(item_id)
        for row in self.history:
            if row.get("item", {}).get("id") == item_id:
                return HistoryItem.model_validate(row["item"])
        raise BadResponse("kinopub", f"/v1/items/{item_id}", "Requested item or video not found.", 404)


def library_reader(**options: Any) -> LibraryReader:
    return LibraryReader(LIBRARY["history"], LIBRARY["watching"], **options)


def summary(views: list[CompletedView]) -> list[list[Any]]:
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


def at(epoch: int) -> datetime:
    return utc_from_epoch(epoch)


# --- the fixture library --------------------------------------------------------------------------------------


def test_a_full_scan_of_the_library_yields_exactly_the_completed_views_and_reports_the_broken_items() -> None:
    # Given the fixture library served three history pages at a time
    reader = library_reader()

    # When the collector reads everything (first run)
    result = collect(reader, since=None)

    # Then it returns exactly the completed views, with their times and where each time came from
    assert summary(result.views) == EXPECTED["views"]
    for view in result.views:
        assert view.original_title == EXPECTED["original_titles"][str(view.kinopub_id)]
    # and the broken items with a reason, and the item of an unknown type, without stopping the others
    assert [f.kinopub_id for f in result.failures] == [kinopub_id for kinopub_id, _ in EXPECTED["failures"]]
    for failure, (_, reason) in zip(result.failures, EXPECTED["failures"], strict=True):
        assert reason in failure.reason
    assert [[s.kinopub_id, s.reason] for s in result.skipped] == EXPECTED["skipped"]
    assert result.items_examined == EXPECTED["items_examined"]
    assert result.full_scan
    assert result.history_pages == reader.pages_read[-1] == 4


def test_the_library_s_film_is_not_held_back_by_its_unopened_trailer() -> None:
    # Given Tenet in the fixture library: the feature watched, its 2-minute trailer never opened (status -1)
    tenet = WatchingResponse.model_validate(LIBRARY["watching"]["50210"]).item
    assert [(video.duration, video.status) for video in tenet.videos] == [(9000, 1), (121, -1)]

    # When the collector reads the library
    views = {view.view_ref: view for view in collect(library_reader(), since=None).views}

    # Then the film is one view, at its feature's time: the trailer neither holds it back nor decides its time
    film = views["movie:50210"]
    assert (film.watched_at, film.watched_at_source, film.media_id) == (at(1_613_290_000), "updated", 612401)


class FixtureTrakt:
    """Trakt's catalogue as ``library_expected.json``'s ``mapping.trakt`` gives it: per show, its summary and its
    season table (inline, or the path of a recorded ``/shows/{id}/seasons`` answer)."""

    def __init__(self, shows: dict[str, Any]) -> None:
        self.shows = {imdb: Show.model_validate(entry["show"]) for imdb, entry in shows.items()}
        self.seasons = {imdb: self._table(entry["seasons"]) for imdb, entry in shows.items()}

    @staticmethod
    def _table(seasons: str | list[dict[str, Any]]) -> list[Season]:
        body = json.loads((FIXTURES / seasons).read_text("utf-8")) if isinstance(seasons, str) else seasons
        return [Season.model_validate(season) for season in body]

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        show = self.shows.get(imdb)
        return [SearchHit(type="show", show=show)] if type == "show" and show is not None else []

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]:
        return []

    def show_seasons(self, show: int | str) -> list[Season] | None:
        """By IMDb id, Trakt id or slug, as ``/shows/{id}/seasons`` takes any of them."""
        for imdb, known in self.shows.items():
            if str(show) in (imdb, str(known.ids.trakt), known.ids.slug):
                return self.seasons[imdb]
        return None


def test_the_library_s_specials_and_merged_episode_are_posted_only_where_trakt_s_episode_is_certain() -> None:
    # Given the library's Game of Thrones views (two season-0 specials, one numbered as Trakt does, one not; and
    # S01E01) and Star Wars Rebels' (S04E15 on Kinopub is Trakt's S04E15 + S04E16), and both shows on Trakt
    mapping = EXPECTED["mapping"]
    views = [view for view in collect(library_reader(), since=None).views if view.imdb in mapping["trakt"]]
    clock = VirtualClock(MAPPED_AT)

    # When the mapper maps them
    result = Mapper(
        FixtureTrakt(mapping["trakt"]), MappingCache(InMemoryMappingStore(), clock), {}, clock, NumberingPins()
    ).map(views)

    # Then the special whose title agrees, S01E01 and the episode before the merged one are posted as Trakt's
    # episodes; the special Trakt numbers otherwise is numbering_mismatch and the merged one merged_episode,
    # each with a detail that says what differs, and neither is posted as any Trakt episode
    posted = {mapped.view.view_ref: mapped.episode_trakt_id for mapped in result.mapped}
    refused = {
        view.view_ref: (item.reason, item.detail)
        for view, item in zip(result.unmatched_views, result.unmatched, strict=True)
    }
    expected = mapping["outcomes"]
    assert posted == {ref: outcome for ref, outcome in expected.items() if isinstance(outcome, int)}
    assert set(refused) == {ref for ref, outcome in expected.items() if isinstance(outcome, list)}
    for ref, (reason, detail) in refused.items():
        assert reason == expected[ref][0]
        assert expected[ref][1] in detail, detail


def test_deleted_rows_and_unknown_types_cost_no_watching_call() -> None:
    reader = library_reader()

    collect(reader, since=None)

    assert 880 not in reader.watching_calls  # only a deleted row
    assert 90001 not in reader.watching_calls  # type "live": reported, not guessed
    assert 7503 not in reader.watching_calls  # its history row is unreadable
    assert len(reader.watching_calls) == len(set(reader.watching_calls))  # once per item


def test_views_carry_the_history_rows_metadata() -> None:
    result = collect(library_reader(), since=None)

    blue_planet = next(view for view in result.views if view.kinopub_id == 40001)
    assert blue_planet.kind == "episode"
    assert (blue_planet.season, blue_planet.episode) == (1, 1)
    assert blue_planet.year == 2001
    assert blue_planet.item_type == "docuserial"
    assert blue_planet.title == "Голубая планета / The Blue Planet"
    avatar = next(view for view in result.views if view.kinopub_id == 60001)
    assert (avatar.kind, avatar.item_type, avatar.year) == ("movie", "3d", 2009)


def test_an_incremental_run_reads_only_the_history_newer_than_the_watermark() -> None:
    # Given a watermark (minus overlap) between the fourth and the fifth history rows
    reader = library_reader()
    since = at(1_613_850_000)

    # When the collector runs incrementally
    result = collect(reader, since=since)

    # Then it stops on the first page, which already reached older rows, and examines the three recent items
    assert reader.pages_read == [1]
    assert reader.watching_calls == [69877, 8632, 25130]
    assert not result.full_scan
    assert result.items_examined == 3
    refs = [view.view_ref for view in result.views]
    assert refs[0] == "movie:69877"
    assert refs[-1] == "movie:25130"
    assert len(refs) == 1 + 21 + 1  # every watched Black Mirror episode is re-examined, not only the recent ones
    # Black Mirror S3E1's own history row is on a page this run did not read: its fallback is unknown here,
    # which is why a value already sent is kept by the ledger (next test).
    s3e1 = next(view for view in result.views if view.view_ref == "episode:8632:3:1")
    assert (s3e1.watched_at, s3e1.watched_at_source) == (None, "unknown")


def test_a_watched_at_already_sent_wins_so_a_fallback_never_drifts() -> None:
    # Given the ledger's record of what was sent for three views (one unreadable)
    sent = {"episode:8632:3:1": "2019-07-13T06:40Z", "movie:113": "unknown", "movie:114": "not a time"}

    # When an incremental run resolves them again
    result = collect(library_reader(), since=at(1_500_000_000), sent_watched_at=sent)

    # Then the sent values win; an unreadable one is resolved afresh
    views = {view.view_ref: view for view in result.views}
    assert views["episode:8632:3:1"].watched_at == datetime(2019, 7, 13, 6, 40, tzinfo=UTC)
    assert views["episode:8632:3:1"].watched_at_source == "ledger"
    assert (views["movie:113"].watched_at, views["movie:113"].watched_at_source) == (None, "ledger")
    assert (views["movie:114"].watched_at, views["movie:114"].watched_at_source) == (at(1_526_413_371), "updated")


def test_a_failing_history_page_ends_the_collection() -> None:
    reader = library_reader(failing_page=2)

    with pytest.raises(ServiceUnavailable):
        collect(reader, since=None)


def test_a_history_row_without_an_item_id_makes_the_page_unusable() -> None:
    rows = [{"last_seen": 1_613_000_000, "item": {"title": "?"}, "media": {"id": 1}}]

    with pytest.raises(BadResponse, match="without a readable item id"):
        collect(LibraryReader(rows, {}), since=None)


def test_a_broken_row_older_than_the_watermark_is_not_reported() -> None:
    # Given the library read incrementally down to just above Rio 2's broken row
    result = collect(library_reader(), since=at(1_613_550_000))

    assert 7503 not in {failure.kinopub_id for failure in result.failures}


def _movie_rows(count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, watching = [], {}
    for n in range(1, count + 1):
        item = {"id": n, "title": f"Фильм {n} / Film {n}", "type": "movie", "imdb": 1_000_000 + n}
        rows.append({"last_seen": 1_613_000_000 - n, "item": item, "media": {"id": 10_000 + n}})
        videos = [{"id": 10_000 + n, "number": 1, "status": 1, "updated": 1_612_000_000 - n}]
        watching[str(n)] = {"status": 200, "item": {**item, "videos": videos}}
    return rows, watching


def test_history_is_paged_until_the_last_page_kinopub_reports() -> None:
    rows, watching = _movie_rows(120)
    reader = LibraryReader(rows, watching, page_size=HISTORY_PERPAGE)

    result = collect(reader, since=None)

    assert reader.pages_read == [1, 2, 3]
    assert len(result.views) == 120


def test_without_pagination_paging_stops_at_a_short_page() -> None:
    rows, watching = _movie_rows(60)
    reader = LibraryReader(rows, watching, page_size=HISTORY_PERPAGE, with_pagination=False)

    result = collect(reader, since=None)

    assert reader.pages_read == [1, 2]
    assert len(result.views) == 60


def test_paging_stops_at_an_empty_page_even_if_the_total_says_more() -> None:
    rows, watching = _movie_rows(10)

    class Overstating(LibraryReader):
        def history_page(self, page: int, perpage: int = HISTORY_PERPAGE) -> HistoryPage:
            real = super().history_page(page, perpage)
            assert real.pagination is not None
            return real.model_copy(update={"pagination": real.pagination.model_copy(update={"total": 99})})

    reader = Overstating(rows, watching, page_size=5)

    collect(reader, since=None)

    assert reader.pages_read == [1, 2, 3]


# --- the history order is checked, not trusted -------------------------------------------------------------


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logging.getLogger("kinotrakt").addHandler(handler)
    yield handler
    logging.getLogger("kinotrakt").removeHandler(handler)


def test_an_incremental_read_of_newest_first_history_stops_at_the_first_old_row(warnings: _Warnings) -> None:
    # Given 120 rows newest first, and a window that the second page leaves
    rows, watching = _movie_rows(120)
    reader = LibraryReader(rows, watching, page_size=HISTORY_PERPAGE)

    result = collect(reader, since=at(1_613_000_000 - 60))

    assert reader.pages_read == [1, 2]
    assert len(result.views) == 60
    assert warnings.messages == []


def test_a_misordered_history_is_read_to_the_end_and_the_run_says_so_once(warnings: _Warnings) -> None:
    # Given history whose first page reaches an old row, but a newer row follows it, and the third page is
    # out of order again
    rows, watching = _movie_rows(120)
    rows[10]["last_seen"], rows[70]["last_seen"] = rows[70]["last_seen"], rows[10]["last_seen"]
    rows[110]["last_seen"] = 1_613_000_000
    reader = LibraryReader(rows, watching, page_size=HISTORY_PERPAGE)

    # When an incremental run reads rows newer than the 20th
    result = collect(reader, since=at(1_613_000_000 - 20))

    # Then it reads every page instead of stopping at the first old row, so the newer rows after it count
    assert reader.pages_read == [1, 2, 3]
    assert sorted(v.kinopub_id for v in result.views) == [*range(1, 11), *range(12, 21), 71, 111]
    # and logs it once for the run
    assert warnings.messages == [
        "kinopub history is not newest first; reading every page instead of stopping at the window"
    ]


def test_a_broken_row_in_newest_first_history_is_judged_where_it_stands(warnings: _Warnings) -> None:
    # Given newest-first history whose 5th row cannot be read (its media is not an object), and rows after it
    rows, watching = _movie_rows(120)
    rows[4]["media"] = "not a media object"
    reader = LibraryReader(rows, watching, page_size=HISTORY_PERPAGE)

    # When an incremental run reads rows newer than the 20th
    result = collect(reader, since=at(1_613_000_000 - 20))

    # Then the order holds: it stops after the first page, says nothing about the order, and the row fails alone
    assert reader.pages_read == [1]
    assert warnings.messages == []
    assert [f.kinopub_id for f in result.failures] == [5]
    assert sorted(v.kinopub_id for v in result.views) == [*range(1, 5), *range(6, 21)]


def test_items_to_read_again_are_read_whatever_their_history_says() -> None:
    # Given an incremental window that holds only the newest three items, and two pinned items far older
    reader = library_reader()

    result = collect(reader, since=at(1_613_850_000), also=[113, 25130, 999_999])

    # Then the pinned items are read too (the one already in the window once), through the catalog when needed;
    # one Kinopub does not know is reported
    assert reader.watching_calls[:3] == [69877, 8632, 25130]
    assert 113 in reader.watching_calls
    assert reader.item_calls == [113, 999_999]
    assert {view.kinopub_id for view in result.views} >= {113, 25130}
    assert [f.kinopub_id for f in result.failures] == [999_999]


def test_a_pinned_item_is_read_even_by_a_full_scan_that_had_already_read_it() -> None:
    # Given a full scan spread over runs that finished item 113 before it was pinned
    reader = library_reader()

    collect(reader, since=None, skip={113, 114}, also=[113])

    # Then 113 is read again for its pin, 114 is not
    assert 113 in reader.watching_calls
    assert 114 not in reader.watching_calls


# --- the completed rules, property-based --------------------------------------------------------------------

ITEM = HistoryItem(id=42, title="Фильм / Film", type="movie", year=2020, imdb="tt0000042")
epochs = st.integers(min_value=EARLIEST, max_value=LATEST)
media_states = st.tuples(
    st.sampled_from([-1, 0, 1, "1", "0"]),  # status, sometimes a string
    st.one_of(st.none(), epochs),  # updated
    st.one_of(st.none(), epochs),  # last_seen of this media's history row, if it has one
)


def _state(
    videos: list[tuple[object, int | None, int | None]],
) -> tuple[WatchingItem, dict[tuple[int, int], datetime]]:
    body = {
        "id": ITEM.id,
        "type": "movie",
        "videos": [
            {"id": 100 + n, "number": n + 1, "status": status, "updated": updated}
            for n, (status, updated, _) in enumerate(videos)
        ],
    }
    last_seen = {(ITEM.id, 100 + n): at(seen) for n, (_, _, seen) in enumerate(videos) if seen is not None}
    return WatchingItem.model_validate(body), last_seen


@given(st.lists(media_states, min_size=1, max_size=6))
def test_a_movie_is_one_view_only_when_every_video_is_watched(
    videos: list[tuple[object, int | None, int | None]],
) -> None:
    # Given any mix of video states
    state, last_seen = _state(videos)

    # When the movie rule runs
    view = movie_view(ITEM, state, last_seen)

    # Then a view exists exactly when every video has status 1
    watched = all(int(str(status)) == 1 for status, _, _ in videos)
    assert (view is not None) == watched
    if view is None:
        return
    # at the newest `updated`; else the newest history last_seen of its videos; else unknown - never "now"
    updated = [at(u) for _, u, _ in videos if u is not None]
    seen = [at(s) for _, _, s in videos if s is not None]
    if updated:
        assert (view.watched_at, view.watched_at_source) == (max(updated), "updated")
    elif seen:
        assert (view.watched_at, view.watched_at_source) == (max(seen), "last_seen")
    else:
        assert (view.watched_at, view.watched_at_source) == (None, "unknown")
    known = updated + seen
    assert view.watched_at is None or view.watched_at <= max(known)
    assert view.media_id in {video.id for video in state.videos}
    assert (view.kind, view.imdb, view.view_ref) == ("movie", "tt0000042", "movie:42")


def test_a_movie_like_item_without_videos_is_a_failure_not_a_view() -> None:
    with pytest.raises(BadResponse, match="no videos"):
        movie_view(ITEM, WatchingItem(id=42, videos=[]), {})


season_states = st.lists(st.lists(media_states, min_size=0, max_size=5), min_size=1, max_size=4)


@given(season_states)
def test_episode_views_are_exactly_the_watched_episodes_each_at_its_own_time(
    seasons: list[list[tuple[object, int | None, int | None]]],
) -> None:
    # Given any series state (seasons numbered 1.., episodes 1..)
    series = HistoryItem(id=8632, title="Черное зеркало / Black Mirror", type="serial", imdb="tt2085059")
    body = {
        "id": 8632,
        "seasons": [
            {
                "number": s + 1,
                "episodes": [
                    {"id": 1000 * (s + 1) + e, "number": e + 1, "status": status, "updated": updated}
                    for e, (status, updated, _) in enumerate(episodes)
                ],
            }
            for s, episodes in enumerate(seasons)
        ],
    }
    last_seen = {
        (8632, 1000 * (s + 1) + e): at(seen)
        for s, episodes in enumerate(seasons)
        for e, (_, _, seen) in enumerate(episodes)
        if seen is not None
    }
    state = WatchingItem.model_validate(body)
    if not any(seasons):
        with pytest.raises(BadResponse):
            episode_views(series, state, last_seen)
        return

    # When the episode rule runs
    views = episode_views(series, state, last_seen)

    # Then there is one view per episode with status 1, at its updated, else its last_seen, else unknown
    expected = {
        (s + 1, e + 1): (
            at(updated) if updated is not None else (at(seen) if seen is not None else None),
            "updated" if updated is not None else ("last_seen" if seen is not None else "unknown"),
        )
        for s, episodes in enumerate(seasons)
        for e, (status, updated, seen) in enumerate(episodes)
        if int(str(status)) == 1
    }
    assert {(v.season, v.episode): (v.watched_at, v.watched_at_source) for v in views} == expected
    assert len(views) == len(expected)
    assert all(view.imdb == "tt2085059" and view.kind == "episode" for view in views)


def test_the_vienna_documovie_counts_only_once_all_three_parts_are_watched() -> None:
    # Given the recorded 3-part documovie, fully watched, and a variant with part 2 still in progress
    vienna = HistoryItem(
        id=25130, title="Вена. Империя, династия и мечта / Vienna: Empire, Dynasty and Dream", type="documovie"
    )
    watched = WatchingResponse.model_validate(LIBRARY["watching"]["25130"]).item
    in_progress = watched.model_copy(
        update={"videos": [watched.videos[0], watched.videos[1].model_copy(update={"status": 0}), watched.videos[2]]}
    )

    # Then the watched one is one movie view at the newest part's time, the variant no view at all
    view = movie_view(vienna, watched, {})
    assert view is not None
    assert (view.watched_at, view.media_id) == (at(1_613_861_969), 68995)
    assert movie_view(vienna, in_progress, {}) is None
