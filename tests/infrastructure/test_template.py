"""What cfn-lint and `sam validate` cannot know: that template.yaml wires the runtime contract (docs/contract.md).

Every test reads the template (and the files in events/) as data and asserts real values, written Given / When /
Then. The linters check that the template is valid CloudFormation; these tests check that it is *this* application.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devkit.template import TEMPLATE_PATH, load_template

REPO = TEMPLATE_PATH.parent
EVENTS = REPO / "events"

# The runtime contract's variables every deployment sets, with their documented defaults (None = no default):
# docs/contract.md#environment-variables.
CONTRACT_VARIABLES: dict[str, str | None] = {
    "KINOPUB_API_URL": "https://api.service-kp.com",
    "TRAKT_API_URL": "https://api.trakt.tv",
    "TRAKT_AUTH_URL": "https://auth.trakt.tv",
    "TRAKT_AUTHORIZE_URL": "https://auth.trakt.tv/oauth/authorize",
    "KINOPUB_SECRET_ID": None,
    "TRAKT_SECRET_ID": None,
    "STATE_TABLE_NAME": None,
    "ACCOUNT_ID": "default",
    "TRAKT_POST_INTERVAL_SECONDS": "1.0",
    "SYNC_BATCH_SIZE": "100",
    "DEADLINE_MARGIN_SECONDS": "60",
    "SYNC_OVERLAP_HOURS": "72",
    "FULL_RESCAN_HOURS": "24",
    "TRAKT_REDIRECT_URI": None,
    "DRY_RUN": "false",
    "TRAKT_GET_LIMIT": "450",
    "MAX_RETRY_WAIT_SECONDS": "30",
    "REWATCHES": "new_play",
}
# What the auth handler's settings need to start (kinotrakt.config.Settings.require_deployment) and use.
AUTH_VARIABLES = (
    "KINOPUB_SECRET_ID",
    "TRAKT_SECRET_ID",
    "STATE_TABLE_NAME",
    "ACCOUNT_ID",
    "TRAKT_API_URL",
    "TRAKT_AUTH_URL",
    "TRAKT_AUTHORIZE_URL",
    "TRAKT_REDIRECT_URI",
)
# The EMF metrics every sync run emits (docs/contract.md#metrics).
CONTRACT_METRICS = (
    "Candidates",
    "AddedMovies",
    "AddedEpisodes",
    "SkippedDuplicates",
    "NotFound",
    "Unmatched",
    "RunFailed",
    "RunPartial",
    "AuthRequired",
    "HttpCalls",
)
REPORT_FIELDS = (
    "status",
    "candidates",
    "added_movies",
    "added_episodes",
    "skipped_duplicates",
    "not_found",
    "unmatched",
    "watermark",
)
# The audit report's counts, and its status (docs/contract.md#audit-report).
AUDIT_REPORT_FIELDS = ("status", "duplicates_found", "duplicates_removed", "missing_on_trakt", "unexpected_plays")
SECRET_KEYS = ("client_id", "client_secret", "access_token", "refresh_token", "expires_at")
POWERTOOLS_DIMENSION = [{"Name": "service", "Value": "kinotrakt"}]


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def parameter_default(template: dict[str, Any], name: str) -> Any:
    return template["Parameters"][name]["Default"]


def effective_environment(template: dict[str, Any], function: str) -> dict[str, Any]:
    """The variables a function gets once SAM has merged Globals into it (function values win)."""
    global_vars = template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    own_vars = props(template, function).get("Environment", {}).get("Variables", {})
    return {**global_vars, **own_vars}


def function_property(template: dict[str, Any], function: str, key: str) -> Any:
    """A function property with SAM's Globals fallback."""
    own = props(template, function)
    return own[key] if key in own else template["Globals"]["Function"][key]


def policy_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in props(template, function)["Policies"]:
        # An inline document, never a SAM policy template (those grant broader actions than we use).
        assert isinstance(policy, dict)
        assert set(policy) <= {"Version", "Statement"}, f"{function}: not an inline policy document: {policy}"
        statements.extend(policy["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_by_service(statements: list[dict[str, Any]], service: str) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"]) if a.startswith(f"{service}:")}


def referenced_ids(value: Any) -> Iterator[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0]
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if name not in variables:
                        yield name.split(".")[0]
                yield from referenced_ids(variables)
            else:
                yield from referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from referenced_ids(inner)


def substitute_placeholders(text: str) -> str:
    """Fill every ${...} of an Fn::Sub string with a harmless value, as CloudFormation would with real ones."""
    return re.sub(r"\$\{[^!}][^}]*\}", "placeholder", text)


def alarms_on(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        body["Properties"]
        for body in resources(template, "AWS::CloudWatch::Alarm").values()
        if body["Properties"].get("Namespace") == namespace and body["Properties"].get("MetricName") == metric
    ]


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


