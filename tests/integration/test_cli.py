"""``kinotrakt`` against moto's table and secrets and the fake Kinopub and Trakt: what a user types,
what they see, and what ends up stored. The device flows are approved from the clock's sleep hook, so the
polling runs on virtual time."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.base import ISSUED_SECRETS
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import seed_demo_library
from devkit.memory import InMemoryTokenStore
from kinotrakt.config import Settings
from kinotrakt.errors import ConcurrentTokenWrite
from kinotrakt.storage.aws import aws_stores
from kinotrakt.storage.ports import Pin, ServiceSecret, StoredSecret, UnmatchedItem
from kinotrakt.tokens import update_secret
from kinotrakt.trakt.oauth import OOB_REDIRECT_URI
from kinotrakt_cli.app import AwsTarget, CliDeps, Stores, main

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LOGIN_URL_OUTPUT = "https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/login?key=<setup_key>"


class HookedClock(VirtualClock):
    """Virtual time whose ``sleep`` can run a hook: the user approving the device code meanwhile."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.on_sleep: Callable[[], None] | None = None
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.sleeps += 1
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
    stores: Stores
    stack_outputs: dict[str, str] = field(default_factory=lambda: {"LoginUrl": LOGIN_URL_OUTPUT})
    printed: list[str] = field(default_factory=list)

    def run(self, *argv: str, interactive: bool = False, answers: Mapping[str, str] | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        asked: list[str] = []

        def answer(question: str) -> str:
            asked.append(question)
            for start, value in (answers or {}).items():
                if question.startswith(start):
                    return value
            return ""

        deps = CliDeps(
            settings=self.settings,
            stores=lambda settings, target: self.stores,
            stack_outputs=lambda stack, target: self.stack_outputs,
            clock=self.clock,
            out=out,
            err=err,
            prompt=answer,
            prompt_secret=answer,
            interactive=lambda: interactive,
        )
        code = main(list(argv), deps=deps)
        result = Result(code, out.getvalue(), err.getvalue())
        self.printed += [result.out, result.err, *asked]
        return result

    def secret(self, service: str) -> ServiceSecret:
        store = self.stores.kinopub if service == "kinopub" else self.stores.trakt
        return store.load().secret

    def setup(self) -> Result:
        return self.run(
            "setup",
            "--kinopub-client-id",
            self.kinopub.client_id,
            "--kinopub-client-secret",
            self.kinopub.client_secret,
            "--trakt-client-id",
            self.trakt.client_id,
            "--trakt-client-secret",
            self.trakt.client_secret,
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
        )
        state, kinopub_store, trakt_store = aws_stores(settings, session=aws)
        world = CliWorld(kinopub, trakt, clock, settings, Stores(state, kinopub_store, trakt_store))
        yield world
        world.assert_no_secret_printed()


# --- setup ---------------------------------------------------------------------------------------------------


def test_setup_stores_the_credentials_and_prints_the_login_link(world: CliWorld) -> None:
    # When the owner runs setup with both apps' credentials
    result = world.setup()

    # Then both secrets hold them, and the Trakt secret a setup key
    assert result.code == 0, result.err
    kinopub, trakt = world.secret("kinopub"), world.secret("trakt")
    assert kinopub.client_id == world.kinopub.client_id
    assert kinopub.client_secret == SecretStr(world.kinopub.client_secret)
    assert trakt.client_id == world.trakt.client_id
    assert trakt.setup_key is not None
    key = trakt.setup_key.get_secret_value()
    assert len(key) >= 32
    # And the login link from the stack output carries that key
    assert f"https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/login?key={key}" in result.out
    assert "kinotrakt link kinopub" in result.out


def test_setup_again_keeps_the_key_unless_asked_for_a_new_one(world: CliWorld) -> None:
    world.setup()
    first = world.secret("trakt").setup_key
    world.setup()
    assert world.secret("trakt").setup_key == first
    assert world.run("setup", "--new-key").code == 0
    assert world.secret("trakt").setup_key != first


def test_setup_builds_the_login_link_from_a_base_url(world: CliWorld) -> None:
    world.stack_outputs = {}
    world.setup()
    result = world.run("setup", "--login-url", "https://login.example.test/")
    key = world.secret("trakt").setup_key
    assert key is not None
    assert f"https://login.example.test/trakt/login?key={key.get_secret_value()}" in result.out


def test_setup_without_credentials_in_a_script_is_a_usage_error(world: CliWorld) -> None:
    result = world.run("setup", "--kinopub-client-id", "only-the-id")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "--kinopub-client-secret" in result.err
    assert world.secret("kinopub").client_id is None


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


def test_a_new_client_id_clears_the_old_link(world: CliWorld) -> None:
    world.setup()
    world.link_both()
    result = world.run("setup", "--trakt-client-id", "another-app", "--trakt-client-secret", "another-secret")
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
    assert "waiting for approval" in result.out
    assert "Kinopub account linked" in result.out
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
    secret = world.secret("trakt")
    assert secret.access_token is not None
    assert world.trakt.token_is_valid(secret.access_token.get_secret_value())
    # Device-flow tokens refresh with the out-of-band redirect URI
    assert (secret.model_extra or {}).get("redirect_uri") == OOB_REDIRECT_URI
    # And the setup key survives the link
    assert secret.setup_key is not None


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


def test_link_before_setup_says_to_run_setup(world: CliWorld) -> None:
    result = world.run("link", "kinopub")
    assert result.code == 1
    assert "kinotrakt setup" in result.err
    assert world.kinopub.requests == []


def test_debug_adds_the_stack_trace(world: CliWorld) -> None:
    result = world.run("link", "kinopub", "--debug")
    assert result.code == 1
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
    # Given linked accounts, a finished run and one unmatched item
    world.setup()
    world.link_both()
    state = world.stores.state
    state.put_report(
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
    state.advance_watermark(START - timedelta(hours=1))
    state.put_unmatched([UnmatchedItem("item:9", 9, "Ездок", "no_imdb_not_found")])
    world.clock.advance(5 * 86400)

    # When the owner asks for the status
    result = world.run("status")

    # Then they see the run, the watermark, both tokens' expiry and Kinopub's refresh deadline
    assert result.code == 0, result.err
    assert "2026-11-01 11:00Z  ok" in result.out
    assert "7 views, added 2 movies + 3 episodes" in result.out
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
    world.stores.state.put_unmatched(
        [
            UnmatchedItem("item:9", 9, "Ездок", "no_imdb_not_found", "Trakt found nothing for the title"),
            UnmatchedItem("episode:7:10:1", 7, "Scrubs", "episode_not_on_trakt", "no S10E01", season=10, episode=1),
        ]
    )
    result = world.run("unmatched")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["KINOPUB", "ID", "TITLE", "REASON", "DETAIL"]
    assert any(line.split()[:3] == ["7", "Scrubs", "S10E01"] and "episode_not_on_trakt" in line for line in lines)
    assert any(line.startswith("9 ") and "Ездок" in line and "no_imdb_not_found" in line for line in lines)
    assert "kinotrakt map" in result.out


def test_unmatched_when_there_is_nothing(world: CliWorld) -> None:
    assert "Nothing unmatched" in world.run("unmatched").out


def test_map_stores_a_pin(world: CliWorld) -> None:
    result = world.run("map", "4242", "show", "1390", "--season-offset", "-1")
    assert result.code == 0, result.err
    assert world.stores.state.list_pins() == {4242: Pin(4242, "show", 1390, -1)}
    assert "Pinned Kinopub item 4242 to Trakt show 1390" in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ("map", "1", "movie", "2", "--season-offset", "1"),
        ("map", "0", "movie", "2"),
        ("map", "1", "episode", "2"),
        ("map", "one", "movie", "2"),
        ("map", "1", "movie"),
    ],
)
def test_map_refuses_what_it_cannot_store(world: CliWorld, argv: tuple[str, ...]) -> None:
    result = world.run(*argv)
    assert result.code == 2
    assert world.stores.state.list_pins() == {}


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
    # Setup survives: the owner can link again right away
    assert secret.client_id == world.trakt.client_id
    assert secret.setup_key is not None


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
    assert world.run("unlink", "trakt").code == 2
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
    assert "dry run" in result.out
    assert "would add:" in result.out
    assert world.trakt.calls("POST", "/sync/history") == []
    assert world.trakt.plays() == plays_before
    assert world.stores.state.load_sync_state().watermark is None
    assert world.stores.state.load_ledger().keys == set()


