"""``sam local invoke`` against the sandbox: what the template declares for it, and that ``make invoke
LOCAL=process`` gives the handler exactly the environment SAM would give the container (checked against SAM's own
code, run by the SAM CLI's interpreter in ``.tools``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.invoke import PLACEHOLDER, function_environment
from devkit.template import TEMPLATE_PATH, load_template
from tests.infrastructure.test_template import effective_environment

REPO = TEMPLATE_PATH.parent
SAM_PYTHON = REPO / ".tools" / "bin" / "python"
SAM_ENVIRONMENT = Path(__file__).with_name("sam_environment.py")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_the_local_endpoint_parameter_is_empty_unless_sam_local_sets_it(template: dict[str, Any]) -> None:
    # Given the parameter make invoke sets for a sandbox
    parameter = template["Parameters"]["LocalAwsEndpoint"]

    # Then a deploy leaves it empty, and only an http(s) URL may fill it
    assert parameter["Default"] == ""
    assert parameter["AllowedPattern"] == "^$|^https?://.+"


@pytest.mark.parametrize("function", ["SyncFunction", "AuthFunction"])
def test_both_functions_declare_what_make_invoke_sets_for_the_sandbox(template: dict[str, Any], function: str) -> None:
    # Given what a function's environment declares (sam local passes nothing else)
    environment = effective_environment(template, function)

    # Then boto3's own variable comes from the parameter, and http:// service URLs stay refused in any deployment
    # (only the env-vars file of sam local can say otherwise)
    assert environment["AWS_ENDPOINT_URL"] == {"Ref": "LocalAwsEndpoint"}
    assert environment["ALLOW_INSECURE_ENDPOINTS"] == "false"


def test_a_deployed_function_with_the_empty_endpoint_talks_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variable as a deploy sets it (the parameter's empty default)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")

    # When boto3 builds the clients the functions use
    session = boto3.Session(region_name="eu-central-1", aws_access_key_id="k", aws_secret_access_key="s")

    # Then they talk to AWS itself
    assert session.client("dynamodb").meta.endpoint_url == "https://dynamodb.eu-central-1.amazonaws.com"
    assert session.client("secretsmanager").meta.endpoint_url == "https://secretsmanager.eu-central-1.amazonaws.com"


def _sam_environment(function: str, overrides: dict[str, dict[str, str]], parameters: dict[str, str], tmp: Path) -> Any:
    assert SAM_PYTHON.exists(), "the SAM CLI's virtualenv is missing: run `make install`"
    env_vars = tmp / "env.json"
    env_vars.write_text(json.dumps(overrides))
    done = subprocess.run(  # noqa: S603 - the SAM CLI's interpreter, our own script
        [str(SAM_PYTHON), str(SAM_ENVIRONMENT), str(TEMPLATE_PATH), function, str(env_vars), json.dumps(parameters)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp)},  # SAM would also read the shell's values
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("function", "parameters", "overrides"),
    [
        pytest.param(
            "SyncFunction",
            {"LocalAwsEndpoint": "http://host.docker.internal:8510"},
            {
                "KINOPUB_API_URL": "http://host.docker.internal:8511",
                "ALLOW_INSECURE_ENDPOINTS": "true",
                "DRY_RUN": "true",
                "NOT_DECLARED": "dropped",
            },
            id="sync-against-a-sandbox",
        ),
        pytest.param("SyncFunction", {}, {"STATE_TABLE_NAME": "kinotrakt-StateTable-1"}, id="sync-against-a-stack"),
        pytest.param("AuthFunction", {"LocalAwsEndpoint": "http://127.0.0.1:8510"}, {}, id="auth-against-a-sandbox"),
    ],
)
def test_the_separate_process_gets_what_sam_local_would_give(
    function: str, parameters: dict[str, str], overrides: dict[str, str], tmp_path: Path
) -> None:
    # Given the same env-vars file, template parameters and credentials
    credentials = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}

    # When make invoke builds the process's environment, and SAM builds the container's
    ours = function_environment(
        function, overrides=overrides, parameters=parameters, credentials=credentials, region="eu-central-1"
    )
    sams = _sam_environment(function, {function: overrides}, parameters, tmp_path)

    # Then they are the same, variable for variable
    assert ours == sams


def test_the_shipped_env_file_has_placeholders_only_where_the_user_must_fill_in(template: dict[str, Any]) -> None:
    # Given events/env.json as the repository ships it
    shipped = json.loads((REPO / "events" / "env.json").read_text())

    # Then make invoke's placeholder rule finds exactly the names only a deployment knows
    for function, variables in shipped.items():
        flagged = {name for name, value in variables.items() if PLACEHOLDER.search(value)}
        assert flagged == {"STATE_TABLE_NAME", "TRAKT_REDIRECT_URI"}, function