# ---------------------------------------------------------------- the loader


def test_loader_turns_every_short_form_tag_into_its_long_form(tmp_path: Path) -> None:
    # Given a template that uses every CloudFormation short-form tag
    source = tmp_path / "t.yaml"
    source.write_text(
        "\n".join(
            [
                "AWSTemplateFormatVersion: 2010-09-09",
                "Conditions:",
                "  C: !And [!Equals [a, b], !Not [!Or [!Condition D, !Equals [c, d]]]]",
                "Values:",
                "  ref: !Ref X",
                "  sub: !Sub '${X}-y'",
                "  sub_list: !Sub ['${A}', {A: !Ref B}]",
                "  getatt: !GetAtt Res.Arn",
                "  getatt_nested: !GetAtt Stack.Outputs.Name",
                "  getatt_list: !GetAtt [Res, Arn]",
                "  if: !If [C, 1, !Ref AWS::NoValue]",
                "  join: !Join [',', [a, b]]",
                "  select: !Select [0, !Split [',', 'a,b']]",
                "  map: !FindInMap [M, K, V]",
                "  b64: !Base64 text",
                "  cidr: !Cidr [10.0.0.0/16, 4, 8]",
                "  azs: !GetAZs ''",
                "  imp: !ImportValue other-stack-output",
            ]
        ),
        encoding="utf-8",
    )

    # When it is loaded
    document = load_template(source)

    # Then each tag has become the long form CloudFormation itself uses, and the date stayed a string
    assert document["AWSTemplateFormatVersion"] == "2010-09-09"
    assert document["Conditions"]["C"] == {
        "Fn::And": [
            {"Fn::Equals": ["a", "b"]},
            {"Fn::Not": [{"Fn::Or": [{"Condition": "D"}, {"Fn::Equals": ["c", "d"]}]}]},
        ]
    }
    assert document["Values"] == {
        "ref": {"Ref": "X"},
        "sub": {"Fn::Sub": "${X}-y"},
        "sub_list": {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]},
        "getatt": {"Fn::GetAtt": ["Res", "Arn"]},
        "getatt_nested": {"Fn::GetAtt": ["Stack", "Outputs.Name"]},
        "getatt_list": {"Fn::GetAtt": ["Res", "Arn"]},
        "if": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
        "join": {"Fn::Join": [",", ["a", "b"]]},
        "select": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]},
        "map": {"Fn::FindInMap": ["M", "K", "V"]},
        "b64": {"Fn::Base64": "text"},
        "cidr": {"Fn::Cidr": ["10.0.0.0/16", 4, 8]},
        "azs": {"Fn::GetAZs": ""},
        "imp": {"Fn::ImportValue": "other-stack-output"},
    }


def test_loader_reads_the_repository_template_by_default(template: dict[str, Any]) -> None:
    # Given the repository template, When loaded without a path, Then it is the SAM application
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


# ---------------------------------------------------------------- functions, layer, runtime


