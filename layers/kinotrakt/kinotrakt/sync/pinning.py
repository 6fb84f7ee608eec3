"""What ``kinotrakt map`` stores: a user's pin, checked against Trakt before it is stored, and read by the next run.

A pin says what the data could not: this Kinopub item is that Trakt movie or show; this Kinopub episode is
those Trakt episodes (a merged one is two); this Kinopub season's episodes from N on are Trakt's numbers
shifted by an offset (inline specials, a merged episode). A pin to something Trakt does not have would only
move the problem to ``not_found`` after the next run, so each one is looked up first. Storing it also asks the
next run to read the item whatever its history says: a pin takes effect on the next run, not after the next
full rescan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from kinotrakt.errors import BadResponse, KinotraktError
from kinotrakt.storage.ports import EpisodePin, Pin, PinStore, SeasonPin, SyncStateStore, UnmatchedStore
from kinotrakt.sync.seasons import SeasonTable
from kinotrakt.trakt.models import Movie, Season, Show

PinKind = Literal["movie", "show"]

_URL = re.compile(r"https?://(?:www\.|app\.)?trakt\.tv/(?P<kind>movies|shows)/(?P<ref>[^/?#]+)(?:[/?#].*)?")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_EPISODE = re.compile(r"[sS](?P<season>\d{1,3})[eE](?P<episode>\d{1,4})|(?P<s>\d{1,3})[xX](?P<e>\d{1,4})")


class PinRefused(KinotraktError):
    """The pin was not stored; the message says why and what to give instead."""

    code = "pin_refused"


class PinningStores(Protocol):
    """What storing a pin touches (``SyncStores`` has them): the pins; the sync state, to have the next run read
    the item again; the unmatched list, for the Trakt show an unmatched episode was looked up in."""

    @property
    def pins(self) -> PinStore: ...

    @property
    def sync_state(self) -> SyncStateStore: ...

    @property
    def unmatched(self) -> UnmatchedStore: ...


class TraktCatalog(Protocol):
    """What a pin is checked against (implemented by ``TraktClient``; public endpoints only)."""

    def movie(self, ref: str) -> Movie: ...

    def show(self, ref: str) -> Show: ...

    def show_seasons(self, show: int | str) -> list[Season] | None: ...


@dataclass(frozen=True)
class TraktRef:
    kind: PinKind | None  # known from a URL
    ref: str  # a Trakt id or slug, as /movies/{id} and /shows/{id} take it


def parse_trakt_ref(text: str) -> TraktRef:
    """A Trakt id (``16662``), a slug (``inception-2010``) or a trakt.tv URL (``https://trakt.tv/shows/
    black-mirror/seasons/2``, the kind taken from it)."""
    text = text.strip()
    if url := _URL.fullmatch(text):
        return TraktRef("movie" if url["kind"] == "movies" else "show", url["ref"].lower())
    if text.isascii() and text.isdigit() and int(text) > 0:
        return TraktRef(None, str(int(text)))
    if _SLUG.fullmatch(text.lower()) and not text.isdigit():
        return TraktRef(None, text.lower())
    raise PinRefused(f"{text!r} is not a Trakt id, slug or trakt.tv movie/show URL")


def parse_episode(text: str) -> tuple[int, int]:
    """``S04E15`` or ``4x15`` → (4, 15)."""
    found = _EPISODE.fullmatch(text.strip())
    if found is None:
        raise PinRefused(f"{text!r} is not an episode like S04E15")
    season, episode = (found["season"], found["episode"]) if found["season"] else (found["s"], found["e"])
    if int(episode) < 1:
        raise PinRefused(f"{text!r}: episodes are numbered from 1")
    return int(season), int(episode)


def pin_item(
    stores: PinningStores, trakt: TraktCatalog, kinopub_id: int, kind: PinKind, ref: str, season_offset: int = 0
) -> tuple[Pin, str]:
    """Pin a Kinopub item to a Trakt movie or show; returns the pin and the Trakt title it points at."""
    target = parse_trakt_ref(ref)
    if target.kind is not None and target.kind != kind:
        raise PinRefused(f"{ref} is a Trakt {target.kind}, not a {kind}")
    if season_offset and kind != "show":
        raise PinRefused("a season offset only applies to a show")
    found = _lookup(trakt, kind, target.ref)
    assert found.ids.trakt is not None  # noqa: S101 - _lookup refuses a hit without one
    pin = Pin(kinopub_id, kind, found.ids.trakt, season_offset)
    stores.pins.put(pin)
    stores.sync_state.request_reread([kinopub_id])
    return pin, _describe(found)


def pin_episode(
    stores: PinningStores,
    trakt: TraktCatalog,
    kinopub_id: int,
    season: int,
    episode: int,
    targets: Sequence[tuple[int, int]],
    show: str | None = None,
) -> tuple[EpisodePin, str]:
    """Pin one Kinopub episode to one or more Trakt episodes (in play order); returns the pin and the show."""
    if not targets:
        raise PinRefused("name at least one Trakt episode, like S04E15")
    show_ref = _show_of(stores, trakt, kinopub_id, show)
    table = _season_table(trakt, show_ref)
    missing = [f"S{s:02d}E{n:02d}" for s, n in targets if table.episode(s, n) is None]
    if missing:
        raise PinRefused(f"Trakt show {show_ref} does not list {', '.join(missing)}")
    pin = EpisodePin(kinopub_id, season, episode, tuple(targets))
    stores.pins.put_numbering(pin)
    stores.sync_state.request_reread([kinopub_id])
    return pin, show_ref


def pin_season(
    stores: PinningStores,
    trakt: TraktCatalog,
    kinopub_id: int,
    season: int,
    offset: int,
    *,
    from_episode: int = 1,
    trakt_season: int | None = None,
    show: str | None = None,
) -> tuple[SeasonPin, str]:
    """Kinopub season ``season``, episodes ``from_episode`` on → Trakt season ``trakt_season`` (default: the same
    number, shifted by the item pin's season offset), number + ``offset``."""
    if from_episode < 1:
        raise PinRefused("--from-episode counts from 1")
    show_ref = _show_of(stores, trakt, kinopub_id, show)
    item_pin = stores.pins.load().get(kinopub_id)
    target_season = trakt_season
    if target_season is None:
        target_season = season + (item_pin.season_offset if item_pin and item_pin.trakt_type == "show" else 0)
    table = _season_table(trakt, show_ref)
    if table.season(target_season) is None:
        raise PinRefused(f"Trakt show {show_ref} has no season {target_season}")
    first = from_episode + offset
    if first < 1 or table.episode(target_season, first) is None:
        raise PinRefused(f"Trakt show {show_ref} does not list S{target_season:02d}E{max(first, 0):02d}")
    pin = SeasonPin(kinopub_id, season, target_season, offset, from_episode)
    stores.pins.put_numbering(pin)
    stores.sync_state.request_reread([kinopub_id])
    return pin, show_ref


def _season_table(trakt: TraktCatalog, show: str) -> SeasonTable:
    seasons = trakt.show_seasons(show)
    if seasons is None:
        raise PinRefused(f"Trakt has no show {show!r}")
    return SeasonTable.from_trakt(seasons, 0)


def _lookup(trakt: TraktCatalog, kind: PinKind, ref: str) -> Movie | Show:
    try:
        found: Movie | Show = trakt.movie(ref) if kind == "movie" else trakt.show(ref)
    except BadResponse as exc:
        if exc.status == 404:
            raise PinRefused(f"Trakt has no {kind} {ref!r}") from None
        raise
    if found.ids.trakt is None:
        raise PinRefused(f"Trakt answered for {kind} {ref!r} without a Trakt id")
    return found


def _show_of(stores: PinningStores, trakt: TraktCatalog, kinopub_id: int, show: str | None) -> str:
    """The Trakt show of a Kinopub series, as ``/shows/{id}`` takes it: given, pinned, or the one its unmatched
    episodes were looked up in."""
    if show is not None:
        target = parse_trakt_ref(show)
        if target.kind == "movie":
            raise PinRefused(f"{show} is a Trakt movie, not a show")
        return str(_lookup(trakt, "show", target.ref).ids.trakt)
    pin = stores.pins.load().get(kinopub_id)
    if pin is not None and pin.trakt_type == "show":
        return str(pin.trakt_id)
    for item in stores.unmatched.load():
        if item.kinopub_id == kinopub_id and item.trakt_show is not None:
            return item.trakt_show
    raise PinRefused(
        f"which Trakt show is Kinopub item {kinopub_id}? Pass --show with its Trakt id, slug or URL "
        f"(or pin the item first: `kinotrakt map {kinopub_id} show <ref>`)"
    )


def _describe(found: Movie | Show) -> str:
    return f"{found.title or '(untitled)'}" + (f" ({found.year})" if found.year else "")
