"""The audit's pure rules: what an exact duplicate is, how the history is cut into windows of whole minutes, how a
group is judged again on a fresh read, how removals are batched, and the forms that outlive a run (keys read
back, the progress document, the stored report)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinotrakt.audit.history import DuplicateGroup, Play, exact_duplicates, play_of, read_window, regroup
from kinotrakt.audit.progress import AuditProgress, DuplicateNote, MissingNote, Suspect, ViewRecord
from kinotrakt.audit.removal import REMOVE_BATCH, _take
from kinotrakt.audit.report import AuditReport
from kinotrakt.sync import keys
from kinotrakt.sync.mapping import MappedView
from kinotrakt.sync.model import CompletedView
from kinotrakt.sync.report import SyncReport
from kinotrakt.trakt.client import HistoryPage
from kinotrakt.trakt.models import HistoryItem, HistoryKind

WHEN = datetime(2025, 6, 15, 20, 15, 7, tzinfo=UTC)
EPOCH = "1970-01-01T00:00:00.000Z"
MODERN = datetime(1971, 1, 1)  # noqa: DTZ001 - hypothesis takes naive bounds and applies the timezone itself


def movie_play(history_id: int, trakt_id: int, when: datetime | str, imdb: str | None = None) -> HistoryItem:
    watched = when if isinstance(when, str) else when.isoformat()
    ids: dict[str, Any] = {"trakt": trakt_id, "imdb": imdb}
    movie = {"title": f"Movie {trakt_id}", "year": 2010, "ids": ids}
    return HistoryItem.model_validate(
        {"id": history_id, "watched_at": watched, "action": "scrobble", "type": "movie", "movie": movie}
    )


def episode_play(history_id: int, trakt_id: int, when: datetime) -> HistoryItem:
    return HistoryItem.model_validate(
        {
            "id": history_id,
            "watched_at": when.isoformat(),
            "action": "watch",
            "type": "episode",
            "episode": {"season": 1, "number": 2, "ids": {"trakt": trakt_id}},
            "show": {"title": "Black Mirror", "year": 2011, "ids": {"trakt": 41793}},
        }
    )


# --- exact duplicates -----------------------------------------------------------------------------------------


def test_plays_of_one_item_in_one_minute_are_duplicates_whatever_their_seconds() -> None:
    plays = [play_of(movie_play(1, 5, WHEN)), play_of(movie_play(7, 5, WHEN + timedelta(seconds=40)))]
    [group] = exact_duplicates(plays)
    assert (group.kept, group.extra, group.minute) == (1, (7,), "2025-06-15T20:15Z")


def test_a_rewatch_another_item_and_a_play_without_a_trakt_id_are_never_duplicates() -> None:
    plays = [
        play_of(movie_play(1, 5, WHEN)),
        play_of(movie_play(2, 5, WHEN + timedelta(minutes=1))),  # a rewatch: the next minute
        play_of(movie_play(3, 6, WHEN)),  # another movie, same minute
        play_of(episode_play(4, 5, WHEN)),  # an episode whose Trakt id is the movie's
    ]
    no_id = HistoryItem.model_validate(
        {"id": 9, "watched_at": WHEN.isoformat(), "action": "watch", "type": "movie", "movie": {"title": "?"}}
    )
    plays += [play_of(no_id), play_of(no_id.model_copy(update={"id": 10}))]
    assert exact_duplicates(plays) == []


def test_unknown_date_plays_are_duplicates_per_item_and_never_of_a_dated_play() -> None:
    plays = [
        play_of(movie_play(1, 5, WHEN)),
        play_of(movie_play(2, 5, EPOCH)),
        play_of(movie_play(3, 5, EPOCH)),
        play_of(movie_play(4, 6, EPOCH)),
    ]
    [group] = exact_duplicates(plays)
    assert (group.kept, group.extra, group.minute) == (2, (3,), "unknown")


def test_the_oldest_play_is_kept_whatever_order_trakt_lists_them_in() -> None:
    plays = [play_of(movie_play(i, 5, WHEN)) for i in (30, 12, 45, 20)]
    [group] = exact_duplicates(plays)
    assert (group.kept, group.extra) == (12, (20, 30, 45))


def test_a_movie_play_answers_to_its_imdb_and_its_trakt_key() -> None:
    play = play_of(movie_play(1, 16662, WHEN, imdb="tt1375666"))
    assert play.keys == {"movie:tt1375666:2025-06-15T20:15Z", "movie:trakt:16662:2025-06-15T20:15Z"}
    assert play.items == {"movie:tt1375666", "movie:trakt:16662"}
    assert play.label == "Movie 16662 (2010)"
    assert play_of(episode_play(2, 9, WHEN)).label == "Black Mirror S01E02"


def test_a_group_read_again_keeps_the_oldest_play_still_there_and_only_its_own_extras() -> None:
    group = DuplicateGroup("movie:trakt:5:2025-06-15T20:15Z", "movie", "M", WHEN, 10, (11, 12))
    # The user removed the kept play since, and another app added one more in the same minute
    present = [play_of(movie_play(i, 5, WHEN)) for i in (11, 12, 99)]
    fresh = regroup(group, present)
    assert fresh is not None
    assert (fresh.kept, fresh.extra) == (11, (12,))
    # Nothing left to remove once one play of the viewing is left
    assert regroup(group, present[:1]) is None


def test_removal_requests_hold_at_most_100_ids_and_split_only_a_group_larger_than_that() -> None:
    big = DuplicateGroup("a", "movie", "A", WHEN, 1, tuple(range(100, 330)))
    small = [DuplicateGroup(f"s{n}", "movie", "S", WHEN, n, (n + 1000,)) for n in range(30)]
    pending = [*small, big]
    batches = []
    while pending:
        batch, pending = _take(pending)
        batches.append(batch)
    sizes = [sum(len(g.extra) for g in batch) for batch in batches]
    assert max(sizes) == REMOVE_BATCH
    assert sum(sizes) == 30 + 230
    sent = [i for batch in batches for g in batch for i in g.extra]
    assert sorted(sent) == sorted([*range(100, 330), *(n + 1000 for n in range(30))])
    assert all(g.kept == 1 for batch in batches for g in batch if g.identity == "a")


# --- windows of whole minutes ---------------------------------------------------------------------------------


class PagedHistory:
    """A history served newest first in pages of ``size``, as ``/sync/history`` pages it."""

    def __init__(self, items: list[HistoryItem], size: int) -> None:
        self.items = sorted(items, key=lambda item: (item.watched_at, item.id), reverse=True)
        self.size = size
        self.asked: list[tuple[datetime | None, int]] = []

    def history_page(self, kind: HistoryKind, *, end_at: datetime | None, page: int) -> HistoryPage:
        self.asked.append((end_at, page))
        selected = [item for item in self.items if end_at is None or item.watched_at <= end_at]
        chunk = selected[(page - 1) * self.size : page * self.size]
        return HistoryPage(chunk, page * self.size >= len(selected))


@given(
    minutes=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60),
    size=st.integers(min_value=1, max_value=7),
)
def test_windows_cover_every_play_once_and_never_split_a_minute(minutes: list[int], size: int) -> None:
    items = [movie_play(i + 1, 5, WHEN + timedelta(minutes=m, seconds=i % 60)) for i, m in enumerate(minutes)]
    history = PagedHistory(items, size)
    seen: list[Play] = []
    end_at = None
    for _ in range(len(items) + 1):
        window = read_window(history, "movies", end_at)
        seen += window.plays
        # a minute is in one window, whole
        for play in window.plays:
            assert window.covers(play.watched_at)
        if window.until is None:
            break
        end_at = window.next_end_at
    assert sorted(play.history_id for play in seen) == sorted(item.id for item in items)
    by_minute: dict[str, set[int]] = {}
    for item in items:
        by_minute.setdefault(item.watched_at.strftime("%H:%M"), set()).add(item.id)
    windows_of: dict[str, int] = {}
    for play in seen:
        windows_of[play.watched_at.strftime("%H:%M")] = windows_of.get(play.watched_at.strftime("%H:%M"), 0) + 1
    assert windows_of == {minute: len(ids) for minute, ids in by_minute.items()}


def test_a_page_that_is_one_minute_is_followed_by_the_next_until_the_minute_ends() -> None:
    older = [movie_play(9, 6, WHEN - timedelta(minutes=3)), movie_play(10, 6, WHEN - timedelta(minutes=5))]
    history = PagedHistory([*(movie_play(i, 5, WHEN) for i in range(1, 6)), *older], 2)
    window = read_window(history, "movies", None)
    assert sorted(play.history_id for play in window.plays) == [1, 2, 3, 4, 5]
    assert window.until == WHEN.replace(second=0) - timedelta(minutes=3)
    assert history.asked == [(None, 1), (None, 2), (None, 3)]
    last = read_window(history, "movies", window.next_end_at)
    assert ([play.history_id for play in last.plays], last.until) == ([9, 10], None)


# --- forms that outlive a run -------------------------------------------------------------------------------


@given(
    trakt_id=st.integers(min_value=1, max_value=10**9),
    imdb=st.one_of(st.none(), st.integers(min_value=1, max_value=99_999_999).map(lambda n: f"tt{n:07d}")),
    when=st.one_of(st.none(), st.datetimes(min_value=MODERN, timezones=st.just(UTC))),
)
def test_every_key_reads_back_into_the_ids_it_was_built_with(trakt_id: int, imdb: str | None, when: datetime) -> None:
    minute = keys.minute_or_unknown(when)
    movie = keys.parse_key(keys.movie_key(when, imdb=imdb, trakt_id=trakt_id))
    assert (movie.kind, movie.minute) == ("movie", minute)
    assert (movie.imdb, movie.trakt_id) == ((imdb, None) if imdb else (None, trakt_id))
    episode = keys.parse_key(keys.episode_key(when, trakt_episode_id=trakt_id))
    assert (episode.kind, episode.trakt_id, episode.minute, episode.item) == (
        "episode",
        trakt_id,
        minute,
        f"episode:{trakt_id}",
    )


@pytest.mark.parametrize("key", ["", "movie:tt1", "show:1:unknown", "episode:x:unknown", "movie:tt1:2025-06-15"])
def test_what_is_not_a_dedupe_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        keys.parse_key(key)


def test_trakts_stand_in_for_an_unknown_date_is_unknown_and_only_it() -> None:
    assert keys.play_time(keys.UNKNOWN_PLAY_TIME) is None
    assert keys.play_time(WHEN) == WHEN
    assert keys.view_ref_item("episode:201:1:2:1") == 201
    with pytest.raises(ValueError, match=r".+"):
        keys.view_ref_item("movie")


def record(kinopub_id: int = 101, key: str = "movie:tt1375666:2025-06-15T20:15Z") -> ViewRecord:
    view = CompletedView(
        kind="movie",
        kinopub_id=kinopub_id,
        item_type="movie",
        title="Начало / Inception",
        original_title="Inception",
        year=2010,
        imdb="tt1375666",
        watched_at=WHEN,
        watched_at_source="updated",
    )
    return ViewRecord.of(MappedView(view, key, movie_imdb="tt1375666"))


def test_a_stored_view_sends_the_play_the_sync_would_send() -> None:
    stored = record()
    assert stored.mapped().payload("x") == {"ids": {"imdb": "tt1375666"}, "watched_at": "x"}
    assert stored.label == "Начало / Inception (2010)"
    by_trakt = record(key="movie:trakt:16662:2025-06-15T20:15Z").mapped()
    assert (by_trakt.movie_trakt_id, by_trakt.payload("x")["ids"]) == (16662, {"trakt": 16662})
    assert record(key="episode:73640:unknown").mapped().episode_trakt_id == 73640


def test_the_progress_document_round_trips_and_another_version_starts_afresh() -> None:
    progress = AuditProgress(audit_id="a1", started_at=WHEN, runs=2, kinopub_done=True, examined={1, 2})
    progress.views = [record()]
    progress.suspects = [Suspect("episode:9:2025-06-15T20:15Z", "episode:5:1:2", "no longer finished on Kinopub")]
    progress.duplicates = [DuplicateNote("M", "movie", "movie:trakt:5:unknown", WHEN, "unknown", 1, (2, 3), (2,))]
    film = dataclasses.replace(record(103), earliest_part=WHEN - timedelta(hours=3))  # a film of several parts
    progress.missing = [MissingNote(record(102), "removed_on_trakt", "resent"), MissingNote(film, "never_sent", None)]
    progress.items_with_plays = {"movie:tt1": "M (2010)"}
    progress.history["movies"].end_at = WHEN
    progress.history["episodes"].done = True
    document = progress.to_json()
    again = AuditProgress.from_json(document)
    assert again == progress
    assert again is not None
    assert again.missing[1].view.view().part_updates == (WHEN - timedelta(hours=3), WHEN)
    assert AuditProgress.from_json({**document, "version": 0}) is None
    assert AuditProgress.from_json({**document, "views": [["show", 1]]}) is None


def test_stored_audit_reports_read_back_and_are_no_sync_reports() -> None:
    report = AuditReport(run_id="r", started_at=WHEN, duplicates_found=3, duplicates_removed=2, fix=["duplicates"])
    report.finished_at = WHEN
    stored = report.to_dict()
    assert stored["action"] == "audit"
    assert AuditReport.from_stored(stored) == report
    assert SyncReport.from_stored(stored) is None
    assert AuditReport.from_stored({"status": "ok", "started_at": "2025-01-01T00:00:00Z"}) is None
    assert AuditReport.from_stored({"action": "audit", "status": "?"}) is None