def test_globals_pin_runtime_architecture_json_logs_and_powertools(template: dict[str, Any]) -> None:
    # Given the function globals
    function_globals = template["Globals"]["Function"]

    # Then both functions run python3.13 on arm64 with JSON logs and the Powertools service/namespace
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["LoggingConfig"]["LogFormat"] == "JSON"
    assert function_globals["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert parameter_default(template, "LogLevel") == "INFO"
    variables = function_globals["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "kinotrakt"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Kinotrakt"


@pytest.mark.parametrize(
    ("function", "code_uri"),
    [("SyncFunction", "functions/sync/"), ("AuthFunction", "functions/auth/")],
)
def test_handlers_are_the_contract_entry_points(template: dict[str, Any], function: str, code_uri: str) -> None:
    # Given a function resource
    properties = props(template, function)

    # Then it points at <code_uri>/app.py:lambda_handler (docs/contract.md#entry-points), a file that exists, and
    # uses the layer
    assert properties["CodeUri"] == code_uri
    assert properties["Handler"] == "app.lambda_handler"
    assert (REPO / code_uri / "app.py").is_file()
    assert properties["Layers"] == [{"Ref": "KinotraktLayer"}]


def test_layer_is_built_by_sam_for_python313_on_arm64(template: dict[str, Any]) -> None:
    # Given the layer
    layer = template["Resources"]["KinotraktLayer"]

    # Then SAM builds it with pip for the runtime and architecture the functions use
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/kinotrakt/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert (REPO / "layers/kinotrakt/requirements.txt").is_file()


def test_sync_function_has_room_for_a_long_run(template: dict[str, Any]) -> None:
    # Given the sync function
    properties = props(template, "SyncFunction")

    # Then it may run ten minutes, and the deadline margin leaves it most of that
    assert properties["Timeout"] == 600
    assert properties["MemorySize"] == 512
    assert int(parameter_default(template, "DeadlineMarginSeconds")) < properties["Timeout"] // 2
    assert props(template, "AuthFunction")["Timeout"] == 30


# ---------------------------------------------------------------- schedule and concurrency


def test_schedule_is_scheduler_v2_with_the_contract_input(template: dict[str, Any]) -> None:
    # Given the sync function's events
    events = props(template, "SyncFunction")["Events"]

    # When we look at the sync's schedule (the other is the monthly audit's)
    assert {name for name, event in events.items() if event["Type"] == "ScheduleV2"} == {"Schedule", "AuditSchedule"}
    properties = events["Schedule"]["Properties"]

    # Then it is an EventBridge Scheduler schedule with a generated name, the configurable hourly expression,
    # no scheduler retries, and the exact Input of docs/contract.md#sync-events
    assert properties["OmitName"] is True
    assert properties["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert parameter_default(template, "ScheduleExpression") == "rate(1 hour)"
    assert properties["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert json.loads(properties["Input"]) == {
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
    }
    assert properties["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["SyncFailureQueue", "Arn"]}


def test_the_monthly_audit_reports_only_and_a_parameter_turns_it_off(template: dict[str, Any]) -> None:
    # Given the audit's schedule on the sync function
    properties = props(template, "SyncFunction")["Events"]["AuditSchedule"]["Properties"]

    # Then it runs on the 1st of every month, asks for an audit without any fix, and carries the scheduler's
    # fields (the correlation id of its log lines)
    assert properties["ScheduleExpression"] == "cron(0 4 1 * ? *)"
    assert json.loads(properties["Input"]) == {
        "action": "audit",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
    }
    assert properties["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert properties["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["SyncFailureQueue", "Arn"]}
    # And the MonthlyAudit parameter (on by default) enables or disables it
    assert parameter_default(template, "MonthlyAudit") == "true"
    assert template["Parameters"]["MonthlyAudit"]["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["MonthlyAuditEnabled"] == {"Fn::Equals": [{"Ref": "MonthlyAudit"}, "true"]}
    assert properties["State"] == {"Fn::If": ["MonthlyAuditEnabled", "ENABLED", "DISABLED"]}


def test_reserved_concurrency_is_one_behind_a_parameter(template: dict[str, Any]) -> None:
    # Given the ReserveConcurrency parameter and the sync function
    parameter = template["Parameters"]["ReserveConcurrency"]
    reserved = props(template, "SyncFunction")["ReservedConcurrentExecutions"]

    # Then reservation is on by default, can be switched off for new accounts, and reserves exactly one
    assert parameter["Default"] == "true"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    condition_name, when_on, when_off = reserved["Fn::If"]
    assert template["Conditions"][condition_name] == {"Fn::Equals": [{"Ref": "ReserveConcurrency"}, "true"]}
    assert when_on == 1
    assert when_off == {"Ref": "AWS::NoValue"}


def test_failed_async_runs_are_not_retried_and_land_in_an_encrypted_queue(template: dict[str, Any]) -> None:
    # Given the sync function's async invoke configuration
    invoke_config = props(template, "SyncFunction")["EventInvokeConfig"]

    # Then Lambda does not retry a failed run, and the event goes to the SSE failure queue
    assert invoke_config["MaximumRetryAttempts"] == 0
    on_failure = invoke_config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"] == {"Fn::GetAtt": ["SyncFailureQueue", "Arn"]}
    queue = template["Resources"]["SyncFailureQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


# ---------------------------------------------------------------- environment (docs/contract.md#environment-variables)


def test_sync_function_gets_every_design_variable(template: dict[str, Any]) -> None:
    # Given the environment the sync function ends up with
    environment = effective_environment(template, "SyncFunction")

    # Then every contract variable is set
    missing = sorted(set(CONTRACT_VARIABLES) - set(environment))
    assert not missing, f"SyncFunction lacks {missing}"


def test_design_variables_point_at_this_stacks_resources(template: dict[str, Any]) -> None:
    # Given the sync function's environment
    environment = effective_environment(template, "SyncFunction")

    # Then the resource variables name this stack's secrets, table and callback URL
    assert environment["KINOPUB_SECRET_ID"] == {"Ref": "KinopubSecret"}
    assert environment["TRAKT_SECRET_ID"] == {"Ref": "TraktSecret"}
    assert environment["STATE_TABLE_NAME"] == {"Ref": "StateTable"}
    redirect = environment["TRAKT_REDIRECT_URI"]["Fn::Sub"]
    assert redirect == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/trakt/callback"
    assert environment["KINOPUB_USER_AGENT"] == {"Ref": "KinopubUserAgent"}
    assert parameter_default(template, "KinopubUserAgent").startswith("Mozilla/5.0")


@pytest.mark.parametrize("variable", [name for name, default in CONTRACT_VARIABLES.items() if default is not None])
def test_parameters_default_to_the_contract_values(template: dict[str, Any], variable: str) -> None:
    # Given a contract variable with a documented default, wired to a template parameter
    value = effective_environment(template, "SyncFunction")[variable]
    assert set(value) == {"Ref"}, f"{variable} should come from a parameter, got {value}"
    parameter = template["Parameters"][value["Ref"]]

    # Then the parameter's default is the documented one (numbers compared as numbers)
    expected = CONTRACT_VARIABLES[variable]
    if parameter["Type"] == "Number":
        assert float(parameter["Default"]) == float(str(expected))
    else:
        assert parameter["Default"] == expected


def test_auth_function_gets_what_its_settings_need(template: dict[str, Any]) -> None:
    # Given the environment the auth function ends up with
    environment = effective_environment(template, "AuthFunction")

    # Then it can start (secret ids, table) and build the authorize redirect and the callback URL
    missing = sorted(set(AUTH_VARIABLES) - set(environment))
    assert not missing, f"AuthFunction lacks {missing}"
    assert environment["TRAKT_REDIRECT_URI"] == effective_environment(template, "SyncFunction")["TRAKT_REDIRECT_URI"]


# ---------------------------------------------------------------- IAM


@pytest.mark.parametrize("function", ["SyncFunction", "AuthFunction"])
def test_policies_have_no_wildcards_and_no_create_secret(template: dict[str, Any], function: str) -> None:
    # Given a function's inline policy statements
    statements = policy_statements(template, function)

    # Then every statement allows named actions on named resources
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{function}: wildcard action {action}"
            assert action != "secretsmanager:CreateSecret"
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{function}: wildcard resource in {statement}"
            assert not (isinstance(resource, str) and resource.endswith("*"))


def test_nobody_can_create_secrets(template: dict[str, Any]) -> None:
    # Given the whole template as text, Then CreateSecret is granted nowhere (docs/ARCHITECTURE.md#security)
    assert "CreateSecret" not in json.dumps(template)


def test_sync_function_may_use_exactly_the_table_and_both_secrets(template: dict[str, Any]) -> None:
    # Given the sync function's statements
    statements = policy_statements(template, "SyncFunction")

    # Then DynamoDB actions are the item-level ones it uses, on the state table only
    assert actions_by_service(statements, "dynamodb") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
    }
    assert actions_by_service(statements, "secretsmanager") == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    }
    for statement in statements:
        services = {action.split(":")[0] for action in as_list(statement["Action"])}
        if services == {"dynamodb"}:
            assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["StateTable", "Arn"]}]
        elif services == {"secretsmanager"}:
            assert as_list(statement["Resource"]) == [{"Ref": "KinopubSecret"}, {"Ref": "TraktSecret"}]
        else:
            pytest.fail(f"unexpected statement {statement}")


def test_auth_function_cannot_touch_the_kinopub_secret(template: dict[str, Any]) -> None:
    # Given the auth function's statements
    statements = policy_statements(template, "AuthFunction")

    # Then it reads and writes login state and the Trakt secret, and nothing of Kinopub
    assert actions_by_service(statements, "dynamodb") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    assert actions_by_service(statements, "secretsmanager") == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    }
    secret_resources = [
        resource
        for statement in statements
        if any(action.startswith("secretsmanager:") for action in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"])
    ]
    assert secret_resources == [{"Ref": "TraktSecret"}]
    assert "KinopubSecret" not in set(referenced_ids(statements))


def test_only_the_auth_function_may_publish_and_only_to_the_alarm_topic(template: dict[str, Any]) -> None:
    # Given the auth function's statements and environment
    statements = policy_statements(template, "AuthFunction")

    # Then it may publish its link notices to the alarm topic, which its environment names, and nothing else
    (publish,) = [s for s in statements if actions_by_service([s], "sns")]
    assert as_list(publish["Action"]) == ["sns:Publish"]
    assert as_list(publish["Resource"]) == [{"Ref": "AlarmTopic"}]
    assert effective_environment(template, "AuthFunction")["ALARM_TOPIC_ARN"] == {"Ref": "AlarmTopic"}
    # And the sync function has no SNS action at all
    assert actions_by_service(policy_statements(template, "SyncFunction"), "sns") == set()


def _table_condition(template: dict[str, Any], function: str) -> dict[str, Any]:
    (statement,) = [
        s for s in policy_statements(template, function) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    condition: dict[str, Any] = statement["Condition"]
    return condition


def test_sync_function_may_touch_only_its_accounts_items(template: dict[str, Any]) -> None:
    # Given the sync function's DynamoDB statement
    condition = _table_condition(template, "SyncFunction")

    # Then every item it touches has a pk under this deployment's ACCOUNT_ID ("<ACCOUNT_ID>#...":
    # docs/contract.md#state-table)
    assert condition == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [{"Fn::Sub": "${AccountId}#*"}]}}
    assert effective_environment(template, "SyncFunction")["ACCOUNT_ID"] == {"Ref": "AccountId"}


def test_auth_function_may_touch_only_its_login_states(template: dict[str, Any]) -> None:
    # Given the internet-facing function's DynamoDB statement
    condition = _table_condition(template, "AuthFunction")

    # Then it reaches only the one-time login states (storage/dynamo.py: pk "<ACCOUNT_ID>#oauth"), never the
    # ledger, the watermark or the mapping cache
    assert condition == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [{"Fn::Sub": "${AccountId}#oauth"}]}}


