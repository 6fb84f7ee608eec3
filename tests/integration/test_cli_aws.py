"""The CLI's own AWS wiring (no injected stores): moto's server stands in for AWS through ``--endpoint-url``, and a
CloudFormation stack's outputs and secret names are all it needs to find the deployment. What AWS answers when
something is wrong (no credentials, no region, access denied, expired credentials, a stack, secret or table that is
not there) becomes one line naming the resource, the region and where that region came from; the stand-in answers
an operation with AWS's own error where moto cannot produce it (a resource policy's deny, an expired token)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from typer.testing import CliRunner
from werkzeug.serving import make_server

from kinotrakt.config import Settings
from kinotrakt_cli.app import app
from kinotrakt_cli.context import CliDeps
from tests.conftest import template_properties

REGION = "eu-west-1"
STACK = "mykt"
TABLE = "mykt-StateTable-1A2B3C"
RUNNER = CliRunner(env={"FORCE_COLOR": None, "PY_COLORS": None, "TTY_COMPATIBLE": None, "COLUMNS": "80"})
SIGN_IN = (
    "sign in (`aws configure`, or `aws sso login` with AWS_PROFILE) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


@dataclass
class AwsStandIn:
    """moto's server, except for the operations told to answer an error of AWS's own (by ``X-Amz-Target``)."""

    url: str = ""
    refusals: dict[str, tuple[str, str]] = field(default_factory=dict)

    def refuse(self, target: str, code: str, message: str) -> None:
        self.refusals[target] = (code, message)

    def app(self, moto: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            refusal = self.refusals.get(environ.get("HTTP_X_AMZ_TARGET", ""))
            if refusal is None:
                return moto(environ, start_response)
            # AWS's JSON protocols (Secrets Manager, DynamoDB) answer errors like this.
            body = json.dumps({"__type": refusal[0], "message": refusal[1]}).encode()
            start_response(
                "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", refusal[0])]
            )
            return [body]

        return wsgi


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStandIn]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("KINOPUB_SECRET_ID", "TRAKT_SECRET_ID", "STATE_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    stand_in = AwsStandIn()
    server = make_server(
        "127.0.0.1",
        0,
        stand_in.app(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    # The server keeps moto's in-process state: start every test from an empty account.
    requests.post(f"{stand_in.url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield stand_in
    finally:
        requests.post(f"{stand_in.url}/moto-api/reset", timeout=10)
        server.shutdown()
        thread.join()


@pytest.fixture
def deployed_stack(stand_in: AwsStandIn) -> str:
    """What `sam deploy` leaves behind, as far as the CLI looks: the stack's outputs, its table, its secrets."""
    session = boto3.Session(region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=stand_in.url)
    table = template_properties("StateTable")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        BillingMode=table["BillingMode"],
    )
    secrets = session.client("secretsmanager", endpoint_url=stand_in.url)
    for service, logical_id in (("kinopub", "KinopubSecret"), ("trakt", "TraktSecret")):
        secrets.create_secret(Name=f"{STACK}/{service}", SecretString=template_properties(logical_id)["SecretString"])
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "StateTableName": {"Value": TABLE},
            "LoginUrl": {"Value": "https://api123.execute-api.eu-west-1.amazonaws.com/trakt/login?key=<setup_key>"},
            "CallbackUrl": {"Value": "https://api123.execute-api.eu-west-1.amazonaws.com/trakt/callback"},
        },
    }
    session.client("cloudformation", endpoint_url=stand_in.url).create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )
    return stand_in.url


def run(argv: list[str], input: str | None = None, **deps: Any) -> tuple[int, str, str]:
    """``kinotrakt <argv>`` as the console script runs it: settings from the environment, the real AWS wiring; by
    default no samconfig.toml is found (``samconfig_files`` says otherwise); ``input``: what is piped to it."""
    defaults: dict[str, Any] = {"settings": Settings(), "interactive": lambda: False, "samconfig_files": list}
    result = RUNNER.invoke(app, argv, obj=CliDeps(**(defaults | deps)), prog_name="kinotrakt", input=input)
    return result.exit_code, result.stdout, result.stderr


# --- finding the deployment -----------------------------------------------------------------------------------


