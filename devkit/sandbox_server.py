"""``make sandbox``: a local cloud that keeps running until Ctrl-C, to try the whole README offline.

- moto's server for DynamoDB and Secrets Manager, holding the state table and both secrets created from
  ``template.yaml``'s own definitions; the secrets start as the template creates them (no credentials, no
  tokens), so ``kinotrakt setup`` comes first, as after a real deploy;
- the fake Kinopub and the fake Trakt, seeded with the demo library (``make demo``'s), with device codes approved
  automatically, so ``kinotrakt link kinopub`` / ``link trakt`` complete on their own;
- the auth function (``/trakt/login``, ``/trakt/callback``) behind a stand-in for the HTTP API, so the browser
  login works too (the fake Trakt approves it at once);
- an alarm topic on moto (``ALARM_TOPIC_ARN``), where the auth function and ``link trakt`` announce each link;
- it prints the environment that points the CLI (and ``make invoke``) at it, and writes it to
  ``<state dir>/env.sh`` (``source`` it) and ``<state dir>/sandbox.json`` (read by ``make invoke``), both removed
  when it stops.

Its own process is isolated from the developer's AWS set-up like the in-process sandbox (:mod:`devkit.sandbox`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import boto3

from devkit.apigw import ApiGatewayAdapter
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import seed_demo_library
from devkit.sandbox import (
    KINOPUB_SECRET,
    REGION,
    REPO,
    TABLE,
    TRAKT_SECRET,
    create_secrets,
    create_state_table,
    isolated_environ,
    load_handler,
)

DEFAULT_PORT = 8510  # moto; the fake Kinopub, the fake Trakt and the login take the next three
DEFAULT_STATE_DIR = REPO / "build" / "sandbox"
READY = "sandbox ready"
AWS_KEY = "sandbox"  # moto accepts any credentials
ALARM_TOPIC = "kinotrakt-alarms"
# What a user can pin Ездок to with `kinotrakt map` (the demo library leaves it unmatched: its Russian title finds
# nothing on Trakt); on the real Trakt they would find it by hand under another title.
PIN_TRAKT_ID, PIN_TITLE, PIN_YEAR = 990001, "The Rider", 2020
# Variables of the shell that would take the CLI elsewhere: `source env.sh` removes them.
UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_CLOUDFORMATION",
    "AWS_ENDPOINT_URL_STS",
)
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass(frozen=True)
class LocalCloud:
    aws_url: str
    kinopub: FakeKinopub
    trakt: FakeTrakt
    login: ApiGatewayAdapter  # the auth function behind a stand-in for the HTTP API
    bind: str
    unmatched_movie: int  # the Kinopub id `map` can pin to PIN_TRAKT_ID
    alarm_topic_arn: str  # where links are announced (the stack's AlarmTopic)

    def environment(self) -> dict[str, str]:
        """The variables that point the CLI and the functions at this sandbox: the contract's
        (docs/contract.md#environment-variables) and boto3's own."""
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": AWS_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Not ~/.aws: its default profile may name FIPS endpoints or a credential process.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "STATE_TABLE_NAME": TABLE,
            "KINOPUB_SECRET_ID": KINOPUB_SECRET,
            "TRAKT_SECRET_ID": TRAKT_SECRET,
            "KINOPUB_API_URL": self.kinopub.base_url,
            "TRAKT_API_URL": self.trakt.base_url,
            "TRAKT_AUTH_URL": self.trakt.base_url,
            "TRAKT_AUTHORIZE_URL": f"{self.trakt.base_url}/oauth/authorize",
            "TRAKT_REDIRECT_URI": f"{self.login.base_url}/trakt/callback",
            "ALARM_TOPIC_ARN": self.alarm_topic_arn,
            # The fakes and the login speak plain http on this machine.
            "ALLOW_INSECURE_ENDPOINTS": "true",
        }

    def shell_environment(self, shell: Mapping[str, str]) -> dict[str, str]:
        """:meth:`environment`, and a NO_PROXY when ``shell`` has a proxy: requests and botocore would send
        loopback calls through it otherwise."""
        env = self.environment()
        if any(name in shell for name in _PROXIES):
            existing = shell.get("NO_PROXY") or shell.get("no_proxy") or ""
            loopback = ",".join(part for part in (existing, "127.0.0.1", "localhost") if part)
            env |= {"NO_PROXY": loopback, "no_proxy": loopback}
        return env

    @property
    def login_url(self) -> str:
        return f"{self.login.base_url}/trakt/login"

    def setup_command(self) -> str:
        """``setup`` with the fake Trakt app's client credentials, its secret piped (``setup`` takes none as an
        option); the fake Kinopub knows the public pair ``setup`` stores by default, so Kinopub is not named."""
        secrets = shlex.join(["printf", "%s\\n", self.trakt.client_secret])
        setup = shlex.join(
            [
                ".venv/bin/kinotrakt",
                "setup",
                "--trakt-client-id",
                self.trakt.client_id,
                "--trakt-client-secret-stdin",
                "--login-url",
                self.login_url,
            ]
        )
        return f"{secrets} | {setup}"


