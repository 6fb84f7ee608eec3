"""``kinotrakt unmatched``: what could not be matched on Trakt, and why (and which of it you have pinned)."""

from __future__ import annotations

from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_OK


def run(cli: Cli) -> int:
    """List what could not be matched on Trakt, and why.

    List the Kinopub items and episodes that could not be matched to Trakt, with the reason; one you have pinned
    says so (the next sync uses the pin).
    """
    from kinotrakt_cli.output import unmatched_table

    stores = cli.deployment.stores
    items = stores.unmatched.load()
    if not items:
        cli.output.say("Nothing unmatched: every completed view found its Trakt item.")
        return EXIT_OK
    items.sort(key=lambda i: (i.title, i.season or 0, i.episode or 0))
    cli.output.show(
        unmatched_table(items, stores.pins.load(), stores.pins.load_numbering(), with_commands=cli.with_commands)
    )
    cli.output.say()
    cli.output.say("Pin each to the right Trakt title (an id, slug or trakt.tv URL); the next sync uses it:")
    for usage in (
        "map <kinopub_id> movie|show <trakt> [--season-offset N]",
        "map <kinopub_id> episode <season> <episode> S04E15 [S04E16 ...] [--show <trakt>]",
        "map <kinopub_id> season <season> --offset N [--from-episode N] [--trakt-season N]",
    ):
        cli.output.say(f"  {cli.command(usage)}")
    return EXIT_OK
