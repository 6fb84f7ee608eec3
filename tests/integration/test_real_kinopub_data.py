"""Kinopub's real data end to end (issue 12), through the real handler on moto and both fakes: what ends up in
the user's Trakt history, what does not, and what the report says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import DemoLibrary, seed_demo_library
from devkit.sandbox import Sandbox, patched_environ, sandbox
from kinotrakt.config import Settings
from kinotrakt.sync.pinning import pin_episode
from kinotrakt.wiring import trakt_catalog

HOUR = 3600
VIENNA_KP, VIENNA_TRAKT = 25130, 451000
PARTS = ((1, 2919), (2, 2992), (3, 2953))


def minute(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def seed_vienna(kp: FakeKinopub, tr: FakeTrakt) -> None:
    """The 3-part documentary of the 2021 recording, with a trailer added, every part watched a day apart."""
    kp.add_movie(
        VIENNA_KP,
        "Вена. Империя, династия и мечта / Vienna: Empire, Dynasty and Dream",
        2016,
        9_000_130,
        type="documovie",
        videos=[*(f"Часть {n} / Part {n}" for n, _ in PARTS), ("Трейлер / Trailer", 120)],
        duration=2950,
    )
    tr.add_movie(VIENNA_TRAKT, "Vienna: Empire, Dynasty and Dream", 2016, "tt9000130")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


def watch_parts(box: Sandbox, clock: VirtualClock, parts: tuple[int, ...]) -> int:
    """Watch these parts an hour apart, ending now; returns the last one's time."""
    now = int(clock.now().timestamp())
    for offset, part in enumerate(reversed(parts)):
        box.kinopub.watch(VIENNA_KP, video=part, at=now - offset * HOUR)
    return now


@pytest.fixture
def box(clock: VirtualClock) -> Iterator[Sandbox]:
    with sandbox(seed=seed_vienna, clock=clock) as sb:
        yield sb


def test_an_unopened_trailer_does_not_hold_the_film_and_one_part_in_progress_does(
    box: Sandbox, clock: VirtualClock
) -> None:
    # Given parts 1 and 2 watched, part 3 in progress, the trailer never opened
    watch_parts(box, clock, (1, 2))
    box.kinopub.watch(VIENNA_KP, video=3, at=int(clock.now().timestamp()), status=0)

    # When the sync runs, Then nothing is posted
    first = box.invoke()
    assert (first["status"], first["candidates"], box.trakt.plays()) == ("ok", 0, [])

    # When part 3 is finished (the trailer still never opened) and the next run comes
    clock.advance(HOUR)
    last = watch_parts(box, clock, (3,))
    clock.advance(HOUR)
    second = box.invoke()

    # Then the film is one play, at its last part's minute
    assert second["added_movies"] == 1
    assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(last)}"]


def test_a_reopened_part_is_kept_and_every_part_watched_again_is_a_rewatch(box: Sandbox, clock: VirtualClock) -> None:
    # Given the film synced
    first_time = watch_parts(box, clock, (1, 2, 3))
    clock.advance(HOUR)
    assert box.invoke()["added_movies"] == 1

    # When part 1 is opened again a week later (and the trailer too)
    clock.advance(7 * 24 * HOUR)
    watch_parts(box, clock, (1,))
    box.kinopub.watch(VIENNA_KP, video=4, at=int(clock.now().timestamp()))
    clock.advance(HOUR)
    reopened = box.invoke()

    # Then no new play: the report says why
    assert (reopened["status"], reopened["added_movies"]) == ("ok", 0)
    assert [k["detail"] for k in reopened["kept_plays"]] == [
        f"part 1 watched again, part 2, 3 not since the play sent for {minute(first_time)}: not a rewatch"
    ]
    assert reopened["http_calls"]["trakt"] == 0

    # When, later, parts 2 and 3 are watched again too
    clock.advance(24 * HOUR)
    again = watch_parts(box, clock, (2, 3))
    clock.advance(HOUR)
    rewatch = box.invoke()

    # Then every part was watched again since the play: one new play, at the latest part
    assert rewatch["added_movies"] == 1
    assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(first_time)}", f"movie:tt9000130:{minute(again)}"]
    assert box.trakt.duplicate_keys() == []


