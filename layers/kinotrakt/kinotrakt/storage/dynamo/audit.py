"""An unfinished audit's progress (``<acct>#audit``): a ``head`` item naming the current generation, and the
document's JSON in ``part#<generation>#<n>`` items.

The document can outgrow DynamoDB's 400 KB item limit (the views a large library has left to check), so it is
split. A save writes the new generation's parts first and then the head (one put, atomic), and only then deletes
the old parts: a reader, or a save that fails half way, always leaves one whole generation behind the head."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from kinotrakt.observability import logger
from kinotrakt.storage.dynamo.table import Table, expiry, live, n, read_int, read_str, s

KIND = "audit"
HEAD = "head"
PART = "part#"
# DynamoDB's item limit is 400 KB (UTF-8 bytes of names and values): a part's JSON stays well under it.
PART_BYTES = 350_000


def split_utf8(text: str, limit: int = PART_BYTES) -> Iterator[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, never cutting a character in two."""
    data = text.encode()
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: the character started earlier
            end -= 1
        yield data[start:end].decode()
        start = end


class DynamoAuditProgressStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self, now: datetime) -> dict[str, Any] | None:
        head = self._table.get(KIND, HEAD)
        if head is None or not live(head, now):
            return None
        prefix = f"{PART}{read_str(head, 'generation')}#"
        parts = [item for item in self._table.query(KIND) if (read_str(item, "sk") or "").startswith(prefix)]
        if len(parts) != read_int(head, "parts"):
            # Parts expire with their head; one missing means the table was changed by hand: start afresh.
            logger.warning("stored audit progress is incomplete; the next audit starts afresh")
            return None
        document: dict[str, Any] = json.loads("".join(read_str(part, "data") or "" for part in parts))
        return document

    def save(self, progress: Mapping[str, Any], expires_at: datetime) -> None:
        table = self._table
        generation = uuid.uuid4().hex
        until = n(expiry(expires_at))
        pieces = list(split_utf8(json.dumps(progress, ensure_ascii=False, separators=(",", ":"))))
        table.put_all(
            {**table.key(KIND, f"{PART}{generation}#{number:05d}"), "data": s(piece), "expires_at": until}
            for number, piece in enumerate(pieces)
        )
        table.put({**table.key(KIND, HEAD), "generation": s(generation), "parts": n(len(pieces)), "expires_at": until})
        keep = f"{PART}{generation}#"
        table.delete_all(KIND, (key for key in self._sort_keys() if key.startswith(PART) and not key.startswith(keep)))

    def clear(self) -> None:
        self._table.delete_all(KIND, self._sort_keys())

    def _sort_keys(self) -> list[str]:
        return [read_str(item, "sk") or "" for item in self._table.query(KIND)]
