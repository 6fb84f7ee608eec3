"""Unmatched views (``<acct>#unmatched``), one item per unmatched key; a newer reason replaces the older."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING

from kinotrakt.clock import parse_iso
from kinotrakt.storage.dynamo.table import Table, n, read_int, read_str, s
from kinotrakt.storage.ports import UnmatchedItem

if TYPE_CHECKING:
    from kinotrakt.storage.dynamo.table import Item

KIND = "unmatched"


class DynamoUnmatchedStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self) -> list[UnmatchedItem]:
        unmatched = []
        for item in self._table.query(KIND):
            seen_at = read_str(item, "seen_at")
            unmatched.append(
                UnmatchedItem(
                    key=read_str(item, "sk") or "",
                    kinopub_id=read_int(item, "kinopub_id") or 0,
                    title=read_str(item, "title") or "",
                    reason=read_str(item, "reason") or "",
                    detail=read_str(item, "detail") or "",
                    season=read_int(item, "season"),
                    episode=read_int(item, "episode"),
                    seen_at=parse_iso(seen_at) if seen_at else None,
                    trakt_show=read_str(item, "trakt_show"),
                )
            )
        return unmatched

    def put(self, items: Sequence[UnmatchedItem]) -> None:
        latest = {item.key: item for item in items}  # a BatchWriteItem may not name the same key twice
        self._table.put_all(self._item(item) for item in latest.values())

    def remove(self, keys: Iterable[str]) -> None:
        self._table.delete_all(KIND, keys)

    def _item(self, unmatched: UnmatchedItem) -> Item:
        item: Item = {
            **self._table.key(KIND, unmatched.key),
            "kinopub_id": n(unmatched.kinopub_id),
            "title": s(unmatched.title),
            "reason": s(unmatched.reason),
            "detail": s(unmatched.detail),
        }
        if unmatched.season is not None:
            item["season"] = n(unmatched.season)
        if unmatched.episode is not None:
            item["episode"] = n(unmatched.episode)
        if unmatched.seen_at is not None:
            item["seen_at"] = s(unmatched.seen_at.astimezone(UTC).isoformat())
        if unmatched.trakt_show is not None:
            item["trakt_show"] = s(unmatched.trakt_show)
        return item
