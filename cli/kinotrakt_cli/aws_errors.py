"""An AWS failure as one line a person can act on: what went wrong (no credentials, credentials refused, access
denied, no such secret / table, AWS unreachable), about which resource, in which region and where that region came
from. The resource is the one named by the last request the command sent (the target's journal,
:class:`kinotrakt_cli.deployment.AwsJournal`): AWS's own messages often do not name it.

botocore is imported only when there is a failure to explain.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kinotrakt_cli.deployment import AwsCall, AwsTarget

# Error codes AWS answers when the credentials themselves are refused (expired, deleted, from another partition).
CREDENTIALS_REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "RequestExpired",
    }
)
# SNS says AuthorizationError where the other services say AccessDenied(Exception).
ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "AuthorizationError"})
NOT_FOUND = frozenset({"ResourceNotFoundException"})
SIGN_IN = (
    "sign in (`aws configure`, or `aws sso login` with AWS_PROFILE) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
# IAM's denial messages name the caller: "User: arn:aws:iam::123456789012:user/me is not authorized to ...".
_CALLER = re.compile(r"\b(arn:aws[a-zA-Z-]*:(?:iam|sts)::\d{12}:[\w+=,.@/:-]+)")
_ASSUMED_ROLE = re.compile(r"arn:(aws[a-zA-Z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/.*")
_KINDS = {
    "secretsmanager": "the secret",
    "dynamodb": "the table",
    "cloudformation": "the stack",
    "sns": "the topic",
    "cloudwatch": "the metric namespace",
}


def explain(exc: BaseException, target: AwsTarget) -> str | None:
    """The one-line message for ``exc`` if it is an AWS (botocore) failure, else None."""
    if not type(exc).__module__.startswith("botocore"):
        return None
    from botocore import exceptions as aws

    call = target.journal.last
    if isinstance(exc, aws.ClientError):
        return _client_error(exc, call, target)
    local: list[tuple[tuple[type[Exception], ...], Callable[[], str]]] = [
        (
            (aws.NoCredentialsError, aws.PartialCredentialsError),
            lambda: f"no AWS credentials found for {_doing(call, target)}: {SIGN_IN}, then run the command again",
        ),
        (
            (aws.SSOError, aws.TokenRetrievalError),
            lambda: f"the AWS SSO session has expired or was never started ({type(exc).__name__}): run `aws sso login`",
        ),
        (
            (aws.CredentialRetrievalError,),
            lambda: f"AWS credentials could not be obtained ({exc}): check your AWS config and AWS_PROFILE",
        ),
        (
            (aws.ProfileNotFound,),
            lambda: f"the AWS profile {_kwarg(exc, 'profile')} (AWS_PROFILE) is not in your AWS config: {SIGN_IN}",
        ),
        ((aws.NoRegionError,), lambda: "no AWS region: pass --region or set AWS_REGION"),
        (
            (aws.EndpointConnectionError, aws.ConnectTimeoutError),
            lambda: (
                f"cannot reach AWS at {_kwarg(exc, 'endpoint_url')} {target.where()}: check the network "
                "connection, and --endpoint-url or AWS_ENDPOINT_URL if you set one"
            ),
        ),
    ]
    for kinds, message in local:
        if isinstance(exc, kinds):
            return message()
    return f"AWS: {exc}"


def _kwarg(exc: BaseException, name: str) -> str:
    """A value botocore keeps on its error (``kwargs``), e.g. the profile or endpoint it was about."""
    kwargs = getattr(exc, "kwargs", {})
    return str(kwargs.get(name, "?")) if isinstance(kwargs, dict) else "?"


def _client_error(exc: BaseException, call: AwsCall | None, target: AwsTarget) -> str:
    from botocore.exceptions import ClientError

    assert isinstance(exc, ClientError)  # noqa: S101 - the caller checked
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    operation = getattr(exc, "operation_name", "") or (call.operation if call else "")
    if code in CREDENTIALS_REFUSED:
        return (
            f"AWS refused the credentials ({code}) for {_doing(call, target)}: they have expired or are not "
            f"valid here; {SIGN_IN}"
        )
    if code in ACCESS_DENIED:
        return _access_denied(code, message, operation, call, target)
    if code in NOT_FOUND and call is not None and call.resource:
        if call.service == "secretsmanager":
            return (
                f"the secret {call.resource} does not exist {target.where()}: deploy the stack, or pass --stack "
                "(or --kinopub-secret / --trakt-secret) with the names you deployed, or --region if it is elsewhere"
            )
        if call.service == "dynamodb":
            return (
                f"the table {call.resource} does not exist {target.where()}: pass --table with the stack's "
                "output StateTableName, or --stack / --region for the deployment"
            )
    return f"AWS: {code or type(exc).__name__} {_doing(call, target)}: {message}"


def _access_denied(code: str, message: str, operation: str, call: AwsCall | None, target: AwsTarget) -> str:
    caller = _CALLER.search(message)
    who = caller[1] if caller else "these credentials"
    action = f"{call.service}:{operation}" if call else operation
    if call is not None and call.service == "secretsmanager" and operation == "GetSecretValue":
        you = _reader_arn(caller[1]) if caller else "<your IAM user or role ARN>"
        return (
            f"access denied ({code}): {who} may not read the secret {call.resource} {target.where()}. The token "
            "secrets' resource policy denies reads to all but the functions, the account's root user and "
            "AdministratorAccess roles, and the ARNs in the template parameter TokenReaderArns: deploy again with "
            f"--parameter-overrides TokenReaderArns={you} (README, Security)"
        )
    return (
        f"access denied ({code}): {who} may not call {action} for {_doing(call, target)}: use credentials of "
        "the account that deployed kinotrakt, with access to its table, secrets and stack"
    )


def _reader_arn(caller: str) -> str:
    """The ARN to list in TokenReaderArns for ``caller``: the secrets' policy compares ``aws:PrincipalArn``, which
    for an assumed role is the role's ARN, not the session's (``arn:aws:sts::…:assumed-role/Role/session``)."""
    role = _ASSUMED_ROLE.fullmatch(caller)
    return f"arn:{role[1]}:iam::{role[2]}:role/{role[3]}" if role else caller


def _doing(call: AwsCall | None, target: AwsTarget) -> str:
    """What the command was doing, and where: ``reading the secret kinotrakt/trakt in eu-central-1 (region from
    --region)``."""
    if call is None:
        return f"AWS {target.where()}"
    verb = "writing" if call.operation.startswith(("Put", "Update", "Delete", "BatchWrite", "Publish")) else "reading"
    if call.resource:
        return f"{verb} {_KINDS.get(call.service, call.service)} {call.resource} {target.where()}"
    return f"{call.service}:{call.operation} {target.where()}"
