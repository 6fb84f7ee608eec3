"""The AWS adapters, wired from :class:`Settings`. Handlers call this once per cold start.

Both token stores share one Secrets Manager client (each client costs a service model load at cold start).
Region, credentials and ``AWS_ENDPOINT_URL`` (a moto server in the sandbox) come from the boto3 session's own
environment handling.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from kinotrakt.storage.dynamo import DynamoLoginStateStore, Table, dynamo_sync_stores
from kinotrakt.storage.ports import SyncStores
from kinotrakt.storage.secrets import SecretsManagerTokenStore
from kinotrakt.storage.sns import SnsLinkNotices

if TYPE_CHECKING:
    from kinotrakt.config import Settings

# Standard retry mode backs off on throttling and transient errors; the timeouts stay well inside the
# sync's deadline margin so a stuck connection cannot eat the run.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)


def _session() -> boto3.Session:
    """The default session. The template declares ``AWS_ENDPOINT_URL`` (so that ``sam local invoke`` can point the
    functions at the sandbox's moto server) and leaves it empty when deployed. botocore reads an empty value as
    unset; it is dropped here anyway, so that no runtime's botocore could ever take "" for an endpoint."""
    if os.environ.get("AWS_ENDPOINT_URL") == "":
        del os.environ["AWS_ENDPOINT_URL"]
    return boto3.Session()


def _table(settings: Settings, session: boto3.Session) -> Table:
    return Table(session.client("dynamodb", config=CLIENT_CONFIG), settings.state_table_name, settings.account_id)


def aws_sync_stores(settings: Settings, *, session: boto3.Session | None = None) -> SyncStores:
    """Every store a sync run uses, for this deployment."""
    settings.require_deployment()
    session = session or _session()
    secrets = session.client("secretsmanager", config=CLIENT_CONFIG)
    return dynamo_sync_stores(
        _table(settings, session),
        kinopub_tokens=SecretsManagerTokenStore(secrets, settings.kinopub_secret_id),
        trakt_tokens=SecretsManagerTokenStore(secrets, settings.trakt_secret_id),
    )


def aws_login_stores(
    settings: Settings, *, session: boto3.Session | None = None
) -> tuple[DynamoLoginStateStore, SecretsManagerTokenStore]:
    """What the login routes use: the one-time login states and the Trakt secret."""
    settings.require_deployment()
    session = session or _session()
    login_states = DynamoLoginStateStore(_table(settings, session))
    return login_states, SecretsManagerTokenStore(
        session.client("secretsmanager", config=CLIENT_CONFIG), settings.trakt_secret_id
    )


def aws_link_notices(settings: Settings, *, session: boto3.Session | None = None) -> SnsLinkNotices | None:
    """The auth function's link notices on the alarm topic; None when no topic is configured."""
    if not settings.alarm_topic_arn:
        return None
    session = session or _session()
    return SnsLinkNotices(session.client("sns", config=CLIENT_CONFIG), settings.alarm_topic_arn)
