"""How the CLI finds and opens a deployment: its settings, its stack's outputs, its stores, and the HTTP
transports the linking commands use. Every AWS and storage access of the CLI is here, so there is one place to
change when the storage or the wiring changes.

Where things are: ``--table`` / ``--kinopub-secret`` / ``--trakt-secret`` (or the Lambda's own variables
``STATE_TABLE_NAME`` / ``KINOPUB_SECRET_ID`` / ``TRAKT_SECRET_ID``); without them, the stack named by ``--stack``
(default ``kinotrakt``): its secrets are ``<stack>/kinopub`` and ``<stack>/trakt``, its table is the stack output
``StateTableName``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from kinotrakt.clock import Clock, Deadline
from kinotrakt.config import Settings
from kinotrakt.http import CallCounter, Transport
from kinotrakt.storage.ports import ServiceSecret, SyncStores, TokenStore
from kinotrakt_cli.errors import CliError

if TYPE_CHECKING:
    import boto3

DEFAULT_STACK = "kinotrakt"

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


@dataclass(frozen=True)
class AwsTarget:
    """Where the AWS resources are; the production store factories turn this into clients."""

    region: str | None
    endpoint_url: str | None


@dataclass(frozen=True)
class TokenStores:
    kinopub: TokenStore
    trakt: TokenStore


@dataclass(frozen=True)
class Sandbox:
    """An offline deployment for ``sync --sandbox``: settings and stores that point at it."""

    settings: Settings
    stores: SyncStores


TokenStoreFactory = Callable[[Settings, AwsTarget], TokenStores]
StoresFactory = Callable[[Settings, AwsTarget], SyncStores]
StackOutputs = Callable[[str, AwsTarget], Mapping[str, str]]


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
    """The CloudFormation outputs of ``stack`` (empty when the stack cannot be read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _boto_session(target).client("cloudformation")
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError):
        return {}
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs if "OutputKey" in o and "OutputValue" in o}


def _boto_session(target: AwsTarget) -> boto3.Session:
    import boto3

    class _Session(boto3.Session):
        """Every client of this session talks to ``--endpoint-url`` (a moto server, LocalStack)."""

        def client(self, *args: Any, **kwargs: Any) -> Any:
            if target.endpoint_url:
                kwargs.setdefault("endpoint_url", target.endpoint_url)
            return super().client(*args, **kwargs)

    return _Session(region_name=target.region)


@contextmanager
def repository_sandbox() -> Iterator[Sandbox]:
    """``make demo``'s offline world (moto + fake Kinopub + fake Trakt, seeded); only in a repository checkout."""
    try:
        from devkit.fakes.library import seed_demo_library
        from devkit.sandbox import sandbox
    except ImportError:
        raise CliError("--sandbox needs the kinotrakt repository checkout (devkit) and its dev packages") from None
    with sandbox(seed=seed_demo_library) as box:
        yield Sandbox(Settings(), box.stores())


SandboxFactory = Callable[[], AbstractContextManager[Sandbox]]


# --- one deployment ------------------------------------------------------------------------------------------


class Deployment:
    """The deployment one command works on: names resolved from the options, the environment and the stack,
    stores opened on first use (so ``setup`` and ``link`` never need the table)."""

    def __init__(
        self,
        where: Where,
        *,
        settings: Settings | None,
        token_stores: TokenStoreFactory,
        stores: StoresFactory,
        stack_outputs: StackOutputs,
        clock: Clock,
    ) -> None:
        self.where = where
        self.stack = where.stack or DEFAULT_STACK
        self.target = AwsTarget(where.region, where.endpoint_url)
        self._given_settings = settings
        self._token_stores = token_stores
        self._stores = stores
        self._stack_outputs = stack_outputs
        self._clock = clock

    @cached_property
    def _environment(self) -> Settings:
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
                f"cannot find the state table: pass --table, set STATE_TABLE_NAME, or deploy the stack "
                f"{self.stack!r} (its output StateTableName names it) and pass --stack/--region if it differs"
            )
        return self.settings.model_copy(update={"state_table_name": table})

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

    def transport(self, service: Service) -> Transport:
        """A transport for the linking commands: no deadline, its own call counter."""
        from kinotrakt import wiring

        build = wiring.trakt_transport if service == "trakt" else wiring.kinopub_transport
        return build(self.settings, clock=self._clock, deadline=Deadline(self._clock, None, 0), counter=CallCounter())


def without_tokens(secret: ServiceSecret) -> ServiceSecret:
    """The secret without tokens: client credentials and the setup key stay."""
    return secret.model_copy(
        update={"access_token": None, "refresh_token": None, "expires_at": None, "issued_at": None}
    )