def test_setup_finds_everything_from_the_stack_name(deployed_stack: str) -> None:
    # Given a deployed stack and no KINOPUB_SECRET_ID / TRAKT_SECRET_ID / STATE_TABLE_NAME in the environment
    where = ["--endpoint-url", deployed_stack, "--region", REGION, "--stack", STACK]
    credentials = ["--kinopub-client-id", "kp-id", "--kinopub-client-secret-stdin"]
    credentials += ["--trakt-client-id", "tr-id", "--trakt-client-secret-stdin"]

    # When the owner runs setup with only the stack's name, piping both secrets
    code, out, err = run([*where, "setup", *credentials], input="kp-secret-value-123456\ntr-secret-value-123456\n")

    # Then the credentials land in <stack>/kinopub and <stack>/trakt, and the login link comes from the outputs
    assert code == 0, err
    secrets = boto3.Session(region_name=REGION).client("secretsmanager", endpoint_url=deployed_stack)
    trakt = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/trakt")["SecretString"])
    kinopub = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/kinopub")["SecretString"])
    assert (kinopub["client_id"], trakt["client_id"]) == ("kp-id", "tr-id")
    assert (kinopub["client_secret"], trakt["client_secret"]) == ("kp-secret-value-123456", "tr-secret-value-123456")
    assert f"https://api123.execute-api.eu-west-1.amazonaws.com/trakt/login?key={trakt['setup_key']}" in out
    assert "secret-value" not in out + err
    assert (
        "\n    https://api123.execute-api.eu-west-1.amazonaws.com/trakt/callback\n    urn:ietf:wg:oauth:2.0:oob\n"
        in out
    )

    # And the commands that need the table find it through the stack output
    code, out, err = run([*where, "status"])
    assert code == 0, err
    assert "Last runs (newest first):\n  none yet" in out
    # And the commands it suggests repeat the options given, so they work as printed
    given = f"--stack {STACK} --region {REGION} --endpoint-url {deployed_stack}"
    assert f"Kinopub: not linked (kinotrakt {given} link kinopub)" in out


def test_the_stack_and_region_come_from_samconfig_toml(deployed_stack: str, tmp_path: Path) -> None:
    # Given no --stack, no --region and no region in the environment, but the samconfig.toml `sam deploy --guided`
    # wrote (the stack name and region it was told go under [default.deploy.parameters])
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "kinotrakt"\nregion = "eu-central-1"\n'
        f'[default.deploy.parameters]\nstack_name = "{STACK}"\nregion = "{REGION}"\n'
    )

    # When the owner asks for the status
    code, out, err = run(["--endpoint-url", deployed_stack, "status"], samconfig_files=lambda: [samconfig])

    # Then it found that stack, in that region
    assert code == 0, err
    assert "Kinopub: not set up (kinotrakt --endpoint-url" in out


def test_a_stack_that_is_not_in_that_region_is_named_with_the_region_and_where_it_came_from(
    deployed_stack: str, tmp_path: Path
) -> None:
    # Given a samconfig.toml that names another region than the one the stack is in
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(f'version = 0.1\n[default.global.parameters]\nstack_name = "{STACK}"\nregion = "eu-west-3"\n')

    code, _, err = run(["--endpoint-url", deployed_stack, "status"], samconfig_files=lambda: [samconfig])

    assert code == 1
    assert err == (
        f"error: the stack {STACK} does not exist in eu-west-3 (region from {samconfig}): pass --stack with the name "
        "you deployed, or --region if it is in another region\n"
    )