def seed(kinopub: FakeKinopub, trakt: FakeTrakt) -> int:
    """The demo library, and the Trakt movie its unmatched movie can be pinned to; returns that movie's
    Kinopub id."""
    library = seed_demo_library(kinopub, trakt)
    trakt.add_movie(PIN_TRAKT_ID, PIN_TITLE, PIN_YEAR, None)
    (movie,) = [view for view in library.unmatched if view.kind == "movie"]
    return movie.kinopub_id


@contextmanager
def local_cloud(bind: str = "127.0.0.1", port: int = DEFAULT_PORT) -> Iterator[LocalCloud]:
    """moto's server, both fakes and the login listening on ``bind``, at ``port`` to ``port + 3`` (``port`` 0:
    free ports), the table and secrets created, the fakes seeded. This process's environment is the sandbox's
    while inside (the auth function reads it)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise
    ports = [port + offset for offset in range(4)] if port else [0, 0, 0, 0]
    with ExitStack() as stack:
        # The sandbox's own boto3 calls must not meet the developer's profile or endpoints either.
        stack.enter_context(isolated_environ({"AWS_CONFIG_FILE": os.devnull}))
        if ports[0]:
            _check_free(bind, ports[0])  # moto's server would wait forever for a port it cannot take
        aws = ThreadedMotoServer(ip_address=bind, port=ports[0], verbose=False)
        aws.start()
        stack.callback(aws.stop)
        _, aws_port = aws.get_host_and_port()
        kinopub = FakeKinopub(auto_approve=True)
        # Trakt's device answers ask for a 5 s poll interval; a sandbox has nobody to wait for.
        trakt = FakeTrakt(auto_approve=True, device_interval=1)
        unmatched_movie = seed(kinopub, trakt)
        kinopub.start(bind, ports[1])
        stack.callback(kinopub.stop)
        trakt.start(bind, ports[2])
        stack.callback(trakt.stop)
        login = stack.enter_context(ApiGatewayAdapter(host=bind, port=ports[3]))
        aws_url = f"http://{_loopback(bind)}:{aws_port}"
        sns = boto3.client(
            "sns", endpoint_url=aws_url, region_name=REGION, aws_access_key_id=AWS_KEY, aws_secret_access_key=AWS_KEY
        )
        topic = sns.create_topic(Name=ALARM_TOPIC)["TopicArn"]
        cloud = LocalCloud(aws_url, kinopub, trakt, login, bind, unmatched_movie, topic)
        stack.enter_context(isolated_environ(cloud.environment()))
        create_state_table(boto3.client("dynamodb"))
        create_secrets(boto3.client("secretsmanager"))
        login.handler = load_handler("auth").lambda_handler
        yield cloud


def _check_free(bind: str, port: int) -> None:
    with socket.create_server((bind, port)):
        pass


def _loopback(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "") else bind  # noqa: S104 - the address to reach it by


def shell_lines(env: Mapping[str, str]) -> list[str]:
    return [f"unset {' '.join(UNSET)}", *(f"export {name}={shlex.quote(value)}" for name, value in env.items())]


def describe(cloud: LocalCloud, env: Mapping[str, str], state_dir: Path) -> str:
    env_file = _shown(state_dir / "env.sh")
    lines = [
        "kinotrakt sandbox - offline, until Ctrl-C:",
        f"  AWS (moto: DynamoDB, Secrets Manager)  {cloud.aws_url}  table {TABLE}, secrets {KINOPUB_SECRET}, "
        f"{TRAKT_SECRET} (empty, as a deploy leaves them), alarm topic {ALARM_TOPIC} (link notices)",
        f"  fake Kinopub                           {cloud.kinopub.base_url}  (demo library)",
        f"  fake Trakt                             {cloud.trakt.base_url}",
        f"  Trakt login (the auth function)        {cloud.login_url}",
        "",
        f"Point a shell at it (or: source {env_file}); that shell then talks to the sandbox only:",
        *(f"  {line}" for line in shell_lines(env)),
        "",
        "Then, as after a deploy (device codes are approved automatically; no need to open the link):",
        f"  {cloud.setup_command()}",
        "  .venv/bin/kinotrakt link kinopub",
        "  .venv/bin/kinotrakt link trakt     # or open the login link setup prints, in a browser",
        "  .venv/bin/kinotrakt sync",
        "  .venv/bin/kinotrakt status",
        "  .venv/bin/kinotrakt unmatched",
        f"  .venv/bin/kinotrakt map {cloud.unmatched_movie} movie {PIN_TRAKT_ID}"
        f"   # the unmatched movie is on Trakt as {PIN_TITLE!r} ({PIN_YEAR})",
        "  .venv/bin/kinotrakt unlink trakt",
        "  make invoke LOCAL=process   # the sync handler in its own process, against this sandbox",
    ]
    if cloud.bind in ("127.0.0.1", "localhost") and sys.platform == "linux":
        lines.append("  make invoke   # in Docker: Linux's Docker Engine needs `make sandbox HOST=0.0.0.0` (README)")
    else:
        lines.append("  make invoke   # the same in the Lambda image (sam local invoke; Docker)")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_state(state_dir: Path, cloud: LocalCloud, env: Mapping[str, str]) -> None:
    """``env.sh`` for a shell, ``sandbox.json`` for ``make invoke`` (which also rewrites the addresses for
    Docker)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "env.sh").write_text("\n".join(["# kinotrakt sandbox", *shell_lines(env), ""]))
    state: dict[str, Any] = {"pid": os.getpid(), "bind": cloud.bind, "region": REGION, "environment": dict(env)}
    (state_dir / "sandbox.json").write_text(json.dumps(state, indent=2) + "\n")


def clear_state(state_dir: Path) -> None:
    for name in ("sandbox.json", "env.sh"):
        (state_dir / name).unlink(missing_ok=True)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 lets Docker's Lambda containers in, see README)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"moto's port; the fakes and the login take the next three (default {DEFAULT_PORT}; 0: free ports)",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where env.sh and sandbox.json go")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    shell = dict(os.environ)
    state_dir: Path = args.state_dir.resolve()
    try:
        with local_cloud(args.host, args.port) as cloud:
            env = cloud.shell_environment(shell)
            write_state(state_dir, cloud, env)
            try:
                print(describe(cloud, env, state_dir), file=out, flush=True)
                print(f"{READY} (Ctrl-C stops it)", file=out, flush=True)
                while True:
                    time.sleep(3600)
            finally:
                clear_state(state_dir)
    except KeyboardInterrupt:
        print("sandbox stopped; everything in it is gone", file=out, flush=True)
    except OSError as exc:
        print(
            f"sandbox: cannot listen on {args.host} ports {args.port}-{args.port + 3}: {exc.strerror} "
            "(is another sandbox running? pick others with PORT=..., or PORT=0 for free ones)",
            file=err,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
