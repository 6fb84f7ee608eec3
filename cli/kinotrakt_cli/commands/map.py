"""``kinotrakt map``: pin a Kinopub item to a Trakt movie or show."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from kinotrakt.storage.ports import Pin
from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_OK, EXIT_USAGE, CliError


def run(
    cli: Cli,
    kinopub_id: Annotated[int, typer.Argument(min=1, help="Kinopub item id (see `unmatched`)")],
    kind: Annotated[Literal["movie", "show"], typer.Argument(help="what it is on Trakt")],
    trakt_id: Annotated[int, typer.Argument(min=1, help="the Trakt id of the movie or show")],
    season_offset: Annotated[int, typer.Option(help="Trakt season = Kinopub season + N (shows only)")] = 0,
) -> int:
    """Pin a Kinopub item to a Trakt movie or show.

    Pin a Kinopub item to a Trakt movie or show by its Trakt id (the number in the Trakt URL's API data, or from
    `unmatched`); a show can shift season numbers with --season-offset.
    """
    if season_offset and kind != "show":
        raise CliError("--season-offset only applies to a show", EXIT_USAGE)
    pin = Pin(kinopub_id=kinopub_id, trakt_type=kind, trakt_id=trakt_id, season_offset=season_offset)
    cli.deployment.state.put_pin(pin)
    offset = f", Kinopub season N is Trakt season N{season_offset:+d}" if season_offset else ""
    cli.output.say(f"Pinned Kinopub item {pin.kinopub_id} to Trakt {pin.trakt_type} {pin.trakt_id}{offset}.")
    cli.output.say("The next sync uses it.")
    return EXIT_OK
