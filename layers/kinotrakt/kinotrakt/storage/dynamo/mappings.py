"""The mapping cache (``<acct>#map``): one item per key, its JSON value and an optional expiry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kinotrakt.storage.dynamo.table import Table, expiry, live, n, read_str, s

if TYPE_CHECKING:
    from kinotrakt.storage.dynamo.table import Item

KIND = "map"


class DynamoMappingStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self, now: datetime) -> dict[str, dict[str, Any]]:
        mappings: dict[str, dict[str, Any]] = {}
        for item in self._table.query(KIND):
            value = read_str(item, "value")
            sort_key = read_str(item, "sk")
            if value is not None and sort_key is not None and live(item, now):
                mappings[sort_key] = json.loads(value)
        return mappings

    def put(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        items: list[Item] = []
        for key, (value, expires_at) in entries.items():
            item: Item = {**self._table.key(KIND, key), "value": s(json.dumps(value))}
            if expires_at is not None:
                item["expires_at"] = n(expiry(expires_at))
            items.append(item)
        self._table.put_all(items)
