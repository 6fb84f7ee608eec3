"""Run the real sync handler offline: moto for DynamoDB and Secrets Manager (created from template.yaml's
own definitions), the fake Kinopub and fake Trakt on loopback, and a Lambda context on the chosen clock.

``make demo``, ``kinotrakt sync --sandbox``, the integration tests, the chaos suite and the benchmark all start
from :func:`sandbox`. It is sealed off from the developer's own AWS set-up (:func:`isolated_environ`): a profile,
an endpoint URL, credentials or a region in the shell never reach it, and it never reaches them.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.template import load_template
from kinotrakt.clock import Clock, SystemClock
from kinotrakt.config import Settings
from kinotrakt.storage.dynamo import Table, dynamo_sync_stores
from kinotrakt.storage.ports import ServiceSecret, SyncStores, TokenStore
from kinotrakt.storage.secrets import SecretsManagerTokenStore

REPO = Path(__file__).resolve().parents[1]
STACK = "kinotrakt-sandbox"
TABLE = f"{STACK}-state"
KINOPUB_SECRET = f"{STACK}/kinopub"
TRAKT_SECRET = f"{STACK}/trakt"
REGION = "eu-central-1"
ACCOUNT = "default"
_module_ids = itertools.count()


@dataclass
class FakeLambdaContext:
    """What Powertools and the handler read from a Lambda context; time runs on the sandbox clock."""

    clock: Clock
    timeout_seconds: float
    function_name: str = "kinotrakt-SyncFunction"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "sandbox-request"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:kinotrakt-SyncFunction"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/kinotrakt-SyncFunction"
    log_stream_name: str = "sandbox"
    _started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_seconds - (self.clock.monotonic() - self._started)) * 1000)


def load_handler(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` as Lambda does (module ``app``), fresh each time so its
    cold-start code reads the current environment."""
    return load_module(REPO / "functions" / function / "app.py", function)


def load_module(path: Path, function: str) -> ModuleType:
    """Import a handler's file under a name of its own (every function's module is ``app``)."""
    spec = importlib.util.spec_from_file_location(f"kinotrakt_{function}_{path.stem}_{next(_module_ids)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the handler's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# What a developer's shell may hold that would reach into the sandbox, or let the sandbox reach out:
# - everything botocore reads starts with AWS_: the profile (a missing one is an error even with credentials in
#   the environment), the config and credentials files (whose default profile may name an endpoint_url,
#   use_fips_endpoint or a credential_process), AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_*
#   (which moto's in-process mock does not intercept), credentials, region;
# - the proxies requests and botocore would send loopback calls through (requests bypasses a proxy for
#   127.0.0.1 only when NO_PROXY says so);
# - kinotrakt's own settings (DRY_RUN, STATE_TABLE_NAME, ...; any case, as pydantic-settings reads them) and
#   Powertools' switches.
_FOREIGN_PREFIXES = ("AWS_", "POWERTOOLS_")
_PROXY_VARIABLES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})


def foreign_variables(environ: Mapping[str, str]) -> list[str]:
    """The names in ``environ`` the sandbox must not inherit (see ``_FOREIGN_PREFIXES`` above)."""
    exact = _PROXY_VARIABLES | {name.upper() for name in Settings.model_fields}
    return sorted(name for name in environ if name.upper().startswith(_FOREIGN_PREFIXES) or name.upper() in exact)


