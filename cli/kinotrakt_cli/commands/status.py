"""``kinotrakt status``: the last runs (dry runs apart), the watermark, both links' health, what waits unmatched."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_OK

if TYPE_CHECKING:
    from kinotrakt.storage.ports import ServiceSecret

# Kinopub's refresh token reportedly dies after ~30 days unused (docs/kinopub.md#auth-device-flow-only).
KINOPUB_REFRESH_LIFETIME = timedelta(days=30)
# Dry runs are shown apart, fewer of them: they are tries, not the sync's history.
DRY_RUNS_SHOWN = 3


def run(
    cli: Cli,
    runs: Annotated[int, typer.Option(min=1, help="how many runs to show")] = 5,
) -> int:
    """Last runs, watermark, token expiry, unmatched count.

    Show the last runs (syncs and audits; each run's error with its code; dry runs apart), the watermark, when
    tokens expire, and how many items are unmatched.
    """
    from kinotrakt.audit.report import AuditReport
    from kinotrakt.errors import TraktAppRejected
    from kinotrakt.sync.report import SyncReport
    from kinotrakt_cli.output import runs_view, when

    now = cli.clock.now()
    stores = cli.deployment.stores
    say = cli.output.say
    reports = [
        SyncReport.from_stored(stored) or AuditReport.from_stored(stored)
        for stored in stores.reports.latest(limit=runs)
    ]
    say("Last runs (newest first):")
    if reports:
        cli.output.show(*runs_view(reports, cli.with_commands))
    else:
        say(f"  none yet (the schedule runs the sync; or: {cli.command('sync')})")
    dry_runs = [SyncReport.from_stored(stored) for stored in stores.reports.latest(DRY_RUNS_SHOWN, dry_run=True)]
    if dry_runs:
        say("Dry runs (newest first; nothing was sent to Trakt, the counts are what they would have added):")
        cli.output.show(*runs_view(dry_runs, cli.with_commands))
    watermark = stores.sync_state.load().watermark
    say(f"Watermark (last success): {when(watermark, now) if watermark else 'none yet'}")
    say()
    latest = reports[0] if reports else None
    app_rejected = latest is not None and latest.error is not None and latest.error.code == TraktAppRejected.code
    services: tuple[Service, ...] = ("kinopub", "trakt")
    for service in services:
        secret = cli.deployment.token_store(service).load().secret
        health = _link_health(cli, service, secret, now)
        if service == "trakt" and app_rejected:
            # The tokens may look fine; Trakt refuses the app itself (a JSON 403): the run's own words.
            health = f"{cli.with_commands(TraktAppRejected.message)} (the last run: {TraktAppRejected.code})"
        say(f"{label(service)}: {health}")
    say()
    pending = len(stores.unmatched.load())
    say(f"Unmatched: {pending} waiting ({cli.command('unmatched')})" if pending else "Unmatched: none")
    return EXIT_OK


def _link_health(cli: Cli, service: Service, secret: ServiceSecret, now: datetime) -> str:
    from kinotrakt.clock import utc_from_epoch
    from kinotrakt_cli.output import when

    if not secret.client_id or secret.client_secret is None:
        return f"not set up ({cli.command('setup')})"
    if secret.refresh_token is None:
        return f"not linked ({cli.command(f'link {service}')})"
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
            parts.append(f"refresh token unused for 30+ days, probably dead: {cli.command('link kinopub')}")
    return "linked; " + "; ".join(parts) if parts else "linked"
