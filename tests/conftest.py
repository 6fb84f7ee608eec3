"""Fixtures shared by every suite: AWS in-process (moto) with the table and secrets the template defines,
and the no-secret check on every test's log output."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws

from devkit.fakes.base import ISSUED_SECRETS
from devkit.template import load_template
from kinotrakt.observability import logger as powertools_logger

# Property tests check rules, not speed: on a loaded 2-core CI machine a slow example is not a failure.
settings.register_profile("kinotrakt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kinotrakt")

AWS_REGION = "eu-west-1"
STACK_NAME = "kinotrakt"
STATE_TABLE = f"{STACK_NAME}-state"
KINOPUB_SECRET = f"{STACK_NAME}/kinopub"
TRAKT_SECRET = f"{STACK_NAME}/trakt"


def template_properties(logical_id: str) -> dict[str, Any]:
    """A resource's ``Properties`` from ``template.yaml``, so tests build exactly what a deploy builds."""
    properties: dict[str, Any] = load_template()["Resources"][logical_id]["Properties"]
    return properties


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """moto's in-process AWS with fake credentials; nothing from the developer's own AWS config leaks in."""
    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "AWS_REGION": AWS_REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.Session()


@pytest.fixture
def state_table(aws: boto3.Session) -> str:
    """The StateTable as ``template.yaml`` defines it (keys, billing, TTL attribute); returns its name."""
    properties = template_properties("StateTable")
    client = aws.client("dynamodb")
    client.create_table(
        TableName=STATE_TABLE,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
    )
    ttl = properties["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=STATE_TABLE,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )
    return STATE_TABLE


@pytest.fixture
def secrets(aws: boto3.Session) -> tuple[str, str]:
    """The Kinopub and Trakt secrets with the template's initial value (the contract's JSON with null tokens,
    docs/contract.md#secrets); returns their ARNs, Kinopub first."""
    client = aws.client("secretsmanager")
    arns = []
    for name, logical_id in ((KINOPUB_SECRET, "KinopubSecret"), (TRAKT_SECRET, "TraktSecret")):
        initial = template_properties(logical_id)["SecretString"]
        arns.append(client.create_secret(Name=name, SecretString=initial)["ARN"])
    return arns[0], arns[1]


# --- the no-secret rule (docs/ARCHITECTURE.md#invariants): no issued token, code or client secret in any log line

_WORDS = re.compile(r"[A-Za-z0-9_\-]{16,}")


class _LogCapture(logging.Handler):
    """Formats every record the way the Lambda would print it (Powertools' JSON, extras included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        formatter = powertools_logger.registered_formatter
        self.lines.append(formatter.format(record))
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> Iterator[None]:
    """Every test, whatever it does: DEBUG logging on, and afterwards no issued credential in the output."""
    capture = _LogCapture()
    targets = [logging.getLogger("kinotrakt"), logging.getLogger()]
    previous = [target.level for target in targets]
    for target in targets:
        target.addHandler(capture)
        target.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for target, level in zip(targets, previous, strict=True):
            target.removeHandler(capture)
            target.setLevel(level)
    leaked = {word for line in capture.lines for word in _WORDS.findall(line)} & ISSUED_SECRETS
    where = [line[:300] for line in capture.lines if any(secret in line for secret in leaked)]
    assert not leaked, f"{len(leaked)} issued credential(s) appeared in log output, e.g. {where[:1]}"
