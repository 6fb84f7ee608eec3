"""The CLI's own AWS wiring (no injected stores): a moto server stands in for AWS through ``--endpoint-url``,
and a CloudFormation stack's outputs and secret names are all it needs to find the deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from kinotrakt.config import Settings
from kinotrakt_cli.app import app
from kinotrakt_cli.context import CliDeps
from tests.conftest import template_properties

REGION = "eu-west-1"
STACK = "mykt"
TABLE = "mykt-StateTable-1A2B3C"
RUNNER = CliRunner(env={"FORCE_COLOR": None, "PY_COLORS": None, "TTY_COMPATIBLE": None, "COLUMNS": "80"})


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # The server keeps moto's in-process state: start every test from an empty account.
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


@pytest.fixture
def deployed_stack(moto_server: str) -> str:
    """What `sam deploy` leaves behind, as far as the CLI looks: the stack's outputs, its table, its secrets."""
    session = boto3.Session(region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=moto_server)
    table = template_properties("StateTable")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        BillingMode=table["BillingMode"],
    )
    secrets = session.client("secretsmanager", endpoint_url=moto_server)
    for service, logical_id in (("kinopub", "KinopubSecret"), ("trakt", "TraktSecret")):
        secrets.create_secret(Name=f"{STACK}/{service}", SecretString=template_properties(logical_id)["SecretString"])
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "StateTableName": {"Value": TABLE},
            "LoginUrl": {"Value": "https://api123.execute-api.eu-west-1.amazonaws.com/trakt/login?key=<setup_key>"},
        },
    }
    session.client("cloudformation", endpoint_url=moto_server).create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )
    return moto_server


def test_setup_finds_everything_from_the_stack_name(deployed_stack: str) -> None:
    # Given a deployed stack and no KINOPUB_SECRET_ID / TRAKT_SECRET_ID / STATE_TABLE_NAME in the environment
    deps = CliDeps(settings=Settings(), interactive=lambda: False)
    argv = [
        "--endpoint-url",
        deployed_stack,
        "--region",
        REGION,
        "--stack",
        STACK,
        "setup",
        "--kinopub-client-id",
        "kp-id",
        "--kinopub-client-secret-stdin",
        "--trakt-client-id",
        "tr-id",
        "--trakt-client-secret-stdin",
    ]

    # When the owner runs setup with only the stack's name, piping both secrets
    piped = "kp-secret-value-123456\ntr-secret-value-123456\n"
    result = RUNNER.invoke(app, argv, obj=deps, prog_name="kinotrakt", input=piped)

    # Then the credentials land in <stack>/kinopub and <stack>/trakt, and the login link comes from the outputs
    assert result.exit_code == 0, result.stderr
    secrets = boto3.Session(region_name=REGION).client("secretsmanager", endpoint_url=deployed_stack)
    trakt = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/trakt")["SecretString"])
    kinopub = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/kinopub")["SecretString"])
    assert (kinopub["client_id"], trakt["client_id"]) == ("kp-id", "tr-id")
    assert (kinopub["client_secret"], trakt["client_secret"]) == ("kp-secret-value-123456", "tr-secret-value-123456")
    assert f"https://api123.execute-api.eu-west-1.amazonaws.com/trakt/login?key={trakt['setup_key']}" in result.stdout
    assert "secret-value" not in result.stdout + result.stderr

    # And the commands that need the table find it through the stack output
    status = RUNNER.invoke(app, [*argv[:6], "status"], obj=CliDeps(settings=Settings()), prog_name="kinotrakt")
    assert status.exit_code == 0, status.stderr
    # And the commands it suggests repeat the options given, so they work as printed
    given = f"--stack {STACK} --region {REGION} --endpoint-url {deployed_stack}"
    assert f"Kinopub: not linked (kinotrakt {given} link kinopub)" in status.stdout
    assert "Last runs (newest first):\n  none yet" in status.stdout


def test_an_unreachable_secret_is_one_line_naming_it(deployed_stack: str) -> None:
    argv = ["--endpoint-url", deployed_stack, "--region", REGION, "--stack", "nope", "link", "trakt"]
    result = RUNNER.invoke(app, argv, obj=CliDeps(settings=Settings()), prog_name="kinotrakt")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the secret nope/trakt does not exist in eu-west-1 (region from --region): deploy the stack, or pass "
        "--stack (or --kinopub-secret / --trakt-secret) with the names you deployed, or --region if it is "
        "elsewhere\n"
    )
