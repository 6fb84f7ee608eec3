"""Every key the sync builds, in one place: dedupe keys, view names, unmatched keys, mapping-cache keys.

They are all stored (the ledger, the unmatched list and the mapping cache keep them across runs), so their
formats never change: a reformatted key would make a deployment re-send plays it already sent, or forget a
cached mapping. ``tests/unit/test_mapping_and_keys.py`` pins every format.

Dedupe keys follow Trakt: it stores ``watched_at`` to the minute and never dedupes plays (reference/trakt-api.md),
so two views of the same item in the same minute are one play, and a different minute is a rewatch (a new play).
"""

from __future__ import annotations

from datetime import datetime

from kinotrakt.clock import minute_z

UNKNOWN = "unknown"

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


# --- Kinopub views (the ledger remembers the watched_at each was sent with) -------------------------------------


def movie_view_ref(kinopub_id: int) -> str:
    return f"movie:{kinopub_id}"


def episode_view_ref(kinopub_id: int, season: int | None, episode: int | None, pin_part: int = 0) -> str:
    """An episode; the second and later parts of an episode pinned to several Trakt episodes get a suffix."""
    ref = f"episode:{kinopub_id}:{season}:{episode}"
    return ref if pin_part == 0 else f"{ref}:{pin_part}"


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