def _readers(policy: dict[str, Any]) -> list[Any]:
    """The principals a token secret's deny statement leaves out (its Fn::Split / Fn::Join list, flattened)."""
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == "*"
    (condition,) = statement["Condition"].items()
    assert condition[0] == "StringNotLike"
    split = condition[1]["aws:PrincipalArn"]["Fn::Split"]
    assert split[0] == ","
    separator, items = split[1]["Fn::Join"]
    assert separator == ","
    return list(items)


ADMINISTRATORS = [
    {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
    {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-reserved/sso.amazonaws.com/"
        "*AWSReservedSSO_AdministratorAccess_*"
    },
]
EXTRA_READERS = {"Fn::Join": [",", {"Ref": "TokenReaderArns"}]}


@pytest.mark.parametrize(
    ("secret", "functions"),
    [("KinopubSecret", ["SyncFunction"]), ("TraktSecret", ["SyncFunction", "AuthFunction"])],
)
def test_token_secrets_deny_reads_to_all_but_their_functions_and_the_administrators(
    template: dict[str, Any], secret: str, functions: list[str]
) -> None:
    # Given the resource policy of a token secret
    (policy,) = [
        body["Properties"]
        for body in resources(template, "AWS::SecretsManager::ResourcePolicy").values()
        if body["Properties"]["SecretId"] == {"Ref": secret}
    ]

    # Then reading it is denied to every principal except the functions that use it (the auth function never
    # reads the Kinopub secret), the account's administrators and the principals the owner lists
    assert policy["BlockPublicPolicy"] is True
    readers = _readers(policy["ResourcePolicy"])
    assert readers == [*({"Fn::GetAtt": [f"{f}Role", "Arn"]} for f in functions), *ADMINISTRATORS, EXTRA_READERS]
    parameter = template["Parameters"]["TokenReaderArns"]
    assert (parameter["Type"], parameter["Default"]) == ("CommaDelimitedList", "")


def test_the_template_never_allows_plain_http_endpoints(template: dict[str, Any]) -> None:
    # Given both functions' environments and the URL parameters: ALLOW_INSECURE_ENDPOINTS is declared only so
    # that sam local's env-vars file can set it for the sandbox (make invoke), and no parameter can turn it on
    for function in ("SyncFunction", "AuthFunction"):
        assert effective_environment(template, function)["ALLOW_INSECURE_ENDPOINTS"] == "false"

    # Then every service URL a deployment may set is https (the default, ALLOW_INSECURE_ENDPOINTS=false, holds)
    for name in ("KinopubApiUrl", "TraktApiUrl", "TraktAuthUrl", "TraktAuthorizeUrl"):
        assert template["Parameters"][name]["AllowedPattern"] == "^https://.+"


# ---------------------------------------------------------------- state and secrets


def test_state_table_matches_the_runtime_contract(template: dict[str, Any]) -> None:
    # Given the state table
    table = template["Resources"]["StateTable"]
    properties = table["Properties"]

    # Then it is a pk/sk string table with TTL on expires_at, on demand, backed up, encrypted and retained
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize(("secret", "suffix"), [("KinopubSecret", "kinopub"), ("TraktSecret", "trakt")])
def test_secrets_start_with_the_contract_shape_and_no_values(
    template: dict[str, Any], secret: str, suffix: str
) -> None:
    # Given a token secret
    resource = template["Resources"][secret]

    # Then it is created empty in the contract's JSON shape (docs/contract.md#secrets), under a name the CLI can find
    assert resource["Type"] == "AWS::SecretsManager::Secret"
    value = json.loads(resource["Properties"]["SecretString"])
    assert value == dict.fromkeys(SECRET_KEYS)
    assert resource["Properties"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/{suffix}"}
    assert "GenerateSecretString" not in resource["Properties"]


# ---------------------------------------------------------------- HTTP API


def test_auth_routes_reach_the_auth_function_without_a_dependency_cycle(template: dict[str, Any]) -> None:
    # Given the HTTP API body and the auth function
    body = props(template, "HttpApi")["DefinitionBody"]
    auth = props(template, "AuthFunction")

    # Then login and callback are GET routes with payload v2 on the auth function, addressed by its name,
    # because SAM HttpApi events would reference ${AuthFunction.Arn} from the API while the function's
    # TRAKT_REDIRECT_URI references the API: CloudFormation rejects that cycle (linters do not see it)
    assert "Events" not in auth
    assert set(body["paths"]) == {"/trakt/login", "/trakt/callback"}
    function_arn = (
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + (auth["FunctionName"]["Fn::Sub"])
    )
    for path, methods in body["paths"].items():
        assert set(methods) == {"get"}, path
        integration = methods["get"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert integration["payloadFormatVersion"] == "2.0"
        assert function_arn in integration["uri"]["Fn::Sub"]
        assert "AuthFunction" not in set(referenced_ids(integration))

    permission = props(template, "AuthFunctionInvokePermission")
    assert permission["FunctionName"] == {"Ref": "AuthFunction"}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "${HttpApi}/*/GET/trakt/*" in permission["SourceArn"]["Fn::Sub"]


def test_http_api_is_throttled_and_logged_without_query_strings(template: dict[str, Any]) -> None:
    # Given the HTTP API
    api = template["Resources"]["HttpApi"]
    properties = api["Properties"]

    # Then every route is throttled to a trickle, and access logs never record the setup key or the code
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert properties["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 5}
    assert properties["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = properties["AccessLogSettings"]["Format"]
    assert json.loads(log_format)["path"] == "$context.path"
    assert "querystring" not in log_format.lower()
    assert "header" not in log_format.lower()


def test_no_resource_depends_on_itself(template: dict[str, Any]) -> None:
    # Given the dependency graph of the template as written (Ref, GetAtt, Sub, DependsOn, merged Globals)
    names = set(template["Resources"])
    global_env = template["Globals"]["Function"]
    graph: dict[str, set[str]] = {}
    for name, body in template["Resources"].items():
        fragment: list[Any] = [body.get("Properties", {}), body.get("DependsOn", [])]
        if body["Type"] == "AWS::Serverless::Function":
            fragment.append(global_env)
        depends_on = {dep for dep in as_list(body.get("DependsOn", [])) if isinstance(dep, str)}
        graph[name] = (set(referenced_ids(fragment)) | depends_on) & names

    # When we walk it depth first
    def cycle_from(start: str) -> list[str] | None:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, nxt]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    # Then there is no cycle
    cycles = [cycle for name in sorted(graph) if (cycle := cycle_from(name))]
    assert not cycles, f"circular dependencies: {cycles}"


# ---------------------------------------------------------------- logs, alarms, dashboard


def test_every_log_group_has_a_retention(template: dict[str, Any]) -> None:
    # Given all log groups
    log_groups = resources(template, "AWS::Logs::LogGroup")

    # Then there is one per function and one for the API, and each one expires its logs
    assert set(log_groups) >= {"SyncFunctionLogGroup", "AuthFunctionLogGroup", "HttpApiAccessLogGroup"}
    for name, body in log_groups.items():
        assert body["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert int(parameter_default(template, "LogRetentionDays")) == 30


@pytest.mark.parametrize("function", ["SyncFunction", "AuthFunction"])
def test_functions_log_to_their_own_group(template: dict[str, Any], function: str) -> None:
    # Given a function and the log group its logging config names
    properties = props(template, function)
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = props(template, log_group_id)

    # Then the group is the function's conventional /aws/lambda/<name> group
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/" + properties["FunctionName"]["Fn::Sub"]}
    assert function_property(template, function, "LoggingConfig")["LogGroup"] == {"Ref": log_group_id}


def _assert_alarm_to_topic(alarm: dict[str, Any]) -> None:
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("function", ["SyncFunction", "AuthFunction"])
def test_function_errors_raise_an_alarm(template: dict[str, Any], function: str) -> None:
    # Given the Lambda Errors alarms
    alarms = [
        alarm
        for alarm in alarms_on(template, "AWS/Lambda", "Errors")
        if alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]

    # Then the function has one, and it notifies the topic on the first error
    assert len(alarms) == 1
    _assert_alarm_to_topic(alarms[0])
    assert alarms[0]["Statistic"] == "Sum"


def test_a_message_in_the_failure_queue_raises_an_alarm(template: dict[str, Any]) -> None:
    # Given the SQS depth alarms
    (alarm,) = alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")

    # Then the failure queue is watched
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SyncFailureQueue", "QueueName"]}}]
    _assert_alarm_to_topic(alarm)


@pytest.mark.parametrize("metric", ["RunFailed", "AuthRequired"])
def test_design_failure_metrics_raise_an_alarm(template: dict[str, Any], metric: str) -> None:
    # Given the alarms on the application's own metrics
    (alarm,) = alarms_on(template, "Kinotrakt", metric)

    # Then they watch the dimension Powertools Metrics emits (service=POWERTOOLS_SERVICE_NAME)
    assert alarm["Dimensions"] == POWERTOOLS_DIMENSION
    assert alarm["Statistic"] == "Sum"
    _assert_alarm_to_topic(alarm)


def test_a_burst_of_refused_logins_raises_an_alarm(template: dict[str, Any]) -> None:
    # Given the alarm on the auth function's LoginRefused metric
    (alarm,) = alarms_on(template, "Kinotrakt", "LoginRefused")

    # Then it watches the total over every reason (the dimension set emitted with service alone), over at most
    # five minutes, and fires on a burst, not on one mistyped link
    assert alarm["Dimensions"] == POWERTOOLS_DIMENSION
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] <= 300
    assert 5 <= alarm["Threshold"] <= 100
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_alarm_topic_has_an_optional_email_subscription(template: dict[str, Any]) -> None:
    # Given the alarm topic's subscriptions
    (subscription,) = resources(template, "AWS::SNS::Subscription").values()

    # Then the e-mail subscription exists only when AlarmEmail is set
    assert template["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert parameter_default(template, "AlarmEmail") == ""
    assert template["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_dashboard_shows_every_design_metric_and_the_sync_errors(template: dict[str, Any]) -> None:
    # Given the dashboard body with its ${...} filled in
    body = json.loads(substitute_placeholders(props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]))
    widgets = body["widgets"]

    # Then each contract metric is graphed with the Powertools dimension
    graphed = {
        tuple(line[:4]) for widget in widgets if widget["type"] == "metric" for line in widget["properties"]["metrics"]
    }
    for metric in CONTRACT_METRICS:
        assert ("Kinotrakt", metric, "service", "kinotrakt") in graphed, metric
    assert ("AWS/Lambda", "Errors", "FunctionName", "placeholder") in graphed
    assert ("AWS/Lambda", "Duration", "FunctionName", "placeholder") in graphed

    # And a Logs Insights widget lists recent errors of the sync log group
    log_queries = [widget["properties"]["query"] for widget in widgets if widget["type"] == "log"]
    assert any("ERROR" in query and query.startswith("SOURCE 'placeholder'") for query in log_queries)
    raw = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    assert "SOURCE '${SyncFunctionLogGroup}'" in raw


def _queries(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        body["Properties"]["Name"]["Fn::Sub"].split("/", 1)[1]: body["Properties"]
        for body in resources(template, "AWS::Logs::QueryDefinition").values()
    }


def test_saved_queries_cover_runs_unmatched_items_and_errors(template: dict[str, Any]) -> None:
    # Given the saved Logs Insights queries
    queries = _queries(template)

    # Then all four run on the sync log group, and the errors also on the login function's (refused logins)
    assert set(queries) == {"last runs with their reports", "unmatched items", "errors", "audits"}
    for name, query in queries.items():
        expected = [{"Ref": "SyncFunctionLogGroup"}]
        if name == "errors":
            expected.append({"Ref": "AuthFunctionLogGroup"})
        assert query["LogGroupNames"] == expected, name

    # And each one selects the log lines the sync emits, with their fields
    last_runs = queries["last runs with their reports"]["QueryString"]
    assert 'filter message = "sync run finished"' in last_runs
    for field in REPORT_FIELDS:
        assert re.search(rf"\b{field}\b", last_runs), field
    unmatched = queries["unmatched items"]["QueryString"]
    assert 'filter message = "unmatched item"' in unmatched
    for field in ("title", "reason", "kinopub_id"):
        assert re.search(rf"\b{field}\b", unmatched), field
    errors = queries["errors"]["QueryString"]
    assert '"ERROR"' in errors
    assert '"WARNING"' in errors
    # which remote service a transport or token line is about (the `service` key stays "kinotrakt")
    assert re.search(r"\bremote\b", errors)


def test_the_dashboard_counts_every_trakt_link_and_refused_login(template: dict[str, Any]) -> None:
    # Given the dashboard's metric widgets
    body = json.loads(substitute_placeholders(props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]))
    graphed = {
        tuple(line[:4])
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
    }
    # Then a link made in the terminal (which leaves no auth-function log line) is counted as a browser one is, by the
    # metric both emit, next to the refused logins (the login-log widget sees only the browser's)
    assert ("Kinotrakt", "TraktLinked", "service", "kinotrakt") in graphed
    assert ("Kinotrakt", "LoginRefused", "service", "kinotrakt") in graphed


def test_audits_have_their_own_saved_query_and_dashboard_widget(template: dict[str, Any]) -> None:
    # Given the audits' saved query and the dashboard's log widgets
    audits = _queries(template)["audits"]["QueryString"]
    body = json.loads(substitute_placeholders(props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]))
    (widget,) = [w for w in body["widgets"] if w["type"] == "log" and "audit run finished" in w["properties"]["query"]]

    # Then both select the audit's log line and show its counts (docs/contract.md#audit-report)
    assert 'filter message = "audit run finished"' in audits
    for query in (audits, widget["properties"]["query"]):
        for field in AUDIT_REPORT_FIELDS:
            assert re.search(rf"\b{field}\b", query), field


# ---------------------------------------------------------------- outputs and config


def test_outputs_tell_the_user_where_everything_is(template: dict[str, Any]) -> None:
    # Given the stack outputs
    outputs = template["Outputs"]

    # Then everything the README and the CLI need is there
    assert set(outputs) >= {
        "LoginUrl",
        "CallbackUrl",
        "StateTableName",
        "KinopubSecretArn",
        "KinopubSecretName",
        "TraktSecretArn",
        "TraktSecretName",
        "AlarmTopicArn",
        "DashboardUrl",
        "SyncFunctionName",
    }
    assert outputs["LoginUrl"]["Value"]["Fn::Sub"].endswith("/trakt/login?key=<setup_key>")
    assert "kinotrakt setup" in outputs["LoginUrl"]["Description"]
    callback = outputs["CallbackUrl"]["Value"]
    assert callback == effective_environment(template, "SyncFunction")["TRAKT_REDIRECT_URI"]
    assert outputs["KinopubSecretName"]["Value"] == props(template, "KinopubSecret")["Name"]
    assert outputs["TraktSecretName"]["Value"] == props(template, "TraktSecret")["Name"]


def test_samconfig_deploys_the_kinotrakt_stack() -> None:
    # Given samconfig.toml
    config = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))

    # Then the default environment deploys stack kinotrakt with IAM capability and a managed bucket
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "kinotrakt"
    assert default["global"]["parameters"]["region"] == "eu-central-1"
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert default["validate"]["parameters"]["lint"] is True
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}


