"""How the CLI finds and opens a deployment: its region, its settings, its stack's outputs, its stores, and the
HTTP transports the linking commands use. Every AWS and storage access of the CLI is here, so there is one place to
change when the storage or the wiring changes.

Where things are: ``--table`` / ``--kinopub-secret`` / ``--trakt-secret`` (or the Lambda's own variables
``STATE_TABLE_NAME`` / ``KINOPUB_SECRET_ID`` / ``TRAKT_SECRET_ID``); without them, the stack named by ``--stack``
(else ``samconfig.toml``'s ``stack_name``, else ``kinotrakt``): its secrets are ``<stack>/kinopub`` and
``<stack>/trakt``, its table is the stack output ``StateTableName``, its alarm topic (where ``link trakt``
announces a link, as the auth function does) ``ALARM_TOPIC_ARN`` or the stack output ``AlarmTopicArn``.

The region follows the deployment: ``--region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the region
``sam deploy`` wrote to ``samconfig.toml`` (the current directory's, else this repository's), else the AWS config;
an error about a resource names the region and where it came from (:mod:`kinotrakt_cli.aws_errors`).

Heavy modules (pydantic, boto3, the sync) are imported where they are used, so ``kinotrakt --help`` stays quick.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kinotrakt_cli.errors import CliError

if TYPE_CHECKING:
    import boto3

    from kinotrakt.clock import Clock
    from kinotrakt.config import Settings
    from kinotrakt.http import Transport
    from kinotrakt.storage.ports import ServiceSecret, SyncStores, TokenStore
    from kinotrakt.web.login import LinkNotice

DEFAULT_STACK = "kinotrakt"
# The repository this CLI runs from (an editable install): its samconfig.toml is where `make deploy` put the stack.
REPOSITORY = Path(__file__).resolve().parents[2]
SAMCONFIG = "samconfig.toml"
# A person waits at the terminal: a service that cannot be reached is reported after a few seconds, not after the
# Lambda's five attempts.
CLI_HTTP_ATTEMPTS = 3

Service = Literal["kinopub", "trakt"]


def label(service: Service) -> str:
    return "Kinopub" if service == "kinopub" else "Trakt"


@dataclass(frozen=True)
class Where:
    """The common options: where the deployment is (``None``: not given on the command line)."""

    stack: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    table: str | None = None
    kinopub_secret: str | None = None
    trakt_secret: str | None = None

    def flags(self) -> list[str]:
        """The options given, as command-line words, for the hints the CLI prints."""
        words: list[str] = []
        for flag, value in (
            ("--stack", self.stack),
            ("--region", self.region),
            ("--endpoint-url", self.endpoint_url),
            ("--table", self.table),
            ("--kinopub-secret", self.kinopub_secret),
            ("--trakt-secret", self.trakt_secret),
        ):
            if value:
                words += [flag, value]
        return words


@dataclass
class AwsCall:
    """The last AWS request a command sent: which operation, on which named resource (for error messages)."""

    service: str
    operation: str
    resource: str | None


@dataclass
class AwsJournal:
    last: AwsCall | None = None

    def record(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        names = (params.get(key) for key in ("SecretId", "TableName", "StackName", "TopicArn", "Namespace"))
        self.last = AwsCall(service, operation, next((str(name) for name in names if name), None))


@dataclass(frozen=True)
class AwsTarget:
    """Where the AWS resources are; the production store factories turn this into clients. ``region_source``
    says where the region came from (``--region``, ``AWS_REGION``, ``samconfig.toml``, ...)."""

    region: str | None
    endpoint_url: str | None
    region_source: str = "--region"
    journal: AwsJournal = field(default_factory=AwsJournal, compare=False, repr=False)

    def where(self) -> str:
        """``in eu-central-1 (region from samconfig.toml)``, for messages about a resource."""
        if self.region is None:
            return "in no region"
        return f"in {self.region} (region from {self.region_source})"


@dataclass(frozen=True)
class TokenStores:
    kinopub: TokenStore
    trakt: TokenStore


@dataclass(frozen=True)
class Sandbox:
    """An offline deployment for ``sync --sandbox``: settings and stores that point at it."""

    settings: Settings
    stores: SyncStores


TokenStoreFactory = Callable[["Settings", AwsTarget], TokenStores]
StoresFactory = Callable[["Settings", AwsTarget], "SyncStores"]
StackOutputs = Callable[[str, AwsTarget], Mapping[str, str]]
SandboxFactory = Callable[[], AbstractContextManager[Sandbox]]
# Publishes a link notice to the topic (its ARN); puts one count of a metric (its name).
NoticePublisher = Callable[[str, "LinkNotice", AwsTarget], None]
MetricPutter = Callable[[str, AwsTarget], None]


class StackNotFound(CliError):
    """CloudFormation has no such stack in the target's region."""


