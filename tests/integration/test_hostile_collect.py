"""The collector and the sync fed hostile Kinopub answers over loopback HTTP: damaged JSON, other JSON, HTML,
bodies cut short, huge numbers, numbers as strings, nested nulls. Whatever arrives, the run goes on, the bad
item is reported with a reason (never with the body's values), and nothing of it is posted to Trakt."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.memory import InMemoryTokenStore
from devkit.sandbox import sandbox
from kinotrakt.clock import Deadline
from kinotrakt.config import DEFAULT_KINOPUB_USER_AGENT
from kinotrakt.errors import BadResponse
from kinotrakt.http import CallCounter, Limits, Transport
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.oauth import KinopubOAuth, make_token_keeper
from kinotrakt.observability import metrics
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.sync.collect import collect
from kinotrakt.sync.model import CollectResult
from tests.hostile import CANARY, OTHER_DIGITS, hostile_body

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600
VICTIM = 40  # the newest item in history, so the first /v1/watching request is about it
HOSTILE = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _no_metrics_left_behind() -> Iterator[None]:
    """The handler adds metrics per run and only ``lambda_handler`` flushes them: clear what these runs left,
    so a later test in the same process reads only its own."""
    yield
    metrics.clear_metrics()


def seed_kinopub(kp: FakeKinopub) -> None:
    kp.add_movie(10, "Начало / Inception", 2010, 1375666)
    kp.watch(10, at=T0)
    kp.add_series(20, "Черное зеркало / Black Mirror", 2011, 2085059, {1: 3})
    kp.watch(20, season=1, episode=1, at=T0 + HOUR)
    kp.watch(20, season=1, episode=2, at=T0 + 2 * HOUR)
    kp.add_movie(30, "Дюна / Dune", 2021, 1160419)
    kp.watch(30, at=T0 + 3 * HOUR, status=0)  # started only
    kp.add_movie(VICTIM, "Прибытие / Arrival", 2016, 2543164)
    kp.watch(VICTIM, at=T0 + 4 * HOUR)


def seed_trakt(tr: FakeTrakt) -> None:
    tr.add_movie(16662, "Inception", 2010, "tt1375666")
    tr.add_show(41793, "Black Mirror", 2011, "tt2085059", {1: 3})
    tr.add_movie(287071, "Dune", 2021, "tt1160419")
    tr.add_movie(190430, "Arrival", 2016, "tt2543164")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKinopub]:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with FakeKinopub(clock=clock.time) as server:
        seed_kinopub(server)
        yield server


def linked_client(fake: FakeKinopub) -> KinopubClient:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    pair = fake.issue_tokens()
    now = int(clock.time())
    store = InMemoryTokenStore(
        ServiceSecret(
            client_id=fake.client_id,
            client_secret=SecretStr(fake.client_secret),
            access_token=SecretStr(pair["access_token"]),
            refresh_token=SecretStr(pair["refresh_token"]),
            issued_at=now,
            expires_at=now + int(pair["expires_in"]),
        )
    )
    transport = Transport(
        "kinopub",
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        user_agent=DEFAULT_KINOPUB_USER_AGENT,
        limits=Limits(read_timeout=5),
        rng=random.Random(3),
    )
    keeper = make_token_keeper(store, KinopubOAuth(transport, fake.base_url, "", ""), clock)
    return KinopubClient(transport, fake.base_url, keeper)


def recorded(fake: FakeKinopub, path: str, **params: str) -> Any:
    """The fake's real answer, to damage."""
    token = fake.issue_tokens()["access_token"]
    answer = requests.get(
        f"{fake.base_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return answer.json()


def views_of(result: CollectResult) -> set[tuple[str, datetime | None]]:
    return {(view.view_ref, view.watched_at) for view in result.views}


def assert_clean(result: CollectResult) -> None:
    for failure in result.failures:
        assert failure.reason.strip()
        assert CANARY not in failure.reason


@pytest.fixture(scope="module")
def baseline(fake: FakeKinopub) -> CollectResult:
    result = collect(linked_client(fake), since=None)
    assert not result.failures
    return result


def serve(fake: FakeKinopub, path: str, body: bytes) -> None:
    fake.clear_faults()
    content_type = "text/html" if body.lstrip().startswith(b"<") else "application/json"
    fake.add_fault("GET", path, status=200, body=body, content_type=content_type)


def status_in_body(body: bytes, media_id: int) -> object:
    """The ``status`` the hostile body gives a media (None when it cannot be found)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if str(node.get("id")).strip() == str(media_id) and "status" in node:
                return node["status"]
            nodes = list(node.values())
        elif isinstance(node, list):
            nodes = node
        else:
            return None
        for child in nodes:
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(json.loads(body))


@HOSTILE
@given(data=st.data())
def test_a_hostile_watching_answer_costs_that_item_only(
    fake: FakeKinopub, baseline: CollectResult, data: st.DataObject
) -> None:
    # Given Kinopub answers the first item's watch state (the newest: Arrival) with something hostile
    body = data.draw(hostile_body(recorded(fake, "/v1/watching", id=str(VICTIM))))
    serve(fake, r"/v1/watching", body)
    # When the collector reads the whole library
    result = collect(linked_client(fake), since=None)
    # Then the other items are read exactly as without the fault
    others = {(ref, at) for ref, at in views_of(baseline) if ref != f"movie:{VICTIM}"}
    assert {(ref, at) for ref, at in views_of(result) if ref != f"movie:{VICTIM}"} == others
    assert_clean(result)
    failed = {failure.kinopub_id for failure in result.failures}
    victim_views = [view for view in result.views if view.kinopub_id == VICTIM]
    event("victim refused" if VICTIM in failed else "victim read")
    if VICTIM in failed:
        # and the bad item is reported with a reason, and has no view at all
        assert victim_views == []
        assert failed == {VICTIM}
        return
    # or the damage left a readable answer: a view only for a media the body really says is watched
    assert failed == set()
    for view in victim_views:
        assert view.media_id is not None
        status = status_in_body(body, view.media_id)
        assert status in (1, "1") or (isinstance(status, str) and status.strip() == "1")


@HOSTILE
@given(data=st.data())
def test_a_hostile_history_page_stops_the_reading_with_a_reason_or_is_read_safely(
    fake: FakeKinopub, baseline: CollectResult, data: st.DataObject
) -> None:
    # Given Kinopub answers the history page with something hostile
    body = data.draw(hostile_body(recorded(fake, "/v1/history", page="1", perpage="50")))
    serve(fake, r"/v1/history", body)
    # When the collector reads
    refused: BadResponse | None = None
    try:
        result = collect(linked_client(fake), since=None)
    except BadResponse as exc:
        refused = exc
    if refused is not None:
        event("page refused")
        # Then either the page is refused as a whole (the run ends partial, the watermark stays), saying why
        assert "/v1/history" in str(refused)
        assert CANARY not in str(refused)
        return
    # or what it could read are real views, at their real times: no invented item, no drifted time
    assert_clean(result)
    assert views_of(result) <= views_of(baseline)


# --- through the real handler: the run goes on, and nothing of the bad item reaches Trakt -------------------

ARRIVAL_IMDB = "tt2543164"
ARRIVAL_MEDIA = VICTIM * 100_000 + 1


def arrival(video: dict[str, Any]) -> bytes:
    item = {"id": VICTIM, "title": "Прибытие / Arrival", "type": "movie", "videos": [video]}
    return json.dumps({"status": 200, "item": item}).encode()


WATCHED = {"id": ARRIVAL_MEDIA, "number": 1, "title": "", "status": 1, "updated": T0 + 4 * HOUR}
HOSTILE_ANSWERS = {
    "html page": b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
    "cut short": arrival(WATCHED)[:70],
    "empty": b"",
    "a JSON array": b"[]",
    "nested null": b'{"status": 200, "item": null}',
    "status as a word": arrival({**WATCHED, "status": "yes"}),
    "status in another script": arrival({**WATCHED, "status": OTHER_DIGITS[0]}),
    "status as a float": arrival({**WATCHED, "status": 1.0}),
    "updated in milliseconds": arrival({**WATCHED, "updated": (T0 + 4 * HOUR) * 1000}),
    "huge media id": arrival({**WATCHED, "id": 10**30, "status": "2"}),
    "another item's answer": json.dumps(
        {"status": 200, "item": {"id": 10, "type": "movie", "videos": [WATCHED]}}
    ).encode(),
    "error inside a 200": b'{"status": 500, "error": "Internal error"}',
}


def seed_both(kp: FakeKinopub, tr: FakeTrakt) -> None:
    seed_kinopub(kp)
    seed_trakt(tr)


def posted_bodies(trakt: FakeTrakt) -> str:
    return json.dumps([request.json for request in trakt.calls("POST", "/sync/history")])


@pytest.mark.parametrize("case", sorted(HOSTILE_ANSWERS))
def test_a_hostile_item_is_reported_never_posted_and_synced_once_kinopub_recovers(case: str) -> None:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with sandbox(seed=seed_both, clock=clock, fake_clock=clock.time) as box:
        # Given Kinopub answers Arrival's watch state with something no client can trust
        body = HOSTILE_ANSWERS[case]
        content_type = "text/html" if body.startswith(b"<") else "application/json"
        box.kinopub.add_fault("GET", r"/v1/watching", status=200, body=body, content_type=content_type)
        # When the sync runs
        report = box.invoke()
        # Then the run goes on: the other finished views are on Trakt, the watermark waits
        assert report["status"] == "partial"
        assert report["watermark"] is None
        assert (report["added_movies"], report["added_episodes"]) == (1, 2)
        # and Arrival is reported with a reason, and nothing of it was posted
        (failure,) = report["failed_items"]
        assert failure["kinopub_id"] == VICTIM
        assert "/v1/watching" in failure["reason"]
        assert ARRIVAL_IMDB not in posted_bodies(box.trakt)
        # When Kinopub answers properly again, the next run posts it, once
        clock.advance(900)
        report = box.invoke()
        assert report["status"] == "ok"
        assert [key for key in box.trakt.play_keys() if ARRIVAL_IMDB in key] == ["movie:tt2543164:2026-01-01T04:00Z"]
        assert box.trakt.duplicate_keys() == []