def test_the_environment_s_region_wins_over_samconfig(
    deployed_stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(f'version = 0.1\n[default.global.parameters]\nstack_name = "{STACK}"\nregion = "eu-west-3"\n')
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code, _, err = run(["--endpoint-url", deployed_stack, "status"], samconfig_files=lambda: [samconfig])
    assert code == 0, err
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    code, _, err = run(["--endpoint-url", deployed_stack, "status"], samconfig_files=lambda: [samconfig])
    assert err == (
        f"error: the stack {STACK} does not exist in ap-south-1 (region from AWS_REGION): pass --stack with the name "
        "you deployed, or --region if it is in another region\n"
    )


def test_a_secret_that_is_not_there_is_named(deployed_stack: str) -> None:
    code, _, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--stack", "nope", "link", "trakt"])
    assert code == 1
    assert err == (
        "error: the secret nope/trakt does not exist in eu-west-1 (region from --region): deploy the stack, or pass "
        "--stack (or --kinopub-secret / --trakt-secret) with the names you deployed, or --region if it is "
        "elsewhere\n"
    )


def test_a_table_that_is_not_there_is_named(deployed_stack: str) -> None:
    code, _, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--table", "nope", "unmatched"])
    assert code == 1
    assert err == (
        "error: the table nope does not exist in eu-west-1 (region from --region): pass --table with the stack's "
        "output StateTableName, or --stack / --region for the deployment\n"
    )


# --- credentials and permissions -------------------------------------------------------------------------------


def test_no_credentials_is_named_as_such(deployed_stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a shell with no AWS credentials at all
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    code, out, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--stack", STACK, "status"])

    # Then the one line says so (not "cannot find the stack"), with what it was about to read
    assert code == 1
    assert out == ""
    assert err == (
        f"error: no AWS credentials found for reading the stack {STACK} in eu-west-1 (region from --region): "
        f"{SIGN_IN}, then run the command again\n"
    )


def test_no_region_is_named_as_such(deployed_stack: str) -> None:
    # Given no --region, no AWS_REGION, no samconfig.toml and an AWS config without a region
    code, _, err = run(["--endpoint-url", deployed_stack, "--stack", STACK, "link", "kinopub"])
    assert code == 1
    assert err == (
        "error: no AWS region: pass --region, set AWS_REGION, or run from the directory whose samconfig.toml "
        "`sam deploy` wrote (it names the region)\n"
    )


def test_reading_a_token_secret_denied_by_its_resource_policy_says_how_to_be_allowed(
    deployed_stack: str, stand_in: AwsStandIn
) -> None:
    # Given an assumed role that the token secrets' resource policy does not list
    stand_in.refuse(
        "secretsmanager.GetSecretValue",
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/Developer/alice is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {STACK}/trakt with an explicit deny in a resource-based policy",
    )

    code, _, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--stack", STACK, "link", "trakt"])

    # Then the line names the secret, the policy and the template parameter, with the ARN to put there (the role's,
    # which is what the policy compares, not the session's)
    assert code == 1
    assert err == (
        "error: access denied (AccessDeniedException): arn:aws:sts::123456789012:assumed-role/Developer/alice may not "
        f"read the secret {STACK}/trakt in eu-west-1 (region from --region). The token secrets' resource policy "
        "denies reads to all but the functions, the account's root user and AdministratorAccess roles, and the ARNs "
        "in the template parameter TokenReaderArns: deploy again with --parameter-overrides "
        "TokenReaderArns=arn:aws:iam::123456789012:role/Developer (README, Security)\n"
    )


def test_other_access_denied_names_the_action_and_the_resource(deployed_stack: str, stand_in: AwsStandIn) -> None:
    stand_in.refuse(
        "DynamoDB_20120810.Query",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: dynamodb:Query on resource: "
        f"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}",
    )
    code, _, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--stack", STACK, "unmatched"])
    assert code == 1
    assert err == (
        "error: access denied (AccessDeniedException): arn:aws:iam::123456789012:user/bob may not call dynamodb:Query "
        f"for reading the table {TABLE} in eu-west-1 (region from --region): use credentials of the account that "
        "deployed kinotrakt, with access to its table, secrets and stack\n"
    )


def test_expired_credentials_are_named_as_such(deployed_stack: str, stand_in: AwsStandIn) -> None:
    stand_in.refuse(
        "secretsmanager.GetSecretValue",
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    code, _, err = run(["--endpoint-url", deployed_stack, "--region", REGION, "--stack", STACK, "link", "kinopub"])
    assert code == 1
    assert err == (
        f"error: AWS refused the credentials (ExpiredTokenException) for reading the secret {STACK}/kinopub in "
        f"eu-west-1 (region from --region): they have expired or are not valid here; {SIGN_IN}\n"
    )


def test_a_profile_that_does_not_exist_is_named(deployed_stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    code, _, err = run(["--endpoint-url", deployed_stack, "--stack", STACK, "status"])
    assert code == 1
    assert err == f"error: the AWS profile no-such-profile (AWS_PROFILE) is not in your AWS config: {SIGN_IN}\n"


def test_aws_that_cannot_be_reached_is_named_with_its_address(deployed_stack: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, _, err = run(["--endpoint-url", closed, "--region", REGION, "--stack", STACK, "link", "kinopub"])
    assert code == 1
    assert err == (
        f"error: cannot reach AWS at {closed}/ in eu-west-1 (region from --region): check the network connection, "
        "and --endpoint-url or AWS_ENDPOINT_URL if you set one\n"
    )