def test_sync_then_pin_an_unmatched_title_and_sync_again(world: CliWorld) -> None:
    # Given linked accounts and a library where one Russian-only title cannot be found on Trakt
    library = seed_demo_library(world.kinopub, world.trakt)
    world.setup()
    world.link_both()
    first = world.run("sync")
    assert first.code == 0, first.out + first.err
    assert "status                       OK" in first.out
    (rider,) = [view for view in library.unmatched if view.kind == "movie"]
    listed = world.run("unmatched")
    assert rider.title in listed.out

    # When the owner finds it on Trakt and pins it
    world.trakt.add_movie(990001, "The Rider", 2017, None)
    assert world.run("map", str(rider.kinopub_id), "movie", "990001").code == 0
    world.clock.advance(25 * 3600)  # the next full rescan re-reads every item
    second = world.run("sync")

    # Then the next sync adds it under the pinned Trakt movie, and it is no longer unmatched
    assert second.code == 0, second.out + second.err
    assert any(play["movie"]["ids"]["trakt"] == 990001 for play in world.trakt.plays("movie"))
    assert world.trakt.duplicate_keys() == []
    assert rider.title not in world.run("unmatched").out


def test_sync_against_the_offline_sandbox() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["sync", "--sandbox"], deps=CliDeps(out=out, err=err, clock=VirtualClock(START)))
    assert code == 0, out.getvalue() + err.getvalue()
    assert out.getvalue().startswith("Sandbox:")
    assert "added:" in out.getvalue()


