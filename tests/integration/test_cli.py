"""``kinotrakt`` against moto's table and secrets and the fake Kinopub and Trakt: what a user types,
what they see, and what ends up stored, through typer's test runner. The device flows are approved from the
clock's sleep hook, so the polling runs on virtual time."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from pydantic import AnyHttpUrl, SecretStr
from rich.console import Console
from typer.testing import CliRunner

from devkit.clock import VirtualClock
from devkit.fakes.base import ISSUED_SECRETS
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import LeftByOtherTools, seed_demo_library, seed_other_tools_plays
from devkit.memory import InMemoryTokenStore
from kinotrakt.audit.report import AuditReport
from kinotrakt.clock import Clock
from kinotrakt.config import Settings
from kinotrakt.errors import BadResponse, ConcurrentTokenWrite, TraktAppRejected
from kinotrakt.http import CallCounter
from kinotrakt.service import execute_audit, execute_sync
from kinotrakt.storage.aws import aws_sync_stores
from kinotrakt.storage.ports import (
    EpisodePin,
    Pin,
    SeasonPin,
    ServiceSecret,
    StoredSecret,
    SyncStores,
    TokenStore,
    UnmatchedItem,
)
from kinotrakt.sync.report import RunError, SyncReport, UnmatchedNote
from kinotrakt.tokens import update_secret
from kinotrakt.trakt.oauth import OOB_REDIRECT_URI
from kinotrakt_cli.app import app, main
from kinotrakt_cli.context import CliDeps
from kinotrakt_cli.deployment import AwsTarget, TokenStores
from tests.integration.test_setup_key import Topic

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LOGIN_URL_OUTPUT = "https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/login?key=<setup_key>"
# What a pipe gets: no terminal, nothing in the environment forcing colours, rich's default width.
RUNNER = CliRunner(env={"FORCE_COLOR": None, "PY_COLORS": None, "TTY_COMPATIBLE": None, "COLUMNS": "80"})
ESCAPE = "\x1b"
COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def invoke(argv: tuple[str, ...] | list[str], deps: CliDeps, stdin: str | None = None) -> Result:
    outcome = RUNNER.invoke(app, list(argv), obj=deps, prog_name="kinotrakt", input=stdin)
    return Result(outcome.exit_code, outcome.stdout, outcome.stderr)


def terminal() -> Console:
    """A console that takes itself for a terminal, as a user's would be, writing into a buffer we can read."""
    return Console(file=io.StringIO(), force_terminal=True, width=100, highlight=False, emoji=False)


