"""template.yaml's DynamoDB conditions against the keys the code really uses: every request of a sync run (two
runs, with an unmatched item) and of a whole Trakt login has its pk inside its function's
``dynamodb:LeadingKeys`` condition, so the tighter IAM never refuses what the functions do — and the auth
function's condition really is narrower than the sync's."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.sandbox import ACCOUNT, FakeLambdaContext, load_handler, patched_environ, sandbox
from devkit.template import load_template
from kinotrakt.web.login import STATE_COOKIE
from tests.browser.auth_world import build_world
from tests.integration.test_auth_handler import REDIRECT_URI, approve_on_trakt, start_login
from tests.integration.test_sync_pipeline import seed_basic


def leading_keys(value: Any) -> Iterator[str]:
    """Every partition key value in a DynamoDB request's parameters (keys, items, key conditions)."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name in ("pk", ":pk") and isinstance(inner, dict) and "S" in inner:
                yield inner["S"]
            else:
                yield from leading_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from leading_keys(inner)


def record_keys(session: boto3.Session) -> list[str]:
    """The pk of every DynamoDB request the session's clients make from now on."""
    seen: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        seen.extend(leading_keys(params))

    session.events.register("provide-client-params.dynamodb", hook)
    return seen


def allows(function: str, key: str, account: str) -> bool:
    """Whether ``function``'s DynamoDB statement in template.yaml admits a request on partition ``key``."""
    (statement,) = [
        s
        for s in load_template()["Resources"][function]["Properties"]["Policies"][0]["Statement"]
        if str(s["Action"]).count("dynamodb:")
    ]
    ((operator, keys),) = statement["Condition"].items()
    patterns = [entry["Fn::Sub"].replace("${AccountId}", account) for entry in keys["dynamodb:LeadingKeys"]]
    if operator == "ForAllValues:StringLike":
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    assert operator == "ForAllValues:StringEquals"
    return key in patterns


def test_every_key_a_sync_run_uses_is_inside_the_sync_functions_condition() -> None:
    clock = VirtualClock()

    def seed(kinopub: Any, trakt: FakeTrakt) -> None:
        seed_basic(kinopub, trakt)
        kinopub.add_movie(900, "Неизвестный фильм / Unknown Film", 1999, None)
        kinopub.watch(900, at=1_700_000_000)

    with sandbox(seed=seed, clock=clock) as box:
        # Given the sync handler with stores whose DynamoDB requests are recorded
        seen = record_keys(box.session)
        stores = box.stores()

        # When it runs twice (the second reads what the first stored)
        with patched_environ(box.env):
            handler = load_handler("sync")
            for _ in range(2):
                report = handler.handle({}, FakeLambdaContext(clock, 600), stores=stores, clock=clock)
                assert report["status"] == "ok", report
                clock.advance(3600)

    # Then every item it touched is one the template lets it touch, and the run used several kinds of them
    assert {key.split("#", 1)[1] for key in seen} >= {"sync", "ledger", "map", "unmatched", "report"}
    assert [key for key in seen if not allows("SyncFunction", key, ACCOUNT)] == []


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def test_every_key_a_trakt_login_uses_is_inside_the_auth_functions_condition(
    aws: boto3.Session, state_table: str, secrets: tuple[str, str], clock: VirtualClock
) -> None:
    # Given the auth handler wired to moto through a session whose DynamoDB requests are recorded
    seen = record_keys(aws)
    with FakeTrakt(clock=clock.time) as fake:
        world = build_world(
            aws,
            fake,
            kinopub_secret=secrets[0],
            trakt_secret=secrets[1],
            table=state_table,
            redirect_uri=REDIRECT_URI,
            clock=clock,
        )
        account = world.settings.account_id

        # When the owner links Trakt: login, approve, callback
        authorize, cookie = start_login(world)
        callback = approve_on_trakt(world, authorize)
        response = world.call("/trakt/callback", callback, cookies=(f"{STATE_COOKIE}={cookie}",))
    assert response["statusCode"] == 200

    # Then it touched only login states, which the auth function's condition admits, and nothing the sync's
    # condition would be needed for
    assert set(seen) == {f"{account}#oauth"}
    assert all(allows("AuthFunction", key, account) for key in seen)
    assert not allows("AuthFunction", f"{account}#ledger", account)
    assert not allows("AuthFunction", f"{account}#sync", account)
    assert not allows("SyncFunction", "someone-else#ledger", account)
