"""``kinotrakt sync``: one run of the Lambda's sync from this terminal, and its report."""

from __future__ import annotations

from typing import Annotated

import typer

from kinotrakt.config import Settings
from kinotrakt.http import CallCounter
from kinotrakt.storage.ports import SyncStores
from kinotrakt.sync.report import SyncReport
from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_OK
from kinotrakt_cli.output import report_view, sync_progress


def run(
    cli: Cli,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="plan and report; write nothing, keep the watermark")
    ] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="run offline against the demo sandbox instead")] = False,
) -> int:
    """Run one sync now, as the schedule does.

    Run the same sync as the Lambda, against the deployed table and secrets, and print the report.
    Exit code 0 when the run is ok or skipped (another run holds the lease), 1 when it is partial or failed.
    """
    dry = True if dry_run else None  # without the flag, the deployment's DRY_RUN decides
    if sandbox:
        with cli.deps.sandbox() as box:
            cli.output.say("Sandbox: moto + fake Kinopub + fake Trakt, seeded with the demo library.")
            report = _run(cli, box.settings, box.stores, dry_run=dry)
    else:
        deployment = cli.deployment
        report = _run(cli, deployment.state_settings, deployment.stores, dry_run=dry)
    cli.output.show(*report_view(report))
    return EXIT_OK if report.status in ("ok", "skipped") else EXIT_FAILURE


def _run(cli: Cli, settings: Settings, stores: SyncStores, *, dry_run: bool | None) -> SyncReport:
    counter = CallCounter()
    with sync_progress(cli.output, counter, after_seconds=cli.deps.sync_progress_after_seconds):
        return cli.deps.run_sync(settings, stores, clock=cli.clock, dry_run=dry_run, counter=counter)
