"""``kinotrakt map``: pin a Kinopub item, episode or season to Trakt (checked on Trakt before it is stored)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.errors import EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kinotrakt.sync.pinning import PinKind

USAGE = {
    "movie": "one Trakt movie: an id, slug or trakt.tv URL",
    "show": "one Trakt show: an id, slug or trakt.tv URL",
    "episode": "the Kinopub season and episode, then one or more Trakt episodes like S04E15",
    "season": "the Kinopub season (and --offset)",
}
ARITY = {"movie": (1, 1), "show": (1, 1), "episode": (3, 99), "season": (1, 1)}


def run(
    cli: Cli,
    kinopub_id: Annotated[int, typer.Argument(min=1, help="Kinopub item id (see `unmatched`)")],
    kind: Annotated[Literal["movie", "show", "episode", "season"], typer.Argument(help="what to pin")],
    target: Annotated[
        list[str],
        typer.Argument(
            help="movie/show: the Trakt id, slug or URL; episode: SEASON EPISODE S04E15 [S04E16]; season: SEASON"
        ),
    ],
    season_offset: Annotated[int, typer.Option(help="Trakt season = Kinopub season + N (shows only)")] = 0,
    offset: Annotated[int, typer.Option(help="season pins: Trakt's episode number = Kinopub's + N")] = 0,
    from_episode: Annotated[int, typer.Option(min=1, help="season pins: the first Kinopub episode it covers")] = 1,
    trakt_season: Annotated[
        int | None, typer.Option(min=0, help="season pins: the Trakt season (default: same)")
    ] = None,
    show: Annotated[
        str | None, typer.Option(help="episode/season pins: the Trakt show, when kinotrakt cannot tell")
    ] = None,
) -> int:
    """Pin a Kinopub item, episode or season to Trakt.

    `map ID movie|show TRAKT` pins an item to a Trakt movie or show (a Trakt id, a slug or a trakt.tv URL; a show
    can shift season numbers with --season-offset). `map ID episode 4 15 S04E15 S04E16` pins one Kinopub episode
    to one or more Trakt episodes (a merged episode). `map ID season 2 --offset -1 --from-episode 5` says Kinopub's
    season 2 from episode 5 on is Trakt's numbers minus one (after an inline special). Each is checked on Trakt
    first; the next sync uses it and reads the item again, whatever its history says.
    """
    from kinotrakt.sync.pinning import PinRefused, parse_episode, pin_episode, pin_item, pin_season
    from kinotrakt.wiring import trakt_catalog

    low, high = ARITY[kind]
    if not low <= len(target) <= high:
        raise CliError(f"map {kind} takes {USAGE[kind]}", EXIT_USAGE)
    if season_offset and kind != "show":
        raise CliError("--season-offset only applies to a show", EXIT_USAGE)
    numbers = [_number(text) for text in target[:2]] if kind in ("episode", "season") else []
    try:
        episodes = [parse_episode(text) for text in target[2:]] if kind == "episode" else []
    except PinRefused as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    deployment = cli.deployment
    stores, trakt = deployment.stores, trakt_catalog(deployment.settings, deployment.tokens.trakt, cli.clock)
    say = cli.output.say
    try:
        if kind in ("movie", "show"):
            item_kind: PinKind = "movie" if kind == "movie" else "show"
            pin, title = pin_item(stores, trakt, kinopub_id, item_kind, target[0], season_offset)
            shift = f", Kinopub season N is Trakt season N{pin.season_offset:+d}" if pin.season_offset else ""
            say(f"Pinned Kinopub item {kinopub_id} to Trakt {pin.trakt_type} {pin.trakt_id}: {title}{shift}.")
        elif kind == "episode":
            season, episode = numbers
            pinned, show_ref = pin_episode(stores, trakt, kinopub_id, season, episode, episodes, show)
            names = " + ".join(f"S{s:02d}E{n:02d}" for s, n in pinned.trakt_episodes)
            say(f"Pinned Kinopub item {kinopub_id} S{season:02d}E{episode:02d} to Trakt show {show_ref} {names}.")
        else:
            (season,) = numbers
            ranged, show_ref = pin_season(
                stores,
                trakt,
                kinopub_id,
                season,
                offset,
                from_episode=from_episode,
                trakt_season=trakt_season,
                show=show,
            )
            say(
                f"Pinned Kinopub item {kinopub_id} season {season} from episode {ranged.from_episode} to Trakt show "
                f"{show_ref} season {ranged.trakt_season}, episode number {ranged.episode_offset:+d}."
            )
    except PinRefused as exc:
        raise CliError(f"not pinned: {exc}") from None
    say("The next sync uses it, and reads the item again whatever its history says.")
    return EXIT_OK


def _number(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise CliError(f"{text!r} is not a season or episode number", EXIT_USAGE)
    return int(text)
