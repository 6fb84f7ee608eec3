"""``kinotrakt audit``: the audit of the Trakt history from this terminal — what it found, and the fixes asked for."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kinotrakt.audit.report import AuditReport
    from kinotrakt.audit.run import Fix

# Each run of the audit from here is given a Lambda's time, so the lease it shares with the schedule's syncs is
# never held past its expiry; the command goes on with the next run until the audit is done.
RUN_SECONDS = 14 * 60.0
MAX_RUNS = 20

# The audit's fixes (kinotrakt.audit.run.FIXES, in its order), named here so that `--help` loads no audit code.
WHAT_FIXES_DO: dict[str, str] = {
    "duplicates": "remove the extra plays of each viewing (the same item in the same minute; the oldest stays)",
    "missing": "send the finished views that were never sent",
    "removed": "send again the views you removed on Trakt",
}


def run(
    cli: Cli,
    fix: Annotated[
        list[str] | None,
        typer.Option(
            "--fix",
            help=f"repair on Trakt: {', '.join(WHAT_FIXES_DO)} (repeat the option, or separate with commas)",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before fixing")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the whole report as JSON, every list complete")
    ] = False,
) -> int:
    """Audit the Trakt history: duplicate plays, views missing on Trakt, plays no longer finished.

    Read the whole Trakt history and every finished Kinopub view, and report the extra plays of each viewing,
    the finished views with no play on Trakt (never sent, or sent and removed there), and the plays kinotrakt
    sent whose view is no longer finished. Without --fix nothing is written to Trakt. Exit code 0 when the
    audit is done (or skipped: a sync is running), 1 when it stopped early (run it again to continue) or failed.
    """
    from kinotrakt.audit.run import wanted_fixes
    from kinotrakt_cli.output import audit_view

    try:
        fixes = wanted_fixes(part.strip() for value in fix or () for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if fixes and not yes and not _confirmed(cli, fixes):
        cli.output.say("Nothing changed.")
        return EXIT_OK
    report = _audit(cli, fixes, quiet=as_json)
    if as_json:
        cli.output.say(json.dumps(report.to_dict(complete=True), ensure_ascii=False, indent=2))
    else:
        cli.output.show(*audit_view(report, cli.command, cli.with_commands))
    return EXIT_OK if report.status in ("ok", "skipped") else EXIT_FAILURE


def _confirmed(cli: Cli, fixes: frozenset[Fix]) -> bool:
    if not cli.interactive():
        raise CliError("audit --fix writes to your Trakt history: confirm with --yes", EXIT_USAGE)
    cli.output.say("The audit will, on your Trakt history:")
    for name, what in WHAT_FIXES_DO.items():
        if name in fixes:
            cli.output.say(f"  - {what}")
    first = "(Run `kinotrakt audit` alone first to see what it finds.)"
    cli.output.say(f"Nothing else is removed or changed. {cli.with_commands(first)}")
    return cli.prompt("Go ahead? [y/N]: ").strip().lower() in ("y", "yes")


def _audit(cli: Cli, fixes: frozenset[Fix], *, quiet: bool) -> AuditReport:
    """Runs of the audit until it is done, or stops for a reason another run now would not fix (a rate limit, a
    failure), or a run gets no further."""
    from kinotrakt.http import CallCounter
    from kinotrakt_cli.output import sync_progress

    deployment = cli.deployment
    settings, stores = deployment.state_settings, deployment.stores
    counter = CallCounter()
    shown: AbstractContextManager[Callable[[str], None]] = (
        nullcontext(lambda _: None)  # --json: one JSON document, nothing else
        if quiet
        else sync_progress(cli.output, counter, after_seconds=cli.deps.sync_progress_after_seconds, doing="auditing")
    )
    with shown as step:
        report = None
        for _ in range(MAX_RUNS):
            before = None if report is None else _progress(report)
            report = cli.deps.run_audit(
                settings,
                stores,
                fixes=fixes,
                clock=cli.clock,
                remaining_seconds=RUN_SECONDS,
                counter=counter,
                on_step=step,
            )
            stopped_for_time = (
                report.status == "partial" and report.error is not None and report.error.code == "out_of_time"
            )
            if not stopped_for_time or _progress(report) == before:
                break
        assert report is not None  # noqa: S101 - MAX_RUNS > 0
        return report


def _progress(report: AuditReport) -> tuple[int, ...]:
    return (report.plays_read, report.views_checked, report.duplicates_removed, report.missing_resent, report.unmatched)
