"""``kinotrakt unmatched``: what could not be matched on Trakt, and why."""

from __future__ import annotations

from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_OK
from kinotrakt_cli.output import unmatched_table


def run(cli: Cli) -> int:
    """List what could not be matched on Trakt, and why.

    List the Kinopub items and episodes that could not be matched to Trakt, with the reason.
    """
    items = cli.deployment.state.list_unmatched()
    if not items:
        cli.output.say("Nothing unmatched: every completed view found its Trakt item.")
        return EXIT_OK
    items.sort(key=lambda i: (i.title, i.season or 0, i.episode or 0))
    cli.output.show(unmatched_table(items))
    cli.output.say()
    cli.output.say("Pin an item to the right Trakt title, then the next sync uses it:")
    cli.output.say("  kinotrakt map <kinopub_id> movie|show <trakt_id> [--season-offset N]")
    return EXIT_OK
