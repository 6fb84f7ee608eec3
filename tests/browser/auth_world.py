"""One wired auth deployment for tests: moto's table and secrets, a fake Trakt, and the real handler's deps.

Used by the handler integration tests (events straight to ``handle``) and by the browser test (through
:class:`~devkit.apigw.ApiGatewayAdapter`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from pydantic import SecretStr

from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.fakes.fake_trakt import FakeTrakt
from functions.auth.app import AuthDeps, handle
from kinotrakt.clock import Clock
from kinotrakt.config import Settings
from kinotrakt.storage.aws import aws_login_stores
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.web.login import LinkNotices

# Shaped as kinotrakt setup makes them (32 random bytes, URL-safe base64): anything else is refused unread.
SETUP_KEY = "owner-setup-key_0123456789abcdefghijklmnopq"
KEY_VALIDITY = 3600


@dataclass
class AuthWorld:
    fake: FakeTrakt
    settings: Settings
    deps: AuthDeps
    session: boto3.Session
    setup_key: str = SETUP_KEY

    def call(self, path: str, query: str = "", cookies: tuple[str, ...] = ()) -> dict[str, Any]:
        """Send one request through the real handler, as API Gateway would."""
        return handle(api_gateway_v2_event(path, query, cookies=cookies), FakeLambdaContext(), deps=self.deps)

    def trakt_secret(self) -> ServiceSecret:
        return self.deps.trakt_tokens.load().secret

    def token_exchanges(self) -> int:
        return len(self.fake.calls("POST", "/oauth/token"))


def seed_trakt_secret(store: TokenStore, fake: FakeTrakt, setup_key: str | None, expires_at: int | None) -> None:
    """The Trakt secret as ``kinotrakt setup`` leaves it: client credentials and a setup key with its expiry."""
    stored = store.load()
    secret = stored.secret.model_copy(
        update={
            "client_id": fake.client_id,
            "client_secret": SecretStr(fake.client_secret),
            "setup_key": SecretStr(setup_key) if setup_key is not None else None,
            "setup_key_expires_at": expires_at if setup_key is not None else None,
        }
    )
    store.save(secret, expected_version=stored.version)


def build_world(
    session: boto3.Session,
    fake: FakeTrakt,
    *,
    kinopub_secret: str,
    trakt_secret: str,
    table: str,
    redirect_uri: str,
    clock: Clock,
    setup_key: str | None = SETUP_KEY,
    notices: LinkNotices | None = None,
) -> AuthWorld:
    settings = Settings(
        trakt_api_url=fake.base_url,
        trakt_auth_url=fake.base_url,
        trakt_authorize_url=f"{fake.base_url}/oauth/authorize",
        trakt_redirect_uri=redirect_uri,
        kinopub_secret_id=kinopub_secret,
        trakt_secret_id=trakt_secret,
        state_table_name=table,
        allow_insecure_endpoints=True,  # the fakes listen on http://127.0.0.1
    )
    login_states, trakt_tokens = aws_login_stores(settings, session=session)
    seed_trakt_secret(trakt_tokens, fake, setup_key, int(clock.now().timestamp()) + KEY_VALIDITY)
    deps = AuthDeps(
        settings=settings, login_states=login_states, trakt_tokens=trakt_tokens, clock=clock, notices=notices
    )
    return AuthWorld(fake=fake, settings=settings, deps=deps, session=session)


class LogCapture(logging.Handler):
    """Every line the kinotrakt logger writes, formatted as in CloudWatch (JSON, extras included)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def capture_kinotrakt_logs() -> Iterator[LogCapture]:
    from kinotrakt.observability import logger

    capture = LogCapture()
    capture.setFormatter(logger.registered_formatter)
    target = logging.getLogger(logger.name)
    target.addHandler(capture)
    try:
        yield capture
    finally:
        target.removeHandler(capture)