class NoAlarmTopic(CliError):
    """Neither ``ALARM_TOPIC_ARN`` nor the stack names an alarm topic."""


# --- where the deployment is: samconfig.toml and the region ---------------------------------------------------


def samconfig_files(cwd: Path | None = None) -> list[Path]:
    """The ``samconfig.toml`` files that may name the deployment: the current directory's, then the repository's."""
    here = (cwd or Path.cwd()) / SAMCONFIG
    files = [here] if here.is_file() else []
    repository = REPOSITORY / SAMCONFIG
    if (REPOSITORY / "template.yaml").is_file() and repository.is_file() and repository.resolve() != here.resolve():
        files.append(repository)
    return files


def samconfig_values(path: Path) -> dict[str, str]:
    """``stack_name`` and ``region`` of the default environment: ``sam deploy --guided`` writes what it was told
    under ``deploy``, which wins over ``global``."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    found: dict[str, str] = {}
    for section in ("global", "deploy"):
        parameters = _table(_table(_table(data, "default"), section), "parameters")
        for key in ("stack_name", "region"):
            value = parameters.get(key)
            if isinstance(value, str) and value.strip():
                found[key] = value.strip()
    return found


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Samconfig:
    path: Path | None = None
    values: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, files: Sequence[Path]) -> Samconfig:
        """The first file that names a stack or a region."""
        for path in files:
            values = samconfig_values(path)
            if values:
                return cls(path, values)
        return cls()

    def describe(self) -> str:
        return _shown(self.path) if self.path else SAMCONFIG


def aws_config_region() -> tuple[str | None, str]:
    """The region of the AWS config's profile (``AWS_PROFILE``, else ``default``), and how to name it."""
    import boto3

    session = boto3.Session()
    return session.region_name, f"the AWS config (profile {session.profile_name})"


def resolve_region(
    flag: str | None,
    environ: Mapping[str, str],
    samconfig: Samconfig,
    config_region: Callable[[], tuple[str | None, str]] = aws_config_region,
) -> tuple[str | None, str]:
    """The region and where it came from: the flag, the environment, ``samconfig.toml``, the AWS config."""
    if flag:
        return flag, "--region"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name], name
    if samconfig.values.get("region"):
        return samconfig.values["region"], samconfig.describe()
    return config_region()


# --- production factories ------------------------------------------------------------------------------------


def aws_token_stores(settings: Settings, target: AwsTarget) -> TokenStores:
    from kinotrakt.storage.aws import CLIENT_CONFIG
    from kinotrakt.storage.secrets import SecretsManagerTokenStore

    # Both stores share one client, as in the functions (kinotrakt.storage.aws).
    client = _boto_session(target).client("secretsmanager", config=CLIENT_CONFIG)
    return TokenStores(
        kinopub=SecretsManagerTokenStore(client, settings.kinopub_secret_id),
        trakt=SecretsManagerTokenStore(client, settings.trakt_secret_id),
    )


def aws_stores(settings: Settings, target: AwsTarget) -> SyncStores:
    """Every store of the deployment, as a sync run uses them (the table's and both secrets)."""
    from kinotrakt.storage.aws import aws_sync_stores

    return aws_sync_stores(settings, session=_boto_session(target))


def aws_stack_outputs(stack: str, target: AwsTarget) -> dict[str, str]:
    """The CloudFormation outputs of ``stack``; :class:`StackNotFound` when the region has no such stack (any other
    failure, such as missing credentials or access denied, propagates and is explained as such)."""
    from botocore.exceptions import ClientError

    client = _boto_session(target).client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise StackNotFound(
                f"the stack {stack} does not exist {target.where()}: pass --stack with the name you deployed, "
                f"or --region if it is in another region"
            ) from None
        raise
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs if "OutputKey" in o and "OutputValue" in o}


def aws_publish_link_notice(topic_arn: str, notice: LinkNotice, target: AwsTarget) -> None:
    """The link notice on the alarm topic, as the auth function publishes it (:mod:`kinotrakt.storage.sns`)."""
    from kinotrakt.storage.aws import CLIENT_CONFIG
    from kinotrakt.storage.sns import SnsLinkNotices

    SnsLinkNotices(_boto_session(target).client("sns", config=CLIENT_CONFIG), topic_arn).linked(notice)


