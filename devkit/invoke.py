"""``make invoke``: one invocation of a function of ``template.yaml`` as Lambda runs it, against ``make sandbox``
or a deployed stack.

Where it runs:
- ``--local docker`` (the default): ``sam local invoke`` on the built package (``make build``), in the Lambda
  image; the container reaches a sandbox on this machine as ``host.docker.internal``;
- ``--local process``: the same handler in a separate Python process (no Docker needed), given exactly the
  environment SAM would give the container (:func:`function_environment`).

What it runs against:
- ``--stack NAME``: a deployed stack; the table, secret and callback names come from its outputs;
- otherwise a running ``make sandbox`` (its ``sandbox.json``): moto's endpoint becomes the template parameter
  ``LocalAwsEndpoint``, the fakes' URLs and the sandbox's names the function's variables;
- otherwise ``events/env.json`` as it is, refused while it still holds a placeholder.

``events/env.json`` supplies everything else (``DRY_RUN=true`` by default). The shell's own values of the
functions' variables are never passed on (``sam local`` would otherwise prefer them to the template's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from devkit.sandbox import REPO
from devkit.sandbox_server import DEFAULT_STATE_DIR
from devkit.template import load_template

FUNCTIONS = ("SyncFunction", "AuthFunction")
DEFAULT_EVENTS = {"SyncFunction": "events/schedule.json", "AuthFunction": "events/auth_login.json"}
ENV_FILE = REPO / "events" / "env.json"
BUILT_TEMPLATE = REPO / ".aws-sam" / "build" / "template.yaml"
WORK_DIR = REPO / "build" / "invoke"
# Docker Desktop defines this name; on Docker Engine (Linux) `--add-host …:host-gateway` maps it to the bridge.
DOCKER_HOST_NAME = "host.docker.internal"
# The values events/env.json ships with where only the user knows the real one.
PLACEHOLDER = re.compile(r"<[^<>]*>|X{6,}")
# The variables a sandbox supplies; the rest comes from events/env.json. The first ones are addresses the
# function itself calls (a container reaches them through DOCKER_HOST_NAME); the last two are for the browser.
SANDBOX_CALLED = ("KINOPUB_API_URL", "TRAKT_API_URL", "TRAKT_AUTH_URL")
SANDBOX_VARIABLES = (
    *SANDBOX_CALLED,
    "STATE_TABLE_NAME",
    "KINOPUB_SECRET_ID",
    "TRAKT_SECRET_ID",
    "TRAKT_AUTHORIZE_URL",
    "TRAKT_REDIRECT_URI",
)
# SAM's placeholder credentials when none are given (samcli.local.lambdafn.env_vars).
SAM_DEFAULT_REGION = "us-east-1"


class InvokeError(Exception):
    """A reason not to invoke, in one line."""


@dataclass(frozen=True)
class Target:
    """What the function runs against."""

    description: str
    region: str
    variables: dict[str, str]  # on top of events/env.json, for every function
    parameters: dict[str, str] = field(default_factory=dict)  # template parameter overrides
    credentials: dict[str, str] = field(default_factory=dict)  # AWS_* for the function; empty: the user's own
    sandbox: bool = False


# --- what SAM gives a function ------------------------------------------------------------------------------


def declared_variables(template: Mapping[str, Any], function: str) -> dict[str, Any]:
    """The function's environment as the template declares it: Globals merged with its own (its own win)."""
    if function not in template["Resources"]:
        raise InvokeError(f"template.yaml has no function {function!r} (choose one of {', '.join(FUNCTIONS)})")
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    return {**globals_, **own}


