"""The sync end to end, through the real handler: moto (DynamoDB, Secrets Manager) + fake Kinopub + fake Trakt.

Each test says, Given / When / Then, what a user would see in their Trakt history and in the run report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.sandbox import Sandbox, sandbox

# Kinopub timestamps (unix seconds) of the seeded views; all in June 2025.
T0 = 1_750_000_000  # 2025-06-15T15:06:40Z
HOUR = 3600
DAY = 24 * HOUR

INCEPTION_KP, INCEPTION_TRAKT = 101, 16662
ARRIVAL_KP, ARRIVAL_TRAKT = 102, 190430
BM_KP, BM_TRAKT = 201, 41793


def minute(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def seed_basic(kp: FakeKinopub, tr: FakeTrakt) -> None:
    """Two finished movies and three finished Black Mirror episodes, all known to Trakt."""
    kp.add_movie(INCEPTION_KP, "Начало / Inception", 2010, 1375666)
    kp.watch(INCEPTION_KP, at=T0)
    kp.add_movie(ARRIVAL_KP, "Прибытие / Arrival", 2016, 2543164)
    kp.watch(ARRIVAL_KP, at=T0 + DAY)
    kp.add_series(BM_KP, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3, 2: 4})
    for episode in (1, 2, 3):
        kp.watch(BM_KP, season=1, episode=episode, at=T0 + 2 * DAY + episode * HOUR)
    tr.add_movie(INCEPTION_TRAKT, "Inception", 2010, "tt1375666")
    tr.add_movie(ARRIVAL_TRAKT, "Arrival", 2016, "tt2543164")
    tr.add_show(BM_TRAKT, "Black Mirror", 2011, "tt2085059", {1: 3, 2: 4})


@pytest.fixture
def clock() -> VirtualClock:
    # Trakt's write pacing (1 s) runs on this clock, so the suite never sleeps for it.
    return VirtualClock(datetime.now(UTC))


@pytest.fixture
def box(clock: VirtualClock) -> Iterator[Sandbox]:
    with sandbox(seed=seed_basic, clock=clock) as sb:
        yield sb


def expected_keys(tr: FakeTrakt) -> set[str]:
    return {
        f"movie:tt1375666:{minute(T0)}",
        f"movie:tt2543164:{minute(T0 + DAY)}",
        *(f"episode:{tr.episode_id(BM_TRAKT, 1, e)}:{minute(T0 + 2 * DAY + e * HOUR)}" for e in (1, 2, 3)),
    }


def test_first_run_adds_every_completed_view_and_second_run_adds_nothing(box: Sandbox) -> None:
    # When the sync runs for the first time
    first = box.invoke()
    # Then every completed view is on Trakt exactly once, at its Kinopub minute
    assert first["status"] == "ok"
    assert (first["candidates"], first["added_movies"], first["added_episodes"]) == (5, 2, 3)
    assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
    assert box.trakt.duplicate_keys() == []
    assert first["watermark"] is not None
    # When it runs again right away
    second = box.invoke()
    # Then nothing is added and Trakt is not even asked
    assert second["status"] == "ok"
    assert second["added_movies"] + second["added_episodes"] == 0
    assert second["http_calls"] == {"kinopub": 1, "trakt": 0}
    assert len(box.trakt.plays()) == 5


def test_a_new_kinopub_view_adds_only_that_view(box: Sandbox, clock: VirtualClock) -> None:
    # Given a synced library
    box.invoke()
    # When one more episode is finished on Kinopub (now) and the next run comes an hour later
    now = int(clock.now().timestamp())
    box.kinopub.watch(BM_KP, season=2, episode=1, at=now)
    clock.advance(HOUR)
    report = box.invoke()
    # Then only that episode is added
    assert (report["added_movies"], report["added_episodes"]) == (0, 1)
    new_key = f"episode:{box.trakt.episode_id(BM_TRAKT, 2, 1)}:{minute(now)}"
    assert set(box.trakt.play_keys()) == expected_keys(box.trakt) | {new_key}
    assert box.trakt.duplicate_keys() == []


def _lookups(box: Sandbox) -> list[tuple[str, int | None]]:
    return [(r.path, r.status) for r in box.trakt.requests if r.path.startswith(("/search", "/shows"))]


def test_a_show_is_looked_up_once_by_its_imdb_id(box: Sandbox) -> None:
    # When the first run maps three episodes of a show with an IMDb id
    report = box.invoke()

    # Then one call, its season table by IMDb id, was the whole lookup: no search first
    assert report["added_episodes"] == 3
    assert _lookups(box) == [("/shows/tt2085059/seasons", 200)]


def test_a_show_trakt_answers_404_for_is_found_through_the_imdb_search(clock: VirtualClock) -> None:
    with sandbox(seed=seed_basic, clock=clock) as box:
        # Given Trakt answers 404 to the show's IMDb id (it may list that IMDb id under another id)
        box.trakt.add_fault("GET", r"/shows/tt2085059/seasons", status=404, body='{"error":"not found"}', times=-1)

        # When the run maps its episodes
        report = box.invoke()

        # Then it asked the IMDb search once, then the season table of the show it named, and synced them all
        assert _lookups(box) == [
            ("/shows/tt2085059/seasons", 404),
            ("/search/imdb/tt2085059", 200),
            (f"/shows/{BM_TRAKT}/seasons", 200),
        ]
        assert report["status"] == "ok"
        assert set(box.trakt.play_keys()) == expected_keys(box.trakt)


def test_same_minute_play_already_on_trakt_is_skipped_and_a_rewatch_is_added(clock: VirtualClock) -> None:
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        seed_basic(kp, tr)
        # Given Inception already on Trakt at the same minute (seconds differ), from another app
        tr.add_play("movie", INCEPTION_TRAKT, datetime.fromtimestamp(T0 + 15, UTC).isoformat())
        # and Arrival on Trakt on another day (an earlier viewing)
        tr.add_play("movie", ARRIVAL_TRAKT, datetime.fromtimestamp(T0 - 30 * DAY, UTC).isoformat())

    with sandbox(seed=seed, clock=clock) as box:
        report = box.invoke()
        assert report["status"] == "ok"
        # Then the same-minute Inception play is not sent again; Arrival's new viewing is a new play
        assert report["skipped_duplicates"] == 1
        assert report["added_movies"] == 1
        keys = box.trakt.play_keys()
        assert keys.count(f"movie:tt1375666:{minute(T0)}") == 1
        assert f"movie:tt2543164:{minute(T0 + DAY)}" in keys
        assert f"movie:tt2543164:{minute(T0 - 30 * DAY)}" in keys
        assert box.trakt.duplicate_keys() == []


def test_unmatched_items_are_recorded_with_reasons_and_do_not_block_the_rest(clock: VirtualClock) -> None:
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        seed_basic(kp, tr)
        # a movie without IMDb that Trakt does not know
        kp.add_movie(103, "Домашнее видео / Home Video", 2019, None)
        kp.watch(103, at=T0)
        # an episode Trakt does not have
        kp.add_series(202, "Сериал / Some Show", 2020, 1234567, {9: 1})
        kp.watch(202, season=9, episode=1, at=T0)
        tr.add_show(55555, "Some Show", 2020, "tt1234567", {1: 2})
        # a movie whose IMDb id Trakt answers not_found for
        kp.add_movie(104, "Потерянный / Lost Film", 2001, 9999999)
        kp.watch(104, at=T0)

    with sandbox(seed=seed, clock=clock) as box:
        report = box.invoke()
        # Then the rest still lands, the run is ok, and the watermark moves
        assert report["status"] == "ok"
        assert (report["added_movies"], report["added_episodes"]) == (2, 3)
        assert report["unmatched"] == 2
        assert report["not_found"] == 1
        reasons = {item["kinopub_id"]: item["reason"] for item in report["unmatched_items"]}
        assert reasons == {103: "no_imdb_not_found", 202: "episode_not_on_trakt", 104: "trakt_not_found"}
        stored = {item.kinopub_id: item.reason for item in box.stores().unmatched.load()}
        assert stored == reasons
        assert report["watermark"] is not None
        # And a day later (a full rescan) the not_found movie is not re-sent and nothing is searched again
        box.trakt.clear_requests()
        clock.advance(25 * HOUR)
        again = box.invoke()
        assert again["added_movies"] + again["added_episodes"] == 0
        assert box.trakt.calls("POST") == []
        assert box.trakt.calls("GET", "/search") == []
        assert {item.kinopub_id for item in box.stores().unmatched.load()} == {103, 104, 202}


def test_persistent_post_failure_keeps_the_watermark_and_the_next_run_completes(box: Sandbox) -> None:
    # Given Trakt rejects every history write with 503 (nothing applied)
    box.trakt.add_fault("POST", r"^/sync/history$", status=503, times=-1)
    report = box.invoke()
    # Then the run is partial, nothing is on Trakt and the watermark did not move
    assert report["status"] == "partial"
    assert report["watermark"] is None
    assert box.trakt.plays() == []
    # When the fault clears, the next run adds everything once
    box.trakt.clear_faults()
    report = box.invoke()
    assert report["status"] == "ok"
    assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
    assert box.trakt.duplicate_keys() == []


def test_a_post_applied_but_answer_lost_creates_no_duplicate_and_loses_nothing(box: Sandbox) -> None:
    # Given Trakt applies the first history write but the connection drops before the answer
    box.trakt.add_fault("POST", r"^/sync/history$", action="apply_then_drop", times=1)
    report = box.invoke()
    # Then the sync re-reads Trakt instead of re-sending, and every view is there exactly once
    assert report["status"] == "ok"
    assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
    assert box.trakt.duplicate_keys() == []
    assert len(box.trakt.calls("POST", "/sync/history")) == 1
    # And a second run agrees nothing is missing
    assert box.invoke()["added_movies"] == 0


def test_deadline_mid_run_ends_partial_and_the_next_run_finishes_without_duplicates(clock: VirtualClock) -> None:
    # Given one play per batch, so five writes spaced 1 s apart, and a Lambda with 63 s left (60 s margin)
    with sandbox(seed=seed_basic, clock=clock, env={"SYNC_BATCH_SIZE": "1"}) as box:
        report = box.invoke(timeout_seconds=63)
        # Then the run stops early, keeps what it sent, and leaves the watermark alone
        assert report["status"] == "partial"
        sent_first = report["added_movies"] + report["added_episodes"]
        assert 0 < sent_first < 5
        assert report["watermark"] is None
        assert len(box.trakt.plays()) == sent_first
        # When the next run has time, it sends only the rest
        report = box.invoke()
        assert report["status"] == "ok"
        assert report["added_movies"] + report["added_episodes"] == 5 - sent_first
        assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
        assert box.trakt.duplicate_keys() == []


def test_expired_trakt_token_is_refreshed_first_and_the_new_pair_is_stored(box: Sandbox) -> None:
    # Given the stored Trakt access token expires within the refresh margin
    before = box.secret("trakt")
    assert before.access_token is not None
    store = box.trakt_store()
    stored = store.load()
    soon = int(box.clock.now().timestamp()) + 60
    week_ago = soon - 7 * DAY  # a 7-day token, issued a week ago
    expiring = stored.secret.model_copy(update={"expires_at": soon, "issued_at": week_ago})
    store.save(expiring, expected_version=stored.version)
    report = box.invoke()
    # Then the token is refreshed before the first Trakt API call, and the rotated pair is in Secrets Manager
    assert report["status"] == "ok"
    after = box.secret("trakt")
    assert after.access_token is not None
    assert after.refresh_token is not None
    assert after.access_token.get_secret_value() != before.access_token.get_secret_value()
    assert box.trakt.token_is_valid(after.access_token.get_secret_value())
    trakt_calls = [r.path for r in box.trakt.requests]
    assert trakt_calls.index("/oauth/token") < min(i for i, path in enumerate(trakt_calls) if path.startswith("/sync/"))


def test_locked_trakt_account_fails_the_run_and_posts_nothing(box: Sandbox) -> None:
    # Given Trakt has locked the account (HTTP 423)
    box.trakt.locked = True
    report = box.invoke()
    # Then the run fails with a message telling the user what to do, and nothing is posted
    assert report["status"] == "failed"
    assert report["error"]["code"] == "trakt_account_locked"
    assert "contact Trakt support" in report["error"]["message"]
    assert box.trakt.calls("POST", "/sync/history") == []
    assert report["watermark"] is None


def test_a_second_invocation_while_the_lease_is_held_is_skipped(box: Sandbox, clock: VirtualClock) -> None:
    # Given another run holds the lease
    now = clock.now()
    assert box.stores().lease.acquire("other-run", now, now.replace(year=now.year + 1))
    report = box.invoke()
    # Then this run does nothing at all
    assert report["status"] == "skipped"
    assert box.kinopub.requests == []
    assert box.trakt.requests == []


def test_dry_run_plans_without_writing(box: Sandbox) -> None:
    report = box.invoke({"dry_run": True})
    assert report["status"] == "ok"
    assert report["dry_run"] is True
    assert (report["added_movies"], report["added_episodes"]) == (2, 3)
    assert box.trakt.plays() == []
    assert report["watermark"] is None
    assert box.trakt.calls("POST") == []


def test_lookups_trakt_refuses_leave_those_views_unmatched_and_the_run_ok(clock: VirtualClock) -> None:
    long_title = "Очень длинное название " * 13

    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        seed_basic(kp, tr)
        # a movie without IMDb whose title search Trakt refuses (414: the URI is too long for it)
        kp.add_movie(106, f"{long_title} / Very Long", 2019, None)
        kp.watch(106, at=T0)
        # a show whose season table Trakt refuses (422)
        kp.add_series(203, "Отказ / Refused Show", 2020, 7777777, {1: 2})
        kp.watch(203, season=1, episode=1, at=T0)
        # an episode of unknown time (marked by hand, no time kept) whose plays Trakt refuses to list (404)
        kp.mark_watched_without_play(BM_KP, season=2, episode=1, at=T0)
        kp.set_state(BM_KP, season=2, episode=1, status=1, updated=None)

    with sandbox(seed=seed, clock=clock) as box:
        box.trakt.add_fault(
            "GET", r"/search/movie", status=414, body="<html>414 Request-URI Too Large</html>", times=-1
        )
        box.trakt.add_fault("GET", r"/shows/tt7777777/seasons", status=422, body='{"error":"unprocessable"}', times=-1)
        box.trakt.add_fault("GET", r"/sync/history/episodes/\d+", status=404, body='{"error":"not found"}', times=-1)

        # When the sync runs
        report = box.invoke()

        # Then the rest lands, each refused view is unmatched with the reason, and the watermark moves
        assert report["status"] == "ok", report["error"]
        assert (report["added_movies"], report["added_episodes"]) == (2, 3)
        refused = {(item["kinopub_id"], item["season"], item["episode"]): item for item in report["unmatched_items"]}
        assert set(refused) == {(106, None, None), (203, 1, 1), (BM_KP, 2, 1)}
        assert {item["reason"] for item in refused.values()} == {"trakt_refused"}
        assert "HTTP 414" in refused[(106, None, None)]["detail"]
        assert "HTTP 422" in refused[(203, 1, 1)]["detail"]
        assert report["watermark"] is not None
        stored = {(item.kinopub_id, item.season, item.episode): item.reason for item in box.stores().unmatched.load()}
        assert stored == dict.fromkeys(refused, "trakt_refused")
        assert box.trakt.duplicate_keys() == []

        # When the next run comes a day later (a full rescan)
        box.trakt.clear_requests()
        clock.advance(25 * HOUR)
        again = box.invoke()

        # Then it ends ok without asking Trakt the refused lookups again (they are cached for a few days)
        assert again["status"] == "ok"
        assert box.trakt.calls("GET", "/search") == []
        assert box.trakt.calls("GET", "/shows/tt7777777") == []


def test_a_play_trakt_refuses_in_a_write_is_unmatched_and_the_rest_of_its_batch_goes_in(clock: VirtualClock) -> None:
    # Given five plays in one batch, and Trakt refusing one of them (a 422 for the whole write: nothing applied)
    with sandbox(seed=seed_basic, clock=clock) as box:
        box.trakt.refused_plays.add(("episode", box.trakt.episode_id(BM_TRAKT, 1, 2)))

        # When the sync runs
        report = box.invoke()

        # Then the other four are on Trakt once, the refused one is unmatched with the reason, the run is ok
        assert report["status"] == "ok", report["error"]
        assert (report["added_movies"], report["added_episodes"]) == (2, 2)
        assert [(i["kinopub_id"], i["season"], i["episode"], i["reason"]) for i in report["unmatched_items"]] == [
            (BM_KP, 1, 2, "trakt_refused")
        ]
        assert "HTTP 422" in report["unmatched_items"][0]["detail"]
        assert len(box.trakt.play_keys()) == 4
        assert box.trakt.duplicate_keys() == []
        assert report["watermark"] is not None
        # and the write was split down to the refused play: a few writes, not one per play
        writes = box.trakt.calls("POST", "/sync/history")
        assert [w.status for w in writes].count(201) >= 2
        assert len(writes) <= 7

        # When Trakt takes it again and the daily rescan comes
        box.trakt.refused_plays.clear()
        clock.advance(25 * HOUR)
        again = box.invoke()

        # Then it lands once, and is no longer unmatched
        assert (again["status"], again["added_episodes"]) == ("ok", 1)
        assert len(box.trakt.play_keys()) == 5
        assert box.trakt.duplicate_keys() == []
        assert box.stores().unmatched.load() == []


def test_a_rewatch_on_kinopub_is_a_new_play_and_a_fallback_time_never_drifts(clock: VirtualClock) -> None:
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        seed_basic(kp, tr)
        # a movie Kinopub marks watched with no `updated` time: the history row's last_seen is the fallback
        kp.add_movie(105, "Дюна / Dune", 2021, 1160419)
        kp.watch(105, at=T0)
        kp.set_state(105, video=1, status=1, updated=None)
        tr.add_movie(287071, "Dune", 2021, "tt1160419")

    with sandbox(seed=seed, clock=clock) as box:
        box.invoke()
        assert f"movie:tt1160419:{minute(T0)}" in box.trakt.play_keys()
        # When Inception is watched again (Kinopub updates its state and history), and Dune's history row is
        # bumped without a new completion (the fallback would now say another time)
        now = int(clock.now().timestamp())
        box.kinopub.watch(INCEPTION_KP, at=now)
        box.kinopub.add_history_row(105, box.kinopub.media_id(105, video=1), first_seen=T0, last_seen=now)
        clock.advance(HOUR)
        report = box.invoke()
        # Then the rewatch is a second Inception play, and Dune is not sent again at a drifted time
        assert (report["added_movies"], report["added_episodes"]) == (1, 0)
        keys = box.trakt.play_keys()
        assert f"movie:tt1375666:{minute(now)}" in keys
        assert f"movie:tt1375666:{minute(T0)}" in keys
        assert [k for k in keys if k.startswith("movie:tt1160419:")] == [f"movie:tt1160419:{minute(T0)}"]
        assert box.trakt.duplicate_keys() == []


def test_an_unreadable_kinopub_item_holds_the_watermark_for_three_runs_then_is_set_aside(
    clock: VirtualClock,
) -> None:
    with sandbox(seed=seed_basic, clock=clock) as box:
        # Given Kinopub answers Arrival's watch state with a status value no client understands
        box.kinopub.items[ARRIVAL_KP].media()[0].status = 7
        reports = []
        for _ in range(3):
            reports.append(box.invoke())
            clock.advance(HOUR)
        # Then the other views are synced, but the watermark waits for Arrival for three runs
        assert [r["status"] for r in reports] == ["partial", "partial", "ok"]
        assert reports[0]["failed_items"][0]["kinopub_id"] == ARRIVAL_KP
        assert reports[0]["watermark"] is None
        assert reports[1]["watermark"] is None
        assert reports[2]["watermark"] is not None
        assert reports[0]["added_movies"] == 1
        # and after the third failure Arrival is recorded as unmatched (kinopub_error), with its reason
        assert [(u.kinopub_id, u.reason) for u in box.stores().unmatched.load()] == [(ARRIVAL_KP, "kinopub_error")]
        # When Kinopub answers properly again, the next full rescan syncs it and clears the record
        box.kinopub.items[ARRIVAL_KP].media()[0].status = 1
        clock.advance(25 * HOUR)
        report = box.invoke()
        assert report["status"] == "ok"
        assert set(box.trakt.play_keys()) == expected_keys(box.trakt)
        assert box.stores().unmatched.load() == []
        assert box.stores().failures.load() == {}


class TickingClock(VirtualClock):
    """Every look at the clock costs a second: the time Kinopub's answers take in real life."""

    def monotonic(self) -> float:
        self.advance(1.0)
        return super().monotonic()