def aws_put_event_metric(name: str, target: AwsTarget) -> None:
    """One count of ``name`` in the namespace and under the dimension the functions' EMF lines use
    (:func:`kinotrakt.observability.emit_event`), so the template's dashboard and alarms count it with theirs. The
    CLI has no Lambda log group to write EMF to: the metric goes through CloudWatch's API."""
    from kinotrakt.observability import NAMESPACE, SERVICE
    from kinotrakt.storage.aws import CLIENT_CONFIG

    client = _boto_session(target).client("cloudwatch", config=CLIENT_CONFIG)
    client.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "service", "Value": SERVICE}],
                "Value": 1.0,
                "Unit": "Count",
            }
        ],
    )


def _boto_session(target: AwsTarget) -> boto3.Session:
    import boto3

    if target.region is None:
        raise CliError(
            "no AWS region: pass --region, set AWS_REGION, or run from the directory whose samconfig.toml "
            "`sam deploy` wrote (it names the region)"
        )

    class _Session(boto3.Session):
        """Every client of this session talks to ``--endpoint-url`` (a moto server, LocalStack), and notes each
        request in the target's journal, so that an error can name the resource it was about."""

        def client(self, *args: Any, **kwargs: Any) -> Any:
            if target.endpoint_url:
                kwargs.setdefault("endpoint_url", target.endpoint_url)
            client = super().client(*args, **kwargs)
            service = client.meta.service_model.service_name

            def note(params: Mapping[str, Any], model: Any, **_: Any) -> None:
                target.journal.record(service, model.name, params)

            client.meta.events.register("provide-client-params.*.*", note)
            return client

    return _Session(region_name=target.region)


@contextmanager
def repository_sandbox() -> Iterator[Sandbox]:
    """``make demo``'s offline world (moto + fake Kinopub + fake Trakt, seeded); only in a repository checkout."""
    try:
        from devkit.fakes.library import seed_demo_library
        from devkit.sandbox import sandbox
    except ImportError:
        raise CliError("--sandbox needs the kinotrakt repository checkout (devkit) and its dev packages") from None
    from kinotrakt.config import Settings

    with sandbox(seed=seed_demo_library) as box:
        yield Sandbox(Settings(), box.stores())


# --- one deployment ------------------------------------------------------------------------------------------


