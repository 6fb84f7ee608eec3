"""What a newcomer meets when something is not right yet, as they meet it: ``make sandbox`` in a process of its own,
``.venv/bin/kinotrakt`` typed from the repository root in the shell the sandbox set up, and each error checked word
for word (one line on stderr, no JSON log record, the commands it names as this user would type them).

The AWS conditions the sandbox cannot produce (no credentials, access denied, expired credentials) are in
``tests/integration/test_cli_aws.py``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.sandbox import ACCOUNT, REPO
from kinotrakt.storage.dynamo import Table
from kinotrakt.storage.dynamo.lease import DynamoLeaseStore
from tests.e2e.conftest import KINOTRAKT, Result, RunningSandbox

CLI = ".venv/bin/kinotrakt"  # how the user typed it, and so how the CLI repeats it


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def failed(result: Result, message: str, code: int = 1) -> None:
    """The command failed with exactly this one line on stderr, and printed nothing else."""
    assert (result.code, result.err) == (code, f"error: {message}\n"), result
    assert result.out == "", result


def set_up(sandbox: RunningSandbox) -> None:
    done = sandbox.run(sandbox.printed_command("kinotrakt setup"))
    assert done.code == 0, done


# --- before linking -------------------------------------------------------------------------------------------


def test_sync_and_link_before_setup_and_before_linking_say_what_comes_first(sandbox: RunningSandbox) -> None:
    # Before setup: setup comes first
    failed(sandbox.cli("sync"), f"not set up yet: Kinopub and Trakt; run `{CLI} setup` first, then link both accounts")
    failed(
        sandbox.cli("link", "kinopub"),
        f"Kinopub client credentials are missing; run `{CLI} setup` and then link the account",
    )
    # Given setup done, nothing linked
    set_up(sandbox)
    # When the user syncs, then after linking Kinopub only
    before = sandbox.cli("sync")
    assert sandbox.cli("link", "kinopub").code == 0
    half = sandbox.cli("sync")
    # Then each time the accounts still to link are named, with the commands that link them
    failed(before, f"not linked yet: Kinopub and Trakt; run `{CLI} link kinopub` and `{CLI} link trakt` first")
    failed(half, f"not linked yet: Trakt; run `{CLI} link trakt` first")


def test_hints_repeat_the_options_the_user_gave(sandbox: RunningSandbox) -> None:
    # Given a shell without the sandbox's names in its environment: the user names the deployment with options
    env = {
        k: v for k, v in sandbox.env.items() if k not in ("STATE_TABLE_NAME", "KINOPUB_SECRET_ID", "TRAKT_SECRET_ID")
    }
    where = [
        "--table",
        sandbox.env["STATE_TABLE_NAME"],
        "--kinopub-secret",
        sandbox.env["KINOPUB_SECRET_ID"],
        "--trakt-secret",
        sandbox.env["TRAKT_SECRET_ID"],
    ]
    setup = sandbox.run(sandbox.printed_command("kinotrakt setup", *where), env=env)
    assert setup.code == 0, setup
    # When it prints what to run next, and when sync says what is missing
    sync = sandbox.run([str(KINOTRAKT), "sync", *where], env=env)
    # Then those commands carry the same options, and work as printed
    given = " ".join(where)
    assert f"Kinopub, in this terminal:  {CLI} {given} link kinopub" in setup.out
    failed(
        sync,
        f"not linked yet: Kinopub and Trakt; run `{CLI} {given} link kinopub` and `{CLI} {given} link trakt` first",
    )
    link = sandbox.run([CLI, *given.split(), "link", "kinopub"], env=env)
    assert link.code == 0, link


# --- linking ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "variable", "endpoint", "named"),
    [
        ("kinopub", "KINOPUB_API_URL", "POST /oauth2/device", "KINOPUB_API_URL"),
        ("trakt", "TRAKT_AUTH_URL", "POST /oauth/device/code", "TRAKT_AUTH_URL / TRAKT_API_URL"),
    ],
)
def test_link_that_cannot_reach_the_service_names_the_host_and_what_to_check(
    sandbox: RunningSandbox, service: str, variable: str, endpoint: str, named: str
) -> None:
    # Given a service URL that leads nowhere (a closed port)
    set_up(sandbox)
    host = f"127.0.0.1:{closed_port()}"
    env = sandbox.env | {variable: f"http://{host}"}
    # When the user links that account
    result = sandbox.run([str(KINOTRAKT), "link", service], env=env)
    # Then one line names the host, what to check, and that nothing changed (no "next run" for a link)
    name = service.capitalize()
    failed(
        result,
        f"could not reach {name} at {host} ({endpoint}: ConnectionError): check this machine's network connection "
        f"and proxy settings, and {named} if you set it; nothing changed",
    )
    assert sandbox.secret(service)["refresh_token"] is None


def test_ctrl_c_while_waiting_for_approval_cancels_the_link_and_changes_nothing(sandbox: RunningSandbox) -> None:
    # Given a Kinopub that waits for the user to approve the code (the sandbox's own approves at once)
    set_up(sandbox)
    with FakeKinopub() as waiting:
        env = sandbox.env | {"KINOPUB_API_URL": waiting.base_url, "PYTHONUNBUFFERED": "1"}
        link = subprocess.Popen(  # noqa: S603 - our own console script
            [str(KINOTRAKT), "link", "kinopub"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert link.stdout is not None
        shown = []
        # When the code is on the screen and the user presses Ctrl-C
        for line in link.stdout:
            shown.append(line)
            if "Ctrl+C cancels" in line:
                break
        assert waiting.pending_user_codes, shown
        link.send_signal(signal.SIGINT)
        _, err = link.communicate(timeout=60)
    # Then it says the link was cancelled and nothing changed, and nothing did
    assert (link.returncode, err) == (130, "error: Kinopub link cancelled; nothing changed\n")
    assert sandbox.secret("kinopub")["refresh_token"] is None


# --- a secret kinotrakt cannot read -------------------------------------------------------------------------------


def test_secrets_that_are_not_kinotrakt_json_are_repaired_by_setup_reset(sandbox: RunningSandbox) -> None:
    # Given both secrets edited by hand into something else: Kinopub's not JSON, Trakt's JSON of the wrong shape
    set_up(sandbox)
    kinopub, trakt = sandbox.env["KINOPUB_SECRET_ID"], sandbox.env["TRAKT_SECRET_ID"]
    sandbox.aws("secretsmanager").put_secret_value(SecretId=kinopub, SecretString="not json at all")
    sandbox.aws("secretsmanager").put_secret_value(SecretId=trakt, SecretString='["x"]')

    # When the user links each account, then runs setup again as told, in a script
    link_kinopub, link_trakt = sandbox.cli("link", "kinopub"), sandbox.cli("link", "trakt")
    again = sandbox.run(sandbox.printed_command("kinotrakt setup"))
    reset = sandbox.run(sandbox.printed_command("kinotrakt setup", "--reset"))

    # Then each says what is wrong and what repairs it; setup does not overwrite without a confirmation
    def told(name: str, reason: str) -> str:
        return (
            f"the secret {name} does not hold kinotrakt's token JSON ({reason}); `{CLI} setup --reset` overwrites it, "
            "then link the account again"
        )

    failed(link_kinopub, told(kinopub, "not valid JSON"))
    failed(link_trakt, told(trakt, "value: model_type"))
    failed(again, told(kinopub, "not valid JSON"))
    failed(reset, f"--reset overwrites the secret {kinopub}: confirm with --yes", code=2)

    # When they confirm
    confirmed = sandbox.run(sandbox.printed_command("kinotrakt setup", "--reset", "--yes"))
    # Then both secrets are written afresh with the credentials, and linking works
    assert confirmed.code == 0, confirmed
    assert f"Kinopub: the secret {kinopub} could not be read (not valid JSON); it was reset." in confirmed.out
    assert f"Trakt: the secret {trakt} could not be read (value: model_type); it was reset." in confirmed.out
    assert (sandbox.secret("kinopub")["client_id"], sandbox.secret("trakt")["client_id"]) == (
        "xbmc",
        "fake-trakt-client-id",
    )
    assert sandbox.cli("link", "kinopub").code == 0


# --- sync ---------------------------------------------------------------------------------------------------------


def test_a_run_that_finds_the_lease_held_says_since_when(sandbox: RunningSandbox) -> None:
    # Given linked accounts and another run that took the lease three minutes ago
    sandbox.set_up_and_link()
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(minutes=3), now + timedelta(minutes=13, seconds=30)
    table = Table(sandbox.aws("dynamodb"), sandbox.env["STATE_TABLE_NAME"], ACCOUNT)
    assert DynamoLeaseStore(table).acquire("another-run", since, until)

    # When the user syncs
    result = sandbox.cli("sync")

    # Then the run is skipped (exit 0), says since when the lease is held and when it is free at the latest
    assert (result.code, result.err) == (0, ""), result
    assert "status SKIPPED" in result.text
    assert (
        f"skipped: another run holds the lease since {since:%Y-%m-%d %H:%M:%S}Z (3 min ago); it is free by "
        f"{until:%Y-%m-%d %H:%M:%S}Z (in 13 min) at the latest. Nothing was done."
    ) in result.out


def test_a_dry_run_is_labelled_everywhere_and_kept_apart(sandbox: RunningSandbox) -> None:
    sandbox.set_up_and_link()

    # When the user tries a dry run first
    dry = sandbox.cli("sync", "--dry-run")

    # Then its report says what it would do, and that its unmatched items are not stored
    assert (dry.code, dry.err) == (0, ""), dry
    for line in (
        "status OK (dry run: nothing sent to Trakt)",
        "would add movies 7",
        "would add episodes 12",
        "would be unmatched — not stored 5",
        "would add:",
        f"would be unmatched — not stored (a real run keeps them for {CLI} unmatched):",
    ):
        assert line in dry.text, dry
    assert "added movies" not in dry.text
    assert sandbox.cli("unmatched").text == "Nothing unmatched: every completed view found its Trakt item."

    # When a real run follows, then another dry run, and the status shows one run
    assert sandbox.cli("sync").code == 0
    assert sandbox.cli("sync", "--dry-run").code == 0
    status = sandbox.cli("status", "--runs", "1")

    # Then the real run is listed as the last run, and the dry runs apart, under their own heading
    assert status.code == 0, status
    real, _, rest = status.text.partition("Dry runs")
    assert real.startswith("Last runs (newest first):\nSTARTED STATUS VIEWS MOVIES EPISODES SKIPPED UNMATCHED\n")
    assert len([line for line in real.splitlines() if " ok " in line]) == 1
    assert " ok 25 7 12 1 5" in real
    assert rest.startswith(" (newest first; nothing was sent to Trakt, the counts are what they would have added):")
    assert len([line for line in rest.splitlines() if " ok " in line]) == 2


def test_a_failed_sync_prints_no_json_log_record_unless_debug(sandbox: RunningSandbox) -> None:
    # Given linked accounts whose Trakt link has died since (a refresh token Trakt does not know, due now)
    sandbox.set_up_and_link()
    stored = sandbox.secret("trakt") | {"refresh_token": "dead-refresh-token", "expires_at": 1}
    sandbox.aws("secretsmanager").put_secret_value(
        SecretId=sandbox.env["TRAKT_SECRET_ID"], SecretString=json.dumps(stored)
    )

    # When the user syncs, then again with --debug
    plain = sandbox.cli("sync")
    debug = sandbox.cli("sync", "--debug")

    # Then the report says why and what to run, and only --debug adds the JSON log records on stderr
    assert plain.code == debug.code == 1
    assert "status FAILED" in plain.text
    assert f"run `{CLI} link trakt` to link the account again" in plain.text
    assert plain.err == ""
    assert '"level":"ERROR"' in debug.err.replace(" ", "")


# --- the deployment's names and region --------------------------------------------------------------------------


def test_the_region_follows_the_deployment_and_a_missing_stack_secret_or_table_is_named(
    sandbox: RunningSandbox,
) -> None:
    set_up(sandbox)
    name = sandbox.env["KINOPUB_SECRET_ID"]
    without_region = {k: v for k, v in sandbox.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    # Without a region in the environment, the repository's samconfig.toml names the sandbox's (eu-central-1)
    assert sandbox.run([str(KINOTRAKT), "status"], env=without_region).code == 0
    # Another region, from the environment or a flag: the secret is not there, and the line says which region
    elsewhere = sandbox.run([str(KINOTRAKT), "link", "kinopub"], env=sandbox.env | {"AWS_REGION": "us-east-1"})
    flagged = sandbox.cli("--region", "eu-west-3", "link", "kinopub")
    missing = (
        "does not exist in {}: deploy the stack, or pass --stack (or --kinopub-secret / --trakt-secret) with the "
        "names you deployed, or --region if it is elsewhere"
    )
    failed(elsewhere, f"the secret {name} " + missing.format("us-east-1 (region from AWS_REGION)"))
    failed(flagged, f"the secret {name} " + missing.format("eu-west-3 (region from --region)"))
    # A stack or a table that is not there either
    env = {k: v for k, v in sandbox.env.items() if k != "STATE_TABLE_NAME"}
    failed(
        sandbox.run([str(KINOTRAKT), "--stack", "mine", "status"], env=env),
        "the stack mine does not exist in eu-central-1 (region from AWS_REGION): pass --stack with the name you "
        "deployed, or --region if it is in another region",
    )
    failed(
        sandbox.cli("--table", "mine-state", "status"),
        "the table mine-state does not exist in eu-central-1 (region from AWS_REGION): pass --table with the "
        "stack's output StateTableName, or --stack / --region for the deployment",
    )