# ---------------------------------------------------------------- events/


def test_schedule_event_is_the_scheduler_input_filled_in(template: dict[str, Any]) -> None:
    # Given the sample scheduled events (the sync's, the monthly audit's) and the template's Inputs
    events = props(template, "SyncFunction")["Events"]
    for name, file in (("Schedule", "schedule.json"), ("AuditSchedule", "audit.json")):
        event = load_event(file)
        template_input = json.loads(events[name]["Properties"]["Input"])

        # Then each has exactly the keys of its Input, with realistic values
        assert set(event) == set(template_input)
        assert event.get("action") == template_input.get("action")
        assert datetime.fromisoformat(event["scheduled_time"]).utcoffset() is not None
        assert event["scheduled_time"].endswith("Z")
        assert re.fullmatch(r"[0-9a-z]{16}", event["execution_id"])


def _assert_http_api_v2_get(event: dict[str, Any], path: str) -> None:
    assert event["version"] == "2.0"
    assert event["routeKey"] == f"GET {path}"
    assert event["rawPath"] == path
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["path"] == path
    assert event["requestContext"]["routeKey"] == f"GET {path}"
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is False
    # rawQueryString and queryStringParameters describe the same query
    pairs = dict(pair.split("=", 1) for pair in event["rawQueryString"].split("&"))
    assert pairs == event["queryStringParameters"]


