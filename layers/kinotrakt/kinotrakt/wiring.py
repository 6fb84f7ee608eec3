"""The one place that builds each service's transport, token keeper and clients from :class:`Settings`.

The sync handler, the auth function (its Trakt gateway), the CLI and the sandbox (through the handler) all
get theirs here, so a timeout, a User-Agent or a base URL is decided once for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import requests
from pydantic import SecretStr

from kinotrakt.clock import Clock, Deadline, SystemClock
from kinotrakt.config import Settings
from kinotrakt.http import CallCounter, Limits, RetryPolicy, Transport
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.oauth import KinopubOAuth
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.tokens import Refresher, TokenGrant, TokenKeeper, kinopub_margin, trakt_margin
from kinotrakt.trakt.client import TraktClient
from kinotrakt.trakt.client import trakt_transport as paced_trakt_transport
from kinotrakt.trakt.oauth import TraktOAuth

# --- Kinopub -------------------------------------------------------------------------------------------------


def kinopub_transport(
    settings: Settings, *, clock: Clock, deadline: Deadline, counter: CallCounter, retry: RetryPolicy | None = None
) -> Transport:
    """``retry``: the default policy unless given (the CLI gives up sooner: someone waits at the terminal)."""
    return Transport(
        "kinopub",
        clock=clock,
        deadline=deadline,
        counter=counter,
        user_agent=settings.kinopub_user_agent,
        limits=settings.http_limits,
        retry=retry,
    )


def kinopub_oauth(settings: Settings, transport: Transport, client_id: str, client_secret: SecretStr) -> KinopubOAuth:
    return KinopubOAuth(transport, settings.kinopub_base, client_id, client_secret)


def kinopub_keeper(settings: Settings, store: TokenStore, transport: Transport, clock: Clock) -> TokenKeeper:
    return TokenKeeper(
        "kinopub", store, _refresher(KinopubOAuth, transport, settings.kinopub_base), clock, kinopub_margin
    )


def kinopub_client(settings: Settings, transport: Transport, keeper: TokenKeeper) -> KinopubClient:
    return KinopubClient(transport, settings.kinopub_base, keeper)


# --- Trakt ---------------------------------------------------------------------------------------------------


def trakt_transport(
    settings: Settings,
    *,
    clock: Clock,
    deadline: Deadline,
    counter: CallCounter,
    limits: Limits | None = None,
    session: requests.Session | None = None,
    retry: RetryPolicy | None = None,
) -> Transport:
    """The Trakt transport, paced as Trakt's limits require (``TRAKT_POST_INTERVAL_SECONDS``,
    ``TRAKT_GET_LIMIT``); ``limits`` default to the settings' timeouts and longest Retry-After wait, ``retry``
    to the default policy."""
    return paced_trakt_transport(
        post_interval_seconds=settings.trakt_post_interval_seconds,
        clock=clock,
        deadline=deadline,
        counter=counter,
        get_limit=settings.trakt_get_limit,
        limits=settings.http_limits if limits is None else limits,
        session=session,
        retry=retry,
    )


def trakt_oauth(settings: Settings, transport: Transport, client_id: str, client_secret: SecretStr) -> TraktOAuth:
    return TraktOAuth(transport, settings.trakt_auth_base, client_id, client_secret)


def trakt_keeper(settings: Settings, store: TokenStore, transport: Transport, clock: Clock) -> TokenKeeper:
    return TokenKeeper("trakt", store, _refresher(TraktOAuth, transport, settings.trakt_auth_base), clock, trakt_margin)


def trakt_client(settings: Settings, transport: Transport, keeper: TokenKeeper) -> TraktClient:
    """The API client. Reads the Trakt secret for its client id (``NotConfigured`` before ``setup``)."""
    return TraktClient(transport, settings.trakt_api_base, keeper.client_id(), keeper)


def trakt_catalog(settings: Settings, trakt_tokens: TokenStore, clock: Clock | None = None) -> TraktClient:
    """A Trakt client for the public catalog (what ``kinotrakt map`` checks a pin against): the deployment's own
    client id, the same transport and pacing as a run, no deadline."""
    clock = clock or SystemClock()
    transport = trakt_transport(settings, clock=clock, deadline=Deadline(clock, None, 0), counter=CallCounter())
    return trakt_client(settings, transport, trakt_keeper(settings, trakt_tokens, transport, clock))


# --- one sync run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncClients:
    kinopub: KinopubClient
    trakt: TraktClient
    trakt_transport: Transport  # its GET budget is carried from run to run (``SyncState.trakt_reads``)


def sync_clients(
    settings: Settings,
    *,
    kinopub_tokens: TokenStore,
    trakt_tokens: TokenStore,
    clock: Clock,
    deadline: Deadline,
    counter: CallCounter,
) -> SyncClients:
    """Both clients of one run, on the run's deadline and call counter. Raises ``KinotraktError`` (before any
    HTTP request) when the Trakt secret cannot give a client id."""
    kinopub = kinopub_transport(settings, clock=clock, deadline=deadline, counter=counter)
    trakt = trakt_transport(settings, clock=clock, deadline=deadline, counter=counter)
    return SyncClients(
        kinopub=kinopub_client(settings, kinopub, kinopub_keeper(settings, kinopub_tokens, kinopub, clock)),
        trakt=trakt_client(settings, trakt, trakt_keeper(settings, trakt_tokens, trakt, clock)),
        trakt_transport=trakt,
    )


# --- refreshing ----------------------------------------------------------------------------------------------


class _OAuthClient(Protocol):
    def __init__(self, transport: Transport, base_url: str, client_id: str, client_secret: str) -> None: ...

    def refresh(self, secret: ServiceSecret) -> TokenGrant: ...


def _refresher(oauth: type[_OAuthClient], transport: Transport, base_url: str) -> Refresher:
    """A refresher that authenticates with the client credentials of the very secret it refreshes
    (the secret is read once per run; a re-run of ``setup`` takes effect on the next run)."""

    def refresh(secret: ServiceSecret) -> TokenGrant:
        client_secret = secret.client_secret.get_secret_value() if secret.client_secret else ""
        return oauth(transport, base_url, secret.client_id or "", client_secret).refresh(secret)

    return refresh