def written(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


class HookedClock(VirtualClock):
    """Virtual time whose ``sleep`` can run a hook: the user approving the device code meanwhile."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.on_sleep: Callable[[], None] | None = None
        self.sleeps = 0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.sleeps += 1
        self.waits.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class CliWorld:
    kinopub: FakeKinopub
    trakt: FakeTrakt
    clock: HookedClock
    settings: Settings
    stores: SyncStores
    tokens: TokenStores
    stack_outputs: dict[str, str] = field(default_factory=lambda: {"LoginUrl": LOGIN_URL_OUTPUT})
    printed: list[str] = field(default_factory=list)
    aws: boto3.Session | None = None
    topic: Topic | None = None  # the alarm topic, named by the stack output AlarmTopicArn

    def overwrite_secret(self, service: str, value: str) -> None:
        """Someone edits the secret by hand in the console."""
        assert self.aws is not None
        secret_id = self.settings.kinopub_secret_id if service == "kinopub" else self.settings.trakt_secret_id
        self.aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=value)

    def deps(self, **overrides: object) -> CliDeps:
        deps = CliDeps(
            settings=self.settings,
            token_stores=lambda settings, target: self.tokens,
            stores=lambda settings, target: self.stores,
            stack_outputs=lambda stack, target: self.stack_outputs,
            clock=self.clock,
            interactive=lambda: False,
        )
        for name, value in overrides.items():
            setattr(deps, name, value)
        return deps

    def run(
        self,
        *argv: str,
        interactive: bool = False,
        answers: Mapping[str, str] | None = None,
        out: Console | None = None,
        stdin: str | None = None,
        **deps: object,
    ) -> Result:
        asked: list[str] = []

        def answer(question: str) -> str:
            asked.append(question)
            for start, value in (answers or {}).items():
                if question.startswith(start):
                    return value
            return ""

        result = invoke(
            argv,
            self.deps(prompt=answer, prompt_secret=answer, interactive=lambda: interactive, out=out, **deps),
            stdin,
        )
        self.printed += [result.out, result.err, *asked]
        if out is not None:
            self.printed.append(written(out))
        else:
            # Not a terminal: no live display, no colour codes in what a pipe or a log file gets
            assert ESCAPE not in result.out + result.err
        return result

    def secret(self, service: str) -> ServiceSecret:
        store: TokenStore = self.tokens.kinopub if service == "kinopub" else self.tokens.trakt
        return store.load().secret

    def setup(self, *more: str) -> Result:
        """``setup`` as a script runs it: the ids as options, both secrets piped (Kinopub's line first)."""
        return self.run(
            "setup",
            "--kinopub-client-id",
            self.kinopub.client_id,
            "--kinopub-client-secret-stdin",
            "--trakt-client-id",
            self.trakt.client_id,
            "--trakt-client-secret-stdin",
            *more,
            stdin=f"{self.kinopub.client_secret}\n{self.trakt.client_secret}\n",
        )

    def approve_after(self, sleeps: int) -> None:
        """The user enters the code on the site after ``sleeps`` polling waits."""

        def hook() -> None:
            if self.clock.sleeps >= sleeps:
                for code in self.kinopub.pending_user_codes:
                    self.kinopub.approve_device(code)
                for code in self.trakt.pending_user_codes:
                    self.trakt.approve_device(code)

        self.clock.on_sleep = hook

    def link_both(self) -> None:
        self.approve_after(1)
        assert self.run("link", "kinopub").code == 0
        assert self.run("link", "trakt").code == 0

    def assert_no_secret_printed(self) -> None:
        """No credential the fakes ever issued, nor a stored one, in anything the CLI printed or asked."""
        printed = "\n".join(self.printed)
        values = set(ISSUED_SECRETS)
        for service in ("kinopub", "trakt"):
            secret = self.secret(service)
            for value in (secret.access_token, secret.refresh_token, secret.client_secret):
                if value is not None:
                    values.add(value.get_secret_value())
        leaked = [value for value in values if value in printed]
        assert leaked == []


@pytest.fixture
def world(aws: boto3.Session, state_table: str, secrets: tuple[str, str]) -> Iterator[CliWorld]:
    clock = HookedClock(START)
    with FakeKinopub(clock=clock.time) as kinopub, FakeTrakt(clock=clock.time) as trakt:
        settings = Settings(
            kinopub_api_url=kinopub.base_url,
            trakt_api_url=trakt.base_url,
            trakt_auth_url=trakt.base_url,
            trakt_authorize_url=f"{trakt.base_url}/oauth/authorize",
            kinopub_secret_id=secrets[0],
            trakt_secret_id=secrets[1],
            state_table_name=state_table,
            allow_insecure_endpoints=True,  # the fakes listen on http://127.0.0.1
        )
        stores = aws_sync_stores(settings, session=aws)
        tokens = TokenStores(stores.kinopub_tokens, stores.trakt_tokens)
        topic = Topic(aws)
        world = CliWorld(kinopub, trakt, clock, settings, stores, tokens, aws=aws, topic=topic)
        world.stack_outputs["AlarmTopicArn"] = topic.arn
        yield world
        world.assert_no_secret_printed()


# --- setup ---------------------------------------------------------------------------------------------------


def test_setup_stores_the_credentials_and_prints_the_login_link(world: CliWorld) -> None:
    # When the owner runs setup with both apps' ids, piping both secrets
    result = world.setup()

    # Then both secrets hold them, and the Trakt secret a setup key valid for an hour
    assert result.code == 0, result.err
    kinopub, trakt = world.secret("kinopub"), world.secret("trakt")
    assert kinopub.client_id == world.kinopub.client_id
    assert kinopub.client_secret == SecretStr(world.kinopub.client_secret)
    assert trakt.client_id == world.trakt.client_id
    assert trakt.client_secret == SecretStr(world.trakt.client_secret)
    assert trakt.setup_key is not None
    key = trakt.setup_key.get_secret_value()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
    assert trakt.setup_key_expires_at == int(START.timestamp()) + 3600
    # And the login link from the stack output carries that key, with when it stops working
    assert f"https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/login?key={key}" in result.out
    assert "Login link: new, works until 2026-11-01 13:00Z (in 1 h), for one link." in result.out
    assert "kinotrakt link kinopub" in result.out
    # And it names both redirect URIs the Trakt app must list
    assert (
        "Your Trakt app must list both redirect URIs (https://trakt.tv/oauth/applications, edit the app):\n"
        "    https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/callback\n"
        "    urn:ietf:wg:oauth:2.0:oob\n"
    ) in result.out


def test_setup_again_keeps_a_live_key_without_printing_its_link(world: CliWorld) -> None:
    # Given a setup 20 minutes ago
    world.setup()
    first = world.secret("trakt").setup_key
    assert first is not None
    world.clock.advance(20 * 60)

    # When setup runs again
    again = world.setup()

    # Then the key stays, its expiry is said, and the link (the key) is not printed a second time
    assert world.secret("trakt").setup_key == first
    assert "works until 2026-11-01 13:00Z (in 40 min)" in again.out
    assert "?key=" not in again.out
    assert first.get_secret_value() not in again.out
    # And --new-key replaces it, printing the new link
    renewed = world.setup("--new-key")
    second = world.secret("trakt").setup_key
    assert renewed.code == 0
    assert second is not None
    assert second != first
    assert f"?key={second.get_secret_value()}" in renewed.out


@pytest.mark.parametrize(
    ("state", "seconds_later"), [("expired", 3600), ("without an expiry", 0), ("used by a link", 0)]
)
def test_setup_replaces_a_key_that_no_longer_works(world: CliWorld, state: str, seconds_later: int) -> None:
    # Given a setup key that expired, that an older version stored without an expiry, or that a link used
    world.setup()
    if state == "without an expiry":
        update_secret(world.tokens.trakt, lambda secret: secret.model_copy(update={"setup_key_expires_at": None}))
    elif state == "used by a link":
        update_secret(
            world.tokens.trakt,
            lambda secret: secret.model_copy(update={"setup_key": None, "setup_key_expires_at": None}),
        )
    old = world.secret("trakt").setup_key
    world.clock.advance(seconds_later)

    # When setup runs again
    result = world.setup()

    # Then a new key is made and its link printed
    new = world.secret("trakt").setup_key
    assert new is not None
    assert new != old
    assert f"?key={new.get_secret_value()}" in result.out
    assert world.secret("trakt").setup_key_expires_at == int(world.clock.now().timestamp()) + 3600


@pytest.mark.parametrize(("given", "seconds"), [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)])
def test_setup_makes_a_key_valid_for_the_time_asked(world: CliWorld, given: str, seconds: int) -> None:
    result = world.setup("--key-valid-for", given)
    assert result.code == 0, result.err
    assert world.secret("trakt").setup_key_expires_at == int(START.timestamp()) + seconds


@pytest.mark.parametrize("given", ["", "forever", "90", "2w", "1m", "2d", "-1h"])
def test_setup_refuses_a_validity_it_cannot_read_or_allow(world: CliWorld, given: str) -> None:
    result = world.setup("--key-valid-for", given)
    assert result.code == 2
    assert "--key-valid-for" in result.err
    assert world.secret("trakt").setup_key is None


def test_setup_builds_the_login_link_from_a_base_url(world: CliWorld) -> None:
    world.stack_outputs = {}
    first = world.setup("--region", "eu-west-1")
    assert "(for the browser login: kinotrakt --region eu-west-1 setup --new-key with --login-url or --stack" in (
        first.out
    )
    result = world.setup("--new-key", "--login-url", "https://login.example.test/")
    key = world.secret("trakt").setup_key
    assert key is not None
    assert f"https://login.example.test/trakt/login?key={key.get_secret_value()}" in result.out


@pytest.mark.parametrize("service", ["kinopub", "trakt"])
def test_a_client_secret_given_on_the_command_line_is_refused(world: CliWorld, service: str) -> None:
    # When the owner passes a client secret as an option (it would stay in the shell history and `ps`)
    result = world.run("setup", f"--{service}-client-id", "an-id", f"--{service}-client-secret", "s3cr3t-value")

    # Then nothing is stored, and the one error line says how to pipe it instead
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert f"printf '%s\\n' \"${service.upper()}_CLIENT_SECRET\" | kinotrakt setup --{service}-client-secret-stdin" in (
        result.err
    )
    assert "s3cr3t-value" not in result.out + result.err
    assert world.secret(service).client_id is None
    assert world.secret("trakt").setup_key is None
    # And the option is not advertised
    assert f"--{service}-client-secret " not in world.run("setup", "--help").out


def test_setup_reads_one_piped_secret(world: CliWorld) -> None:
    # Given Kinopub set up already
    world.setup()
    # When only the Trakt secret is piped, for a new Trakt app
    result = world.run(
        "setup", "--trakt-client-id", "another-app", "--trakt-client-secret-stdin", stdin="another-secret\n"
    )
    # Then it lands in the Trakt secret, and Kinopub's stays
    assert result.code == 0, result.err
    assert world.secret("trakt").client_secret == SecretStr("another-secret")
    assert world.secret("kinopub").client_secret == SecretStr(world.kinopub.client_secret)


def test_setup_with_nothing_on_stdin_stores_nothing(world: CliWorld) -> None:
    result = world.run(
        "setup",
        "--kinopub-client-id",
        "kp",
        "--kinopub-client-secret-stdin",
        "--trakt-client-id",
        "tr",
        "--trakt-client-secret-stdin",
        stdin="only-kinopubs\n",
    )
    assert result.code == 2
    assert "standard input held no line for the Trakt client_secret" in result.err
    assert world.secret("kinopub").client_id is None


def test_setup_without_credentials_in_a_script_is_a_usage_error(world: CliWorld) -> None:
    result = world.run("setup", "--kinopub-client-id", "only-the-id")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "--kinopub-client-secret-stdin" in result.err
    assert world.secret("kinopub").client_id is None


def test_setup_stores_kinopubs_public_pair_when_given_none(world: CliWorld) -> None:
    # When the owner sets up with their Trakt app only, in a script
    result = world.run(
        "setup",
        "--trakt-client-id",
        world.trakt.client_id,
        "--trakt-client-secret-stdin",
        stdin=f"{world.trakt.client_secret}\n",
    )
    # Then Kinopub gets the public pair the Kodi add-on ships, it says so, and Kinopub accepts it for linking
    assert result.code == 0, result.err
    assert (
        f"Kinopub client credentials stored in {world.settings.kinopub_secret_id} (the public pair of the Kodi "
        "add-on, client_id xbmc)." in result.out
    )
    assert world.secret("kinopub").client_id == "xbmc"
    world.approve_after(1)
    assert world.run("link", "kinopub").code == 0


def test_setup_in_a_terminal_offers_kinopubs_public_pair(world: CliWorld) -> None:
    # When the owner answers Kinopub's questions with Enter
    answers = {"Trakt client_id": world.trakt.client_id, "Trakt client_secret": world.trakt.client_secret}
    result = world.run("setup", interactive=True, answers=answers)
    # Then the questions named the public pair as the default, and it was stored
    assert result.code == 0, result.err
    assert "Kinopub client_id [xbmc, the Kodi add-on's]: " in world.printed
    assert "Kinopub client_secret [Enter: the Kodi add-on's]: " in world.printed
    assert world.secret("kinopub").client_id == "xbmc"
    assert world.secret("kinopub").client_secret == SecretStr(world.kinopub.client_secret)


def test_setup_asks_in_a_terminal_and_keeps_what_is_stored(world: CliWorld) -> None:
    # Given a first setup in a terminal, answering the questions
    answers = {
        "Kinopub client_id": world.kinopub.client_id,
        "Kinopub client_secret": world.kinopub.client_secret,
        "Trakt client_id": world.trakt.client_id,
        "Trakt client_secret": world.trakt.client_secret,
    }
    assert world.run("setup", interactive=True, answers=answers).code == 0
    # When setup runs again and every question is answered with Enter
    assert world.run("setup", interactive=True, answers={}).code == 0
    # Then everything stored stays
    assert world.secret("kinopub").client_secret == SecretStr(world.kinopub.client_secret)
    assert world.secret("trakt").client_id == world.trakt.client_id


def test_setup_in_a_terminal_offers_to_reset_a_secret_it_cannot_read(world: CliWorld) -> None:
    # Given a Trakt secret edited by hand into something that is not kinotrakt's JSON
    world.setup()
    world.overwrite_secret("trakt", '{"client_id": 5}')
    answers = {"Trakt client_id": world.trakt.client_id, "Trakt client_secret": world.trakt.client_secret}

    # When the owner runs setup in a terminal and declines the overwrite
    declined = world.run("setup", interactive=True, answers={**answers, "Overwrite": "n"})
    # Then it said what is wrong, asked, and changed nothing
    name = world.settings.trakt_secret_id
    assert declined.code == 1
    assert declined.err == (
        f"warning: the secret {name} does not hold kinotrakt's token JSON (client_id: string_type)\n"
        f"error: nothing changed; the secret {name} still cannot be read\n"
    )
    assert f"Overwrite {name} with an empty kinotrakt secret? What it holds now is lost [y/N]: " in world.printed

    # When they run it again and agree
    agreed = world.run("setup", interactive=True, answers={**answers, "Overwrite": "y"})
    # Then the secret holds the credentials again, with a new setup key; Kinopub's was not touched
    assert agreed.code == 0, agreed.err
    assert f"Trakt: the secret {name} could not be read (client_id: string_type); it was reset." in agreed.out
    assert world.secret("trakt").client_id == world.trakt.client_id
    assert world.secret("trakt").setup_key is not None
    assert world.secret("kinopub").client_id == world.kinopub.client_id


def test_setup_reset_in_a_script_needs_yes(world: CliWorld) -> None:
    world.setup()
    world.overwrite_secret("kinopub", "not json")
    name = world.settings.kinopub_secret_id
    told = world.run("setup")
    assert (told.code, told.err) == (
        1,
        f"error: the secret {name} does not hold kinotrakt's token JSON (not valid JSON); `kinotrakt setup --reset` "
        "overwrites it, then link the account again\n",
    )
    assert world.run("setup", "--reset").err == f"error: --reset overwrites the secret {name}: confirm with --yes\n"
    done = world.run("setup", "--reset", "--yes")
    assert done.code == 0, done.err
    assert world.secret("kinopub").client_id == "xbmc"
    # --reset leaves a secret it can read as it is
    assert world.secret("trakt").client_id == world.trakt.client_id


def test_a_new_client_id_clears_the_old_link(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    result = world.run(
        "setup", "--trakt-client-id", "another-app", "--trakt-client-secret-stdin", stdin="another-secret\n"
    )
    assert result.code == 0
    trakt = world.secret("trakt")
    assert trakt.client_id == "another-app"
    assert trakt.access_token is None
    assert trakt.refresh_token is None
    assert "link again" in result.out
    assert world.secret("kinopub").access_token is not None


# --- link ----------------------------------------------------------------------------------------------------


def test_link_kinopub_with_the_device_code(world: CliWorld) -> None:
    # Given credentials stored by setup
    world.setup()
    # When the owner links Kinopub and approves the code on kino.pub a little later
    world.approve_after(2)
    result = world.run("link", "kinopub")

    # Then the code and where to enter it were shown, with a countdown while waiting
    assert result.code == 0, result.err
    assert "https://kino.pub/device" in result.out
    device_requests = [
        r for r in world.kinopub.calls("POST", "/oauth2/device") if r.params()["grant_type"] == "device_code"
    ]
    assert len(device_requests) == 1
    # (not a terminal: a line a minute instead of a live countdown; both polls fell in the same minute)
    assert result.out.count("waiting for approval... ") == 1
    assert "Kinopub account linked" in result.out
    # And it polled at the interval Kinopub asked for, until the approval
    assert world.clock.waits == [5.0, 5.0]
    polls = [r for r in world.kinopub.calls("POST", "/oauth2/device") if r.params()["grant_type"] == "device_token"]
    assert len(polls) == 3
    # And the tokens are in the Kinopub secret and work
    secret = world.secret("kinopub")
    assert secret.access_token is not None
    assert world.kinopub.token_is_valid(secret.access_token.get_secret_value())
    assert secret.issued_at == int(world.clock.now().timestamp())
    # And the device was named in Kinopub's device list, once
    assert len(world.kinopub.calls("POST", "/v1/device/notify")) == 1


def test_link_trakt_with_the_device_code(world: CliWorld) -> None:
    world.setup()
    world.approve_after(1)
    result = world.run("link", "trakt")
    assert result.code == 0, result.err
    assert "https://trakt.tv/activate" in result.out
    assert len(world.trakt.calls("POST", "/oauth/device/code")) == 1
    assert "Trakt account linked as kinotrakt-demo" in result.out
    assert world.clock.waits == [world.trakt.device_interval]
    assert len(world.trakt.calls("POST", "/oauth/device/token")) == 1
    secret = world.secret("trakt")
    assert secret.access_token is not None
    assert world.trakt.token_is_valid(secret.access_token.get_secret_value())
    # Device-flow tokens refresh with the out-of-band redirect URI
    assert (secret.model_extra or {}).get("redirect_uri") == OOB_REDIRECT_URI
    # And the secret remembers who is linked; the browser login's key is used up by the link, as a browser link
    # uses it up (one link per key)
    assert secret.linked_user == "kinotrakt-demo"
    assert (secret.setup_key, secret.setup_key_expires_at) == (None, None)


def trakt_linked_count(aws: boto3.Session | None) -> float:
    """How many TraktLinked the deployment's dashboard and alarms would count: the namespace and dimension of
    the auth function's EMF lines (kinotrakt.observability.emit_event)."""
    assert aws is not None
    datapoints = aws.client("cloudwatch").get_metric_statistics(
        Namespace="Kinotrakt",
        MetricName="TraktLinked",
        Dimensions=[{"Name": "service", "Value": "kinotrakt"}],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=7200,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(point["Sum"] for point in datapoints))


def test_a_terminal_link_is_announced_on_the_alarm_topic_and_counted(world: CliWorld) -> None:
    # Given a deployment with its alarm topic (the stack output AlarmTopicArn)
    assert world.topic is not None
    world.setup()
    world.approve_after(1)

    # When the owner links Trakt in the terminal
    result = world.run("link", "trakt")

    # Then the link is made, with no warning
    assert result.code == 0, result.err
    assert result.err == ""
    # And the owner's subscription gets one message naming the account, and how it was linked
    (message,) = world.topic.received()
    assert message["Subject"] == "kinotrakt: a Trakt account was linked"
    linked = "The Trakt account kinotrakt-demo was linked to kinotrakt from a terminal (`kinotrakt link trakt`)"
    assert linked in message["Message"]
    assert "No Trakt account was linked before." in message["Message"]
    assert "kinotrakt unlink trakt" in message["Message"]
    # And one TraktLinked is counted where the dashboard and alarms look
    assert trakt_linked_count(world.aws) == 1
    # And nothing secret is in the message
    secret = world.secret("trakt")
    for value in (secret.access_token, secret.refresh_token, secret.client_secret):
        assert value is not None
        assert value.get_secret_value() not in json.dumps(message)


def test_a_terminal_link_to_another_account_names_the_one_it_replaces(world: CliWorld) -> None:
    # Given the owner's account linked in the terminal
    assert world.topic is not None
    world.setup()
    world.link_both()
    world.topic.received()
    # When someone links another Trakt account from a terminal
    world.trakt.username = "somebody-else"
    result = world.run("link", "trakt")

    # Then the notice names both accounts, and the link is counted again
    assert result.code == 0, result.err
    (message,) = world.topic.received()
    assert "The Trakt account somebody-else was linked" in message["Message"]
    assert "It replaces the Trakt account kinotrakt-demo." in message["Message"]
    assert trakt_linked_count(world.aws) == 2
    assert world.secret("trakt").linked_user == "somebody-else"


def test_a_deployment_without_an_alarm_topic_still_links_and_says_the_owner_was_not_notified(
    world: CliWorld,
) -> None:
    # Given a stack deployed before it had the AlarmTopicArn output
    assert world.topic is not None
    del world.stack_outputs["AlarmTopicArn"]
    world.setup()
    world.approve_after(1)

    # When the owner links Trakt
    result = world.run("link", "trakt")

    # Then the link is made and kept, and counted
    assert result.code == 0, result.err
    assert "Trakt account linked as kinotrakt-demo" in result.out
    assert world.secret("trakt").access_token is not None
    assert trakt_linked_count(world.aws) == 1
    # And one warning line says the owner was not notified, and why
    assert result.err == (
        "warning: Trakt linked, but the owner was not notified: no alarm topic: the stack kinotrakt in eu-west-1 "
        "(region from AWS_REGION) has no output AlarmTopicArn; deploy this version, or set ALARM_TOPIC_ARN to the "
        "topic's ARN\n"
    )
    assert world.topic.received() == []


def test_alarm_topic_arn_names_the_topic_when_the_stack_does_not(world: CliWorld) -> None:
    # Given the topic named only by ALARM_TOPIC_ARN
    assert world.topic is not None
    del world.stack_outputs["AlarmTopicArn"]
    world.setup()
    world.approve_after(1)
    settings = world.settings.model_copy(update={"alarm_topic_arn": world.topic.arn})

    # When the owner links Trakt
    result = world.run("link", "trakt", settings=settings)

    # Then the notice goes to that topic
    assert result.code == 0, result.err
    assert result.err == ""
    (message,) = world.topic.received()
    assert "The Trakt account kinotrakt-demo was linked" in message["Message"]


def test_a_topic_that_refuses_the_notice_never_fails_the_link(world: CliWorld) -> None:
    # Given a stack whose alarm topic was deleted by hand
    assert world.topic is not None
    world.topic.sns.delete_topic(TopicArn=world.topic.arn)
    world.setup()
    world.approve_after(1)

    # When the owner links Trakt
    result = world.run("link", "trakt")

    # Then the link is made and kept, the metric counted, and the warning names the topic SNS refused
    assert result.code == 0, result.err
    assert world.secret("trakt").linked_user == "kinotrakt-demo"
    assert trakt_linked_count(world.aws) == 1
    assert result.err.startswith("warning: Trakt linked, but the owner was not notified: AWS: NotFound writing the ")
    assert f"topic {world.topic.arn} in eu-west-1 (region from AWS_REGION)" in result.err
    assert result.err.count("\n") == 1


def test_a_metric_that_cannot_be_put_never_fails_the_link(world: CliWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given credentials without cloudwatch:PutMetricData (moto enforces no IAM: its CloudWatch answers AWS's denial)
    from moto.cloudwatch.exceptions import CloudWatchException
    from moto.cloudwatch.models import CloudWatchBackend

    def denied(*_: object, **__: object) -> None:
        raise CloudWatchException(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/owner is not authorized to perform: cloudwatch:PutMetricData",
        )

    monkeypatch.setattr(CloudWatchBackend, "put_metric_data", denied)
    assert world.topic is not None
    world.setup()
    world.approve_after(1)

    # When the owner links Trakt
    with pytest.warns(UserWarning, match="AccessDenied"):  # moto: the code is not in CloudWatch's error model
        result = world.run("link", "trakt")

    # Then the link is made and announced, and one warning says what was not recorded and who was refused what
    assert result.code == 0, result.err
    assert world.secret("trakt").linked_user == "kinotrakt-demo"
    (message,) = world.topic.received()
    assert "kinotrakt-demo" in message["Message"]
    assert result.err == (
        "warning: Trakt linked, but the TraktLinked metric was not recorded: access denied (AccessDenied): "
        "arn:aws:iam::123456789012:user/owner may not call cloudwatch:PutMetricData for writing the metric "
        "namespace Kinotrakt in eu-west-1 (region from AWS_REGION): use credentials of the account that deployed "
        "kinotrakt, with access to its table, secrets and stack\n"
    )


def test_a_trakt_app_trakt_rejects_is_named_by_link_sync_and_status_in_the_same_words(world: CliWorld) -> None:
    # Given a deployment whose Trakt API app Trakt deleted (2026: every request with its client id gets a JSON 403)
    world.setup()
    world.link_both()
    seed_demo_library(world.kinopub, world.trakt)
    world.trakt.app_deleted = True

    # When the owner links Trakt again, and a sync runs
    link = world.run("link", "trakt")
    sync = world.run("sync")
    status = world.run("status")

    # Then each says what the run's trakt_app_rejected says, word for word: the app, VIP, `kinotrakt setup`
    assert link.code == 1
    assert link.err.strip() == f"error: {TraktAppRejected.message}"
    assert sync.code == 1
    assert TraktAppRejected.message in sync.out
    assert f"Trakt: {TraktAppRejected.message} (the last run: trakt_app_rejected)" in status.out
    # and the last run's error is listed with its code
    assert f": trakt_app_rejected: {TraktAppRejected.message}" in status.out


def test_status_tells_when_a_rate_limited_run_may_go_on(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    seed_demo_library(world.kinopub, world.trakt)
    world.trakt.add_fault("GET", r"/sync/history/(?:movies|episodes)", status=429, headers={"Retry-After": "600"})
    assert world.run("sync").code == 1
    status = " ".join(world.run("status").out.split())
    resume = (world.clock.now() + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"rate_limited: Trakt rate limit: it asked kinotrakt to pause until {resume}" in status


def test_the_user_code_is_shown(world: CliWorld) -> None:
    world.setup()
    shown: list[str] = []

    def approve_what_was_shown() -> None:
        shown.extend(world.trakt.pending_user_codes)
        for code in world.trakt.pending_user_codes:
            world.trakt.approve_device(code)

    world.clock.on_sleep = approve_what_was_shown
    result = world.run("link", "trakt")
    assert result.code == 0
    assert shown
    assert f"    {shown[0]}" in result.out


def test_link_on_a_terminal_counts_down_live(world: CliWorld) -> None:
    # Given a terminal, and an owner who enters the code after three polls
    world.setup()
    codes: set[str] = set()

    def approve_on_the_third_poll() -> None:
        codes.update(world.trakt.pending_user_codes)
        if world.clock.sleeps >= 3:
            for code in world.trakt.pending_user_codes:
                world.trakt.approve_device(code)

    world.clock.on_sleep = approve_on_the_third_poll
    screen = terminal()

    # When they link Trakt
    result = world.run("link", "trakt", out=screen)

    # Then the code and the URL stay on screen, a live line counted the time down, and it was cleared at the end
    assert result.code == 0, result.err
    shown = written(screen)
    (code,) = codes
    assert code in shown
    assert "https://trakt.tv/activate" in shown
    assert re.search(r"waiting for approval\.\.\. .* \d+:\d\d left", COLOURS.sub("", shown))
    assert shown.rindex("\x1b[2K") > shown.rindex(" left")
    assert "Trakt account linked" in shown[shown.rindex(" left") :]
    assert world.clock.waits == [world.trakt.device_interval] * 3


def test_a_denied_link_fails_in_one_line(world: CliWorld) -> None:
    world.setup()

    def deny() -> None:
        for code in world.trakt.pending_user_codes:
            world.trakt.deny_device(code)

    world.clock.on_sleep = deny
    result = world.run("link", "trakt")
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err
    assert "link trakt" in result.err
    assert world.secret("trakt").access_token is None


def test_ctrl_c_while_waiting_cancels_the_link_and_changes_nothing(world: CliWorld) -> None:
    world.setup()

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    world.clock.on_sleep = ctrl_c
    result = world.run("link", "trakt")
    assert (result.code, result.err) == (130, "error: Trakt link cancelled; nothing changed\n")
    assert world.secret("trakt").access_token is None


def test_link_that_cannot_reach_the_service_names_the_host(world: CliWorld) -> None:
    # Given a Kinopub URL where nothing listens
    world.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    nowhere = world.settings.model_copy(update={"kinopub_api_url": AnyHttpUrl(f"http://{host}")})
    # When the owner links Kinopub
    result = world.run("link", "kinopub", settings=nowhere)
    # Then after a few quick attempts one line names the host and what to check
    assert (result.code, result.err) == (
        1,
        f"error: could not reach Kinopub at {host} (POST /oauth2/device: ConnectionError): check this machine's "
        "network connection and proxy settings, and KINOPUB_API_URL if you set it; nothing changed\n",
    )
    assert len(world.clock.waits) == 2  # three attempts


def test_link_before_setup_says_to_run_setup(world: CliWorld) -> None:
    result = world.run("link", "kinopub")
    assert result.code == 1
    assert "kinotrakt setup" in result.err
    assert world.kinopub.requests == []


def test_debug_adds_the_stack_trace(world: CliWorld) -> None:
    result = world.run("link", "kinopub", "--debug")
    assert result.code == 1
    assert result.err.startswith("error: Kinopub client credentials are missing")
    assert "Traceback" in result.err


# --- status, unmatched, map ----------------------------------------------------------------------------------


def test_status_before_anything_is_set_up(world: CliWorld) -> None:
    result = world.run("status")
    assert result.code == 0
    assert "none yet" in result.out
    assert "Kinopub: not set up" in result.out
    assert "Trakt: not set up" in result.out
    assert "Unmatched: none" in result.out


def test_status_shows_runs_watermark_expiry_and_unmatched(world: CliWorld) -> None:
    # Given linked accounts, a finished run, a later failed one, and one unmatched item
    world.setup()
    world.link_both()
    stores = world.stores
    stores.reports.put(
        {
            "status": "ok",
            "started_at": "2026-11-01T11:00:00.000Z",
            "candidates": 7,
            "added_movies": 2,
            "added_episodes": 3,
            "skipped_duplicates": 1,
            "unmatched": 1,
        },
        START - timedelta(minutes=55),
    )
    stores.reports.put(
        {
            "status": "failed",
            "started_at": "2026-11-01T11:30:00.000Z",
            "error": {"code": "relink_required", "message": "Trakt needs relinking"},
        },
        START - timedelta(minutes=29),
    )
    stores.sync_state.advance_watermark(START - timedelta(hours=1))
    stores.unmatched.put([UnmatchedItem("item:9", 9, "Ездок", "no_imdb_not_found")])
    world.clock.advance(5 * 86400)

    # When the owner asks for the status
    result = world.run("status")

    # Then they see the runs, newest first, with their counts and errors
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = lines.index("Last runs (newest first):") + 1
    assert lines[header].split() == ["STARTED", "STATUS", "VIEWS", "MOVIES", "EPISODES", "SKIPPED", "UNMATCHED"]
    assert lines[header + 1].split() == ["2026-11-01", "11:30Z", "failed", "0", "0", "0", "0", "0"]
    assert lines[header + 2].split() == ["2026-11-01", "11:00Z", "ok", "7", "2", "3", "1", "1"]
    assert lines[header + 3] == "  2026-11-01 11:30Z: relink_required: Trakt needs relinking"
    # And the watermark, both tokens' expiry and Kinopub's refresh deadline
    assert "Watermark (last success): 2026-11-01 11:00Z (5 days ago)" in result.out
    assert "Kinopub: linked; access token expired" in result.out  # 24 h tokens, 5 days later
    assert "refresh token dies unused in ~25 days (2026-12-01)" in result.out
    assert "Trakt: linked; access token expires" in result.out
    assert "Unmatched: 1 waiting" in result.out


def test_status_warns_when_the_kinopub_refresh_token_is_probably_dead(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    world.clock.advance(31 * 86400)
    result = world.run("status")
    assert "probably dead: kinotrakt link kinopub" in result.out


def test_unmatched_lists_titles_and_reasons(world: CliWorld) -> None:
    world.stores.unmatched.put(
        [
            UnmatchedItem("item:9", 9, "Ездок", "no_imdb_not_found", "Trakt found nothing for the title"),
            UnmatchedItem("episode:7:10:1", 7, "Scrubs", "episode_not_on_trakt", "no S10E01", season=10, episode=1),
        ]
    )
    result = world.run("unmatched")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["KINOPUB", "ID", "TITLE", "REASON", "DETAIL"]
    # sorted by title, an episode with its number, every reason and detail in full (a long detail wraps in its cell)
    assert lines[1].split() == ["7", "Scrubs", "S10E01", "episode_not_on_trakt", "no", "S10E01"]
    assert lines[2].split()[:3] == ["9", "Ездок", "no_imdb_not_found"]
    table = " ".join(" ".join(lines[: lines.index("")]).split())
    assert table.endswith("9 Ездок no_imdb_not_found Trakt found nothing for the title")
    assert "kinotrakt map" in result.out


def test_unmatched_details_name_the_map_command_as_the_owner_ran_it(world: CliWorld) -> None:
    # Given a sync that left Black Mirror's White Christmas unmatched: its stored detail says how to pin it
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    assert world.run("sync").code == 0
    (stored,) = [item for item in world.stores.unmatched.load() if item.key == "episode:8632:2:4"]
    assert stored.reason == "numbering_mismatch"
    assert "`kinotrakt map 8632 episode 2 4 S..E..`" in stored.detail

    # When the owner, who runs the CLI from the repository with a region, lists what is unmatched (wide enough
    # for each row to be one line)
    out = Console(file=io.StringIO(), width=400, highlight=False, emoji=False, markup=False)
    result = world.run("--region", "eu-west-1", "unmatched", program=".venv/bin/kinotrakt", out=out)

    # Then the detail's command is the one to paste, with the same program and options
    assert result.code == 0, result.err
    (row,) = [line for line in written(out).splitlines() if line.startswith("8632 ")]
    assert row.split()[:8] == ["8632", "Черное", "зеркало", "/", "Black", "Mirror", "S02E04", "numbering_mismatch"]
    assert row.rstrip().endswith("pin it with `.venv/bin/kinotrakt --region eu-west-1 map 8632 episode 2 4 S..E..`")
    assert "`kinotrakt map" not in written(out)


def test_unmatched_when_there_is_nothing(world: CliWorld) -> None:
    assert "Nothing unmatched" in world.run("unmatched").out


def test_map_stores_a_pin_checked_against_trakt(world: CliWorld) -> None:
    # Given a deployment set up, and the show on Trakt
    world.setup()
    world.trakt.add_show(1390, "Game of Thrones", 2011, "tt0944947", {1: 10}, slug="game-of-thrones")

    # When the owner pins by Trakt id, then by trakt.tv URL
    by_id = world.run("map", "4242", "show", "1390", "--season-offset", "-1")
    by_url = world.run("map", "4243", "show", "https://trakt.tv/shows/game-of-thrones/seasons/1")

    # Then both are stored under the Trakt id, and the next run will read both items again
    assert by_id.code == 0, by_id.err
    assert by_url.code == 0, by_url.err
    assert world.stores.pins.load() == {4242: Pin(4242, "show", 1390, -1), 4243: Pin(4243, "show", 1390)}
    assert "Pinned Kinopub item 4242 to Trakt show 1390: Game of Thrones (2011)" in " ".join(by_id.out.split())
    assert world.stores.sync_state.load().reread == {4242, 4243}


def test_map_refuses_what_trakt_does_not_have(world: CliWorld) -> None:
    world.setup()
    world.trakt.add_movie(16662, "Inception", 2010, "tt1375666", slug="inception-2010")

    unknown = world.run("map", "7", "movie", "no-such-film-1999")
    wrong_kind = world.run("map", "7", "show", "https://trakt.tv/movies/inception-2010")

    assert unknown.code == 1
    assert "Trakt has no movie 'no-such-film-1999'" in " ".join(unknown.err.split())
    assert wrong_kind.code == 1
    assert "is a Trakt movie, not a show" in " ".join(wrong_kind.err.split())
    assert world.stores.pins.load() == {}
    assert world.stores.sync_state.load().reread == frozenset()


def test_map_pins_a_merged_episode_and_a_shifted_season(world: CliWorld) -> None:
    # Given a show Trakt lists, and an unmatched episode that says which Trakt show it was looked up in
    world.setup()
    world.trakt.add_show(65553, "Star Wars Rebels", 2014, "tt2930604", {4: 16})
    world.stores.unmatched.put(
        [UnmatchedItem("episode:5:4:1", 5, "Rebels", "merged_episode", "…", 4, 1, trakt_show="tt2930604")]
    )

    # When the owner pins Kinopub S04E01 to Trakt S04E01 + S04E02, and the rest of season 4 one number on
    episode = world.run("map", "5", "episode", "4", "1", "S04E01", "4x2")
    season = world.run("map", "5", "season", "4", "--offset", "1", "--from-episode", "2")
    missing = world.run("map", "5", "episode", "4", "16", "S04E17")
    beyond = world.run("map", "5", "season", "4", "--offset", "2", "--from-episode", "15")

    # Then both pins are stored, and Trakt episodes that do not exist are refused
    assert episode.code == 0, episode.err
    assert "to Trakt show tt2930604 S04E01 + S04E02" in " ".join(episode.out.split())
    assert season.code == 0, season.err
    pins = world.stores.pins.load_numbering()
    assert pins.episode(5, 4, 1) == EpisodePin(5, 4, 1, ((4, 1), (4, 2)))
    assert pins.season(5, 4, 15) == SeasonPin(5, 4, 4, 1, 2)
    assert pins.season(5, 4, 1) is None
    assert (missing.code, beyond.code) == (1, 1)
    assert "does not list S04E17" in " ".join(missing.err.split())
    # and `unmatched` says the episode is pinned
    listed = " ".join(world.run("unmatched").out.split())
    assert "pinned to S04E01 + S04E02; the next sync uses it" in listed


def test_map_of_an_episode_needs_to_know_the_show(world: CliWorld) -> None:
    world.setup()
    result = world.run("--region", "eu-west-1", "map", "5", "episode", "1", "2", "S01E02")
    assert result.code == 1
    said = " ".join(result.err.split())
    assert "Pass --show" in said
    # (or the show pinned first, named as the owner runs the CLI)
    assert "(or pin the item first: `kinotrakt --region eu-west-1 map 5 show <ref>`)" in said


@pytest.mark.parametrize(
    "argv",
    [
        ("map", "1", "movie", "2", "--season-offset", "1"),
        ("map", "0", "movie", "2"),
        ("map", "1", "episode", "2"),
        ("map", "1", "episode", "x", "2", "S01E01"),
        ("map", "1", "episode", "1", "2", "E01"),
        ("map", "1", "season", "2", "3"),
        ("map", "one", "movie", "2"),
        ("map", "1", "movie"),
        ("map", "1", "film", "2"),
    ],
)
def test_map_refuses_what_it_cannot_store(world: CliWorld, argv: tuple[str, ...]) -> None:
    result = world.run(*argv)
    assert result.code == 2
    assert world.stores.pins.load() == {}
    assert world.stores.pins.load_numbering().items() == set()


# --- unlink --------------------------------------------------------------------------------------------------


def test_unlink_trakt_revokes_and_clears_the_tokens(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    token = world.secret("trakt").access_token
    assert token is not None
    result = world.run("unlink", "trakt", "--yes")
    assert result.code == 0, result.err
    assert len(world.trakt.calls("POST", "/oauth/revoke")) == 1
    assert not world.trakt.token_is_valid(token.get_secret_value())
    secret = world.secret("trakt")
    assert secret.access_token is None
    assert secret.refresh_token is None
    assert secret.expires_at is None
    # The client credentials survive: the owner can link again right away (in the terminal, or with a new
    # login link from setup)
    assert secret.client_id == world.trakt.client_id
    assert secret.client_secret is not None


def test_unlink_when_trakt_cannot_be_reached_still_clears_the_tokens_and_says_what_to_do(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    nowhere = world.settings.model_copy(update={"trakt_auth_url": AnyHttpUrl(f"http://{host}")})
    result = world.run("unlink", "trakt", "--yes", settings=nowhere)
    assert result.code == 0, result.err
    assert result.err == (
        f"warning: Trakt did not confirm the revocation ({host}: POST /oauth/revoke: ConnectionError); revoke "
        "kinotrakt in Trakt's Connected Apps\n"
    )
    assert world.secret("trakt").access_token is None


def test_unlink_kinopub_clears_the_tokens(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    result = world.run("unlink", "kinopub", "--yes")
    assert result.code == 0
    assert world.secret("kinopub").refresh_token is None
    assert world.secret("kinopub").client_id == world.kinopub.client_id
    assert "remove the kinotrakt device" in result.out


def test_unlink_asks_first(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    unconfirmed = world.run("unlink", "trakt")
    assert unconfirmed.code == 2
    assert unconfirmed.err == "error: unlink stops the sync for this account: confirm with --yes\n"
    assert world.run("unlink", "trakt", interactive=True, answers={"Unlink": "n"}).code == 0
    assert world.secret("trakt").access_token is not None
    assert world.run("unlink", "trakt", interactive=True, answers={"Unlink": "y"}).code == 0
    assert world.secret("trakt").access_token is None


# --- sync ----------------------------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing(world: CliWorld) -> None:
    # Given linked accounts and a Kinopub library
    seed_demo_library(world.kinopub, world.trakt)
    plays_before = world.trakt.plays()
    world.setup()
    world.link_both()

    # When the owner runs a dry run
    result = world.run("sync", "--dry-run")

    # Then the report says what would be added, and nothing was written anywhere
    assert result.code == 0, result.out + result.err
    lines = [" ".join(line.split()) for line in result.out.splitlines()]
    assert "status OK (dry run: nothing sent to Trakt)" in lines
    assert "would add movies 7" in lines
    assert "would be unmatched — not stored 5" in lines
    assert "would add:" in lines
    assert "would be unmatched — not stored (a real run keeps them for kinotrakt unmatched):" in lines
    assert world.trakt.calls("POST", "/sync/history") == []
    assert world.trakt.plays() == plays_before
    assert world.stores.sync_state.load().watermark is None
    assert world.stores.ledger.load().keys == set()
    assert world.stores.unmatched.load() == []

    # When a real run follows, then another dry run
    world.clock.advance(60)
    assert world.run("sync").code == 0
    world.clock.advance(60)
    assert world.run("sync", "--dry-run").code == 0
    status = world.run("status", "--runs", "1")

    # Then the status lists the real run as the last one, and the two dry runs apart
    assert status.code == 0, status.err
    real, _, dry = status.out.partition("Dry runs (newest first; nothing was sent to Trakt")
    assert [line.split()[2] for line in real.splitlines() if line.startswith("2026-")] == ["ok"]
    assert [line.split()[2] for line in dry.splitlines() if line.startswith("2026-")] == ["ok", "ok"]


def test_sync_then_pin_an_unmatched_title_and_sync_again(world: CliWorld) -> None:
    # Given linked accounts and a library where one Russian-only title cannot be found on Trakt
    library = seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    first = world.run("sync")
    assert first.code == 0, first.out + first.err
    assert ["status", "OK"] in [line.split() for line in first.out.splitlines()]
    (rider,) = [view for view in library.unmatched if view.kind == "movie"]
    listed = world.run("unmatched")
    assert rider.title in listed.out

    # When the owner finds it on Trakt and pins it by its URL, and the next scheduled run comes (incremental:
    # the title's history row is long behind the watermark)
    world.trakt.add_movie(990001, "The Rider", 2017, None, slug="the-rider-2017")
    pinned = world.run("map", str(rider.kinopub_id), "movie", "https://trakt.tv/movies/the-rider-2017")
    assert pinned.code == 0, pinned.err
    listed_again = " ".join(world.run("unmatched").out.split())
    assert "pinned to Trakt movie 990001; the next sync uses it" in listed_again
    world.clock.advance(3600)
    second = world.run("sync")

    # Then that run adds it under the pinned Trakt movie, and it is no longer unmatched
    assert second.code == 0, second.out + second.err
    assert any(play["movie"]["ids"]["trakt"] == 990001 for play in world.trakt.plays("movie"))
    assert world.trakt.duplicate_keys() == []
    assert rider.title not in world.run("unmatched").out


def test_a_sync_before_linking_says_which_accounts_are_not_linked_yet(world: CliWorld) -> None:
    # Given credentials but no linked account
    world.setup()

    # When the owner runs a sync
    result = world.run("sync")

    # Then one line names both accounts and the commands that link them, and nothing ran
    assert result.code == 1
    assert result.err == (
        "error: not linked yet: Kinopub and Trakt; run `kinotrakt link kinopub` and `kinotrakt link trakt` first\n"
    )
    assert result.out == ""
    assert world.kinopub.calls() == []
    assert world.stores.reports.latest() == []

    # And once Kinopub is linked, only Trakt is named
    world.approve_after(1)
    assert world.run("link", "kinopub").code == 0
    assert world.run("sync").err == "error: not linked yet: Trakt; run `kinotrakt link trakt` first\n"


def test_a_failed_sync_reports_why_and_exits_1(world: CliWorld) -> None:
    # Given linked accounts whose Trakt link has died since (a refresh token Trakt no longer knows)
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    update_secret(
        world.tokens.trakt,
        lambda secret: secret.model_copy(update={"refresh_token": SecretStr("dead-refresh-token"), "expires_at": 1}),
    )

    # When the owner runs a sync
    result = world.run("sync")

    # Then the report says it failed and why, naming the command that fixes it, and the exit code says so too
    assert result.code == 1
    lines = [line.split() for line in result.out.splitlines()]
    assert ["status", "FAILED"] in lines
    assert any(line[0] == "error:" and "`kinotrakt link trakt`" in " ".join(line) for line in lines if line)
    assert world.trakt.calls("POST", "/sync/history") == []
    # And no JSON log record on stderr: the report says it all (--debug shows the log)
    assert result.err == ""


def test_a_run_that_finds_the_lease_held_says_since_when(world: CliWorld) -> None:
    # Given linked accounts, and another run that took the lease 3 minutes ago
    world.setup()
    world.link_both()
    now = world.clock.now()
    assert world.stores.lease.acquire("other-run", now - timedelta(minutes=3), now + timedelta(minutes=13))
    # When the owner syncs
    result = world.run("sync")
    # Then the run is skipped, and says since when and until when the lease is held
    assert (result.code, result.err) == (0, "")
    assert (
        f"skipped: another run holds the lease since {now - timedelta(minutes=3):%Y-%m-%d %H:%M:%S}Z (3 min ago); "
        f"it is free by {now + timedelta(minutes=13):%Y-%m-%d %H:%M:%S}Z (in 13 min) at the latest. Nothing was done."
    ) in result.out


def test_a_long_sync_shows_its_progress_on_a_terminal(world: CliWorld) -> None:
    # Given linked accounts, a library, and a terminal
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    screen = terminal()

    def slow_sync(
        settings: Settings,
        stores: SyncStores,
        *,
        clock: Clock | None = None,
        dry_run: bool | None = None,
        counter: CallCounter | None = None,
    ) -> SyncReport:
        assert counter is not None
        report = execute_sync(settings, stores, clock=clock, dry_run=dry_run, counter=counter)
        # The run lasts until the display has shown the calls made so far (or 10 s, and the test fails).
        calls = f"HTTP calls: Kinopub {counter.total('kinopub')}, Trakt {counter.total('trakt')}"
        give_up = time.monotonic() + 10
        while calls not in written(screen) and time.monotonic() < give_up:
            time.sleep(0.05)
        return report

    # When a sync runs longer than the display's delay
    result = world.run("sync", out=screen, run_sync=slow_sync, sync_progress_after_seconds=0.1)

    # Then a progress line showed the elapsed time and the HTTP calls as the counter grew, then gave way to the report
    assert result.code == 0, result.err
    shown = written(screen)
    frames = COLOURS.sub("", shown)
    assert re.search(r"syncing 0:00:\d\d HTTP calls: Kinopub [1-9]\d*, Trakt [1-9]\d*", frames)
    report_starts = shown.index("status")
    assert shown.rindex("HTTP calls: Kinopub") < report_starts
    assert shown.rindex("\x1b[2K") < report_starts  # the progress line was cleared before the report


def test_a_quick_sync_shows_only_its_report(world: CliWorld) -> None:
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    screen = terminal()
    result = world.run("sync", out=screen, sync_progress_after_seconds=600)
    assert result.code == 0, result.err
    assert "syncing" not in written(screen)
    assert "added:" in written(screen)


def test_sync_against_the_offline_sandbox() -> None:
    result = invoke(["sync", "--sandbox"], CliDeps(clock=VirtualClock(START)))
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("Sandbox:")
    assert "added:" in result.out
    assert ESCAPE not in result.out + result.err


# --- audit ---------------------------------------------------------------------------------------------------


def synced_with_other_tools_duplicates(world: CliWorld) -> LeftByOtherTools:
    seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    assert world.run("sync").code == 0
    world.trakt.clear_requests()
    return seed_other_tools_plays(world.trakt)


def test_audit_shows_what_it_found_writes_nothing_and_says_how_to_fix_it(world: CliWorld) -> None:
    # Given a synced library and the duplicates other tools left
    left = synced_with_other_tools_duplicates(world)
    plays = world.trakt.plays()

    # When the owner runs an audit
    result = world.run("audit")

    # Then a summary table, each duplicate with its minute, the command that fixes them; nothing written
    assert result.code == 0, result.err
    lines = [line.split() for line in result.out.splitlines()]
    assert ["status", "OK"] in lines
    assert ["duplicate", "plays", str(len(left.extra)), "found,", "0", "removed"] in lines
    assert ["missing", "on", "Trakt", "0"] in lines
    assert ["unexpected", "plays", "0"] in lines
    assert "  = The Matrix (1999) @ 2025-05-01T18:30Z: 2 plays, 1 extra" in result.out
    assert "To remove the extra plays: kinotrakt audit --fix duplicates" in result.out
    assert world.trakt.plays() == plays
    assert world.trakt.calls("POST", "/sync/history/remove") == []


def test_the_audits_hints_repeat_how_the_owner_ran_it(world: CliWorld) -> None:
    # Given duplicates other tools left, and a play kinotrakt sent that the owner removed on Trakt since
    synced_with_other_tools_duplicates(world)
    removed = world.trakt.plays("episode")[0]
    world.trakt.remove_play(removed["id"])

    # When the owner, who runs the CLI from the repository with a region, audits
    result = world.run("--region", "eu-west-1", "audit", program=".venv/bin/kinotrakt")

    # Then each fix is named as a command to paste: the same program, the same options
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "To remove the extra plays: .venv/bin/kinotrakt --region eu-west-1 audit --fix duplicates" in lines
    assert (
        "To send again the views removed on Trakt: .venv/bin/kinotrakt --region eu-west-1 audit --fix removed"
    ) in lines
    assert not [line for line in lines if line.startswith("To ") and ": kinotrakt " in line]

    # And asked to confirm a fix, the audit to run first is named the same way
    asked = world.run(
        "--region",
        "eu-west-1",
        "audit",
        "--fix",
        "duplicates",
        program=".venv/bin/kinotrakt",
        interactive=True,
        answers={"Go ahead?": "n"},
    )
    assert "(Run `.venv/bin/kinotrakt --region eu-west-1 audit` alone first to see what it finds.)" in asked.out


def test_audit_asks_before_fixing_in_a_terminal(world: CliWorld) -> None:
    left = synced_with_other_tools_duplicates(world)
    plays = world.trakt.plays()

    # When the owner says no, nothing is asked of Trakt
    declined = world.run("audit", "--fix", "duplicates", interactive=True, answers={"Go ahead?": "n"})
    assert declined.code == 0
    assert "remove the extra plays of each viewing" in declined.out
    assert "Nothing changed." in declined.out
    assert world.trakt.plays() == plays
    assert world.trakt.calls("GET", "/sync/history/movies") == []

    # When the owner says yes, exactly the extra plays are removed
    accepted = world.run("audit", "--fix", "duplicates", interactive=True, answers={"Go ahead?": "y"})
    assert accepted.code == 0, accepted.err
    assert ["duplicate", "plays", str(len(left.extra)), "found,", str(len(left.extra)), "removed"] in [
        line.split() for line in accepted.out.splitlines()
    ]
    remaining = {play["id"] for play in world.trakt.plays()}
    assert not remaining & set(left.extra)
    assert set(left.kept) <= remaining
    assert world.trakt.duplicate_keys() == []


def test_audit_fix_in_a_script_needs_yes(world: CliWorld) -> None:
    synced_with_other_tools_duplicates(world)
    result = world.run("audit", "--fix", "duplicates")
    assert result.code == 2
    assert "confirm with --yes" in result.err
    assert world.trakt.calls("POST", "/sync/history/remove") == []


def test_an_unknown_fix_is_a_usage_error(world: CliWorld) -> None:
    result = world.run("audit", "--fix", "duplicates,everything", "--yes")
    assert result.code == 2
    assert "unknown fix 'everything'; the fixes are duplicates, missing, removed" in result.err


def test_audit_json_holds_every_finding_even_past_the_reports_limit(world: CliWorld) -> None:
    # Given 60 viewings with an extra play each (the stored report lists 50)
    synced_with_other_tools_duplicates(world)
    for trakt_id in range(900_001, 900_061):
        world.trakt.add_movie(trakt_id, f"Old {trakt_id}", 1999, None)
        world.trakt.add_plays([("movie", trakt_id, "2020-01-01T10:00:00Z")] * 2, action="scrobble")

    # When the owner asks for the JSON, fixing duplicates and views removed on Trakt
    result = world.run("audit", "--fix", "duplicates", "--fix", "removed", "--yes", "--json")

    # Then it is one JSON document with every duplicate, and the fixes were applied
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["action"] == "audit"
    assert report["fix"] == ["duplicates", "removed"]
    assert len(report["duplicates"]) == 64
    assert report["duplicates_removed"] == 64
    assert len(world.stores.reports.latest(1)[0]["duplicates"]) == 51  # 50, then "... and 14 more"
    assert world.trakt.duplicate_keys() == []


def test_audit_json_on_a_terminal_is_one_json_document_and_nothing_else(world: CliWorld) -> None:
    synced_with_other_tools_duplicates(world)
    screen = terminal()
    result = world.run("audit", "--json", out=screen, sync_progress_after_seconds=0)
    assert result.code == 0, result.err
    report = json.loads(written(screen))
    assert report["duplicates_found"] == 4


def test_a_long_audit_goes_on_run_after_run_and_shows_its_progress(world: CliWorld) -> None:
    # Given a synced library, a long history, and runs that end when Trakt's GET budget runs out
    synced_with_other_tools_duplicates(world)
    for trakt_id in range(900_001, 900_301):
        world.trakt.add_movie(trakt_id, f"Old {trakt_id}", 1999, None)
        world.trakt.add_play("movie", trakt_id, f"2020-01-01T{trakt_id % 24:02d}:{trakt_id % 60:02d}:00Z")
    settings = world.settings.model_copy(update={"trakt_get_limit": 1})
    screen = terminal()
    runs: list[AuditReport] = []

    def short_runs(settings: Settings, stores: SyncStores, **options: Any) -> AuditReport:
        options["remaining_seconds"] = 400  # two GETs a run at one per 5 minutes
        runs.append(execute_audit(settings, stores, **options))
        return runs[-1]

    # When the owner runs the audit on a terminal
    result = world.run("audit", out=screen, run_audit=short_runs, settings=settings, sync_progress_after_seconds=0)

    # Then it took several runs, each going on where the last stopped, until done, and showed what it was doing
    assert result.code == 0, result.err
    assert [report.status for report in runs] == ["partial"] * (len(runs) - 1) + ["ok"]
    assert len(runs) >= 2
    assert runs[-1].plays_read == len(world.trakt.plays())
    frames = COLOURS.sub("", written(screen))
    assert "auditing" in frames
    assert f"ok ({len(runs)} runs)".upper() in frames.upper()


def test_status_lists_audits_with_the_runs(world: CliWorld) -> None:
    synced_with_other_tools_duplicates(world)
    world.clock.advance(60)
    assert world.run("audit").code == 0
    result = world.run("status")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = lines.index("Last runs (newest first):") + 1
    assert lines[header + 1].split() == ["2026-11-01", "12:01Z", "ok", "audit"]
    assert (
        "12:01Z: audit - 4 duplicate plays (0 removed); 0 missing on Trakt (0 sent); 0 unexpected plays" in result.out
    )


# --- the command line itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["setup", "link", "unlink", "sync", "status", "unmatched", "map", "check", "audit"])
def test_every_command_explains_itself(world: CliWorld, command: str) -> None:
    result = world.run(command, "--help")
    assert result.code == 0
    assert f"Usage: kinotrakt {command} [OPTIONS]" in result.out
    # and lists the common options, which work after the command too
    for option in ("--stack", "--table", "--kinopub-secret", "--trakt-secret", "--region", "--endpoint-url", "--debug"):
        assert option in result.out


def test_a_wrong_command_is_a_usage_error(world: CliWorld) -> None:
    wrong = world.run("frobnicate")
    assert wrong.code == 2
    assert "No such command 'frobnicate'" in wrong.err
    assert world.run().code == 2


def test_the_console_script_returns_the_exit_code(world: CliWorld) -> None:
    # main() is what the `kinotrakt` script calls: it returns the code instead of exiting
    assert main(["status"], deps=world.deps(out=terminal(), err=terminal())) == 0
    assert main(["map", "0", "movie", "1"], deps=world.deps()) == 2
    assert main(["link", "kinopub"], deps=world.deps(out=terminal(), err=terminal())) == 1
    assert main(["--version"]) == 0


def test_python_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kinotrakt_cli", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kinotrakt ")


def test_global_options_work_before_and_after_the_command(world: CliWorld) -> None:
    seen: list[Settings] = []

    def stores(settings: Settings, target: AwsTarget) -> SyncStores:
        seen.append(settings)
        return world.stores

    deps = world.deps(stores=stores)
    assert invoke(["--table", "t1", "status"], deps).code == 0
    assert invoke(["status", "--table", "t2", "--trakt-secret", "s2"], deps).code == 0
    # given on both sides, the one after the command wins
    assert invoke(["--table", "t3", "status", "--table", "t4"], deps).code == 0
    assert [s.state_table_name for s in seen] == ["t1", "t2", "t4"]
    assert seen[0].trakt_secret_id == world.settings.trakt_secret_id
    assert seen[1].trakt_secret_id == "s2"


def test_names_come_from_the_stack_when_nothing_else_says(world: CliWorld) -> None:
    seen: list[Settings] = []
    targets: list[AwsTarget] = []

    def stores(settings: Settings, target: AwsTarget) -> SyncStores:
        seen.append(settings)
        targets.append(target)
        return world.stores

    def token_stores(settings: Settings, target: AwsTarget) -> TokenStores:
        seen.append(settings)
        return world.tokens

    deps = world.deps(
        settings=Settings(),
        stores=stores,
        token_stores=token_stores,
        stack_outputs=lambda stack, target: {"StateTableName": f"{stack}-StateTable-XYZ"},
    )
    assert invoke(["--stack", "mine", "--region", "eu-west-3", "status"], deps).code == 0
    assert seen[0].state_table_name == "mine-StateTable-XYZ"
    assert {s.kinopub_secret_id for s in seen} == {"mine/kinopub"}
    assert {s.trakt_secret_id for s in seen} == {"mine/trakt"}
    assert targets == [AwsTarget("eu-west-3", None)]


def test_a_stack_without_the_table_output_is_one_clear_line(world: CliWorld) -> None:
    deps = world.deps(settings=Settings(), stack_outputs=lambda stack, target: {})
    result = invoke(["status"], deps)
    assert result.code == 1
    assert result.err == (
        "error: the stack kinotrakt in eu-west-1 (region from AWS_REGION) has no output StateTableName (is it a "
        "kinotrakt stack?): pass --stack with the kinotrakt stack's name, or --table\n"
    )


class RacedTokenStore(InMemoryTokenStore):
    """Another writer (the sync refreshing) lands between our read and our write, ``races`` times."""

    def __init__(self, secret: ServiceSecret, races: int) -> None:
        super().__init__(secret)
        self.races = races

    def save(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        if self.races > 0:
            self.races -= 1
            current = self.load()
            refreshed = current.secret.model_copy(update={"access_token": SecretStr(f"refreshed-{self.races}")})
            super().save(refreshed, expected_version=current.version)
        return super().save(secret, expected_version=expected_version)


def test_a_write_racing_the_sync_is_redone_on_the_fresh_secret() -> None:
    store = RacedTokenStore(ServiceSecret(client_id="cid", access_token=SecretStr("old")), races=1)
    updated = update_secret(store, lambda secret: secret.model_copy(update={"setup_key": SecretStr("k")}))
    assert updated.setup_key == SecretStr("k")
    stored = store.load().secret
    assert stored.setup_key == SecretStr("k")
    assert stored.access_token == SecretStr("refreshed-0")  # the sync's refresh is kept, not overwritten


def test_a_write_that_keeps_racing_gives_up() -> None:
    store = RacedTokenStore(ServiceSecret(client_id="cid"), races=10)
    with pytest.raises(ConcurrentTokenWrite):
        update_secret(store, lambda secret: secret)


# --- the owner's terminal is safe ------------------------------------------------------------------------------

# A title as an attacker would craft it (stored by an older version, or in a report): set the clipboard (OSC 52),
# clear the screen (CSI 2J), the one-character CSI, a carriage return over the line, and rich markup.
HOSTILE = "Evil\x1b]52;c;aGk=\x07\x1b[2J\x1b[H[bold]Pwned[/bold]\x9b31m\r\x08\x7fEnd"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def assert_inert(shown: str) -> None:
    """Nothing but rich's own colour codes drives the terminal, and the markup is printed as it was written."""
    assert CONTROL_CHARACTERS.search(COLOURS.sub("", shown)) is None, repr(shown)
    assert "[bold]Pwned[/bold]" in shown


def test_unmatched_prints_hostile_titles_reasons_and_details_inert(world: CliWorld) -> None:
    # Given unmatched items whose stored title, reason and detail hold escape sequences and markup
    world.stores.unmatched.put([UnmatchedItem("item:9", 9, HOSTILE, f"{HOSTILE}-reason", f"{HOSTILE} detail")])

    # When the owner lists them, in a pipe and on a terminal
    piped = world.run("unmatched")
    screen = terminal()
    on_terminal = world.run("unmatched", out=screen)

    # Then neither output carries a control character, and the markup shows as text
    for shown in (piped.out, written(screen)):
        assert_inert(shown)
        assert "Evil]52;c;aGk=[2J[H[bold]Pwned[/bold]31mEnd" in " ".join(shown.split())
    assert (piped.code, on_terminal.code) == (0, 0)


def test_status_prints_a_hostile_stored_report_inert(world: CliWorld) -> None:
    # Given a stored run report whose error message holds escape sequences and markup
    world.stores.reports.put(
        {"status": "failed", "started_at": "2026-11-01T11:30:00.000Z", "error": {"code": "x", "message": HOSTILE}},
        START - timedelta(minutes=29),
    )
    screen = terminal()

    # When the owner asks for the status on a terminal
    result = world.run("status", out=screen)

    # Then the message is shown without a control character
    assert result.code == 0
    assert_inert(written(screen))
    assert "Evil]52;c;aGk=[2J[H[bold]Pwned[/bold]31mEnd" in written(screen)


def test_sync_prints_a_report_with_hostile_titles_inert(world: CliWorld) -> None:
    # Given linked accounts, and a run whose report names views and an error with escape sequences and markup
    world.setup()
    world.link_both()

    def hostile_run(settings: Settings, stores: SyncStores, **_: object) -> SyncReport:
        report = SyncReport(run_id="r", started_at=START, status="partial", candidates=2, added_movies=1)
        report.added = [f"{HOSTILE} @ 2026-11-01T12:00Z"]
        report.unmatched_items = [UnmatchedNote(9, HOSTILE, f"{HOSTILE}-reason", "detail", 1, 2)]
        report.error = RunError("bad_response", f"trakt: {HOSTILE}")
        return report

    # When the owner runs a sync, in a pipe and on a terminal
    screen = terminal()
    piped = world.run("sync", run_sync=hostile_run)
    world.run("sync", out=screen, run_sync=hostile_run, sync_progress_after_seconds=600)

    # Then the report's lines carry no control character, and the markup shows as text
    for shown in (piped.out, written(screen)):
        assert_inert(shown)
        assert "+ Evil]52;c;aGk=[2J[H[bold]Pwned[/bold]31mEnd @ 2026-11-01T12:00Z" in shown
    assert piped.code == 1


def test_an_error_line_with_hostile_text_is_inert(world: CliWorld) -> None:
    # Given linked accounts, and a failure whose message quotes text from a service
    world.setup()
    world.link_both()

    def failing_run(settings: Settings, stores: SyncStores, **_: object) -> SyncReport:
        raise BadResponse("trakt", "/search/movie", f"answered {HOSTILE}")

    # When the owner runs a sync
    result = world.run("sync", run_sync=failing_run)

    # Then the one error line on stderr carries no control character
    assert result.code == 1
    assert_inert(result.err)
    assert result.err.startswith("error: trakt /search/movie: answered Evil]52;c;aGk=")
