"""``make sandbox`` as a user runs it: a process of its own, whose printed environment points other processes (the
``kinotrakt`` console script, ``make invoke``) at it. Tests drive those as subprocesses and check what they print
and what ends up in the sandbox (its secrets through moto's endpoint, its Trakt through the fake's own API).

To add a case: take the ``sandbox`` fixture (a fresh sandbox per test), run ``sandbox.cli(...)``, assert on the
:class:`Result` (``code``, ``out``, ``err``, ``text``: the output with table borders and runs of spaces removed).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devkit.sandbox import REPO, foreign_variables
from devkit.sandbox_server import READY

KINOTRAKT = Path(sys.executable).parent / "kinotrakt"
START_TIMEOUT = 60.0
# Box-drawing characters a table renderer may frame cells with.
_BORDERS = re.compile(r"[\u2500-\u257f|]+")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout with table borders removed and every run of whitespace made one space, line by line."""
        lines = (" ".join(_BORDERS.sub(" ", line).split()) for line in self.out.splitlines())
        return "\n".join(line for line in lines if line)

    def __str__(self) -> str:
        return f"$ {shlex.join(self.argv)}\n(exit {self.code})\n{self.out}{self.err}"


@dataclass
class RunningSandbox:
    process: subprocess.Popen[str]
    state_dir: Path
    home: Path
    banner: list[str]
    clean: dict[str, str]  # a user's shell (the developer's own AWS set-up replaced by a hostile one)
    env: dict[str, str]  # that environment after the `unset` and `export` lines the sandbox printed
    output: queue.Queue[str | None]  # its lines after the ready line; None once it closed its output

    # --- the commands a user types ----------------------------------------------------------------------------

    def run(self, argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> Result:
        """A command in the sandbox's shell (``env``: another environment)."""
        done = subprocess.run(  # noqa: S603 - our own console script and interpreter, fixed arguments
            argv,
            cwd=REPO,
            env=dict(self.env if env is None else env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(tuple(argv), done.returncode, done.stdout, done.stderr)

    def cli(self, *args: str, timeout: float = 120) -> Result:
        """``.venv/bin/kinotrakt <args>`` from the repository root, in the shell the sandbox told us to set up."""
        return self.run([str(KINOTRAKT), *args], timeout=timeout)

    def printed_command(self, marker: str, *more: str) -> list[str]:
        """A command line the sandbox printed (the first banner line containing ``marker``), as argv, with the
        ``.venv/bin/kinotrakt`` it names resolved from the repository root; a pipeline (``printf … | kinotrakt
        setup …``) runs in a shell from the repository root, exactly as printed. ``more``: options the user adds
        at the end of the line."""
        (line,) = [line for line in self.banner if marker in line][:1]
        command = " ".join([line.split("#", 1)[0].strip(), *map(shlex.quote, more)])
        argv = shlex.split(command)
        if "|" in argv:
            return ["bash", "-c", command]
        return [str(REPO / argv[0]) if argv[0].startswith(".venv/") else argv[0], *argv[1:]]

    def set_up_and_link(self) -> None:
        """README steps 3 to 5 in the terminal: the printed setup command, then ``link kinopub``, ``link trakt``."""
        for argv in (self.printed_command("kinotrakt setup"), [str(KINOTRAKT), "link", "kinopub"]):
            done = self.run(argv)
            assert done.code == 0, done
        done = self.cli("link", "trakt")
        assert done.code == 0, done

    # --- what ends up inside ----------------------------------------------------------------------------------

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.env["AWS_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def secret(self, service: str) -> dict[str, Any]:
        name = self.env["KINOPUB_SECRET_ID" if service == "kinopub" else "TRAKT_SECRET_ID"]
        value: dict[str, Any] = json.loads(self.aws("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
        return value

    def trakt_get(self, path: str, access_token: str, **params: str) -> requests.Response:
        """A request to the fake Trakt's API, as the linked account."""
        headers = {
            "trakt-api-key": self.secret("trakt")["client_id"],
            "trakt-api-version": "2",
            "Authorization": f"Bearer {access_token}",
            "User-Agent": "kinotrakt-e2e-test",
        }
        return requests.get(f"{self.env['TRAKT_API_URL']}{path}", headers=headers, params=params, timeout=10)

    def trakt_history_keys(self, access_token: str) -> list[str]:
        """The dedupe key (docs/ARCHITECTURE.md#dedupe-keys) of every play in the linked Trakt account's history."""
        keys = []
        for kind in ("movies", "episodes"):
            answer = self.trakt_get(f"/sync/history/{kind}", access_token, limit="250")
            answer.raise_for_status()
            for play in answer.json():
                minute = play["watched_at"][:16] + "Z"
                if kind == "episodes":
                    keys.append(f"episode:{play['episode']['ids']['trakt']}:{minute}")
                elif play["movie"]["ids"].get("imdb"):
                    keys.append(f"movie:{play['movie']['ids']['imdb']}:{minute}")
                else:
                    keys.append(f"movie:trakt:{play['movie']['ids']['trakt']}:{minute}")
        return sorted(keys)

    # --- lifecycle --------------------------------------------------------------------------------------------

    def interrupt(self, timeout: float = 30) -> str:
        """Ctrl-C, as in a terminal; returns what it printed afterwards."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=timeout)
        lines = []
        while (line := self.output.get(timeout=timeout)) is not None:
            lines.append(line)
        return "\n".join(lines)


def shell_environment(banner: list[str], base: Mapping[str, str]) -> dict[str, str]:
    """``base`` after the ``unset`` and ``export`` lines the sandbox printed, in order."""
    env = dict(base)
    for line in banner:
        words = shlex.split(line.strip()) if line.strip().startswith(("export ", "unset ")) else []
        if words[:1] == ["unset"]:
            for name in words[1:]:
                env.pop(name, None)
        elif words[:1] == ["export"]:
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                env[name] = value
    return env


@contextmanager
def start_sandbox(tmp: Path, *, extra_args: tuple[str, ...] = ()) -> Iterator[RunningSandbox]:
    """``make sandbox`` on free ports, its state in ``tmp``; stopped (Ctrl-C) afterwards if still running."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / "aws-config").write_text("[default]\nendpoint_url = http://127.0.0.1:9\nuse_fips_endpoint = true\n")
    # The developer's own AWS set-up and kinotrakt settings stay out of everything started here; in their place,
    # a user's shell with a profile, endpoints and a config of its own, which the sandbox's printed environment
    # (and the sandbox itself, and make invoke) must set aside.
    clean = {name: value for name, value in os.environ.items() if name not in foreign_variables(os.environ)}
    clean |= {"HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUTF8": "1"}
    clean |= {
        "AWS_PROFILE": "kinotrakt-no-such-profile",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:9",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
    }
    argv = [sys.executable, "-m", "devkit.sandbox_server", "--port", "0", "--state-dir", str(tmp / "state")]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*argv, *extra_args],
        cwd=REPO,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    banner: list[str] = []
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT)
            if line is None:
                raise AssertionError("the sandbox exited before it was ready:\n" + "\n".join(banner))
            banner.append(line)
            if line.startswith(READY):
                break
        yield RunningSandbox(process, tmp / "state", home, banner, clean, shell_environment(banner, clean), lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A fresh ``make sandbox`` for one test."""
    with start_sandbox(tmp_path) as box:
        yield box
