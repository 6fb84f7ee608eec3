"""The real :class:`~kinotrakt.web.login.TraktAuthorization`: the Trakt OAuth and API clients on the shared
transport, within the auth Lambda's own (short) deadline."""

from __future__ import annotations

from dataclasses import replace

import requests

from kinotrakt.clock import Clock, Deadline
from kinotrakt.config import Settings
from kinotrakt.errors import BadResponse, NotConfigured
from kinotrakt.http import CallCounter, Transport
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.tokens import TokenGrant
from kinotrakt.trakt.client import TraktClient, trakt_transport
from kinotrakt.trakt.oauth import TraktOAuth, make_token_keeper


class TraktGateway:
    def __init__(
        self,
        settings: Settings,
        trakt_store: TokenStore,
        clock: Clock,
        deadline: Deadline,
        *,
        session: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._store = trakt_store
        self._clock = clock
        self.counter = CallCounter()
        self._transport: Transport = trakt_transport(
            post_interval_seconds=settings.trakt_post_interval_seconds,
            clock=clock,
            deadline=deadline,
            counter=self.counter,
            get_limit=settings.trakt_get_limit,
            # The auth function has 30 s in all: no single read may take most of it.
            limits=replace(settings.http_limits, read_timeout=min(settings.http_timeout_seconds, 10.0)),
            session=session,
        )

    def _oauth(self, client: ServiceSecret) -> TraktOAuth:
        if not client.client_id or client.client_secret is None:
            raise NotConfigured("trakt")
        return TraktOAuth(self._transport, self._settings.trakt_auth_base, client.client_id, client.client_secret)

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        return self._oauth(client).exchange_code(code, code_verifier, redirect_uri)

    def username(self) -> str | None:
        secret = self._store.load().secret
        oauth = self._oauth(secret)
        keeper = make_token_keeper(self._store, oauth, self._clock)
        client = TraktClient(self._transport, self._settings.trakt_api_base, keeper.client_id(), keeper)
        settings = client.user_settings()
        user = settings.get("user")
        name = user.get("username") if isinstance(user, dict) else None
        if not isinstance(name, str):
            raise BadResponse("trakt", "/users/settings", "answered without user.username")
        return name
