"""Wiring: build the clients and run one sync. The Lambda handler, the CLI and the sandbox all call this."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Protocol

from kinotrakt.clock import Clock, Deadline, SystemClock
from kinotrakt.config import Settings
from kinotrakt.errors import KinotraktError
from kinotrakt.http import CallCounter, Transport
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.oauth import KinopubOAuth
from kinotrakt.observability import logger
from kinotrakt.storage.ports import ServiceSecret, SyncStores, TokenStore
from kinotrakt.sync.pipeline import SyncDeps, SyncOptions, run_sync
from kinotrakt.sync.report import SyncReport
from kinotrakt.tokens import Refresher, TokenGrant, TokenKeeper, kinopub_margin, trakt_margin
from kinotrakt.trakt.client import TraktClient, trakt_transport
from kinotrakt.trakt.oauth import TraktOAuth

# The lease outlives the longest possible run (Lambda's 15-minute maximum) a little.
DEFAULT_LEASE = timedelta(minutes=16)


def execute_sync(
    settings: Settings,
    stores: SyncStores,
    *,
    clock: Clock | None = None,
    remaining_seconds: float | None = None,
    dry_run: bool | None = None,
    run_id: str | None = None,
    counter: CallCounter | None = None,
) -> SyncReport:
    """One sync run with production collaborators built from ``settings``; returns the report."""
    clock = clock or SystemClock()
    counter = counter or CallCounter()
    run_id = run_id or uuid.uuid4().hex
    deadline = Deadline(clock, remaining_seconds, settings.deadline_margin_seconds)
    dry = settings.dry_run if dry_run is None else dry_run
    lease = DEFAULT_LEASE if remaining_seconds is None else timedelta(seconds=remaining_seconds + 60)
    options = SyncOptions(
        batch_size=settings.sync_batch_size,
        overlap=timedelta(hours=settings.sync_overlap_hours),
        full_rescan_every=timedelta(hours=settings.full_rescan_hours),
        dry_run=dry,
        lease=lease,
        rewatches=settings.rewatches,
    )

    kinopub_transport = Transport(
        "kinopub",
        clock=clock,
        deadline=deadline,
        counter=counter,
        user_agent=settings.kinopub_user_agent,
        limits=settings.http_limits,
    )
    kinopub_tokens = TokenKeeper(
        "kinopub",
        stores.kinopub_tokens,
        _refresher(KinopubOAuth, kinopub_transport, settings.kinopub_base),
        clock,
        kinopub_margin,
    )

    trakt_http = trakt_transport(
        post_interval_seconds=settings.trakt_post_interval_seconds,
        clock=clock,
        deadline=deadline,
        counter=counter,
        get_limit=settings.trakt_get_limit,
        limits=settings.http_limits,
    )
    trakt_tokens = TokenKeeper(
        "trakt", stores.trakt_tokens, _refresher(TraktOAuth, trakt_http, settings.trakt_auth_base), clock, trakt_margin
    )
    try:
        client_id = trakt_tokens.client_id()
    except KinotraktError as exc:
        report = SyncReport(run_id=run_id, started_at=clock.now(), dry_run=dry, status="failed")
        report.error = {"code": exc.code, "message": str(exc)}
        report.finished_at = clock.now()
        report.watermark = stores.sync_state.load().watermark
        logger.error("sync run stopped", extra={"error_code": exc.code, "error": str(exc)})
        return report

    deps = SyncDeps(
        kinopub=KinopubClient(kinopub_transport, settings.kinopub_base, kinopub_tokens),
        trakt=TraktClient(trakt_http, settings.trakt_api_base, client_id, trakt_tokens),
        stores=stores,
        clock=clock,
        deadline=deadline,
        counter=counter,
    )
    return run_sync(deps, options, run_id)


def trakt_catalog(settings: Settings, trakt_store: TokenStore, clock: Clock | None = None) -> TraktClient:
    """A Trakt client for the public catalog (what ``kinotrakt map`` checks a pin against): the deployment's own
    client id, the same transport and pacing as a run."""
    clock = clock or SystemClock()
    http = trakt_transport(
        post_interval_seconds=settings.trakt_post_interval_seconds,
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        get_limit=settings.trakt_get_limit,
        limits=settings.http_limits,
    )
    tokens = TokenKeeper(
        "trakt", trakt_store, _refresher(TraktOAuth, http, settings.trakt_auth_base), clock, trakt_margin
    )
    return TraktClient(http, settings.trakt_api_base, tokens.client_id(), tokens)


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
