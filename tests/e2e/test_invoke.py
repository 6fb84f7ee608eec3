"""``make invoke`` against ``make sandbox``: the packaged handler given the environment ``sam local invoke`` would
give it, here in a separate process (``LOCAL=process``; this machine has no Docker engine). What it prints is
what the user reads: the report on stdout, the function's log lines on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import DemoLibrary, seed_demo_library
from devkit.sandbox import REPO
from tests.e2e.conftest import Result, RunningSandbox


@pytest.fixture(scope="module")
def library() -> DemoLibrary:
    return seed_demo_library(FakeKinopub(), FakeTrakt())


def invoke(sandbox: RunningSandbox, *args: str, env: dict[str, str] | None = None) -> Result:
    """What ``make invoke LOCAL=process`` runs, from a shell that knows nothing of the sandbox but its directory."""
    argv = [sys.executable, "-m", "devkit.invoke", "--local", "process", "--sandbox-dir", str(sandbox.state_dir)]
    return sandbox.run([*argv, *args], env=env or sandbox.clean)


def answer(result: Result) -> dict[str, Any]:
    """The function's answer: the last line of stdout, JSON."""
    assert result.out.strip(), result
    value: dict[str, Any] = json.loads(result.out.strip().splitlines()[-1])
    return value


def log_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.err.splitlines() if line.startswith('{"level"')]


def item_kinds(sandbox: RunningSandbox) -> Counter[str]:
    """How many items of each kind (``pk`` without the account) the state table holds."""
    items = sandbox.aws("dynamodb").scan(TableName=sandbox.env["STATE_TABLE_NAME"])["Items"]
    return Counter(item["pk"]["S"].split("#", 1)[1] for item in items)


def test_the_sync_function_runs_against_the_sandbox_as_a_dry_run(sandbox: RunningSandbox, library: DemoLibrary) -> None:
    # Given a sandbox set up and linked as the README says
    sandbox.set_up_and_link()
    access_token = sandbox.secret("trakt")["access_token"]

    # When the user runs `make invoke LOCAL=process` from another shell
    result = invoke(sandbox)

    # Then the handler ran against the sandbox, a dry run as events/env.json asks
    assert result.code == 0, result
    assert "SyncFunction in a separate process, against the sandbox at" in result.err
    assert "dry run (DRY_RUN in events/env.json)" in result.err
    report = answer(result)
    assert report["status"] == "ok"
    assert report["dry_run"] is True
    assert {name: report[name] for name in library.expected_counts()} == library.expected_counts()
    assert len(report["added"]) == len(library.to_add)
    assert report["watermark"] is None
    # And its log lines are the function's: the run summary, with Lambda's context
    (finished,) = [line for line in log_lines(result) if line["message"] == "sync run finished"]
    assert finished["function_name"] == "SyncFunction"
    assert finished["dry_run"] is True
    # And nothing reached Trakt; what a dry run still writes is the report and the mapping cache (README)
    assert sandbox.trakt_history_keys(access_token) == list(library.trakt_keys_before)
    kinds = item_kinds(sandbox)
    assert kinds["dryrun"] == 1
    assert kinds["map"] > 0
    assert kinds["ledger"] == kinds["unmatched"] == kinds["report"] == 0
    status = sandbox.cli("status")
    assert status.code == 0, status
    assert "Last runs (newest first):\nnone yet" in status.text
    assert "Dry runs (newest first; nothing was sent to Trakt" in status.text


def test_the_login_function_runs_against_the_sandbox_too(sandbox: RunningSandbox) -> None:
    # Given a set-up sandbox (its Trakt secret holds a setup key)
    sandbox.set_up_and_link()

    # When the login route is invoked with the sample event, whose key is not this deployment's
    result = invoke(sandbox, "--function", "AuthFunction")

    # Then the auth function read the sandbox's secret and refused the key with its page and a log line
    assert result.code == 0, result
    page = answer(result)
    assert page["statusCode"] == 403
    assert any(line["message"] == "login refused" and line["outcome"] == "wrong_key" for line in log_lines(result)), (
        result.err
    )


def test_docker_cannot_reach_a_sandbox_on_loopback(sandbox: RunningSandbox) -> None:
    # When `make invoke` (Docker) is run against a sandbox listening on 127.0.0.1 only
    argv = [sys.executable, "-m", "devkit.invoke", "--sandbox-dir", str(sandbox.state_dir)]
    result = sandbox.run(argv, env=sandbox.clean)

    # Then it says how to start the sandbox so that containers reach it, or how to run without Docker
    assert result.code == 2, result
    assert "make sandbox HOST=0.0.0.0" in result.err
    assert "make invoke LOCAL=process" in result.err
    assert "Traceback" not in result.err


def test_placeholders_in_the_env_file_are_refused(tmp_path: Path) -> None:
    # Given no sandbox running and events/env.json as shipped
    argv = [sys.executable, "-m", "devkit.invoke", "--local", "process", "--sandbox-dir", str(tmp_path)]

    # When the user runs make invoke
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603

    # Then it refuses in one line naming the placeholders and the ways out, before touching AWS
    assert result.returncode == 2, result.stdout + result.stderr
    assert "events/env.json still has placeholder values" in result.stderr
    assert "STATE_TABLE_NAME" in result.stderr
    assert "make sandbox" in result.stderr
    assert "make invoke STACK=<name>" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_docker_it_says_how_to_run_without(tmp_path: Path) -> None:
    # Given an env file with real names, and a machine without Docker or Finch
    env_file = tmp_path / "env.json"
    shipped = json.loads((REPO / "events" / "env.json").read_text())
    for variables in shipped.values():
        variables |= {"STATE_TABLE_NAME": "my-table", "TRAKT_REDIRECT_URI": "https://example.org/trakt/callback"}
    env_file.write_text(json.dumps(shipped))
    argv = [sys.executable, "-m", "devkit.invoke", "--env-file", str(env_file), "--sandbox-dir", str(tmp_path)]

    # When the user runs make invoke
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        argv, cwd=REPO, env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=60, check=False
    )

    # Then it says what it needs and how to do without
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs Docker (or Finch)" in result.stderr
    assert "make invoke LOCAL=process" in result.stderr


@pytest.mark.parametrize(
    ("make_args", "expected", "builds"),
    [
        (["LOCAL=process"], "-m devkit.invoke --local process", False),
        ([], "-m devkit.invoke --local docker", True),
        (["STACK=kinotrakt", "REGION=eu-west-1"], "--local docker --stack kinotrakt --region eu-west-1", True),
        (["LOCAL=process", "FUNCTION=AuthFunction"], "--local process --function AuthFunction", False),
    ],
)
def test_make_invoke_runs_this_script(make_args: list[str], expected: str, builds: bool) -> None:
    # When make is asked what `make invoke ...` would run
    done = subprocess.run(  # noqa: S603 - make with fixed arguments
        ["make", "-n", "--no-print-directory", "invoke", *make_args],  # noqa: S607 - make from PATH, as a user
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    commands = " ".join(done.stdout.replace("\\\n", " ").split())

    # Then it is the script tested above, with the arguments given, and a build only for Docker
    assert done.returncode == 0, done.stderr
    assert expected in commands
    assert ("sam build" in commands) is builds