def test_login_event_is_an_http_api_v2_request_with_the_setup_key() -> None:
    # Given the sample login request
    event = load_event("auth_login.json")

    # Then it is GET /trakt/login?key=... as API Gateway delivers it
    _assert_http_api_v2_get(event, "/trakt/login")
    assert set(event["queryStringParameters"]) == {"key"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", event["queryStringParameters"]["key"])  # the shape setup makes


def test_callback_event_carries_code_state_and_the_state_cookie() -> None:
    # Given the sample callback request
    event = load_event("auth_callback.json")

    # Then it is GET /trakt/callback?code=&state= with the __Host- cookie set by the login route
    _assert_http_api_v2_get(event, "/trakt/callback")
    assert set(event["queryStringParameters"]) == {"code", "state"}
    (cookie,) = [c for c in event["cookies"] if c.startswith("__Host-kinotrakt-state=")]
    assert cookie.split("=", 1)[1]


def test_env_file_sets_only_variables_the_template_declares(template: dict[str, Any]) -> None:
    # Given events/env.json for `sam local invoke --env-vars`
    env_file = load_event("env.json")

    # Then it configures both functions, the sync one with every contract variable, and sets nothing the
    # template does not declare (sam local silently ignores such variables)
    assert set(env_file) == {"SyncFunction", "AuthFunction"}
    assert set(CONTRACT_VARIABLES) <= set(env_file["SyncFunction"])
    for function, variables in env_file.items():
        undeclared = set(variables) - set(effective_environment(template, function))
        assert not undeclared, f"{function}: {undeclared} are not in template.yaml"
        assert all(isinstance(value, str) for value in variables.values())
