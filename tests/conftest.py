"""Fixtures shared by every suite: AWS in-process (moto) with the table and secrets the template defines,
and the in-memory state store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kinotrakt.storage.memory import InMemoryStateStore
from tests.infrastructure.cfn import load_template

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
    """The Kinopub and Trakt secrets with the template's initial value (DESIGN §2 JSON, null tokens);
    returns their ARNs, Kinopub first."""
    client = aws.client("secretsmanager")
    arns = []
    for name, logical_id in ((KINOPUB_SECRET, "KinopubSecret"), (TRAKT_SECRET, "TraktSecret")):
        initial = template_properties(logical_id)["SecretString"]
        arns.append(client.create_secret(Name=name, SecretString=initial)["ARN"])
    return arns[0], arns[1]


@pytest.fixture
def memory_state() -> InMemoryStateStore:
    return InMemoryStateStore()
