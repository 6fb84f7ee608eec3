"""The setup key of the browser login, through the real auth handler on moto and the fake Trakt: it expires, it
links once, anonymous refusals cost no AWS call, and every link is announced (metric, alarm topic, page)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import FakeTrakt
from functions.auth.app import AuthDeps, handle
from kinotrakt.storage.sns import SnsLinkNotices
from kinotrakt.tokens import update_secret
from kinotrakt.web.login import STATE_COOKIE, LinkNotice
from tests.browser.auth_world import SETUP_KEY, AuthWorld, LogCapture, build_world, capture_kinotrakt_logs
from tests.integration.test_auth_handler import approve_on_trakt, assert_page, cookie_value

REDIRECT_URI = "https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/callback"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MINUTE = 60


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


class Topic:
    """The alarm topic on moto, with a queue subscribed to it, so a test reads what the owner's e-mail would get."""

    def __init__(self, session: boto3.Session) -> None:
        self.sns = session.client("sns")
        self.sqs = session.client("sqs")
        self.arn = self.sns.create_topic(Name="kinotrakt-alarms")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="owner-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn)

    def received(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


class AwsCalls:
    """Every AWS API call the auth function's clients make, by operation (botocore's before-call event)."""

    def __init__(self, session: boto3.Session) -> None:
        self.made: Counter[str] = Counter()
        session.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.made[model.name] += 1

    def total(self) -> int:
        return sum(self.made.values())


@pytest.fixture
def calls(aws: boto3.Session) -> AwsCalls:
    return AwsCalls(aws)  # registered before the world's clients are made, so they all report


@pytest.fixture
def topic(aws: boto3.Session) -> Topic:
    return Topic(aws)


@pytest.fixture
def world(
    aws: boto3.Session,
    state_table: str,
    secrets: tuple[str, str],
    clock: VirtualClock,
    calls: AwsCalls,
    topic: Topic,
) -> Iterator[AuthWorld]:
    with FakeTrakt(clock=clock.time) as fake:
        yield build_world(
            aws,
            fake,
            kinopub_secret=secrets[0],
            trakt_secret=secrets[1],
            table=state_table,
            redirect_uri=REDIRECT_URI,
            clock=clock,
            notices=SnsLinkNotices(aws.client("sns"), topic.arn),
        )


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_kinotrakt_logs()


def emitted(out: str) -> list[tuple[str, dict[str, str], list[list[str]]]]:
    """Every EMF metric line: (metric name, its dimension values, its dimension sets)."""
    lines = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "Kinotrakt"
                for metric in directive["Metrics"]:
                    values = {name: blob[name] for dims in directive["Dimensions"] for name in dims}
                    lines.append((metric["Name"], values, directive["Dimensions"]))
    return lines


def link(world: AuthWorld, deps: AuthDeps | None = None) -> dict[str, Any]:
    """A whole browser login with the setup key: the login, Trakt's approval, the callback."""
    authorize, cookie = start(world, deps)
    return finish(world, authorize, cookie, deps)


def start(world: AuthWorld, deps: AuthDeps | None = None) -> tuple[dict[str, str], str]:
    response = call(world, "/trakt/login", f"key={SETUP_KEY}", deps=deps)
    assert response["statusCode"] == 302, response["body"]
    query = parse_qs(urlsplit(response["headers"]["Location"]).query)
    return {name: values[0] for name, values in query.items()}, cookie_value(response)


def finish(world: AuthWorld, authorize: dict[str, str], cookie: str, deps: AuthDeps | None = None) -> dict[str, Any]:
    query = approve_on_trakt(world, authorize)
    return call(world, "/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",), deps=deps)


def call(
    world: AuthWorld, path: str, query: str, *, cookies: tuple[str, ...] = (), deps: AuthDeps | None = None
) -> dict[str, Any]:
    return handle(api_gateway_v2_event(path, query, cookies=cookies), FakeLambdaContext(), deps=deps or world.deps)


def another_container(world: AuthWorld) -> AuthDeps:
    """A second warm Lambda container of the same function: the same stores, its own read of the secret."""
    return AuthDeps(
        settings=world.settings,
        login_states=world.deps.login_states,
        trakt_tokens=world.deps.trakt_tokens,
        clock=world.deps.clock,
        notices=world.deps.notices,
    )


# --- 13.1 the key expires ----------------------------------------------------------------------------------


