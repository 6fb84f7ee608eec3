"""``make demo`` and ``kinotrakt sync --sandbox`` are sealed off from the developer's own AWS set-up: run as a
user would, from a shell whose profile does not exist, whose endpoint URLs and proxies point at a tripwire,
whose credentials and region are bogus and whose AWS config names an endpoint and a credential process, they
still work, and nothing outside the sandbox is touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import DemoLibrary, seed_demo_library
from devkit.sandbox import REPO, foreign_variables, isolated_environ

KINOTRAKT = Path(sys.executable).parent / "kinotrakt"


class Tripwire:
    """A loopback TCP listener that records every connection made to it and hangs up."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


@pytest.fixture
def hostile_env(tmp_path: Path, tripwire: Tripwire) -> dict[str, str]:
    """A developer's shell at its worst, every address in it leading to the tripwire."""
    marker = tmp_path / "credential-process-ran"
    process = tmp_path / "credential-process"
    process.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    process.chmod(0o755)
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "config").write_text(
        "[default]\n"
        "region = us-west-2\n"
        f"endpoint_url = {tripwire.url}\n"
        "use_fips_endpoint = true\n"
        f"credential_process = {process}\n"
        "[profile someone-else]\n"
        f"endpoint_url = {tripwire.url}\n"
    )
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIADEVELOPERSOWNKEY\naws_secret_access_key = x\n")
    env = {name: value for name, value in os.environ.items() if name not in foreign_variables(os.environ)}
    env.update(
        {
            "HOME": str(tmp_path),
            "AWS_PROFILE": "kinotrakt-no-such-profile",
            "AWS_DEFAULT_PROFILE": "kinotrakt-no-such-profile",
            "AWS_CONFIG_FILE": str(aws / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
            "AWS_ENDPOINT_URL": tripwire.url,
            "AWS_ENDPOINT_URL_DYNAMODB": tripwire.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": tripwire.url,
            "AWS_ACCESS_KEY_ID": "AKIABOGUSBOGUSBOGUS0",
            "AWS_SECRET_ACCESS_KEY": "bogus",
            "AWS_SESSION_TOKEN": "bogus",
            "AWS_REGION": "mars-east-1",
            "AWS_DEFAULT_REGION": "mars-east-1",
            "AWS_USE_FIPS_ENDPOINT": "true",
            "HTTP_PROXY": tripwire.url,
            "HTTPS_PROXY": tripwire.url,
            "http_proxy": tripwire.url,
            "https_proxy": tripwire.url,
            # kinotrakt's own settings, as left behind by `source build/sandbox/sandbox.env` or a deploy script
            "DRY_RUN": "true",
            "STATE_TABLE_NAME": "someone-elses-table",
            "KINOPUB_SECRET_ID": "someone-elses/kinopub",
            "KINOPUB_API_URL": tripwire.url,
        }
    )
    return env


@pytest.fixture(scope="module")
def library() -> DemoLibrary:
    return seed_demo_library(FakeKinopub(), FakeTrakt())


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and console script, fixed arguments
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def assert_untouched(tripwire: Tripwire, home: Path) -> None:
    assert tripwire.connections == 0, "something outside the sandbox was contacted"
    assert not (home / "credential-process-ran").exists(), "the developer's credential_process ran"


def test_make_demo_ignores_the_developers_aws_environment(
    hostile_env: dict[str, str], tripwire: Tripwire, tmp_path: Path, library: DemoLibrary
) -> None:
    # When `make demo` runs from that shell
    result = run([sys.executable, "-m", "devkit.demo"], hostile_env)

    # Then it syncs the demo library into its own fake Trakt, twice, with nothing added the second time
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: OK - the second run added nothing" in result.stdout
    assert f"{library.added_movies} movies, {library.added_episodes} episodes" in result.stdout
    # And it wrote to nothing outside (no endpoint, no proxy, no credential process)
    assert_untouched(tripwire, tmp_path)


def test_sync_sandbox_ignores_the_developers_aws_environment(
    hostile_env: dict[str, str], tripwire: Tripwire, tmp_path: Path, library: DemoLibrary
) -> None:
    # When `kinotrakt sync --sandbox` runs from that shell (DRY_RUN=true and a foreign table name included)
    result = run([str(KINOTRAKT), "sync", "--sandbox"], hostile_env)

    # Then it is a real sync of the demo library, not a dry run and not against someone else's table
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split() == ["added", "movies", str(library.added_movies)] for line in lines), result.stdout
    assert any(line.split() == ["added", "episodes", str(library.added_episodes)] for line in lines), result.stdout
    assert_untouched(tripwire, tmp_path)


def test_the_sandbox_environment_is_restored_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a shell with a profile, an endpoint, a proxy and a kinotrakt setting (lower case, as pydantic reads it)
    monkeypatch.setenv("AWS_PROFILE", "mine")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("dry_run", "true")
    monkeypatch.setenv("PATH_UNRELATED_TO_AWS", "kept")
    before = dict(os.environ)

    # When the sandbox's environment is entered
    with isolated_environ({"AWS_REGION": "eu-central-1"}):
        inside = dict(os.environ)

    # Then inside, none of them exists, the sandbox's own values do, and unrelated variables stay
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "https_proxy", "dry_run"):
        assert name not in inside
    assert inside["AWS_REGION"] == "eu-central-1"
    assert inside["PATH_UNRELATED_TO_AWS"] == "kept"
    # And afterwards the shell's environment is exactly as it was
    assert dict(os.environ) == before
