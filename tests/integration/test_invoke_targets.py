"""``make invoke STACK=<name>``: the table, secret and callback names come from the deployed stack's outputs
(moto's CloudFormation here), and what cannot be found is said in one line."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from devkit.invoke import ENV_FILE, InvokeError, Target, env_vars, sam_environment, sandbox_target, stack_target
from tests.conftest import AWS_REGION

OUTPUTS = {
    "StateTableName": "kinotrakt-StateTable-1ABCDEF",
    "KinopubSecretName": "kinotrakt/kinopub",
    "TraktSecretName": "kinotrakt/trakt",
    "CallbackUrl": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/trakt/callback",
}


def deploy(session: boto3.Session, name: str, outputs: dict[str, str]) -> None:
    """A stack with these outputs (a stand-in resource: only the outputs matter here)."""
    body = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))


def test_a_deployed_stack_fills_in_the_names(aws: boto3.Session) -> None:
    # Given a deployed kinotrakt stack
    deploy(aws, "kinotrakt", OUTPUTS)

    # When make invoke targets it
    target = stack_target("kinotrakt", AWS_REGION)
    variables = env_vars(target, ENV_FILE)

    # Then both functions get its names instead of events/env.json's placeholders, and the rest of the file
    for function in ("SyncFunction", "AuthFunction"):
        assert variables[function]["STATE_TABLE_NAME"] == OUTPUTS["StateTableName"]
        assert variables[function]["KINOPUB_SECRET_ID"] == OUTPUTS["KinopubSecretName"]
        assert variables[function]["TRAKT_SECRET_ID"] == OUTPUTS["TraktSecretName"]
        assert variables[function]["TRAKT_REDIRECT_URI"] == OUTPUTS["CallbackUrl"]
    assert variables["SyncFunction"]["DRY_RUN"] == "true"
    assert target.parameters == {}  # no local endpoint: the function talks to AWS
    assert target.description == f"stack kinotrakt in {AWS_REGION}"


def test_a_stack_that_is_not_there_is_named_with_its_region(aws: boto3.Session) -> None:
    with pytest.raises(InvokeError, match=f"there is no stack 'kinotrakt' in {AWS_REGION}"):
        stack_target("kinotrakt", AWS_REGION)


def test_a_stack_that_is_not_kinotrakt_says_which_outputs_it_lacks(aws: boto3.Session) -> None:
    deploy(aws, "other", {"StateTableName": "t"})
    with pytest.raises(InvokeError, match="no output KinopubSecretName, TraktSecretName, CallbackUrl"):
        stack_target("other", AWS_REGION)


def test_a_sandbox_that_was_killed_is_not_a_target(tmp_path: Path) -> None:
    # Given the state file a killed sandbox left behind (nothing listens at its endpoint any more)
    state = {"pid": 1, "bind": "127.0.0.1", "environment": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}}
    (tmp_path / "sandbox.json").write_text(json.dumps(state))

    # Then make invoke does not aim at it
    assert sandbox_target(tmp_path, docker=False) is None


def test_sam_local_runs_without_the_shells_values_of_the_functions_variables() -> None:
    # Given a shell that exports variables the template declares (sam local would prefer them to the template's)
    shell = {"PATH": "/usr/bin", "DRY_RUN": "false", "AWS_ENDPOINT_URL": "http://localstack:4566", "AWS_PROFILE": "me"}

    # When make invoke starts sam local against a stack, and against a sandbox
    stack = sam_environment(Target("stack", "eu-west-1", {}), shell)
    sandbox = sam_environment(Target("sandbox", "eu-central-1", {}, credentials={"AWS_ACCESS_KEY_ID": "s"}), shell)

    # Then neither passes them on; the stack keeps the user's profile, the sandbox uses its own credentials
    assert stack == {"PATH": "/usr/bin", "AWS_PROFILE": "me"}
    assert sandbox["AWS_ACCESS_KEY_ID"] == "s"
    assert "AWS_PROFILE" not in sandbox
    assert "DRY_RUN" not in sandbox
    assert "AWS_ENDPOINT_URL" not in sandbox