def test_a_setup_key_works_until_it_expires(
    world: AuthWorld, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a key made an hour before it expires; 59 minutes later it still starts a login
    clock.advance(59 * MINUTE)
    assert call(world, "/trakt/login", f"key={SETUP_KEY}")["statusCode"] == 302
    capsys.readouterr()

    # When the owner opens the link at the hour (the container's read of the secret is a minute old by then)
    clock.advance(MINUTE)
    response = call(world, "/trakt/login", f"key={SETUP_KEY}")

    # Then it is refused with a page saying the link expired and how to get a new one, and no login starts
    assert_page(response, 403, "This login link has expired", "kinotrakt setup")
    assert "Location" not in response["headers"]
    assert (
        "LoginRefused",
        {"service": "kinotrakt", "reason": "expired_key"},
        [["service"], ["service", "reason"]],
    ) in (emitted(capsys.readouterr().out))


def test_a_setup_key_without_an_expiry_counts_as_expired(world: AuthWorld) -> None:
    # Given a key stored by an older version, without setup_key_expires_at
    update_secret(world.deps.trakt_tokens, lambda secret: secret.model_copy(update={"setup_key_expires_at": None}))
    world.deps.setup_secret.forget()

    # When the owner opens its link
    response = call(world, "/trakt/login", f"key={SETUP_KEY}")

    # Then it is refused as expired
    assert_page(response, 403, "This login link has expired")


def test_only_the_key_holder_learns_that_a_key_expired(world: AuthWorld, clock: VirtualClock) -> None:
    clock.advance(2 * 60 * MINUTE)
    response = call(world, "/trakt/login", f"key={'x' * 43}")
    assert_page(response, 403, "This login link is not valid")


# --- 13.1 the key links once ---------------------------------------------------------------------------------


def test_a_setup_key_links_once(world: AuthWorld) -> None:
    # Given a completed browser link
    assert link(world)["statusCode"] == 200
    secret = world.trakt_secret()
    assert (secret.setup_key, secret.setup_key_expires_at) == (None, None)
    assert secret.access_token is not None

    # When the same login link is opened again (from the browser history)
    again = call(world, "/trakt/login", f"key={SETUP_KEY}")

    # Then it is refused, and the link stays as it was
    assert_page(again, 403, "This login link is not valid")
    assert "Location" not in again["headers"]
    assert world.trakt_secret().access_token == secret.access_token


def test_two_logins_started_with_one_key_link_once(world: AuthWorld) -> None:
    # Given two logins started with the same key (two tabs, or the owner and someone who found the link)
    first = start(world)
    second = start(world)

    # When both are approved on Trakt and come back
    done = finish(world, *first)
    late = finish(world, *second)

    # Then the first links, and the second is refused before its code is exchanged
    assert done["statusCode"] == 200
    assert_page(late, 403, "This login link was already used", "kinotrakt setup")
    assert world.token_exchanges() == 1


def test_a_container_that_read_the_key_before_the_link_cannot_link_with_it(
    world: AuthWorld, clock: VirtualClock
) -> None:
    # Given a second container that read the secret (with the key) for a login a moment ago
    other = another_container(world)
    assert call(world, "/trakt/login", f"key={SETUP_KEY}", deps=other)["statusCode"] == 302

    # When the key links an account through the first container, and then someone uses the key on the second
    assert link(world)["statusCode"] == 200
    replay = start(world, other)  # within the minute its read is trusted, the login itself starts
    refused = finish(world, *replay, deps=other)

    # Then the callback, which reads the secret itself, refuses it: the key linked once, and only once
    assert_page(refused, 403, "This login link was already used")
    assert world.token_exchanges() == 1
    # And once the minute is over the second container refuses the key at the login too
    clock.advance(MINUTE)
    assert_page(call(world, "/trakt/login", f"key={SETUP_KEY}", deps=other), 403, "This login link is not valid")


# --- 13.2 anonymous refusals cost nothing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "key=",
        "other=1",
        "key=short",
        f"key={SETUP_KEY}x",
        f"key={SETUP_KEY[:-1]}",
        f"key={SETUP_KEY[:-1]}.",
        f"key={SETUP_KEY[:-1]}~",
        "key=%3Cscript%3E",
        "key=" + "k" * 600,
    ],
    ids=["no-query", "empty", "no-key", "short", "too-long", "one-short", "dot", "tilde", "markup", "oversized"],
)
def test_a_login_without_a_key_of_our_shape_is_refused_before_any_aws_call(
    world: AuthWorld, calls: AwsCalls, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    # Given a deployment whose secret is in place (the world was built: those calls are done)
    calls.made.clear()
    capsys.readouterr()

    # When a visitor opens the login route without a key, or with one that cannot be a key kinotrakt makes
    response = call(world, "/trakt/login", query)

    # Then it is refused with a page, without one AWS call, and counted as a refusal with its reason
    assert response["statusCode"] in (400, 403)
    assert "Location" not in response["headers"]
    assert calls.made == Counter()
    ((_, dimensions, _),) = [line for line in emitted(capsys.readouterr().out) if line[0] == "LoginRefused"]
    assert dimensions["reason"] in {"missing_key", "malformed_key", "bad_request"}


def test_wrong_keys_cost_one_secret_read_a_minute(world: AuthWorld, calls: AwsCalls, clock: VirtualClock) -> None:
    # Given a flood of well-shaped wrong keys
    calls.made.clear()
    for number in range(25):
        assert call(world, "/trakt/login", f"key={str(number).zfill(43)}")["statusCode"] == 403
        clock.advance(2)
    # Then the secret was read once for the first 30 seconds' worth, and again once after the minute
    assert calls.made == Counter({"GetSecretValue": 1})
    clock.advance(MINUTE)
    call(world, "/trakt/login", f"key={'0' * 43}")
    assert calls.made == Counter({"GetSecretValue": 2})


# --- 13.1 every link is announced ------------------------------------------------------------------------------


def test_a_link_is_announced_on_the_alarm_topic_with_a_metric(
    world: AuthWorld, topic: Topic, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the owner links their Trakt account through the browser
    capsys.readouterr()
    response = link(world)

    # Then the page names the account, a TraktLinked metric is emitted, and the alarm topic says who was linked
    assert_page(response, 200, "The Trakt account kinotrakt-demo is now linked")
    assert ("TraktLinked", {"service": "kinotrakt"}, [["service"]]) in emitted(capsys.readouterr().out)
    (message,) = topic.received()
    assert message["Subject"] == "kinotrakt: a Trakt account was linked"
    assert "The Trakt account kinotrakt-demo was linked to kinotrakt" in message["Message"]
    assert "No Trakt account was linked before." in message["Message"]
    assert "kinotrakt unlink trakt" in message["Message"]
    # And nothing secret is in it
    secret = world.trakt_secret()
    assert secret.access_token is not None
    for value in (SETUP_KEY, secret.access_token.get_secret_value(), world.fake.client_secret):
        assert value not in json.dumps(message)


def test_a_link_to_another_account_names_the_one_it_replaces(
    world: AuthWorld, topic: Topic, clock: VirtualClock
) -> None:
    # Given the owner's account linked through the browser
    assert link(world)["statusCode"] == 200
    topic.received()
    # And, later, a new login link (setup) that someone else uses with their own Trakt account
    expires = int(clock.now().timestamp()) + 3600
    update_secret(
        world.deps.trakt_tokens,
        lambda secret: secret.model_copy(update={"setup_key": SETUP_KEY, "setup_key_expires_at": expires}),
    )
    world.deps.setup_secret.forget()
    world.fake.username = "somebody-else"

    # When that link completes
    response = link(world)

    # Then the page and the notice both name the account that was linked before
    assert_page(
        response, 200, "The Trakt account somebody-else is now linked", "It replaces the Trakt account kinotrakt-demo"
    )
    (message,) = topic.received()
    assert "The Trakt account somebody-else was linked" in message["Message"]
    assert "It replaces the Trakt account kinotrakt-demo." in message["Message"]
    assert world.trakt_secret().linked_user == "somebody-else"


class BrokenNotices:
    def linked(self, notice: LinkNotice) -> None:
        raise RuntimeError(f"SNS is down ({notice.username})")


def test_a_notice_that_cannot_be_sent_never_fails_the_link(world: AuthWorld, logs: LogCapture) -> None:
    # Given an alarm topic that cannot be reached
    world.deps.notices = BrokenNotices()
    # When the owner links
    response = link(world)
    # Then the link is made and said so, and the log says the notice failed (by its type only)
    assert_page(response, 200, "is now linked")
    assert world.trakt_secret().access_token is not None
    assert "could not send the link notice" in logs.text
    assert "RuntimeError" in logs.text
    assert "SNS is down" not in logs.text
