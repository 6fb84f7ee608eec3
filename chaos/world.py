"""The world one chaos schedule runs in: moto (DynamoDB + Secrets Manager), both fakes, a virtual clock, and
seams where faults get in.

The seams are all outside the product:
- :class:`ChaosClock` jumps forward at a chosen ``monotonic()`` call, so the Lambda deadline arrives at a
  random step of a run, the same step on every replay (backoff jitter changes waits, not the call count);
- :class:`ChaosTrakt` / :class:`ChaosKinopub` are the fakes plus two misbehaviours their fault table cannot
  script: an access token that dies in the middle of a run, and a history write that is applied and then
  answered with a 5xx (a proxy error after the origin did the work);
- :class:`FaultyClient` wraps a boto3 client and raises botocore ``ClientError``\\ s (throttling,
  conditional-check races) before or after the real call, so the product's own storage adapters meet them
  exactly as they would in AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from devkit.clock import VirtualClock
from devkit.fakes.base import RecordedRequest, Response, html_response
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.sandbox import (
    ACCOUNT,
    KINOPUB_SECRET,
    REGION,
    TABLE,
    TRAKT_SECRET,
    Sandbox,
    create_secrets,
    create_state_table,
    patched_environ,
    sandbox_env,
)
from kinotrakt.storage.dynamo import Table, dynamo_sync_stores
from kinotrakt.storage.ports import SyncStores
from kinotrakt.storage.secrets import SecretsManagerTokenStore

BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


class ChaosClock(VirtualClock):
    """A :class:`VirtualClock` that can jump ``seconds`` forward at its ``at``-th ``monotonic()`` call."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.calls = 0
        self._warp_at: int | None = None
        self._warp = 0.0
        self.warped = False

    def warp_at(self, call: int | None, seconds: float = 0.0) -> None:
        """Arm (or, with ``None``, disarm) a jump for the coming run; calls are counted from here."""
        self.calls = 0
        self._warp_at = call
        self._warp = seconds
        self.warped = False

    def monotonic(self) -> float:
        self.calls += 1
        if self._warp_at is not None and self.calls >= self._warp_at:
            self._warp_at = None
            self.warped = True
            self.advance(self._warp)
        return super().monotonic()


class ChaosTrakt(FakeTrakt):
    """The fake Trakt, plus a token that expires after ``expire_after`` more ``/sync`` requests and history
    writes (additions and removals) that are applied and then answered with the statuses queued in
    ``apply_then_status``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expire_after: int | None = None
        self.expired_mid_run = 0
        self.apply_then_status: list[int] = []
        self.applied_then_failed = 0

    def precheck(self, request: RecordedRequest) -> Response | None:
        if self.expire_after is not None and request.path.startswith("/sync"):
            self.expire_after -= 1
            if self.expire_after <= 0:
                self.expire_after = None
                token = request.headers.get("authorization", "").partition(" ")[2].strip()
                if self.token_is_valid(token):
                    self.expire_access_token(token)
                    self.expired_mid_run += 1
        early = super().precheck(request)
        if early is not None:
            return early
        writes = {"/sync/history": self._add_history, "/sync/history/remove": self._remove_history}
        if request.method == "POST" and request.path in writes and self.apply_then_status:
            status = self.apply_then_status.pop(0)
            match = re.fullmatch(re.escape(request.path), request.path)
            assert match is not None
            writes[request.path](request, match)
            self.applied_then_failed += 1
            return html_response(status, BAD_GATEWAY)
        return None


class ChaosKinopub(FakeKinopub):
    """The fake Kinopub, plus an access token that expires after ``expire_after`` more ``/v1`` requests."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expire_after: int | None = None
        self.expired_mid_run = 0

    def precheck(self, request: RecordedRequest) -> Response | None:
        if self.expire_after is not None and request.path.startswith("/v1/"):
            self.expire_after -= 1
            if self.expire_after <= 0:
                self.expire_after = None
                token = self._token_of(request)
                if self.token_is_valid(token):
                    self.expire_access_token(token)
                    self.expired_mid_run += 1
        return super().precheck(request)


StorageService = Literal["dynamodb", "secretsmanager"]


@dataclass
class StorageFault:
    """Raise ``code`` from the ``skip + 1``-th matching call of ``operation`` (``*``: any), ``times`` times;
    ``after`` = the real call happens first (applied, but the caller sees an error). ``race`` instead runs
    a callback before the call (another writer getting in first) and lets the call proceed."""

    name: str
    operation: str
    code: str = "ThrottlingException"
    after: bool = False
    skip: int = 0
    times: int = 1
    conditional_only: bool = False  # only calls that carry a ConditionExpression
    race: Callable[[], None] | None = None
    fired: int = 0

    def matches(self, operation: str, kwargs: dict[str, Any]) -> bool:
        if self.times == 0 or self.operation not in ("*", operation):
            return False
        return not (self.conditional_only and "ConditionExpression" not in kwargs)


def _operation_name(method: str) -> str:
    return "".join(part.title() for part in method.split("_"))


