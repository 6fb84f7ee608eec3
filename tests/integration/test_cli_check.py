"""``kinotrakt check`` against the fakes, through typer's runner: what a user sees when the services answer as
kinotrakt expects, when their answers have drifted (a renamed field, a missing one, an extra one, HTML instead
of JSON, history out of order), and proof that the check writes nothing anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from devkit.fakes.base import FakeServer, RecordedRequest, Response, dumps
from devkit.fakes.fake_trakt import CLOUDFLARE_429, CLOUDFLARE_RETRY_AFTER
from devkit.fakes.library import seed_demo_library
from kinotrakt.errors import TraktAppRejected
from kinotrakt.tokens import update_secret
from tests.conftest import STATE_TABLE
from tests.integration.test_cli import CliWorld, Result, world

__all__ = ["world"]  # the fixture, shared with the other CLI tests

Change = Callable[[Any], Any]
CLOUDFLARE_HEADERS = {"Server": "cloudflare", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)}


@pytest.fixture
def linked(world: CliWorld) -> CliWorld:
    """The demo library on both fakes, both accounts linked, one play already on Trakt."""
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    return world


def check(world: CliWorld, *args: str) -> tuple[Result, dict[str, Any]]:
    """``check --json`` and its findings by endpoint."""
    result = world.run("check", "--json", *args)
    data = json.loads(result.out)
    return result, data


def by_endpoint(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{c['service']} {c['endpoint'].split('?')[0]}": c for c in data["checks"]}


def drift(monkeypatch: pytest.MonkeyPatch, fake: FakeServer, path: str, change: Change) -> None:
    """The fake answers ``path`` as usual, then ``change`` rewrites the JSON body (or returns a Response)."""
    original = fake.dispatch

    def dispatch(request: RecordedRequest) -> Response:
        response = original(request)
        if request.path != path:
            return response
        changed = change(json.loads(response.body))
        if isinstance(changed, Response):
            return changed
        return Response(response.status, dumps(changed), response.headers, response.content_type)

    monkeypatch.setattr(fake, "dispatch", dispatch)


# --- as expected -------------------------------------------------------------------------------------------------


def test_services_that_answer_as_expected_pass_every_check(linked: CliWorld) -> None:
    # When the owner checks the deployment
    result = linked.run("check")

    # Then every request a sync makes was made once, read by our models, with the fields we expect
    assert result.code == 0, result.out
    rows = [line.split() for line in result.out.splitlines()]
    checks = [row for row in rows if row and row[0] in ("ok", "DRIFT", "FAILED", "skip")]
    assert [" ".join(row[1:3]) for row in checks] == [
        "Kinopub /v1/user",
        "Kinopub /v1/history",
        "Kinopub /v1/watching?id=31500",
        "Trakt /users/settings",
        "Trakt /sync/history",
        "Trakt /shows/tt2930604/seasons",
    ]
    assert all(row[0] == "ok" for row in checks)
    # and it says which show it looked up and why, that the history came newest first, and both tokens' expiry
    assert "a show from your Kinopub history: Звёздные войны: Повстанцы / Star Wars Rebels" in result.out
    assert "newest first by last_seen (25 rows)" in result.out
    assert "Kinopub token: linked; access token expires 2026-11-02 12:00Z (in 23 h)" in result.out
    assert "Trakt token: linked; access token expires 2026-11-08 12:00Z (in 7 days)" in result.out
    assert result.out.rstrip().endswith("Everything matches.")


def test_json_output_has_every_finding(linked: CliWorld) -> None:
    result, data = check(linked)
    assert result.code == 0
    assert data["ok"] is True
    assert set(data["tokens"]) == {"kinopub", "trakt"}
    trakt = data["tokens"]["trakt"]
    assert (trakt["state"], trakt["refreshed"]) == ("linked", False)
    assert trakt["expires_at"].startswith("2026-11-08T12:00")
    seasons = by_endpoint(data)["trakt /shows/tt2930604/seasons"]
    assert (seasons["status"], seasons["parsed"], seasons["missing"], seasons["unexpected"]) == (200, True, [], [])
    assert seasons["ok"] is True


def test_the_history_pages_are_two_when_kinopub_has_more(world: CliWorld) -> None:
    # Given a history of 60 rows (two pages of 50)
    for n in range(60):
        world.kinopub.add_movie(1000 + n, f"Фильм {n} / Film {n}", 2000 + n % 20, 1_000_000 + n)
        world.kinopub.watch(1000 + n, at=1_750_000_000 - n * 3600)
    world.setup()
    world.link_both()
    result, data = check(world)
    found = by_endpoint(data)
    # Then both pages were read and judged in order, and a well-known show stood in for a show of the user's own
    assert found["kinopub /v1/history page 2"]["ok"] is True
    assert "newest first by last_seen (60 rows)" in found["kinopub /v1/history page 2"]["notes"]
    assert [r.query["page"] for r in world.kinopub.calls("GET", "/v1/history")] == ["1", "2"]
    seasons = found["trakt /shows/tt0903747/seasons"]
    assert "a well-known show (Breaking Bad)" in seasons["notes"][0]
    # (the fake Trakt does not hold Breaking Bad: a 404, which the check reports)
    assert seasons["problems"] == ["HTTP 404: Trakt has no such item"]
    assert result.code == 1


def test_rate_limit_headers_are_shown(linked: CliWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    def limited(body: Any) -> Response:
        headers = {"X-Ratelimit": '{"name":"UNAUTHED_API_GET_LIMIT","remaining":998}', "Retry-After": "0"}
        return Response(200, dumps(body), headers)

    drift(monkeypatch, linked.trakt, "/users/settings", limited)
    result, data = check(linked)
    settings = by_endpoint(data)["trakt /users/settings"]
    assert settings["rate_limit"] == {
        "X-Ratelimit": '{"name":"UNAUTHED_API_GET_LIMIT","remaining":998}',
        "Retry-After": "0",
    }
    assert settings["ok"] is True
    assert result.code == 0


# --- drifted -----------------------------------------------------------------------------------------------------


def rename_episode_updated(body: Any) -> Any:
    for season in body["item"].get("seasons", []):
        for episode in season["episodes"]:
            episode["updated_at"] = episode.pop("updated")
    return body


def drop_watched_at(body: Any) -> Any:
    for play in body:
        del play["watched_at"]
    return body


def add_row_field(body: Any) -> Any:
    for row in body["history"]:
        row["rewatch_count"] = 2
        row["item"]["genres"] = ["drama"]  # under item: Kinopub's catalog fields are many, and free
    return body


def html_page(body: Any) -> Response:
    return Response(200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", {}, "text/html; charset=utf-8")


def reverse_rows(body: Any) -> Any:
    body["history"].reverse()
    return body


DRIFTS = [
    pytest.param(
        "kinopub",
        "/v1/watching",
        rename_episode_updated,
        "kinopub /v1/watching",
        {
            "parsed": True,
            "missing": ["item.seasons[].episodes[].updated"],
            "unexpected": ["item.seasons[].episodes[].updated_at"],
        },
        id="renamed field",
    ),
    pytest.param(
        "trakt",
        "/sync/history",
        drop_watched_at,
        "trakt /sync/history page 1",
        {"parsed": False, "missing": ["[].watched_at"], "unexpected": []},
        id="missing field",
    ),
    pytest.param(
        "kinopub",
        "/v1/history",
        add_row_field,
        "kinopub /v1/history page 1",
        {"parsed": True, "missing": [], "unexpected": ["history[].rewatch_count"]},
        id="extra field",
    ),
    pytest.param(
        "trakt",
        "/users/settings",
        html_page,
        "trakt /users/settings",
        {"parsed": False, "missing": [], "unexpected": [], "problems": ["answered an HTML page instead of JSON"]},
        id="HTML instead of JSON",
    ),
    pytest.param(
        "kinopub",
        "/v1/history",
        reverse_rows,
        "kinopub /v1/history page 1",
        {"parsed": True, "missing": [], "unexpected": []},
        id="history not newest first",
    ),
]


@pytest.mark.parametrize(("service", "path", "change", "endpoint", "expected"), DRIFTS)
def test_an_answer_that_drifted_is_named_and_fails_the_check(
    linked: CliWorld,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    path: str,
    change: Change,
    endpoint: str,
    expected: dict[str, Any],
) -> None:
    # Given one service's answer no longer has the shape kinotrakt expects
    fake: FakeServer = linked.kinopub if service == "kinopub" else linked.trakt
    drift(monkeypatch, fake, path, change)

    # When the owner checks the deployment
    result, data = check(linked)

    # Then that answer, and only it, is reported with what changed, and the check exits 1
    assert result.code == 1
    assert data["ok"] is False
    found = by_endpoint(data)
    assert [name for name, finding in found.items() if not finding["ok"]] == [endpoint]
    finding = found[endpoint]
    assert {key: finding[key] for key in expected} == expected
    if change is reverse_rows:
        assert finding["problems"][0].startswith("not newest first: row 2 is newer than the one before it")
    # and the table says so in words
    table = linked.run("check")
    assert "1 of 6 checks drifted or failed." in table.out
    for path_name in (*finding["missing"], *finding["unexpected"]):
        assert path_name in table.out


# --- read only ---------------------------------------------------------------------------------------------------


def table_items(aws: boto3.Session) -> list[dict[str, Any]]:
    return sorted(
        aws.client("dynamodb").scan(TableName=STATE_TABLE)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"])
    )


def test_the_check_writes_nothing_anywhere(linked: CliWorld, aws: boto3.Session) -> None:
    # Given a synced deployment whose Trakt token is due for a refresh (a sync would refresh it) but not expired
    assert linked.run("sync").code == 0
    now = int(linked.clock.now().timestamp())
    update_secret(linked.tokens.trakt, lambda secret: secret.model_copy(update={"expires_at": now + 3600}))
    versions = {
        name: store.load().version for name, store in (("k", linked.tokens.kinopub), ("t", linked.tokens.trakt))
    }
    items, plays = table_items(aws), linked.trakt.plays()
    linked.kinopub.clear_requests()
    linked.trakt.clear_requests()

    # When the owner checks the deployment
    result = linked.run("check")

    # Then nothing changed: the secrets (no refresh), the table, the plays on Trakt, Kinopub's state
    assert result.code == 0, result.out
    assert {
        name: store.load().version for name, store in (("k", linked.tokens.kinopub), ("t", linked.tokens.trakt))
    } == versions
    assert table_items(aws) == items
    assert linked.trakt.plays() == plays
    assert linked.kinopub.mutations == []
    # and every request it sent was a read
    requests = [*linked.kinopub.requests, *linked.trakt.requests]
    assert {r.method for r in requests} == {"GET"}
    assert len(requests) == 6


def test_an_expired_access_token_is_refreshed_once_through_the_token_keeper(
    linked: CliWorld, aws: boto3.Session
) -> None:
    # Given the Kinopub access token expired a day ago (24-hour tokens)
    linked.clock.advance(timedelta(days=2).total_seconds())
    before = linked.tokens.kinopub.load()
    items = table_items(aws)
    linked.kinopub.clear_requests()

    # When the owner checks the deployment
    result, data = check(linked)

    # Then the token was refreshed once and the new pair stored (a refresh token is single-use), as a sync would;
    # nothing else was written, and the checks ran with the new token
    assert result.code == 0, result.out
    assert data["tokens"]["kinopub"]["refreshed"] is True
    assert data["tokens"]["kinopub"]["state"] == "had expired: refreshed now and stored, as a sync would"
    after = linked.tokens.kinopub.load()
    assert after.version != before.version
    assert after.secret.refresh_token != before.secret.refresh_token
    refreshes = [r for r in linked.kinopub.requests if r.method == "POST"]
    assert len(refreshes) == 1
    assert data["tokens"]["trakt"]["refreshed"] is False
    assert table_items(aws) == items


def test_accounts_not_linked_fail_the_check_without_a_request(world: CliWorld) -> None:
    world.setup()
    result, data = check(world)
    assert result.code == 1
    assert data["tokens"]["kinopub"]["state"] == "not linked"
    unlinked = [c["endpoint"] for c in data["checks"] if c["problems"] == [f"{c['service'].title()} is not linked"]]
    assert unlinked == ["/v1/user", "/v1/history", "/v1/watching", "/users/settings", "/sync/history"]
    assert world.kinopub.requests == []
    # The public season table needs only the app's client id
    assert [r.path for r in world.trakt.requests] == ["/shows/tt0903747/seasons"]


# --- refusals ----------------------------------------------------------------------------------------------------


def test_a_refused_token_is_reported_not_refreshed(linked: CliWorld) -> None:
    # Given Kinopub no longer accepts the stored access token (it has not expired by its time)
    secret = linked.tokens.kinopub.load().secret
    assert secret.access_token is not None
    linked.kinopub.expire_access_token(secret.access_token.get_secret_value())
    linked.kinopub.clear_requests()
    # When the owner checks, Then the refusal is reported, and the check refreshes nothing (a sync would)
    result, data = check(linked)
    assert result.code == 1
    user = by_endpoint(data)["kinopub /v1/user"]
    assert (user["status"], user["parsed"]) == (401, None)
    assert user["problems"] == [
        "the access token was refused (HTTP 401); a sync refreshes it, or run `kinotrakt link kinopub`"
    ]
    assert {r.method for r in linked.kinopub.requests} == {"GET"}
    assert linked.tokens.kinopub.load().secret.refresh_token == secret.refresh_token


def test_a_trakt_app_trakt_rejects_is_named_in_the_runs_words(linked: CliWorld) -> None:
    linked.trakt.app_deleted = True
    result, data = check(linked)
    assert result.code == 1
    trakt = [c for c in data["checks"] if c["service"] == "trakt"]
    assert [c["problems"] for c in trakt] == [[TraktAppRejected.message]] * 3
    assert all(c["status"] == 403 for c in trakt)


def test_a_long_rate_limit_stops_asking_that_service(linked: CliWorld) -> None:
    # Given Trakt answers the first read with Cloudflare's 429 and a 5-minute pause
    linked.trakt.add_fault("GET", r"/.*", status=429, body=CLOUDFLARE_429, headers=CLOUDFLARE_HEADERS)
    linked.trakt.clear_requests()
    result, data = check(linked)
    # Then the check waits for nothing, sends Trakt nothing more, and says when it may be asked again
    assert result.code == 1
    trakt = [c for c in data["checks"] if c["service"] == "trakt"]
    assert trakt[0]["status"] == 429
    assert trakt[0]["rate_limit"] == {"Retry-After": "300"}
    assert trakt[0]["problems"] == ["Trakt asked for a pause (HTTP 429): not asked again by this check"]
    assert [c["problems"] for c in trakt[1:]] == [["not asked: Trakt asked this check for a pause (HTTP 429)"]] * 2
    assert len(linked.trakt.requests) == 1
    assert linked.clock.slept < 60


def test_an_empty_history_leaves_nothing_to_read_and_a_well_known_show(world: CliWorld) -> None:
    # Given a Kinopub account with no history yet, and Trakt holding Breaking Bad
    world.trakt.add_show(1388, "Breaking Bad", 2008, "tt0903747", {1: 7})
    world.setup()
    world.link_both()
    result = world.run("check")
    # Then /v1/watching is skipped, not failed, and the season table is Breaking Bad's
    assert result.code == 0, result.out
    assert ["skip", "Kinopub", "/v1/watching"] in [line.split()[:3] for line in result.out.splitlines()]
    assert "nothing to read: no row in your history" in result.out
    assert "Trakt /shows/tt0903747/seasons" in result.out


def test_before_setup_every_check_says_so(world: CliWorld) -> None:
    result, data = check(world)
    assert result.code == 1
    assert {name: state["state"] for name, state in data["tokens"].items()} == {
        "kinopub": "not set up (`kinotrakt setup`)",
        "trakt": "not set up (`kinotrakt setup`)",
    }
    assert by_endpoint(data)["trakt /shows/{imdb}/seasons"]["problems"] == ["Trakt is not set up (`kinotrakt setup`)"]
    assert world.kinopub.requests == world.trakt.requests == []


def test_the_commands_the_check_names_repeat_how_the_owner_ran_it(world: CliWorld) -> None:
    # Given nothing set up, and an owner who runs the CLI from the repository with a region of their own
    result = world.run("--region", "eu-west-1", "check", program=".venv/bin/kinotrakt")

    # Then every line that names setup names it with the same program and options, ready to paste
    assert result.code == 1
    setup = "`.venv/bin/kinotrakt --region eu-west-1 setup`"
    lines = result.out.splitlines()
    assert f"Kinopub token: not set up ({setup})" in lines
    assert f"Trakt token: not set up ({setup})" in lines
    assert f"  Trakt is not set up ({setup})" in lines
    assert "(`kinotrakt setup`)" not in result.out


def test_a_refused_token_names_link_as_the_owner_ran_the_check(linked: CliWorld) -> None:
    # Given Kinopub no longer accepts the stored access token
    secret = linked.tokens.kinopub.load().secret
    assert secret.access_token is not None
    linked.kinopub.expire_access_token(secret.access_token.get_secret_value())
    # When the owner checks with a stack named
    result = linked.run("--stack", "mine", "check", program=".venv/bin/kinotrakt")
    # Then the command that links Kinopub again carries the stack
    assert result.code == 1
    assert (
        "  the access token was refused (HTTP 401); a sync refreshes it, or run "
        "`.venv/bin/kinotrakt --stack mine link kinopub`"
    ) in result.out.splitlines()


def test_an_expired_token_that_cannot_be_refreshed_is_reported(linked: CliWorld) -> None:
    # Given the Kinopub access token expired and its refresh token was revoked
    secret = linked.tokens.kinopub.load().secret
    assert secret.refresh_token is not None
    linked.kinopub.revoke(secret.refresh_token.get_secret_value())
    linked.clock.advance(timedelta(days=2).total_seconds())
    result, data = check(linked)
    assert result.code == 1
    state = data["tokens"]["kinopub"]["state"]
    assert state.startswith("expired; refreshing it failed: kinopub authorization is no longer valid")
    assert "kinotrakt link kinopub" in state


def test_a_history_row_our_models_cannot_read_is_drift(linked: CliWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    def damage_first_row(body: Any) -> Any:
        body["history"][0]["media"]["id"] = "not a number"
        return body

    drift(monkeypatch, linked.kinopub, "/v1/history", damage_first_row)
    result, data = check(linked)
    page = by_endpoint(data)["kinopub /v1/history page 1"]
    assert result.code == 1
    assert page["parsed"] is True
    assert page["problems"][0].startswith("1 row(s) our models cannot read: unexpected shape: media.id")
