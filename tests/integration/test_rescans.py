"""The daily rescan and the book of known items, end to end through the real handler (moto + both fakes).

A rescan reads the recent history rows and the items that can still change; a complete item (every part or
episode watched, every view on Trakt) is not read again, and what can still change on it shows up in history,
where the hourly runs read it. Each test says what the user sees on Trakt and what the run asked Kinopub."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.sandbox import ACCOUNT, TABLE, Sandbox, sandbox

T0 = 1_750_000_000  # 2025-06-15T15:06:40Z
HOUR = 3600
DAY = 24 * HOUR

INCEPTION, ARRIVAL, VIENNA = 101, 102, 103  # complete; in progress; complete, in two parts
BLACK_MIRROR, SEVERANCE = 201, 202  # every episode watched; an episode still to watch
BM_TRAKT, SEVERANCE_TRAKT = 41793, 95396


def minute(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
    kp.add_movie(INCEPTION, "Начало / Inception", 2010, 1375666)
    kp.watch(INCEPTION, at=T0)
    kp.add_movie(ARRIVAL, "Прибытие / Arrival", 2016, 2543164)
    kp.watch(ARRIVAL, at=T0 + HOUR, status=0)
    kp.add_movie(VIENNA, "Вена / Vienna", 2016, 6213894, type="documovie", videos=2)
    kp.watch(VIENNA, video=1, at=T0 + 2 * HOUR)
    kp.watch(VIENNA, video=2, at=T0 + 3 * HOUR)
    kp.add_series(BLACK_MIRROR, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3})
    kp.add_series(SEVERANCE, "Разделение / Severance", 2022, 11280740, {1: 3})
    for episode in (1, 2, 3):
        kp.watch(BLACK_MIRROR, season=1, episode=episode, at=T0 + DAY + episode * HOUR)
    for episode in (1, 2):
        kp.watch(SEVERANCE, season=1, episode=episode, at=T0 + 2 * DAY + episode * HOUR)
    tr.add_movie(16662, "Inception", 2010, "tt1375666")
    tr.add_movie(190430, "Arrival", 2016, "tt2543164")
    tr.add_movie(290000, "Vienna", 2016, "tt6213894")
    tr.add_show(BM_TRAKT, "Black Mirror", 2011, "tt2085059", {1: 4})  # Trakt lists the episode to come
    tr.add_show(SEVERANCE_TRAKT, "Severance", 2022, "tt11280740", {1: 3})


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime.fromtimestamp(T0 + 10 * DAY, UTC))


@pytest.fixture
def box(clock: VirtualClock) -> Iterator[Sandbox]:
    with sandbox(seed=seed, clock=clock) as sb:
        yield sb


def watched_items(box: Sandbox) -> list[int]:
    """The items whose watch state the runs since the last look asked Kinopub for (then forgets them)."""
    items = sorted(int(r.query["id"]) for r in box.kinopub.calls("GET", "/v1/watching"))
    box.kinopub.clear_requests()
    return items


def history_pages(box: Sandbox) -> int:
    return len(box.kinopub.calls("GET", "/v1/history"))


def backfill(box: Sandbox) -> None:
    assert box.invoke()["status"] == "ok"
    assert watched_items(box) == [INCEPTION, ARRIVAL, VIENNA, BLACK_MIRROR, SEVERANCE]


def test_the_daily_rescan_reads_only_the_items_that_can_still_change(box: Sandbox, clock: VirtualClock) -> None:
    # Given a synced library: Inception, Vienna and Black Mirror complete; Arrival in progress, Severance with
    # an episode to watch
    backfill(box)
    # When Severance's last episode is marked watched by hand (no play, so no history row) and a day goes by
    marked_at = int(clock.now().timestamp())
    box.kinopub.mark_watched_without_play(SEVERANCE, season=1, episode=3, at=marked_at)
    clock.advance(DAY + HOUR)
    report = box.invoke()
    # Then the rescan read one history page and the two items that could change, not the complete ones
    assert report["full_scan"] is True
    assert history_pages(box) == 1
    assert watched_items(box) == [ARRIVAL, SEVERANCE]
    # and the episode marked by hand is on Trakt
    assert report["added_episodes"] == 1
    assert f"episode:{box.trakt.episode_id(SEVERANCE_TRAKT, 1, 3)}:{minute(marked_at)}" in box.trakt.play_keys()
    assert box.trakt.duplicate_keys() == []
    # When another day goes by, Severance is complete now: the rescan reads Arrival alone
    clock.advance(DAY)
    assert box.invoke()["full_scan"] is True
    assert watched_items(box) == [ARRIVAL]


def test_a_complete_film_played_again_is_a_new_play_from_the_hourly_run(box: Sandbox, clock: VirtualClock) -> None:
    backfill(box)
    # When Inception is watched again, and both parts of Vienna too
    now = int(clock.now().timestamp())
    box.kinopub.watch(INCEPTION, at=now)
    box.kinopub.watch(VIENNA, video=1, at=now + 60)
    box.kinopub.watch(VIENNA, video=2, at=now + 120)
    clock.advance(HOUR)
    report = box.invoke()
    # Then the hourly run, not a rescan, reads them (their history rows moved) and each rewatch is a new play
    assert report["full_scan"] is False
    assert watched_items(box) == [INCEPTION, VIENNA]
    assert report["added_movies"] == 2
    keys = box.trakt.play_keys()
    assert {f"movie:tt1375666:{minute(T0)}", f"movie:tt1375666:{minute(now)}"} <= set(keys)
    assert f"movie:tt6213894:{minute(now + 120)}" in keys
    assert box.trakt.duplicate_keys() == []


def test_one_part_of_a_complete_film_opened_again_is_not_a_rewatch(box: Sandbox, clock: VirtualClock) -> None:
    backfill(box)
    # When only part 1 of Vienna is played again
    box.kinopub.watch(VIENNA, video=1, at=int(clock.now().timestamp()))
    clock.advance(HOUR)
    report = box.invoke()
    # Then the run reads it, sends nothing, and says why
    assert watched_items(box) == [VIENNA]
    assert report["added_movies"] == 0
    assert [k["title"] for k in report["kept_plays"]] == ["Вена / Vienna (2016)"]
    assert [k for k in box.trakt.play_keys() if k.startswith("movie:tt6213894")] == [
        f"movie:tt6213894:{minute(T0 + 3 * HOUR)}"
    ]


def test_with_rewatches_ignored_a_film_played_again_is_not_sent_again(clock: VirtualClock) -> None:
    with sandbox(seed=seed, clock=clock, env={"REWATCHES": "ignore"}) as box:
        backfill(box)
        box.kinopub.watch(INCEPTION, at=int(clock.now().timestamp()))
        clock.advance(HOUR)
        report = box.invoke()
        assert report["added_movies"] == 0
        assert [k for k in box.trakt.play_keys() if k.startswith("movie:tt1375666")] == [
            f"movie:tt1375666:{minute(T0)}"
        ]


def test_what_a_rescan_no_longer_sees_on_a_complete_item(box: Sandbox, clock: VirtualClock) -> None:
    """The trade (README, "What gets synced"): a complete item is not read by the rescans, so what changes on it
    without a history row waits for its next play."""
    backfill(box)
    # Given Inception marked watched again by hand, and a new Black Mirror episode marked watched by hand —
    # neither leaves a history row
    now = int(clock.now().timestamp())
    box.kinopub.mark_watched_without_play(INCEPTION, video=1, at=now)
    box.kinopub.add_episodes(BLACK_MIRROR, season=1)
    box.kinopub.mark_watched_without_play(BLACK_MIRROR, season=1, episode=4, at=now)
    # When the daily rescan comes
    clock.advance(DAY + HOUR)
    report = box.invoke()
    # Then it does not read them, and Trakt gets nothing
    assert report["full_scan"] is True
    assert watched_items(box) == [ARRIVAL, SEVERANCE]
    assert report["added_movies"] + report["added_episodes"] == 0
    # When Black Mirror is played again (any episode), its history row moves: the next run reads it, and the
    # episode marked by hand is synced with the replayed one
    played = int(clock.now().timestamp())
    box.kinopub.watch(BLACK_MIRROR, season=1, episode=1, at=played)
    clock.advance(HOUR)
    report = box.invoke()
    assert watched_items(box) == [BLACK_MIRROR]
    new = {f"episode:{box.trakt.episode_id(BM_TRAKT, 1, 4)}:{minute(now)}"}
    new.add(f"episode:{box.trakt.episode_id(BM_TRAKT, 1, 1)}:{minute(played)}")
    assert new <= set(box.trakt.play_keys())
    assert box.trakt.duplicate_keys() == []


def test_a_deployment_from_before_the_book_pages_history_once_then_never_again(
    box: Sandbox, clock: VirtualClock
) -> None:
    # Given a deployment synced by a version without the book of known items
    backfill(box)
    client = box.session.client("dynamodb")
    stored = client.query(
        TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"{ACCOUNT}#items"}}
    )["Items"]
    for item in stored:
        client.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    box.kinopub.clear_requests()
    # When its first rescan comes, it reads every history page and every item, as before
    clock.advance(DAY + HOUR)
    assert box.invoke()["full_scan"] is True
    assert watched_items(box) == [INCEPTION, ARRIVAL, VIENNA, BLACK_MIRROR, SEVERANCE]
    # and from the next one on, only what can still change
    clock.advance(DAY)
    assert box.invoke()["full_scan"] is True
    assert watched_items(box) == [ARRIVAL, SEVERANCE]