# --- the command line itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["setup", "link", "unlink", "sync", "status", "unmatched", "map"])
def test_every_command_explains_itself(world: CliWorld, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run(command, "--help").code == 0
    assert "usage: kinotrakt" in capsys.readouterr().out


def test_a_wrong_command_is_a_usage_error(world: CliWorld) -> None:
    assert world.run("frobnicate").code == 2
    assert world.run().code == 2


def test_global_options_work_before_and_after_the_command(world: CliWorld) -> None:
    seen: list[Settings] = []

    def stores(settings: Settings, target: AwsTarget) -> Stores:
        seen.append(settings)
        return world.stores

    deps = CliDeps(settings=world.settings, stores=stores, out=io.StringIO(), err=io.StringIO())
    assert main(["--table", "t1", "status"], deps=deps) == 0
    assert main(["status", "--table", "t2", "--trakt-secret", "s2"], deps=deps) == 0
    assert [s.state_table_name for s in seen] == ["t1", "t2"]
    assert seen[1].trakt_secret_id == "s2"


def test_names_come_from_the_stack_when_nothing_else_says(world: CliWorld) -> None:
    seen: list[Settings] = []

    def stores(settings: Settings, target: AwsTarget) -> Stores:
        seen.append(settings)
        return world.stores

    bare = Settings()
    deps = CliDeps(
        settings=bare,
        stores=stores,
        stack_outputs=lambda stack, target: {"StateTableName": f"{stack}-StateTable-XYZ"},
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert main(["--stack", "mine", "status"], deps=deps) == 0
    assert seen[0].state_table_name == "mine-StateTable-XYZ"
    assert seen[0].kinopub_secret_id == "mine/kinopub"
    assert seen[0].trakt_secret_id == "mine/trakt"


def test_a_missing_table_is_one_clear_line(world: CliWorld) -> None:
    err = io.StringIO()
    deps = CliDeps(settings=Settings(), stack_outputs=lambda stack, target: {}, out=io.StringIO(), err=err)
    assert main(["status"], deps=deps) == 1
    assert err.getvalue().count("\n") == 1
    assert "--table" in err.getvalue()


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
