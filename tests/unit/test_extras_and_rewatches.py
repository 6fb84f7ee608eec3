"""Extras do not block a movie, and a re-opened part is not a rewatch (issue 12, points 1 and 2).

Kinopub's ``videos[]`` can hold trailers and clips next to the film, and its ``updated`` is "the last viewing",
not "finished again". The rules: a video is an extra when its duration is known and under 40% of the item's
longest video; the item is complete when every other video (a feature part) has status 1, at the latest
``updated`` of its parts. A view already sent is a new play only when every feature part was watched again
after the play the ledger sent for it; ``REWATCHES=ignore`` sends each view at most once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kinotrakt.clock import minute_z
from kinotrakt.kinopub.models import HistoryItem, WatchingItem
from kinotrakt.sync.collect import EXTRA_SHARE, feature_parts, movie_view, settle_with_ledger
from kinotrakt.sync.keys import minute_or_unknown
from kinotrakt.sync.model import CompletedView, Rewatches

ITEM = HistoryItem(id=25130, title="Вена / Vienna", type="documovie", year=2018, imdb="tt9000001")
T0 = datetime(2025, 3, 1, 20, 0, 17, tzinfo=UTC)


def video(number: int, duration: int | None, status: int, updated: datetime | None) -> dict[str, Any]:
    return {
        "id": 1000 + number,
        "number": number,
        "duration": duration,
        "status": status,
        "updated": None if updated is None else int(updated.timestamp()),
    }


def state(*videos: dict[str, Any]) -> WatchingItem:
    return WatchingItem.model_validate({"id": ITEM.id, "type": "documovie", "videos": list(videos)})


# --- extras -----------------------------------------------------------------------------------------------


def test_a_film_with_an_unopened_trailer_is_complete_at_the_films_time() -> None:
    # Given a 2-hour film watched, and its 2-minute trailer never opened (status -1 forever)
    watching = state(video(1, 7200, 1, T0), video(2, 120, -1, None))

    # When the movie rule runs
    view = movie_view(ITEM, watching, {})

    # Then the film is one view, at the film's own time
    assert view is not None
    assert (view.watched_at, view.media_id, view.part_updates) == (T0, 1001, (T0,))


def test_a_trailer_opened_after_the_film_does_not_move_its_time() -> None:
    watching = state(video(1, 7200, 1, T0), video(2, 150, 1, T0 + timedelta(days=30)))

    view = movie_view(ITEM, watching, {})

    assert view is not None
    assert view.watched_at == T0


def test_a_two_part_film_with_part_two_in_progress_is_not_complete() -> None:
    watching = state(video(1, 3600, 1, T0), video(2, 3500, 0, T0 + timedelta(hours=1)), video(3, 90, 1, T0))

    assert movie_view(ITEM, watching, {}) is None


def test_a_video_of_unknown_length_is_a_part_so_it_can_only_hold_the_view_back() -> None:
    # Given a film watched and a second video whose duration Kinopub did not give, never opened
    watching = state(video(1, 7200, 1, T0), video(2, None, -1, None))

    # Then it is not treated as an extra: the item is not complete
    assert [v.number for v in feature_parts(watching.videos)] == [1, 2]
    assert movie_view(ITEM, watching, {}) is None


def test_the_forty_percent_line() -> None:
    videos = state(video(1, 1000, 1, T0), video(2, 400, 1, T0), video(3, 399, 1, T0)).videos

    assert [v.number for v in feature_parts(videos)] == [1, 2]


# --- rewatches --------------------------------------------------------------------------------------------


def three_parts(part1: datetime, part2: datetime, part3: datetime) -> CompletedView:
    view = movie_view(ITEM, state(video(1, 2919, 1, part1), video(2, 2992, 1, part2), video(3, 2953, 1, part3)), {})
    assert view is not None
    return view


def test_one_part_reopened_after_the_play_was_sent_is_not_a_rewatch() -> None:
    # Given the Vienna documentary sent at its parts' time, then part 1 re-opened years later
    sent = minute_z(T0)
    reopened = three_parts(T0 + timedelta(days=800), T0, T0)

    # When the ledger's last play is settled against it
    view, kept = settle_with_ledger(reopened, sent, "new_play")

    # Then the play already sent stands, and the reason says which parts were not watched again
    assert (minute_or_unknown(view.watched_at), view.watched_at_source) == (sent, "ledger")
    assert kept == f"part 1 watched again, part 2, 3 not since the play sent for {sent}: not a rewatch"


def test_every_part_watched_again_is_a_rewatch_at_the_latest_part() -> None:
    sent = minute_z(T0)
    again = three_parts(T0 + timedelta(days=10), T0 + timedelta(days=11), T0 + timedelta(days=12, minutes=3))

    view, kept = settle_with_ledger(again, sent, "new_play")

    assert (view.watched_at, view.watched_at_source, kept) == (T0 + timedelta(days=12, minutes=3), "updated", None)


def test_a_part_watched_again_in_the_minute_of_the_play_does_not_count() -> None:
    sent = minute_z(T0)
    again = three_parts(T0 + timedelta(days=10), T0 + timedelta(days=11), T0.replace(second=59))

    view, kept = settle_with_ledger(again, sent, "new_play")

    assert view.watched_at_source == "ledger"
    assert kept is not None


def test_one_video_watched_again_later_is_a_rewatch_and_an_earlier_time_is_not() -> None:
    film = movie_view(ITEM, state(video(1, 7200, 1, T0 + timedelta(days=3))), {})
    older = movie_view(ITEM, state(video(1, 7200, 1, T0 - timedelta(days=3))), {})
    assert film is not None
    assert older is not None

    assert settle_with_ledger(film, minute_z(T0), "new_play") == (film, None)
    view, kept = settle_with_ledger(older, minute_z(T0), "new_play")
    assert view.watched_at_source == "ledger"
    assert (
        kept
        == f"Kinopub's time moved to {minute_z(T0 - timedelta(days=3))} but not past the play sent for {minute_z(T0)}"
    )


def test_rewatches_ignore_sends_each_view_at_most_once() -> None:
    film = movie_view(ITEM, state(video(1, 7200, 1, T0 + timedelta(days=3))), {})
    assert film is not None

    view, kept = settle_with_ledger(film, minute_z(T0), "ignore")

    assert (minute_or_unknown(view.watched_at), view.watched_at_source, kept) == (minute_z(T0), "ledger", None)
    assert settle_with_ledger(film, None, "ignore") == (film, None)


def test_a_view_sent_with_an_unknown_time_is_a_rewatch_once_every_part_has_a_time() -> None:
    partly = dataclasses.replace(three_parts(T0, T0, T0), part_updates=(T0, None, T0))

    assert settle_with_ledger(three_parts(T0, T0, T0), "unknown", "new_play")[0].watched_at == T0
    assert settle_with_ledger(partly, "unknown", "new_play")[0].watched_at_source == "ledger"


# --- the property: any mix of parts, extras, statuses and times, run after run ----------------------------


@dataclass
class Library:
    """One movie-like item on Kinopub, as the tests change it between runs."""

    features: list[dict[str, Any]]
    extras: list[dict[str, Any]]
    # What a correct sync must have done: plays at these minutes, in order.
    expected: list[str] = field(default_factory=list)
    reopened_since_play: set[int] = field(default_factory=set)


def _videos(features: int, extras: list[float]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    parts = [video(n, 3000 + 37 * n, -1, None) for n in range(1, features + 1)]
    longest = max(part["duration"] for part in parts)
    extra = [video(features + n, max(1, int(share * longest)), -1, None) for n, share in enumerate(extras, 1)]
    return parts, extra


events = st.lists(
    st.tuples(
        st.sampled_from(["watch_part", "start_part", "open_extra", "run"]),
        st.integers(min_value=0, max_value=5),  # which part / extra
        st.integers(min_value=0, max_value=3 * 86_400),  # seconds since the previous event
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    features=st.integers(min_value=1, max_value=4),
    extras=st.lists(st.floats(min_value=0.001, max_value=EXTRA_SHARE - 0.001), max_size=3),
    steps=events,
    rewatches=st.sampled_from(["new_play", "ignore"]),
)
def test_plays_follow_the_rules_whatever_happens_between_runs(
    features: int, extras: list[float], steps: list[tuple[str, int, int]], rewatches: Rewatches
) -> None:
    # Given a film of 1-4 feature parts and up to 3 extras, and any sequence of viewings between runs
    parts, extra = _videos(features, extras)
    library = Library(parts, extra)
    now = T0
    ledger: dict[str, str] = {}
    plays: list[str] = []
    for action, which, gap in [*steps, ("run", 0, 60)]:
        now += timedelta(seconds=gap + 60)
        if action == "watch_part":
            part = library.features[which % features]
            part.update(status=1, updated=int(now.timestamp()))
            if library.expected:
                library.reopened_since_play.add(part["number"])
        elif action == "start_part":
            part = library.features[which % features]
            # Opening a part again on Kinopub keeps a finished part finished; a new one is in progress.
            part.update(status=max(part["status"], 0), updated=int(now.timestamp()))
            if library.expected:
                library.reopened_since_play.add(part["number"])
        elif action == "open_extra" and library.extras:
            library.extras[which % len(library.extras)].update(status=1, updated=int(now.timestamp()))
        elif action == "run":
            # When a run collects the item and settles it with the ledger, and sends what is new
            view = movie_view(ITEM, state(*library.features, *library.extras), {})
            if view is not None:
                settled, _ = settle_with_ledger(view, ledger.get(view.view_ref), rewatches)
                minute = minute_or_unknown(settled.watched_at)
                if ledger.get(view.view_ref) != minute:
                    plays.append(minute)
                    ledger[view.view_ref] = minute
            # (the model) a play is due when every part is finished and either none was sent yet, or every
            # part was watched again since the last one (and rewatches are wanted)
            complete = all(part["status"] == 1 for part in library.features)
            newest = max((p["updated"] for p in library.features if p["updated"]), default=None)
            rewatch = library.reopened_since_play >= {p["number"] for p in library.features}
            if complete and newest and (not library.expected or (rewatch and rewatches == "new_play")):
                library.expected.append(minute_z(datetime.fromtimestamp(newest, UTC)))
                library.reopened_since_play = set()

    # Then the plays are exactly the model's: never one for an incomplete film, never one because of an
    # extra or a part re-opened alone, one per complete rewatch (none with REWATCHES=ignore)
    assert plays == library.expected
    assert len(plays) <= 1 or rewatches == "new_play"
