"""The benchmark's lower bound (bench/bounds.py): the fewest calls and the least time the data allows.

If the bound is wrong, every ratio ``make bench`` prints is wrong, so each rule of the bound is checked on a
small hand-made dataset whose answer can be counted on one's fingers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.bounds import (
    HISTORY_PERPAGE,
    Bound,
    Dataset,
    Row,
    View,
    history_window,
    lower_bound,
    min_limits_only_seconds,
    min_seconds,
    min_sequential_seconds,
    ratio,
    sum_bounds,
    unfinished_items,
)

DAY = 86_400
NOW = 1_800_000_000


def rows_newest_first(count: int, *, start: int = NOW, step: int = 60, items: int | None = None) -> list[Row]:
    return [Row(item_id=i % (items or count), last_seen=start - i * step) for i in range(count)]


def test_a_full_scan_reads_every_page_and_each_item_once() -> None:
    # Given 120 history rows of 40 items, one item's only row deleted
    rows = rows_newest_first(120, items=40)
    rows[5] = Row(item_id=999, last_seen=rows[5].last_seen, deleted=True)
    # When the whole history is read (first run)
    pages, items = history_window(rows, since=None)
    # Then every page is read, and every item with a live row is examined once; the deleted one is not
    assert pages == 3
    assert len(items) == 40
    assert 999 not in items


def test_an_incremental_run_stops_at_the_page_holding_the_first_older_row() -> None:
    rows = rows_newest_first(200)
    for newer, expected_pages in ((0, 1), (49, 1), (50, 2), (51, 2), (120, 3)):
        # Given `newer` rows newer than the window start
        since = rows[newer].last_seen + 1 if newer < len(rows) else 0
        # When the window is read
        pages, items = history_window(rows, since=since)
        # Then reading stops on the page where an older row shows up (it must be seen to stop)
        assert (pages, len(items)) == (expected_pages, newer), newer


@given(
    st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=300),
    st.integers(0, 300),
)
def test_the_pages_read_always_cover_every_row_of_the_window(spec: list[tuple[int, bool]], cut: int) -> None:
    rows = [Row(item_id, NOW - i, deleted) for i, (item_id, deleted) in enumerate(spec)]
    since = NOW - cut
    pages, items = history_window(rows, since=since)
    newer = [row for row in rows if row.last_seen >= since]
    # Every row of the window is on a page that is read ...
    assert pages * HISTORY_PERPAGE >= len(newer)
    # ... and reading stops no later than the first page that shows an older row (or the last page).
    assert pages <= max(1, math.ceil(len(rows) / HISTORY_PERPAGE))
    assert set(items) == {row.item_id for row in newer if not row.deleted}


def episode(item_id: int, episode_id: int, at: int, show: str) -> View:
    return View(item_id, "episode", at, f"episode:{episode_id}:{at}", f"show:{show}")


def movie(item_id: int, at: int, imdb: str | None) -> View:
    # Without an IMDb id the data cannot say which Trakt movie it is: no key, never counted as a post.
    key = f"movie:{imdb}:{at}" if imdb else None
    return View(item_id, "movie", at, key, None if imdb else f"title:{item_id}")


def library() -> Dataset:
    """Two shows (items 1, 2; 300 and 10 finished episodes), a movie with an IMDb id (3), one without (4).
    Trakt already holds 500 episode plays from long ago, one of show 1's episodes at the same minute, and
    one movie play."""
    at = NOW - 30 * DAY
    views = [
        *(episode(1, 10_000 + n, at + n * 3600, "tt1") for n in range(300)),
        *(episode(2, 20_000 + n, at + n * 3600, "tt2") for n in range(10)),
        movie(3, at, "tt3"),
        movie(4, at, None),
    ]
    rows = [Row(1, NOW - 10), Row(2, NOW - 20), Row(3, NOW - 30), Row(4, NOW - 40)]
    old_plays = [NOW - 400 * DAY + n * 60 for n in range(500)]
    on_trakt = at + 5 * 3600
    return Dataset(
        rows=rows,
        views=views,
        trakt_minutes={"episode": sorted([*old_plays, on_trakt]), "movie": [NOW - 400 * DAY]},
        trakt_keys=frozenset({f"episode:{10_005}:{on_trakt}"}),
    )


def test_a_backfill_needs_a_lookup_per_show_the_window_and_a_post_per_batch() -> None:
    # When nothing has been synced yet
    bound = lower_bound(library(), since=None, ledger_keys=set(), cached_lookups=set(), batch_size=100)
    # Then Kinopub: one page (4 rows), one /v1/watching per item
    assert (bound.kinopub_history_pages, bound.kinopub_watching) == (1, 4)
    # And Trakt: one season table per show (asked by its IMDb id, no search), a text search for the movie
    # without IMDb
    assert (bound.trakt_searches, bound.trakt_seasons) == (1, 2)
    # And the remote index: only the plays from two days before the oldest candidate on (1 page of episodes
    # holding the one recent play, 1 page of movies that comes back empty), not the 500 old plays
    assert bound.trakt_history_pages == 2
    # And 312 views, one already on Trakt and one Trakt cannot be told about: 310 new plays in 4 batches
    assert (bound.fresh_views, bound.new_plays, bound.trakt_posts) == (312, 310, 4)
    assert bound.trakt == 1 + 2 + 2 + 4
    assert bound.kinopub == 5


def test_the_remote_index_reads_every_page_of_the_window() -> None:
    data = library()
    # Given the candidates start before the 500 old plays
    old = View(1, "episode", NOW - 401 * DAY, "episode:1:old", "show:tt1")
    data = Dataset(data.rows, [*data.views, old], data.trakt_minutes, data.trakt_keys)
    bound = lower_bound(data, since=None, ledger_keys=set(), cached_lookups=set(), batch_size=100)
    # Then 501 episode plays are in the window: three pages of 250
    assert bound.trakt_history_pages == 3 + 1


def test_nothing_new_needs_no_trakt_call_at_all() -> None:
    data = library()
    # Given every view of the library is in the ledger (the movie without IMDb is a cached miss)
    sent = {v.key for v in data.views if v.key is not None}
    # When the same items are read again, with the Trakt token due for a refresh
    bound = lower_bound(
        data, since=None, ledger_keys=sent, cached_lookups={"title:4"}, batch_size=100, refresh={"trakt": True}
    )
    # Then Kinopub is read, Trakt is not even asked (not even for a token refresh)
    assert bound.kinopub == 5
    assert bound.trakt == 0


def test_cached_mappings_and_a_due_refresh() -> None:
    data = library()
    sent = {v.key for v in data.views if v.key is not None and v.item_id != 2}
    # Given show 2's ten episodes not sent yet, its mapping cached, and the Trakt token due for a refresh
    bound = lower_bound(
        data,
        since=NOW - 25,
        ledger_keys=sent,
        cached_lookups={"show:tt1", "show:tt2"},
        batch_size=100,
        refresh={"trakt": True},
    )
    # Then Kinopub: one page, items 1 and 2 (newer than the window start); Trakt: no lookup, one index page,
    # one POST, one refresh
    assert (bound.kinopub_history_pages, bound.kinopub_watching) == (1, 2)
    assert (bound.trakt_searches, bound.trakt_seasons, bound.trakt_history_pages) == (0, 0, 1)
    assert (bound.new_plays, bound.trakt_posts, bound.trakt_refresh) == (10, 1, 1)


def test_the_time_floor_is_what_trakts_limits_allow() -> None:
    # Given a backfill of 2,000 movies (IMDb ids: no lookup) and 600 shows of 30 new plays each (one GET per
    # show), a remote index of 9 pages and batches of 100: 609 GETs and 200 writes
    bound = Bound(
        trakt_seasons=600,
        trakt_history_pages=9,
        trakt_posts=200,
        ready_plays=2000,
        lookup_plays=((1, 30),) * 600,
        batch_size=100,
    )
    # Then the index and 491 shows fit in the first 500 GETs: 16,730 plays, 167 writes from t=0; the other
    # 109 shows wait for the next 5-minute window, and their 33 writes follow from t=300
    assert min_seconds(bound) == 300 + 32
    # Ignoring that a play needs its show looked up first, the two budgets alone would allow 300 s
    assert min_limits_only_seconds(bound) == 300.0
    # A client that finishes every GET before its first write waits for both, one after the other
    assert min_sequential_seconds(bound) == 300 + 199
    # Nothing to write and under 500 GETs: no wait at all
    assert min_seconds(Bound(trakt_seasons=499, lookup_plays=((1, 0),) * 499)) == 0.0
    # 501 GETs: the last waits for the window
    assert min_seconds(Bound(trakt_seasons=501, lookup_plays=((1, 0),) * 501)) == 300.0
    # With a latency model every call also costs its round trip, one at a time
    slow = Bound(kinopub_history_pages=400, kinopub_watching=2600, trakt_posts=2, ready_plays=150)
    assert min_seconds(slow, latency={"kinopub": 0.2, "trakt": 0.2}) == pytest.approx((3000 + 2) * 0.2)


def test_plays_that_need_no_lookup_are_written_first() -> None:
    # Given 300 plays that need nothing and one show (1 GET) freeing 100 more: 4 writes, back to back
    bound = Bound(trakt_seasons=1, trakt_posts=4, ready_plays=300, lookup_plays=((1, 100),), batch_size=100)
    assert min_seconds(bound) == 3.0


def test_the_backfill_bound_counts_the_plays_each_lookup_frees() -> None:
    bound = lower_bound(library(), since=None, ledger_keys=set(), cached_lookups=set(), batch_size=100)
    # Show 1 frees its 299 new plays (one is on Trakt already), show 2 its 10, the movie without IMDb none;
    # the movie with an IMDb id needs no lookup
    assert sorted(bound.lookup_plays) == [(1, 0), (1, 10), (1, 299)]
    assert bound.ready_plays == 1
    assert bound.ready_plays + sum(plays for _, plays in bound.lookup_plays) == bound.new_plays


def test_ratios_read_one_when_nothing_was_needed_and_nothing_done() -> None:
    assert ratio(0, 0, unit=1) == 1.0
    assert ratio(12, 12, unit=1) == 1.0
    assert ratio(14, 12, unit=1) == 14 / 12
    # A zero floor counts as one unit, so doing something unneeded shows up instead of dividing by zero
    assert ratio(2, 0, unit=1) == 2.0
    assert ratio(0.5, 0, unit=1.0) == 0.5


def test_the_daily_rescan_reads_the_items_that_can_still_change_too() -> None:
    # Given everything sent after the backfill, but show 2 with an episode still to come (not every episode
    # watched) and the movie without an IMDb id unmatched (no key: never in the ledger)
    data = library()
    data = Dataset(data.rows, data.views, data.trakt_minutes, data.trakt_keys, whole=frozenset({1, 3, 4}))
    sent = {v.key for v in data.views if v.key is not None}
    # When the rescan comes, a day later, with no history row in the window
    bound = lower_bound(data, since=NOW + 1, ledger_keys=sent, cached_lookups={"title:4"}, batch_size=100, rescan=True)
    # Then it pages the window (one page) and reads show 2 and the unmatched movie, not the complete items
    assert unfinished_items(data, sent) == [2, 4]
    assert (bound.kinopub_history_pages, bound.kinopub_watching) == (1, 2)
    assert bound.trakt == 0
    # And an hourly run of the same day reads only its window
    hourly = lower_bound(data, since=NOW + 1, ledger_keys=sent, cached_lookups={"title:4"}, batch_size=100)
    assert (hourly.kinopub_history_pages, hourly.kinopub_watching) == (1, 0)


def test_a_day_of_runs_adds_up_each_runs_bound() -> None:
    quiet = Bound(kinopub_history_pages=1)
    rescan = Bound(kinopub_history_pages=1, kinopub_watching=636, lookups=("show:tt9",), lookup_plays=((1, 3),))
    day = sum_bounds([quiet] * 23 + [rescan])
    assert (day.kinopub, day.trakt) == (24 + 636, 0)
    assert day.lookups == ("show:tt9",)
    assert day.lookup_plays == ((1, 3),)
    assert sum_bounds([]) == Bound()
