"""The real :class:`~kinotrakt.web.login.TraktAuthorization`: the Trakt OAuth and API clients (``wiring.py``),
within the auth Lambda's own (short) deadline."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from kinotrakt import wiring
from kinotrakt.clock import Clock, Deadline
from kinotrakt.config import Settings
from kinotrakt.errors import BadResponse, NotConfigured
from kinotrakt.http import CallCounter
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenGrant
from kinotrakt.trakt.client import parse_as, raise_for_status, trakt_headers

# The auth function has 30 s in all: no single read may take most of it.
MAX_READ_SECONDS = 10.0


class TraktGateway:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        deadline: Deadline,
        *,
        session: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self.counter = CallCounter()
        self._transport = wiring.trakt_transport(
            settings,
            clock=clock,
            deadline=deadline,
            counter=self.counter,
            limits=replace(settings.http_limits, read_timeout=min(settings.http_timeout_seconds, MAX_READ_SECONDS)),
            session=session,
        )

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        if not client.client_id or client.client_secret is None:
            raise NotConfigured("trakt")
        oauth = wiring.trakt_oauth(self._settings, self._transport, client.client_id, client.client_secret)
        return oauth.exchange_code(code, code_verifier, redirect_uri)

    def username(self, client: ServiceSecret, access_token: str) -> str | None:
        """``/users/settings`` with the tokens just issued, before they are stored: the link's one secret write
        then also records who is linked."""
        if not client.client_id:
            raise NotConfigured("trakt")
        response = self._transport.request(
            "GET",
            f"{self._settings.trakt_api_base}/users/settings",
            headers=trakt_headers(client.client_id, access_token),
        )
        raise_for_status(response)
        settings = parse_as(dict[str, Any], response)
        user = settings.get("user")
        name = user.get("username") if isinstance(user, dict) else None
        if not isinstance(name, str):
            raise BadResponse("trakt", "/users/settings", "answered without user.username")
        return name