def test_rewatches_ignore_sends_each_view_once(clock: VirtualClock) -> None:
    with sandbox(seed=seed_vienna, clock=clock, env={"REWATCHES": "ignore"}) as box:
        first_time = watch_parts(box, clock, (1, 2, 3))
        clock.advance(HOUR)
        assert box.invoke()["added_movies"] == 1

        # When every part is watched again
        clock.advance(7 * 24 * HOUR)
        watch_parts(box, clock, (1, 2, 3))
        clock.advance(HOUR)
        report = box.invoke()

        # Then nothing is sent: the user chose one play per view
        assert (report["status"], report["added_movies"], report["skipped_duplicates"]) == ("ok", 0, 1)
        assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(first_time)}"]


def test_the_demo_library_lands_on_its_documented_outcome_and_a_pin_fixes_the_merged_episode(
    clock: VirtualClock,
) -> None:
    libraries: list[DemoLibrary] = []
    with sandbox(seed=lambda kp, tr: libraries.append(seed_demo_library(kp, tr)), clock=clock) as box:
        (library,) = libraries
        # When the demo library is synced
        report = box.invoke()

        # Then Trakt holds exactly the documented plays, and the real-data cases are unmatched for their reasons
        assert report["status"] == "ok"
        assert sorted(box.trakt.play_keys()) == library.expected_trakt_keys()
        got = {(u["kinopub_id"], u["season"], u["episode"]): u["reason"] for u in report["unmatched_items"]}
        assert got == {(v.kinopub_id, v.season, v.episode): v.reason for v in library.unmatched}

        # When the owner pins the merged Rebels episode to both Trakt episodes (as its detail says) and syncs
        merged = next(v for v in library.unmatched if v.reason == "merged_episode")
        with patched_environ(box.env):
            trakt = trakt_catalog(Settings(), box.trakt_store(), clock)
        pin_episode(box.stores(), trakt, merged.kinopub_id, 4, 15, [(4, 15), (4, 16)])
        clock.advance(HOUR)
        after = box.invoke()

        # Then two plays are added for it, at its minute, and nothing else
        both = {box.trakt.episode_id(65553, 4, n) for n in (15, 16)}
        assert after["added_episodes"] == 2
        assert {f"episode:{e}:{merged.minute}" for e in both} <= set(box.trakt.play_keys())
        assert box.trakt.duplicate_keys() == []


@pytest.mark.parametrize("reopened", [1, 3], ids=["an-earlier-part", "the-latest-part"])
def test_a_film_sent_but_not_recorded_is_not_sent_again_when_a_part_is_reopened(
    box: Sandbox, clock: VirtualClock, reopened: int
) -> None:
    # Given the film on Trakt at its latest part's minute, but not in the ledger (the run that sent it crashed
    # before recording it, or another tool sent it)
    first_time = watch_parts(box, clock, (1, 2, 3))
    box.trakt.add_play("movie", VIENNA_TRAKT, minute(first_time))
    # When a part is opened again a week later (the film's time moves to it)
    clock.advance(7 * 24 * HOUR)
    watch_parts(box, clock, (reopened,))
    clock.advance(HOUR)
    report = box.invoke()
    # Then nothing is sent: the play on Trakt, between the parts' times, is this viewing's
    assert (report["status"], report["added_movies"], report["skipped_duplicates"]) == ("ok", 0, 1)
    assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(first_time)}"]
    # and the ledger now holds that play, so the next run keeps it without asking Trakt
    clock.advance(HOUR)
    assert box.invoke()["http_calls"]["trakt"] == 0
    # When, later, every part is watched again
    clock.advance(24 * HOUR)
    again = watch_parts(box, clock, (1, 2, 3))
    clock.advance(HOUR)
    # Then that is a rewatch: one new play
    assert box.invoke()["added_movies"] == 1
    assert box.trakt.play_keys() == [f"movie:tt9000130:{minute(first_time)}", f"movie:tt9000130:{minute(again)}"]
