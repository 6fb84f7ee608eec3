"""The chaos suite inside ``make test``: fixed seeds, the same schedules and checks as ``make chaos``.

Also here: proof that the checks can fail (each promise broken on purpose in the product, and the suite
notices), and the defects the suite found, pinned as plain regression tests.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

import chaos.runner as runner_module
import kinotrakt.audit.run as audit_run
import kinotrakt.trakt.client as trakt_client
from chaos import faults
from chaos.faults import RELINKED
from chaos.runner import ScheduleResult, run_schedule
from chaos.suite import run_suite
from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.memory import InMemoryTokenStore
from devkit.sandbox import sandbox
from kinotrakt.audit.history import DuplicateGroup, Play
from kinotrakt.config import Settings
from kinotrakt.http import Limits
from kinotrakt.observability import logger, metrics
from kinotrakt.storage.ports import ServiceSecret, StoredSecret
from kinotrakt.sync import collect, pipeline, push, scan
from kinotrakt.tokens import TokenGrant, TokenKeeper, kinopub_margin

pytestmark = pytest.mark.chaos

SCHEDULES = 60
CLOUDFLARE_429_FAULT = "trakt Cloudflare HTML 429, Retry-After 300"
CHUNK = 10  # tests of CHUNK schedules each, so pytest-xdist spreads them over its workers


@pytest.fixture(autouse=True)
def _no_metrics_left_behind() -> Iterator[None]:
    """The handler adds metrics per run and only ``lambda_handler`` flushes them: clear what these runs left,
    so a later test in the same process reads only its own."""
    yield
    metrics.clear_metrics()


def failures(results: list[ScheduleResult]) -> str:
    lines = []
    for result in results:
        if result.failed:
            lines.append(f"seed {result.seed} (replay: make chaos SEED={result.seed} SCHEDULES=1)")
            lines += [f"  {problem}" for problem in result.problems[:8]]
            lines += [f"    {step}" for step in result.trace]
    return "\n".join(lines)


@pytest.mark.parametrize("first", range(1, SCHEDULES + 1, CHUNK))
def test_every_schedule_keeps_every_promise(first: int) -> None:
    # Given CHUNK seeded schedules: random libraries, faults in and between runs, until a run ends ok
    results: list[ScheduleResult] = []
    suite = run_suite(range(first, first + CHUNK), progress=results.append)
    # Then nothing was posted twice, nothing was lost, no secret leaked, no audit removed a play that was not an
    # exact duplicate, and every schedule converged
    assert suite.ok, failures(results)
    assert (suite.duplicates, suite.lost, suite.leaked, suite.wrong, suite.unconverged) == (0, 0, 0, 0, 0)
    assert suite.removed_wrongly == 0
    # and the faults really happened (a quiet suite proves nothing)
    assert sum(suite.fired.values()) > CHUNK
    assert suite.statuses["ok"] >= CHUNK


def first_firing(fault: str, seeds: range = range(13, 80)) -> ScheduleResult:
    """The first schedule in which ``fault`` fired (from seed 13: the first ones of them fire there)."""
    for seed in seeds:
        result = run_schedule(seed)
        if result.fired[fault]:
            return result
    pytest.fail(f"{fault!r} never fired in seeds {seeds.start}..{seeds.stop - 1}")


@pytest.mark.parametrize(
    "fault",
    [
        "trakt POST applied, answer cut mid-body",
        "kinopub token refresh applied, answer cut mid-body",
        "trakt token refresh applied, answer cut mid-body",
    ],
)
def test_answers_cut_mid_body_after_the_service_acted_are_survived(fault: str) -> None:
    # Given a schedule in which a write or a refresh is applied and its answer is cut halfway
    result = first_firing(fault)
    # Then every promise holds; a refresh whose new pair was lost spent the stored token, and the schedule
    # converged only because the owner linked again when a run asked for it (and only then)
    assert not result.failed, "\n".join([*result.problems, *result.trace])
    relinked = result.events[RELINKED]
    if "refresh" in fault:
        assert relinked >= 1
        assert result.reasons["partial: refresh_outcome_unknown"] >= relinked
    assert result.reasons["failed: relink_required"] == relinked


def test_a_cloudflare_429_ends_its_run_partial_rate_limited_and_the_schedule_still_keeps_every_promise() -> None:
    # Given a schedule in which Cloudflare answered a Trakt GET with its HTML 429 and Retry-After: 300
    result = first_firing(CLOUDFLARE_429_FAULT)
    # Then every promise held: nothing lost or sent twice, no request after the 429, the schedule converged
    assert not result.failed, "\n".join([*result.problems, *result.trace])
    # and a run it hit stopped there, partial with rate_limited (not failed, not crashed, not slept through)
    assert result.reasons["partial: rate_limited"] + result.reasons["audit partial: rate_limited"] >= 1
    hit = [line.split(" | fired: ") for line in result.trace if CLOUDFLARE_429_FAULT in line]
    assert any(outcome.endswith("partial rate_limited") for outcome, _ in hit), "\n".join(result.trace)


def test_a_spent_refresh_token_nobody_links_again_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an owner who never answers the AuthRequired alarm
    monkeypatch.setattr(runner_module, "REFRESH_ANSWER_CUT", {})
    # When a refresh answer is cut after the refresh was applied
    result = first_firing("kinopub token refresh applied, answer cut mid-body")
    # Then the schedule does not converge, and the suite says so
    assert result.events[RELINKED] == 0
    assert result.failed
    assert result.converge_runs is None


def test_the_summary_line_has_the_promised_shape() -> None:
    suite = run_suite([7])
    assert suite.summary_line() == (
        f"chaos: 1 schedules, 0 duplicates, 0 lost, 0 leaked, 0 removed wrongly, max {suite.max_converge} runs to "
        "converge"
    )
    assert suite.report()[-1] == suite.summary_line()


# --- the checks can fail: break one promise in the product, and the suite must say so ---------------------


def first_catch(measure: Callable[[ScheduleResult], int], seeds: range = range(1, 40)) -> ScheduleResult:
    """The first schedule in which the broken product is caught (the search is short: faults are frequent)."""
    for seed in seeds:
        result = run_schedule(seed)
        if measure(result):
            return result
    pytest.fail(f"no schedule in seeds {seeds.start}..{seeds.stop - 1} noticed the broken promise")


def test_a_blind_resend_after_a_lost_answer_is_caught_as_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that, after a history write whose answer was lost, believes nothing of it was applied
    monkeypatch.setattr(push.Pusher, "_present_on_trakt", lambda self, batch: set())
    result = first_catch(lambda r: r.duplicates)
    assert any(problem.startswith("duplicate play:") for problem in result.problems)
    assert result.failed


def test_a_watermark_that_passes_unread_items_is_caught_as_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync whose Kinopub item failures never hold the watermark back
    monkeypatch.setattr(
        pipeline,
        "_record_failures",
        lambda failures, unmatched, collected, seen_at: pipeline.FailedItems(given_up=0, holding_back=False),
    )
    result = first_catch(lambda r: r.lost)
    assert any(problem.startswith("lost:") for problem in result.problems)


def test_posting_an_episode_in_progress_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that counts a started episode (status 0) as finished
    original = collect.episode_views

    def sloppy(item: Any, state: Any, last_seen: Any) -> Any:
        seasons = [
            season.model_copy(
                update={
                    "episodes": [e.model_copy(update={"status": 1}) if e.status == 0 else e for e in season.episodes]
                }
            )
            for season in state.seasons
        ]
        return original(item, state.model_copy(update={"seasons": seasons}), last_seen)

    monkeypatch.setattr(collect, "episode_views", sloppy)
    result = first_catch(lambda r: r.wrong)
    assert any(problem.startswith("posted but not a completed view:") for problem in result.problems)


def test_a_reopened_part_taken_for_a_rewatch_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that sends every moved Kinopub time again, as if a re-opened part were a rewatch
    monkeypatch.setattr(collect, "settle_with_ledger", lambda view, sent, rewatches: (view, None))
    result = first_catch(lambda r: r.duplicates)
    assert any(problem.startswith("duplicate play:") for problem in result.problems)


def test_a_trailer_that_decides_a_film_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that takes every video of a film for a part of it (a trailer's time moves the film's play)
    monkeypatch.setattr(collect, "feature_parts", list)
    result = first_catch(lambda r: r.lost)
    assert any(problem.startswith(("lost:", "posted but not a completed view:")) for problem in result.problems)
    assert result.lost >= result.wrong


def test_sleeping_through_a_long_rate_limit_and_asking_again_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that waits out any Retry-After its deadline allows (Cloudflare's 5 minutes included) and then
    # asks Trakt again, instead of stopping for the run
    def patient(settings: Settings) -> Limits:
        return Limits(settings.http_timeout_seconds, settings.http_total_timeout_seconds, max_retry_wait=600.0)

    monkeypatch.setattr(Settings, "http_limits", property(patient))
    # (and Cloudflare's 429 in most schedules, so the search stays short whatever else the catalogue holds)
    monkeypatch.setitem(faults.CATALOGUE, CLOUDFLARE_429_FAULT, 0.9)
    result = first_catch(lambda r: sum("more request(s) after a 429" in problem for problem in r.problems))
    assert result.failed


def test_a_scan_that_goes_on_without_what_it_kept_is_caught_as_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync whose full scan, stopped mid-way, goes on as if it had nothing left to read
    original = scan.plan_scan

    def forgetful(*args: Any, **kwargs: Any) -> scan.ScanPlan:
        plan = original(*args, **kwargs)
        return plan if plan.page_history else dataclasses.replace(plan, from_book=frozenset())

    monkeypatch.setattr(pipeline, "plan_scan", forgetful)
    result = first_catch(lambda r: r.lost)
    assert any(problem.startswith("lost:") for problem in result.problems)


def test_a_rescan_that_skips_items_that_can_still_change_is_caught_as_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that takes every item it read for complete, so the daily rescan never reads one again
    monkeypatch.setattr(pipeline, "item_state", lambda whole, views, ledger: "complete")
    result = first_catch(lambda r: r.lost)
    assert any("after the daily rescan" in problem for problem in result.problems)


def test_an_audit_removing_a_rewatch_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an audit that takes every play of a movie or episode for one viewing, whatever its minute
    def by_item(plays: Iterable[Play]) -> list[DuplicateGroup]:
        same: dict[tuple[str, int | None], list[Play]] = {}
        for play in plays:
            same.setdefault((play.kind, play.trakt_id), []).append(play)
        groups = []
        for (kind, trakt_id), group in same.items():
            ids = sorted(play.history_id for play in group)
            if trakt_id is not None and len(ids) > 1:
                first = group[0]
                groups.append(
                    DuplicateGroup(f"{kind}:{trakt_id}", first.kind, "", first.watched_at, ids[0], tuple(ids[1:]))
                )
        return groups

    monkeypatch.setattr(audit_run, "exact_duplicates", by_item)
    result = first_catch(lambda r: r.removed_wrongly)
    assert any(problem.startswith("removed, not an exact duplicate:") for problem in result.problems)
    assert result.failed


def test_a_token_in_a_debug_line_is_caught_as_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync that logs its Trakt request headers at DEBUG
    original = trakt_client.trakt_headers

    def chatty(client_id: str, access_token: str | None = None) -> dict[str, str]:
        headers = original(client_id, access_token)
        logger.debug("trakt request", extra={"headers": headers})
        return headers

    monkeypatch.setattr(trakt_client, "trakt_headers", chatty)
    result = first_catch(lambda r: r.leaked, range(1, 10))
    assert any(problem.startswith("secret in output:") and "<SECRET>" in problem for problem in result.problems)


# --- defects the suite found, pinned -----------------------------------------------------------------------


class FlakyStore:
    """A token store whose next ``save`` fails like a throttled Secrets Manager call, applied or not."""

    def __init__(self, inner: InMemoryTokenStore, *, applied: bool) -> None:
        self.inner = inner
        self.applied = applied
        self.failures_left = 1

    def load(self) -> StoredSecret:
        return self.inner.load()

    def save(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        if self.failures_left:
            self.failures_left -= 1
            if self.applied:
                self.inner.save(secret, expected_version=expected_version)
            raise RuntimeError("ThrottlingException: Rate exceeded")
        return self.inner.save(secret, expected_version=expected_version)


@pytest.mark.parametrize("applied", [False, True], ids=["write-lost", "write-applied-answer-lost"])
def test_a_refreshed_pair_survives_a_failed_secret_write(applied: bool) -> None:
    # Given a stored pair that must be refreshed, and a secret store whose first write fails
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    now = int(clock.now().timestamp())
    secret = ServiceSecret(
        client_id="cid",
        client_secret=SecretStr("csecret"),
        access_token=SecretStr("old-access"),
        refresh_token=SecretStr("old-refresh"),
        expires_at=now + 60,
    )
    inner = InMemoryTokenStore(secret)
    store = FlakyStore(inner, applied=applied)
    grants = iter([TokenGrant("new-access", "new-refresh", 86_400)])
    keeper = TokenKeeper("kinopub", store, lambda s: next(grants), clock, kinopub_margin)
    # When the keeper refreshes (the old refresh token is spent at this point)
    token = keeper.access_token()
    # Then the new pair is stored anyway, and it is the one in use (no re-link needed)
    assert token == "new-access"
    stored = inner.load().secret
    assert stored.refresh_token == SecretStr("new-refresh")
    assert clock.slept > 0  # it waited before trying again


def test_a_write_conflict_is_not_retried_over_someone_elses_pair() -> None:
    # Given a re-link that lands while the keeper refreshes
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    inner = InMemoryTokenStore(
        ServiceSecret(
            client_id="cid",
            client_secret=SecretStr("csecret"),
            access_token=SecretStr("old-access"),
            refresh_token=SecretStr("old-refresh"),
            expires_at=int(clock.now().timestamp()) + 60,
        )
    )

    def relinked_meanwhile(secret: ServiceSecret) -> TokenGrant:
        stored = inner.load()
        relink = stored.secret.model_copy(
            update={"access_token": SecretStr("relinked"), "expires_at": int(clock.now().timestamp()) + 86_400}
        )
        inner.save(relink, expected_version=stored.version)
        return TokenGrant("ours", "ours-refresh", 86_400)

    keeper = TokenKeeper("kinopub", inner, relinked_meanwhile, clock, kinopub_margin)
    # A version conflict is somebody else's newer pair: used at once, never overwritten, never waited for
    assert keeper.access_token() == "relinked"
    assert clock.slept == 0


HOUR = 3600
OLD = 1_767_225_600  # 2026-01-01T00:00:00Z, long before the runs below


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    target = logging.getLogger(logger.name)
    level = target.level
    target.setLevel(logging.WARNING)
    yield
    target.setLevel(level)


@pytest.mark.usefixtures("quiet_logs")
def test_a_full_scan_spread_over_runs_keeps_the_watermark_behind_views_finished_meanwhile() -> None:
    # Given three long-finished or started movies, a short overlap, and a first full scan that cannot read
    # Arrival (so it ends partial and remembers the two items it did finish)
    def seed(kp: FakeKinopub, tr: FakeTrakt) -> None:
        for kp_id, title, imdb, at, status in (
            (1, "Inception", 1375666, OLD, 1),
            (2, "Dune", 1160419, OLD + HOUR, 0),  # started, not finished
            (3, "Arrival", 2543164, OLD + 2 * HOUR, 1),  # newest: read first
        ):
            kp.add_movie(kp_id, f"Фильм / {title}", 2010, imdb)
            kp.watch(kp_id, at=at, status=status)  # type: ignore[arg-type]
            tr.add_movie(100 + kp_id, title, 2010, f"tt{imdb:07d}")

    clock = VirtualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    with sandbox(seed=seed, clock=clock, fake_clock=clock.time, env={"SYNC_OVERLAP_HOURS": "0"}) as box:
        box.kinopub.add_fault("GET", r"/v1/watching", status=200, body="<html>busy</html>", content_type="text/html")
        assert box.invoke()["status"] == "partial"
        # When Dune is finished before the next run, which completes the scan without reading Dune again
        clock.advance(600)
        box.kinopub.watch(2, at=int(clock.now().timestamp()))
        clock.advance(300)
        assert box.invoke()["status"] == "ok"
        # Then the next (incremental) run still finds Dune: the watermark did not pass its new history row
        clock.advance(900)
        assert box.invoke()["status"] == "ok"
        dune = [key for key in box.trakt.play_keys() if key.startswith("movie:tt1160419:")]
        assert len(dune) == 1
        assert box.trakt.duplicate_keys() == []
