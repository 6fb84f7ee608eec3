"""A show's season table as the mapping needs it, and its compact cached form.

Per episode: the Trakt id (what a play is sent with), and what the numbering rules compare
(``sync/numbering.py``): the title, the runtime and whether it has aired. The table is cached in one DynamoDB
item (the mapping cache) whose limit is 400 KB, and a daily soap can list thousands of episodes, so the cached
form holds only those fields, as parallel lists per season, with titles cut short — and drops the titles, then
gives up caching, when even that would not fit (the rules that need a title then refuse to match: a missing
play rather than a wrong one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kinotrakt.trakt.models import Season

CACHE_FORMAT = 2
# Far below DynamoDB's 400 KB item limit: the item also holds its keys and expiry, and JSON escapes non-ASCII.
CACHE_BYTES = 300_000
TITLE_CHARS = (80, 24)  # tried in turn until the table fits; then no titles at all
_HOUR = 3600


@dataclass(frozen=True)
class TraktEpisodeInfo:
    season: int
    number: int
    trakt_id: int
    title: str | None = None
    runtime: int | None = None  # minutes
    aired_hour: int | None = None  # ``first_aired`` in whole hours since the epoch (rounded down)

    def aired_before(self, now: datetime) -> bool:
        return self.aired_hour is not None and self.aired_hour * _HOUR <= now.timestamp()


@dataclass(frozen=True)
class SeasonTable:
    fetched_at: int  # epoch seconds
    seasons: Mapping[int, tuple[TraktEpisodeInfo, ...]]  # by season number, episodes in number order

    @classmethod
    def from_trakt(cls, seasons: Iterable[Season], fetched_at: int) -> SeasonTable:
        table: dict[int, list[TraktEpisodeInfo]] = {}
        for season in seasons:
            for episode in season.episodes:
                if episode.ids.trakt is None:
                    continue
                aired = None if episode.first_aired is None else int(episode.first_aired.timestamp()) // _HOUR
                table.setdefault(episode.season, []).append(
                    TraktEpisodeInfo(
                        episode.season, episode.number, episode.ids.trakt, episode.title, episode.runtime, aired
                    )
                )
        return cls(fetched_at, {n: tuple(sorted(eps, key=lambda e: e.number)) for n, eps in table.items()})

    def season(self, number: int) -> tuple[TraktEpisodeInfo, ...] | None:
        return self.seasons.get(number)

    def episode(self, season: int, number: int) -> TraktEpisodeInfo | None:
        for episode in self.seasons.get(season, ()):
            if episode.number == number:
                return episode
        return None

    def episode_count(self) -> int:
        return sum(len(episodes) for episodes in self.seasons.values())

    # --- the cached form ----------------------------------------------------------------------------------

    def to_cache(self) -> dict[str, Any] | None:
        """The compact form for the mapping cache, or None when even the smallest does not fit in an item."""
        for chars in (*TITLE_CHARS, 0):
            value = self._encoded(chars)
            if len(json.dumps(value).encode()) <= CACHE_BYTES:
                return value
        return None

    def _encoded(self, title_chars: int) -> dict[str, Any]:
        seasons: dict[str, dict[str, list[Any]]] = {}
        for number, episodes in self.seasons.items():
            columns: dict[str, list[Any]] = {
                "n": [e.number for e in episodes],
                "id": [e.trakt_id for e in episodes],
                "rt": [e.runtime for e in episodes],
                "air": [e.aired_hour for e in episodes],
            }
            if title_chars:
                columns["t"] = [None if e.title is None else e.title[:title_chars] for e in episodes]
            seasons[str(number)] = columns
        return {"v": CACHE_FORMAT, "fetched_at": self.fetched_at, "seasons": seasons}

    @classmethod
    def from_cache(cls, value: Mapping[str, Any]) -> SeasonTable | None:
        """The table, or None for an entry in an older form (fetched again: it is only a cache)."""
        if value.get("v") != CACHE_FORMAT:
            return None
        seasons: dict[int, tuple[TraktEpisodeInfo, ...]] = {}
        for key, columns in value["seasons"].items():
            number = int(key)
            titles = columns.get("t") or [None] * len(columns["n"])
            seasons[number] = tuple(
                TraktEpisodeInfo(number, n, trakt_id, title, runtime, aired)
                for n, trakt_id, runtime, aired, title in zip(
                    columns["n"], columns["id"], columns["rt"], columns["air"], titles, strict=True
                )
            )
        return cls(int(value["fetched_at"]), seasons)