def test_a_library_too_big_for_one_run_is_scanned_across_runs_without_rereading(clock: VirtualClock) -> None:
    movies = range(1000, 1040)

    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        for n in movies:
            kp.add_movie(n, f"Фильм / Film {n}", 2000, 1_000_000 + n)
            kp.watch(n, at=T0 + n * 60)
            tr.add_movie(n, f"Film {n}", 2000, f"tt{1_000_000 + n}")

    ticking = TickingClock(clock.now())
    with sandbox(seed=seed, clock=ticking) as box:
        # Given each run has only 50 s (plus the 60 s margin) and every request costs time
        reports = [box.invoke(timeout_seconds=110)]
        while reports[-1]["status"] != "ok" and len(reports) < 20:
            reports.append(box.invoke(timeout_seconds=110))
        # Then the first run could not do it all, but every run made progress and the scan finished
        assert len(reports) > 2
        assert reports[0]["status"] == "partial"
        assert reports[-1]["status"] == "ok"
        assert all(r["added_movies"] > 0 for r in reports[:-1])
        assert len(box.trakt.plays()) == len(movies)
        assert box.trakt.duplicate_keys() == []
        # and no item was read twice on the way, nor the history paged again: each run went on with what the
        # first one kept of it
        watched_ids = [r.query["id"] for r in box.kinopub.calls("GET", "/v1/watching")]
        assert sorted(watched_ids) == sorted(str(n) for n in movies)
        assert len(box.kinopub.calls("GET", "/v1/history")) == 1
        assert reports[-1]["watermark"] is not None


