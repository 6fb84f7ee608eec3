"""Every key the sync builds, in one place: dedupe keys, view names, unmatched keys, mapping-cache keys.

They are all stored (the ledger, the unmatched list and the mapping cache keep them across runs), so their
formats never change: a reformatted key would make a deployment re-send plays it already sent, or forget a
cached mapping. ``tests/unit/test_mapping_and_keys.py`` pins every format.

Dedupe keys follow Trakt: it stores ``watched_at`` to the minute and never dedupes plays (docs/trakt.md#history),
so two views of the same item in the same minute are one play, and a different minute is a rewatch (a new play).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from kinotrakt.clock import minute_z

UNKNOWN = "unknown"
# Trakt answers a play of unknown date with this ``watched_at`` (docs/trakt.md#history).
UNKNOWN_PLAY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = re.compile(r"(movie|episode):(.+):(unknown|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z)")

# --- dedupe keys (the ledger and the remote index) -------------------------------------------------------------


def minute_or_unknown(watched_at: datetime | None) -> str:
    return UNKNOWN if watched_at is None else minute_z(watched_at)


def movie_key(watched_at: datetime | None, *, imdb: str | None, trakt_id: int | None = None) -> str:
    minute = minute_or_unknown(watched_at)
    if imdb:
        return f"movie:{imdb}:{minute}"
    if trakt_id is None:
        raise ValueError("a movie key needs an IMDb id or a Trakt id")
    return f"movie:trakt:{trakt_id}:{minute}"


def episode_key(watched_at: datetime | None, *, trakt_episode_id: int) -> str:
    return f"episode:{trakt_episode_id}:{minute_or_unknown(watched_at)}"


def has_unknown_time(key: str) -> bool:
    """A dedupe key of a view whose time is unknown (such a view is a duplicate of *any* play of its item)."""
    return key.endswith(":" + UNKNOWN)


def play_time(watched_at: datetime) -> datetime | None:
    """The time a Trakt play's key is built with: None (``unknown``) for Trakt's stand-in for an unknown date."""
    return None if minute_z(watched_at) == minute_z(UNKNOWN_PLAY_TIME) else watched_at


@dataclass(frozen=True)
class KeyParts:
    """A dedupe key read back: what the audit needs to send a stored view again (the ids its play takes)."""

    kind: Literal["movie", "episode"]
    imdb: str | None
    trakt_id: int | None
    minute: str  # ``YYYY-MM-DDTHH:MMZ`` or ``unknown``

    @property
    def item(self) -> str:
        """The key without its minute: every play of one movie or episode shares it."""
        if self.kind == "episode":
            return f"episode:{self.trakt_id}"
        return f"movie:{self.imdb}" if self.imdb else f"movie:trakt:{self.trakt_id}"


def parse_key(key: str) -> KeyParts:
    """The parts of a key :func:`movie_key` or :func:`episode_key` built; ValueError for anything else."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise ValueError("not a dedupe key")
    kind, head, minute = match.groups()
    if kind == "episode":
        return KeyParts("episode", None, int(head), minute)
    if head.startswith("trakt:"):
        return KeyParts("movie", None, int(head.removeprefix("trakt:")), minute)
    return KeyParts("movie", head, None, minute)


# --- Kinopub views (the ledger remembers the watched_at each was sent with) -------------------------------------


def movie_view_ref(kinopub_id: int) -> str:
    return f"movie:{kinopub_id}"


def episode_view_ref(kinopub_id: int, season: int | None, episode: int | None, pin_part: int = 0) -> str:
    """An episode; the second and later parts of an episode pinned to several Trakt episodes get a suffix."""
    ref = f"episode:{kinopub_id}:{season}:{episode}"
    return ref if pin_part == 0 else f"{ref}:{pin_part}"


def view_ref_item(view_ref: str) -> int:
    """The Kinopub item of a view ref (ValueError when it is not one)."""
    _, _, rest = view_ref.partition(":")
    return int(rest.split(":")[0])


# --- unmatched items (one per Kinopub item, or one per episode) ------------------------------------------------


def unmatched_item_key(kinopub_id: int) -> str:
    return f"item:{kinopub_id}"


def unmatched_episode_key(kinopub_id: int, season: int | None, episode: int | None) -> str:
    return f"episode:{kinopub_id}:{season}:{episode}"


# --- the mapping cache ------------------------------------------------------------------------------------------


def movie_imdb_key(imdb: str) -> str:
    """Trakt's not_found answer for a movie sent by this IMDb id."""
    return f"movie:imdb:{imdb}"


def movie_title_key(kinopub_id: int) -> str:
    """The text search for a Kinopub movie without an IMDb id."""
    return f"movie:title:{kinopub_id}"


def show_imdb_key(imdb: str) -> str:
    """The Trakt show with this IMDb id."""
    return f"show:imdb:{imdb}"


def show_title_key(kinopub_id: int) -> str:
    """The text search for a Kinopub series without an IMDb id."""
    return f"show:title:{kinopub_id}"


def seasons_key(show: str | int) -> str:
    """A Trakt show's season table, under the id it was asked with: its Trakt id, or its IMDb id."""
    return f"seasons:{show}"