class FaultyClient:
    """A boto3 client that delegates everything, except that the scripted faults fire on its operations.

    ``on_call`` sees every operation name first (the chaos runner uses it to start a concurrent invocation
    in the middle of a run)."""

    OPERATIONS = frozenset(
        {
            "get_item",
            "put_item",
            "update_item",
            "delete_item",
            "batch_write_item",
            "query",
            "get_secret_value",
            "describe_secret",
            "put_secret_value",
        }
    )

    def __init__(self, client: Any, faults: list[StorageFault], on_call: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._faults = faults
        self._on_call = on_call

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in self.OPERATIONS:
            return self._wrap(name, attribute)
        if name == "get_paginator":
            return self._paginator
        return attribute

    def _wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(**kwargs: Any) -> Any:
            fault = self._arm(name, kwargs)
            if fault is not None and not fault.after:
                raise self._error(fault, name)
            result = call(**kwargs)
            if fault is not None:
                raise self._error(fault, name)
            return result

        return wrapped

    def _paginator(self, operation: str) -> _FaultyPaginator:
        return _FaultyPaginator(self, operation, self._client.get_paginator(operation))

    def _arm(self, operation: str, kwargs: dict[str, Any]) -> StorageFault | None:
        """The fault that fires on this call, if any (races run here and fire nothing)."""
        if self._on_call is not None:
            self._on_call(operation)
        for fault in self._faults:
            if not fault.matches(operation, kwargs):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            fault.times -= 1
            fault.fired += 1
            if fault.race is not None:
                fault.race()
                continue
            return fault
        return None

    def _error(self, fault: StorageFault, method: str) -> ClientError:
        response: Any = {
            "Error": {"Code": fault.code, "Message": f"injected by the chaos suite ({fault.name})"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        modelled = getattr(self._client.exceptions, fault.code, None)
        if isinstance(modelled, type) and issubclass(modelled, ClientError):
            return modelled(response, _operation_name(method))
        return ClientError(response, _operation_name(method))


class _FaultyPaginator:
    def __init__(self, client: FaultyClient, operation: str, paginator: Any) -> None:
        self._client = client
        self._operation = operation
        self._paginator = paginator

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        fault = self._client._arm(self._operation, kwargs)
        if fault is not None and not fault.after:
            raise self._client._error(fault, self._operation)
        yield from self._paginator.paginate(**kwargs)
        if fault is not None:
            raise self._client._error(fault, self._operation)


@dataclass
class StorageFaults:
    """The faults armed for one run, per client."""

    dynamodb: list[StorageFault] = field(default_factory=list)
    kinopub_secret: list[StorageFault] = field(default_factory=list)
    trakt_secret: list[StorageFault] = field(default_factory=list)

    def all(self) -> list[StorageFault]:
        return [*self.dynamodb, *self.kinopub_secret, *self.trakt_secret]

    def clear(self) -> None:
        self.dynamodb.clear()
        self.kinopub_secret.clear()
        self.trakt_secret.clear()


@dataclass
class World:
    """One schedule's sandbox: the fakes, the AWS session, the clock, and the faulty stores for the handler."""

    box: Sandbox
    kinopub: ChaosKinopub
    trakt: ChaosTrakt
    clock: ChaosClock
    dynamodb: Any  # one client of each per schedule: creating a boto3 client costs more than a run
    secretsmanager: Any
    storage_faults: StorageFaults = field(default_factory=StorageFaults)
    on_dynamodb_call: Callable[[str], None] | None = None

    def token_store(self, service: str) -> SecretsManagerTokenStore:
        return SecretsManagerTokenStore(self.secretsmanager, KINOPUB_SECRET if service == "kinopub" else TRAKT_SECRET)

    def plain_stores(self) -> SyncStores:
        return dynamo_sync_stores(
            Table(self.dynamodb, TABLE, ACCOUNT),
            kinopub_tokens=self.token_store("kinopub"),
            trakt_tokens=self.token_store("trakt"),
        )

    def faulty_stores(self) -> SyncStores:
        """The stores the handler gets: the product's own adapters on clients that misbehave on cue."""

        def on_call(operation: str) -> None:
            if self.on_dynamodb_call is not None:
                self.on_dynamodb_call(operation)

        # Typed as the real clients: a FaultyClient answers everything they do.
        dynamodb: Any = FaultyClient(self.dynamodb, self.storage_faults.dynamodb, on_call)
        kinopub: Any = FaultyClient(self.secretsmanager, self.storage_faults.kinopub_secret)
        trakt: Any = FaultyClient(self.secretsmanager, self.storage_faults.trakt_secret)
        return dynamo_sync_stores(
            Table(dynamodb, TABLE, ACCOUNT, sleep=lambda seconds: None),
            kinopub_tokens=SecretsManagerTokenStore(kinopub, KINOPUB_SECRET),
            trakt_tokens=SecretsManagerTokenStore(trakt, TRAKT_SECRET),
        )

    def lease_owner(self) -> str | None:
        """Who holds the run lease right now, read straight from the table (layout: storage/dynamo/table.py)."""
        item = self.dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": f"{ACCOUNT}#sync"}, "sk": {"S": "lease"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        expires_at = float(item.get("expires_at", {}).get("N", "0"))
        return item["owner"]["S"] if expires_at > self.clock.now().timestamp() else None

    def table_dump(self) -> str:
        """Everything the table holds, as text (for the no-secret check)."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=TABLE)
        return "\n".join(str(item) for page in pages for item in page["Items"])


@contextmanager
def chaos_world(clock: ChaosClock, env: dict[str, str]) -> Iterator[World]:
    """Like :func:`devkit.sandbox.sandbox`, with the chaos fakes and unlinked (the caller seeds first)."""
    kinopub = ChaosKinopub(clock=clock.time)
    trakt = ChaosTrakt(clock=clock.time)
    with kinopub, trakt:
        values = sandbox_env(kinopub.base_url, trakt.base_url, **env)
        with patched_environ(values), mock_aws():
            session = boto3.Session(region_name=REGION)
            dynamodb, secretsmanager = session.client("dynamodb"), session.client("secretsmanager")
            create_state_table(dynamodb)
            create_secrets(secretsmanager)
            box = Sandbox(kinopub, trakt, clock, values, session)
            yield World(box, kinopub, trakt, clock, dynamodb, secretsmanager)