def test_plays_are_sent_while_the_library_is_still_being_read(clock: VirtualClock) -> None:
    # Given 250 finished movies (three batches of plays)
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        for n in range(1000, 1250):
            kp.add_movie(n, f"Фильм / Film {n}", 2000, 1_000_000 + n)
            kp.watch(n, at=T0 + n * 60)
            tr.add_movie(n, f"Film {n}", 2000, f"tt{1_000_000 + n}")

    with sandbox(seed=seed, clock=clock) as box:
        # When the first run reads them
        report = box.invoke()
        # Then the first batch went to Trakt before the last items were read (Trakt's pacing waits alongside
        # Kinopub's answers, not after them), and everything arrived once
        first_post = min(r.at for r in box.trakt.calls("POST", "/sync/history"))
        last_read = max(r.at for r in box.kinopub.calls("GET", "/v1/watching"))
        assert first_post < last_read
        assert report["added_movies"] == 250
        assert box.trakt.duplicate_keys() == []


def test_a_finished_multi_part_documentary_that_trakt_lists_as_a_show_is_unmatched_with_that_reason(
    clock: VirtualClock,
) -> None:
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        seed_basic(kp, tr)
        # Given a movie-like Kinopub item (documovie, several videos, all finished) that Trakt has as a show
        kp.add_movie(
            106, "Битлз: Вернись / The Beatles: Get Back", 2021, 9735318, type="documovie", subtype="multi", videos=3
        )
        for video in (1, 2, 3):
            kp.watch(106, video=video, at=T0 + video * HOUR)
        tr.add_show(170000, "The Beatles: Get Back", 2021, "tt9735318", {1: 3})

    with sandbox(seed=seed, clock=clock) as box:
        report = box.invoke()
        # Then the rest is synced, and the documentary is unmatched with a reason the user can act on
        assert report["status"] == "ok"
        assert report["not_found"] == 1
        item = next(u for u in report["unmatched_items"] if u["kinopub_id"] == 106)
        assert item["reason"] == "listed_as_show"
        assert "as a show" in item["detail"]
        assert not any(k.startswith("movie:tt9735318") for k in box.trakt.play_keys())