class Deployment:
    """The deployment one command works on: names resolved from the options, the environment, ``samconfig.toml``
    and the stack, stores opened on first use (so ``setup`` and ``link`` never need the table)."""

    def __init__(
        self,
        where: Where,
        *,
        settings: Settings | None,
        token_stores: TokenStoreFactory,
        stores: StoresFactory,
        stack_outputs: StackOutputs,
        clock: Clock,
        publish_notice: NoticePublisher = aws_publish_link_notice,
        put_metric: MetricPutter = aws_put_event_metric,
        samconfig_files: Callable[[], Sequence[Path]] = samconfig_files,
        config_region: Callable[[], tuple[str | None, str]] = aws_config_region,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.where = where
        self._given_settings = settings
        self._token_stores = token_stores
        self._stores = stores
        self._stack_outputs = stack_outputs
        self._publish_notice = publish_notice
        self._put_metric = put_metric
        self._clock = clock
        self._samconfig_files = samconfig_files
        self._config_region = config_region
        self._environ = os.environ if environ is None else environ

    @cached_property
    def samconfig(self) -> Samconfig:
        return Samconfig.find(self._samconfig_files())

    @cached_property
    def stack(self) -> str:
        return self.where.stack or self.samconfig.values.get("stack_name") or DEFAULT_STACK

    @cached_property
    def target(self) -> AwsTarget:
        region, source = resolve_region(self.where.region, self._environ, self.samconfig, self._config_region)
        return AwsTarget(region, self.where.endpoint_url, source)

    def target_for_messages(self) -> AwsTarget:
        """:attr:`target`, or one without a region when the region itself could not be found (an AWS profile that
        does not exist), for the message that explains a failure."""
        try:
            return self.target
        except Exception:  # the failure being explained is the one that matters
            return AwsTarget(None, self.where.endpoint_url, "")

    @cached_property
    def _environment(self) -> Settings:
        from pydantic import ValidationError

        from kinotrakt.config import Settings

        try:
            return self._given_settings or Settings()
        except ValidationError as exc:
            names = ", ".join(sorted({str(error["loc"][0]).upper() for error in exc.errors() if error["loc"]}))
            raise CliError(f"invalid environment variable(s): {names}") from None

    @cached_property
    def stack_outputs(self) -> Mapping[str, str]:
        return self._stack_outputs(self.stack, self.target)

    @cached_property
    def settings(self) -> Settings:
        """The deployment's settings: flags, then the environment, then the stack's names. The table is named
        only when a flag or the environment names it (see :attr:`state_settings`)."""
        base = self._environment
        kinopub = self.where.kinopub_secret or base.kinopub_secret_id or f"{self.stack}/kinopub"
        trakt = self.where.trakt_secret or base.trakt_secret_id or f"{self.stack}/trakt"
        table = self.where.table or base.state_table_name
        return base.model_copy(
            update={"kinopub_secret_id": kinopub, "trakt_secret_id": trakt, "state_table_name": table}
        )

    @cached_property
    def state_settings(self) -> Settings:
        """:attr:`settings` with the state table, from the stack's output ``StateTableName`` if need be."""
        if self.settings.state_table_name:
            return self.settings
        table = self.stack_outputs.get("StateTableName", "")
        if not table:
            raise CliError(
                f"the stack {self.stack} {self.target.where()} has no output StateTableName (is it a kinotrakt "
                "stack?): pass --stack with the kinotrakt stack's name, or --table"
            )
        return self.settings.model_copy(update={"state_table_name": table})

    def login_url(self) -> str | None:
        """The stack output ``LoginUrl``, or None when there is no such stack (the names came from flags)."""
        return self._optional_output("LoginUrl")

    def callback_url(self) -> str | None:
        """The stack output ``CallbackUrl`` (the browser login's redirect URI), or None."""
        return self._optional_output("CallbackUrl")

    def alarm_topic_arn(self) -> str:
        """``ALARM_TOPIC_ARN``, else the stack output ``AlarmTopicArn``; :class:`NoAlarmTopic` when neither names
        one (any other failure to read the stack propagates)."""
        if self.settings.alarm_topic_arn:
            return self.settings.alarm_topic_arn
        try:
            topic = self.stack_outputs.get("AlarmTopicArn")
        except StackNotFound:
            raise NoAlarmTopic(
                f"no alarm topic: there is no stack {self.stack} {self.target.where()} to find it in; pass --stack, "
                "or set ALARM_TOPIC_ARN to the topic's ARN"
            ) from None
        if not topic:
            raise NoAlarmTopic(
                f"no alarm topic: the stack {self.stack} {self.target.where()} has no output AlarmTopicArn; deploy "
                "this version, or set ALARM_TOPIC_ARN to the topic's ARN"
            )
        return topic

    def announce_link(self, notice: LinkNotice) -> None:
        """The notice of a link, on the deployment's alarm topic (the owner's e-mail subscription)."""
        self._publish_notice(self.alarm_topic_arn(), notice, self.target)

    def count_event(self, name: str) -> None:
        """One count of the metric ``name``, as the functions count their events."""
        self._put_metric(name, self.target)

    def _optional_output(self, name: str) -> str | None:
        try:
            return self.stack_outputs.get(name)
        except StackNotFound:
            return None

    @cached_property
    def tokens(self) -> TokenStores:
        return self._token_stores(self.settings, self.target)

    @cached_property
    def stores(self) -> SyncStores:
        """The table's stores (and the secrets'), for the commands that read or write the sync's state."""
        return self._stores(self.state_settings, self.target)

    def token_store(self, service: Service) -> TokenStore:
        return self.tokens.kinopub if service == "kinopub" else self.tokens.trakt

    def secret_name(self, service: Service) -> str:
        return self.settings.kinopub_secret_id if service == "kinopub" else self.settings.trakt_secret_id

    def service_url(self, service: Service) -> str:
        """The base URL of the service's sign-in calls (the host ``link`` talks to)."""
        settings = self.settings
        return str(settings.kinopub_api_url if service == "kinopub" else settings.trakt_auth_url)

    def transport(self, service: Service) -> Transport:
        """A transport for the linking commands: no deadline, its own call counter, few attempts."""
        from kinotrakt import wiring
        from kinotrakt.clock import Deadline
        from kinotrakt.http import CallCounter, RetryPolicy

        build = wiring.trakt_transport if service == "trakt" else wiring.kinopub_transport
        return build(
            self.settings,
            clock=self._clock,
            deadline=Deadline(self._clock, None, 0),
            counter=CallCounter(),
            retry=RetryPolicy(max_attempts=CLI_HTTP_ATTEMPTS),
        )


def without_tokens(secret: ServiceSecret) -> ServiceSecret:
    """The secret without tokens: client credentials and the setup key stay."""
    return secret.model_copy(
        update={"access_token": None, "refresh_token": None, "expires_at": None, "issued_at": None}
    )
