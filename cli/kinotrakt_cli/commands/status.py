"""``kinotrakt status``: the last runs, the watermark, both links' health, what waits unmatched."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from kinotrakt.audit.report import AuditReport
from kinotrakt.clock import utc_from_epoch
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.sync.report import SyncReport
from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_OK
from kinotrakt_cli.output import runs_view, when

# Kinopub's refresh token reportedly dies after ~30 days unused (reference/kinopub-api.md).
KINOPUB_REFRESH_LIFETIME = timedelta(days=30)


def run(
    cli: Cli,
    runs: Annotated[int, typer.Option(min=1, help="how many runs to show")] = 5,
) -> int:
    """Last runs, watermark, token expiry, unmatched count.

    Show the last runs (syncs and audits), the watermark, when tokens expire, and how many items are unmatched.
    """
    now = cli.clock.now()
    stores = cli.deployment.stores
    say = cli.output.say
    reports = [
        SyncReport.from_stored(stored) or AuditReport.from_stored(stored)
        for stored in stores.reports.latest(limit=runs)
    ]
    say("Last runs (newest first):")
    if reports:
        cli.output.show(*runs_view(reports))
    else:
        say("  none yet (the schedule runs the sync; or: kinotrakt sync)")
    watermark = stores.sync_state.load().watermark
    say(f"Watermark (last success): {when(watermark, now) if watermark else 'none yet'}")
    say()
    services: tuple[Service, ...] = ("kinopub", "trakt")
    for service in services:
        secret = cli.deployment.token_store(service).load().secret
        say(f"{label(service)}: {_link_health(service, secret, now)}")
    say()
    pending = len(stores.unmatched.load())
    say(f"Unmatched: {pending} waiting (kinotrakt unmatched)" if pending else "Unmatched: none")
    return EXIT_OK


def _link_health(service: Service, secret: ServiceSecret, now: datetime) -> str:
    if not secret.client_id or secret.client_secret is None:
        return "not set up (kinotrakt setup)"
    if secret.refresh_token is None:
        return f"not linked (kinotrakt link {service})"
    parts = []
    if secret.expires_at is not None:
        expires = utc_from_epoch(secret.expires_at)
        if expires > now:
            parts.append(f"access token expires {when(expires, now)}")
        else:
            parts.append(f"access token expired {when(expires, now)}, the next sync refreshes it")
    if service == "kinopub" and secret.issued_at is not None:
        dies = utc_from_epoch(secret.issued_at) + KINOPUB_REFRESH_LIFETIME
        days = (dies - now).total_seconds() / 86400
        if days > 0:
            parts.append(
                f"refresh token dies unused in ~{round(days)} days ({dies:%Y-%m-%d}) unless a sync refreshes it"
            )
        else:
            parts.append("refresh token unused for 30+ days, probably dead: kinotrakt link kinopub")
    return "linked; " + "; ".join(parts) if parts else "linked"
