"""The one place that builds dedupe keys (DESIGN §3.6).

Trakt stores ``watched_at`` to the minute and never dedupes plays, so two views of the same item in
the same minute are one play, and a different minute is a rewatch (a new play)."""

from __future__ import annotations

from datetime import datetime

from kinotrakt.clock import minute_z

UNKNOWN = "unknown"


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
