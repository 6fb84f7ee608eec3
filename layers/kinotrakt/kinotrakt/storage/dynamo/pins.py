"""Manual mappings: a Kinopub item's Trakt title (``<acct>#pin``, one item per Kinopub item), and episode or season
numbering (``<acct>#numbering``, one item per pinned episode or season range)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from kinotrakt.storage.dynamo.table import Table, n, read_int, read_str, s
from kinotrakt.storage.ports import EpisodePin, NumberingPins, Pin, SeasonPin

if TYPE_CHECKING:
    from kinotrakt.storage.dynamo.table import Item

KIND = "pin"
NUMBERING = "numbering"


class DynamoPinStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self) -> dict[int, Pin]:
        pins: dict[int, Pin] = {}
        for item in self._table.query(KIND):
            kinopub_id = int(read_str(item, "sk") or "0")
            trakt_type: Literal["movie", "show"] = "movie" if read_str(item, "trakt_type") == "movie" else "show"
            pins[kinopub_id] = Pin(
                kinopub_id=kinopub_id,
                trakt_type=trakt_type,
                trakt_id=read_int(item, "trakt_id") or 0,
                season_offset=read_int(item, "season_offset") or 0,
            )
        return pins

    def put(self, pin: Pin) -> None:
        self._table.put(
            {
                **self._table.key(KIND, str(pin.kinopub_id)),
                "trakt_type": s(pin.trakt_type),
                "trakt_id": n(pin.trakt_id),
                "season_offset": n(pin.season_offset),
            }
        )

    def load_numbering(self) -> NumberingPins:
        pins = NumberingPins()
        for item in self._table.query(NUMBERING):
            kind, item_id, season, number = (read_str(item, "sk") or "").split(":")
            if kind == "e":
                targets = json.loads(read_str(item, "trakt_episodes") or "[]")
                pins.add(EpisodePin(int(item_id), int(season), int(number), tuple((ts, tn) for ts, tn in targets)))
            else:
                pins.add(
                    SeasonPin(
                        int(item_id),
                        int(season),
                        trakt_season=read_int(item, "trakt_season") or 0,
                        episode_offset=read_int(item, "episode_offset") or 0,
                        from_episode=int(number),
                    )
                )
        return pins

    def put_numbering(self, pin: EpisodePin | SeasonPin) -> None:
        if isinstance(pin, EpisodePin):
            item: Item = {
                **self._table.key(NUMBERING, numbering_key(pin)),
                "trakt_episodes": s(json.dumps([list(target) for target in pin.trakt_episodes])),
            }
        else:
            item = {
                **self._table.key(NUMBERING, numbering_key(pin)),
                "trakt_season": n(pin.trakt_season),
                "episode_offset": n(pin.episode_offset),
            }
        self._table.put(item)


def numbering_key(pin: EpisodePin | SeasonPin) -> str:
    """An episode pin's key (``e:<item>:<season>:<episode>``), or a season range's (``s:<item>:<season>:<from>``)."""
    if isinstance(pin, EpisodePin):
        return f"e:{pin.kinopub_id}:{pin.season}:{pin.episode}"
    return f"s:{pin.kinopub_id}:{pin.season}:{pin.from_episode}"