class _Resolver:
    """The intrinsic functions ``sam local`` resolves in variables: ``Ref`` (a parameter's value, a resource's
    logical id), ``Fn::If`` on ``Fn::Equals``/``Fn::Not`` conditions, ``Fn::Sub``; anything else is an empty
    string, as SAM makes it."""

    # SAM fills pseudo parameters with fixed stand-ins, whatever --region says.
    _PSEUDO: Mapping[str, str] = {
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::StackName": "local",
        "AWS::URLSuffix": "localhost",
    }

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.values = {
            name: str(parameters.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }

    def __call__(self, value: Any) -> str:
        resolved = self._value(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        return "" if resolved is None or isinstance(resolved, dict | list) else str(resolved)

    def _value(self, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            return value
        ((name, argument),) = value.items()
        if name == "Ref":
            return self._ref(argument)
        if name == "Fn::If":
            condition, when_true, when_false = argument
            return self._value(when_true if self._condition(condition) else when_false)
        if name == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda match: str(self._ref(match[1])), argument)
        return None

    def _ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        return self._PSEUDO.get(name, name.split(".", maxsplit=1)[0])

    def _condition(self, name: str) -> bool:
        return bool(self._test(self.template["Conditions"][name]))

    def _test(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Fn::Equals":
                return self._test(argument[0]) == self._test(argument[1])
            if name == "Fn::Not":
                return not self._test(argument[0])
            if name == "Condition":
                return self._condition(argument)
        return self._value(value)


def function_environment(
    function: str,
    *,
    overrides: Mapping[str, str],
    parameters: Mapping[str, str],
    credentials: Mapping[str, str],
    region: str,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What ``sam local invoke`` sets in the container (``samcli.local.lambdafn.env_vars``): its ``AWS_*`` block,
    then each variable the template declares, from ``overrides`` (the env-vars file) or the template. A variable
    the template does not declare is not passed, whatever ``overrides`` says."""
    template = template or load_template()
    properties = template["Resources"][function]["Properties"]
    function_globals = template.get("Globals", {}).get("Function", {})
    logging_config = {**function_globals.get("LoggingConfig", {}), **properties.get("LoggingConfig", {})}
    resolve = _Resolver(template, parameters)
    timeout = properties.get("Timeout", function_globals.get("Timeout", 3))
    memory = properties.get("MemorySize", function_globals.get("MemorySize", 128))
    name = function  # SAM names the local function by its logical id
    env = {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_FUNCTION_HANDLER": str(properties["Handler"]),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **credentials,
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    if logging_config.get("LogGroup"):
        env["AWS_LAMBDA_LOG_GROUP_NAME"] = resolve(logging_config["LogGroup"])
    if logging_config.get("LogFormat") == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = resolve(logging_config.get("ApplicationLogLevel", "INFO"))
    for variable, declared in declared_variables(template, function).items():
        env[variable] = overrides[variable] if variable in overrides else resolve(declared)
    return env


# --- targets ------------------------------------------------------------------------------------------------


def sandbox_target(state_dir: Path, *, docker: bool) -> Target | None:
    """A running ``make sandbox``, or None."""
    path = state_dir / "sandbox.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    env: dict[str, str] = state["environment"]
    if not _answers(env["AWS_ENDPOINT_URL"]):
        return None  # left behind by a sandbox that was killed
    if docker and sys.platform == "linux" and state.get("bind") in ("127.0.0.1", "localhost"):
        # Docker Desktop forwards host.docker.internal to the host's loopback; Linux's Docker Engine maps it to the
        # docker0 bridge, where a sandbox on 127.0.0.1 does not answer.
        raise InvokeError(
            "the sandbox listens on 127.0.0.1 only, which Lambda containers cannot reach on Linux's Docker Engine: "
            "restart it as `make sandbox HOST=0.0.0.0`, or run `make invoke LOCAL=process`"
        )
    address = _for_docker if docker else str
    variables = {name: address(env[name]) if name in SANDBOX_CALLED else env[name] for name in SANDBOX_VARIABLES}
    variables["ALLOW_INSECURE_ENDPOINTS"] = "true"  # the fakes speak http; a deployment never does
    return Target(
        description=f"the sandbox at {env['AWS_ENDPOINT_URL']}",
        region=env["AWS_REGION"],
        variables=variables,
        parameters={"LocalAwsEndpoint": address(env["AWS_ENDPOINT_URL"])},
        credentials={name: env[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        sandbox=True,
    )


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2):
            return True
    except OSError:
        return False


def _for_docker(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return url
    return urlunsplit(parts._replace(netloc=f"{DOCKER_HOST_NAME}:{parts.port}"))


def stack_target(stack: str, region: str) -> Target:
    """The names a deployed stack's outputs give; the user's own AWS credentials."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        found = boto3.Session(region_name=region).client("cloudformation").describe_stacks(StackName=stack)
    except NoCredentialsError:
        raise InvokeError(f"no AWS credentials to read stack {stack!r} (configure a profile or AWS_PROFILE)") from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            raise InvokeError(f"there is no stack {stack!r} in {region} (REGION=... if it is elsewhere)") from None
        raise InvokeError(f"cannot read stack {stack!r} in {region}: {exc}") from None
    except BotoCoreError as exc:
        raise InvokeError(f"cannot read stack {stack!r} in {region}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found["Stacks"][0].get("Outputs", [])}
    wanted = {
        "STATE_TABLE_NAME": "StateTableName",
        "KINOPUB_SECRET_ID": "KinopubSecretName",
        "TRAKT_SECRET_ID": "TraktSecretName",
        "TRAKT_REDIRECT_URI": "CallbackUrl",
    }
    missing = [output for output in wanted.values() if output not in outputs]
    if missing:
        raise InvokeError(f"stack {stack!r} in {region} has no output {', '.join(missing)}: is it a kinotrakt stack?")
    return Target(
        description=f"stack {stack} in {region}",
        region=region,
        variables={variable: outputs[output] for variable, output in wanted.items()},
    )


def stack_region(explicit: str | None) -> str:
    """``--region``, else the environment, else ``samconfig.toml`` (where ``make deploy`` put the stack)."""
    if explicit:
        return explicit
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return os.environ[variable]
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    region = config.get("default", {}).get("global", {}).get("parameters", {}).get("region")
    return str(region) if region else SAM_DEFAULT_REGION


# --- the env-vars file --------------------------------------------------------------------------------------


def env_vars(target: Target, env_file: Path) -> dict[str, dict[str, str]]:
    """``sam local invoke --env-vars``: events/env.json with the target's names on top, placeholders refused."""
    try:
        base = json.loads(env_file.read_text())
    except (OSError, ValueError) as exc:
        raise InvokeError(f"cannot read {_shown(env_file)}: {exc}") from None
    merged = {function: {**base.get(function, {}), **target.variables} for function in FUNCTIONS}
    for function, variables in merged.items():
        left = sorted(name for name, value in variables.items() if PLACEHOLDER.search(value))
        if left:
            raise InvokeError(
                f"{_shown(env_file)} still has placeholder values ({function}: {', '.join(left)}): start "
                "`make sandbox` to invoke against it, or `make invoke STACK=<name>` to fill them from a deployed "
                "stack's outputs, or write your own values into the file"
            )
    return merged


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --- running ------------------------------------------------------------------------------------------------


def run_docker(function: str, event: Path, target: Target, variables: Mapping[str, dict[str, str]]) -> int:
    sam = REPO / ".tools" / "bin" / "sam"
    if not any(shutil.which(engine) for engine in ("docker", "finch")):
        raise InvokeError(
            "`sam local invoke` needs Docker (or Finch) and none is installed; `make invoke LOCAL=process` runs the "
            "same handler in a separate process instead"
        )
    if not BUILT_TEMPLATE.exists():
        raise InvokeError("no built package: run `make build` first (`make invoke` does)")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    env_path = WORK_DIR / "env.json"
    env_path.write_text(json.dumps(variables, indent=2) + "\n")
    argv = [str(sam), "local", "invoke", function, "-t", str(BUILT_TEMPLATE), "-e", str(event)]
    argv += ["--env-vars", str(env_path), "--region", target.region]
    if target.parameters:
        argv += ["--parameter-overrides", *(f"{name}={value}" for name, value in target.parameters.items())]
    if target.sandbox:
        argv += ["--add-host", f"{DOCKER_HOST_NAME}:host-gateway"]
    return subprocess.run(argv, env=sam_environment(target, os.environ), check=False).returncode  # noqa: S603


def sam_environment(target: Target, shell: Mapping[str, str]) -> dict[str, str]:
    """The environment ``sam local invoke`` runs in. SAM prefers the shell's value of a variable the template
    declares to the template's own (``AWS_ENDPOINT_URL`` and ``DRY_RUN`` included): drop them all, so that the
    env-vars file and the template decide. Against a sandbox, the container gets the sandbox's credentials and
    region, not the user's profile."""
    template = load_template()
    declared = {name for function in FUNCTIONS for name in declared_variables(template, function)}
    env = {name: value for name, value in shell.items() if name not in declared}
    if target.credentials:
        env = {name: value for name, value in env.items() if not name.upper().startswith("AWS_")}
        env |= {**target.credentials, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return env


def run_process(function: str, event: Path, target: Target, variables: Mapping[str, dict[str, str]]) -> int:
    credentials = target.credentials or _user_credentials(target.region)
    env = function_environment(
        function,
        overrides=variables[function],
        parameters=target.parameters,
        credentials=credentials,
        region=target.region,
    )
    # What the Lambda runtime has besides the function's variables; nothing else from this shell.
    env |= {"PATH": os.environ.get("PATH", ""), "TZ": ":UTC", "PYTHONUTF8": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", "devkit.lambda_process", function, str(event)]
    return subprocess.run(argv, env=env, cwd=REPO, check=False).returncode  # noqa: S603 - our interpreter, fixed


def _user_credentials(region: str) -> dict[str, str]:
    """The user's credentials, resolved here as SAM resolves them for the container (profile, SSO, env...)."""
    import boto3

    found = boto3.Session(region_name=region).get_credentials()
    if found is None:
        raise InvokeError("no AWS credentials found (configure a profile or AWS_PROFILE)")
    frozen = found.get_frozen_credentials()
    credentials = {"AWS_ACCESS_KEY_ID": str(frozen.access_key), "AWS_SECRET_ACCESS_KEY": str(frozen.secret_key)}
    if frozen.token:
        credentials["AWS_SESSION_TOKEN"] = frozen.token
    return credentials


def main(argv: list[str] | None = None, err: IO[str] = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--local", choices=["docker", "process"], default="docker", help="where the function runs")
    parser.add_argument("--stack", help="a deployed stack to run against (default: a running sandbox)")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION, else samconfig.toml)")
    parser.add_argument("--function", choices=FUNCTIONS, default="SyncFunction")
    parser.add_argument("--event", type=Path, help="event file (default: events/schedule.json or auth_login.json)")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help="the env-vars file (default events/env.json)")
    parser.add_argument(
        "--sandbox-dir", type=Path, default=DEFAULT_STATE_DIR, help="where make sandbox wrote its state"
    )
    args = parser.parse_args(argv)
    event: Path = args.event or REPO / DEFAULT_EVENTS[args.function]
    docker = args.local == "docker"
    try:
        if args.stack:
            target = stack_target(args.stack, stack_region(args.region))
        else:
            target = sandbox_target(args.sandbox_dir.resolve(), docker=docker) or Target(
                description=_shown(args.env_file), region=stack_region(args.region), variables={}
            )
        variables = env_vars(target, args.env_file)
        dry = variables[args.function].get("DRY_RUN", "false").lower() == "true"
        mode = "in Docker (sam local invoke)" if docker else "in a separate process"
        suffix = f"; dry run (DRY_RUN in {_shown(args.env_file)})" if dry and args.function == "SyncFunction" else ""
        print(f"make invoke: {args.function} {mode}, against {target.description}{suffix}", file=err)
        if docker:
            return run_docker(args.function, event, target, variables)
        return run_process(args.function, event, target, variables)
    except InvokeError as exc:
        print(f"make invoke: {exc}", file=err)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