@contextmanager
def isolated_environ(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` and nothing foreign (:func:`foreign_variables`) while inside; the whole environment as it was
    afterwards."""
    saved = dict(os.environ)
    for name in foreign_variables(os.environ):
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def create_state_table(client: Any, name: str = TABLE) -> None:
    """The StateTable exactly as template.yaml defines it (key schema, attributes, billing, TTL)."""
    props = load_template()["Resources"]["StateTable"]["Properties"]
    client.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
    )
    ttl = props["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]}
    )


def create_secrets(client: Any, kinopub: str = KINOPUB_SECRET, trakt: str = TRAKT_SECRET) -> None:
    """Both secrets with the template's initial (null-token) SecretString."""
    resources = load_template()["Resources"]
    for logical, name in (("KinopubSecret", kinopub), ("TraktSecret", trakt)):
        client.create_secret(Name=name, SecretString=resources[logical]["Properties"]["SecretString"])


@dataclass
class Sandbox:
    kinopub: FakeKinopub
    trakt: FakeTrakt
    clock: Clock
    env: dict[str, str]
    session: boto3.Session

    def stores(self) -> SyncStores:
        """The deployment's stores, as the handler builds them (the product's DynamoDB and Secrets Manager
        adapters on moto)."""
        return dynamo_sync_stores(
            Table(self.session.client("dynamodb"), TABLE, ACCOUNT),
            kinopub_tokens=self.kinopub_store(),
            trakt_tokens=self.trakt_store(),
        )

    def kinopub_store(self) -> SecretsManagerTokenStore:
        return SecretsManagerTokenStore(self.session.client("secretsmanager"), KINOPUB_SECRET)

    def trakt_store(self) -> SecretsManagerTokenStore:
        return SecretsManagerTokenStore(self.session.client("secretsmanager"), TRAKT_SECRET)

    def secret(self, service: str) -> ServiceSecret:
        store = self.kinopub_store() if service == "kinopub" else self.trakt_store()
        return store.load().secret

    def link(self) -> None:
        """Store client credentials and a valid token pair for both services, as `kinotrakt link` would."""
        now = int(self.clock.now().timestamp())
        link_secret(self.kinopub_store(), self.kinopub, now)
        link_secret(self.trakt_store(), self.trakt, now)

    def invoke(
        self, event: Any = None, *, timeout_seconds: float = 600.0, clock: Clock | None = None
    ) -> dict[str, Any]:
        """The real ``functions/sync/app.py:lambda_handler`` with this sandbox's environment
        (``event`` defaults to ``events/schedule.json``)."""
        if event is None:
            event = json.loads((REPO / "events" / "schedule.json").read_text())
        with patched_environ(self.env):
            module = load_handler("sync")
            context = FakeLambdaContext(clock or self.clock, timeout_seconds)
            if clock is not None or not isinstance(self.clock, SystemClock):
                report: dict[str, Any] = module.handle(event, context, clock=clock or self.clock)
                return report
            result: dict[str, Any] = module.lambda_handler(event, context)
            return result


def link_secret(store: TokenStore, fake: FakeKinopub | FakeTrakt, now: int) -> None:
    """The fake's client credentials and a fresh token pair (issued at ``now``) into one secret."""
    grant = fake.issue_tokens()
    stored = store.load()
    secret = ServiceSecret.model_validate(
        {
            **json.loads(stored.secret.to_json()),
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "access_token": grant["access_token"],
            "refresh_token": grant["refresh_token"],
            "issued_at": now,
            "expires_at": now + int(grant["expires_in"]),
        }
    )
    store.save(secret, expected_version=stored.version)


def sandbox_env(kinopub_url: str, trakt_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # Not ~/.aws: its default profile may name an endpoint, FIPS endpoints or a credential process.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "KINOPUB_API_URL": kinopub_url,
        "TRAKT_API_URL": trakt_url,
        "TRAKT_AUTH_URL": trakt_url,
        "TRAKT_AUTHORIZE_URL": f"{trakt_url}/oauth/authorize",
        "KINOPUB_SECRET_ID": KINOPUB_SECRET,
        "TRAKT_SECRET_ID": TRAKT_SECRET,
        "STATE_TABLE_NAME": TABLE,
        "ACCOUNT_ID": ACCOUNT,
        "TRAKT_REDIRECT_URI": "http://127.0.0.1/trakt/callback",
        "POWERTOOLS_SERVICE_NAME": "kinotrakt",
        "POWERTOOLS_METRICS_NAMESPACE": "Kinotrakt",
        "HTTP_TIMEOUT_SECONDS": "5",
        # The fakes listen on plain http://127.0.0.1.
        "ALLOW_INSECURE_ENDPOINTS": "true",
    }
    env.update(overrides)
    return env


@contextmanager
def sandbox(
    *,
    seed: Callable[[FakeKinopub, FakeTrakt], Any] | None = None,
    clock: Clock | None = None,
    link: bool = True,
    env: Mapping[str, str] | None = None,
    fake_clock: Callable[[], float] | None = None,
) -> Iterator[Sandbox]:
    """Moto + both fakes, seeded and linked. ``env`` overrides the contract's variables
    (docs/contract.md#environment-variables)."""
    clock = clock or SystemClock()
    fake_kwargs: dict[str, Any] = {} if fake_clock is None else {"clock": fake_clock}
    kinopub = FakeKinopub(**fake_kwargs)
    trakt = FakeTrakt(**fake_kwargs)
    with kinopub, trakt:
        values = sandbox_env(kinopub.base_url, trakt.base_url, **dict(env or {}))
        with isolated_environ(values), mock_aws():
            session = boto3.Session(region_name=REGION)
            create_state_table(session.client("dynamodb"))
            create_secrets(session.client("secretsmanager"))
            box = Sandbox(kinopub, trakt, clock, values, session)
            if seed is not None:
                seed(kinopub, trakt)
            if link:
                box.link()
            yield box
