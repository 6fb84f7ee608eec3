"""``kinotrakt sync``: one run of the Lambda's sync from this terminal, and its report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_OK, CliError

if TYPE_CHECKING:
    from kinotrakt.config import Settings
    from kinotrakt.storage.ports import SyncStores
    from kinotrakt.sync.report import SyncReport


def run(
    cli: Cli,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="plan and report; write nothing to Trakt, keep the watermark")
    ] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="run offline against the demo sandbox instead")] = False,
) -> int:
    """Run one sync now, as the schedule does.

    Run the same sync as the Lambda, against the deployed table and secrets, and print the report.
    Exit code 0 when the run is ok or skipped (another run holds the lease), 1 when it is partial or failed.
    """
    from kinotrakt_cli.output import report_view

    dry = True if dry_run else None  # without the flag, the deployment's DRY_RUN decides
    if sandbox:
        with cli.deps.sandbox() as box:
            cli.output.say("Sandbox: moto + fake Kinopub + fake Trakt, seeded with the demo library.")
            report = _run(cli, box.settings, box.stores, dry_run=dry)
    else:
        _require_links(cli)
        deployment = cli.deployment
        report = _run(cli, deployment.state_settings, deployment.stores, dry_run=dry)
    cli.output.show(*report_view(report, cli.command, cli.with_commands))
    return EXIT_OK if report.status in ("ok", "skipped") else EXIT_FAILURE


def _require_links(cli: Cli) -> None:
    """Before a run that could only fail: which service is not set up or not linked yet, and the commands that fix
    it (the run itself would stop at the first one)."""
    services: tuple[Service, ...] = ("kinopub", "trakt")
    not_set_up: list[Service] = []
    not_linked: list[Service] = []
    for service in services:
        secret = cli.deployment.token_store(service).load().secret
        if not secret.client_id or secret.client_secret is None:
            not_set_up.append(service)
        elif secret.access_token is None or secret.refresh_token is None:
            not_linked.append(service)
    if not_set_up:
        names = " and ".join(label(service) for service in not_set_up)
        raise CliError(f"not set up yet: {names}; run `kinotrakt setup` first, then link both accounts")
    if not_linked:
        names = " and ".join(label(service) for service in not_linked)
        # Error messages name commands as `kinotrakt ...`: execute() repeats them with the user's own options.
        commands = " and ".join(f"`kinotrakt link {service}`" for service in not_linked)
        raise CliError(f"not linked yet: {names}; run {commands} first")


def _run(cli: Cli, settings: Settings, stores: SyncStores, *, dry_run: bool | None) -> SyncReport:
    from kinotrakt.http import CallCounter
    from kinotrakt_cli.output import sync_progress

    counter = CallCounter()
    with sync_progress(cli.output, counter, after_seconds=cli.deps.sync_progress_after_seconds):
        return cli.deps.run_sync(settings, stores, clock=cli.clock, dry_run=dry_run, counter=counter)
