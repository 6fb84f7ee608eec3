"""The ledger (``<acct>#ledger``): one item per pushed batch, so a 20,000-play history loads in a few queries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence

from kinotrakt.clock import iso_z
from kinotrakt.storage.dynamo.table import Table, read_str, s
from kinotrakt.storage.ports import Ledger, LedgerEntry

KIND = "ledger"
# DynamoDB's item limit is 400 KB; a ledger batch whose JSON is larger than this is split over items.
LEDGER_ITEM_BYTES = 350_000


def _chunks(rows: list[list[str]]) -> Iterator[str]:
    """The batch's JSON, split so that no item comes near DynamoDB's 400 KB limit."""
    whole = json.dumps(rows)
    if len(whole.encode()) <= LEDGER_ITEM_BYTES:  # a batch of 100 plays is some 10 KB: measured once, not per row
        yield whole
        return
    chunk: list[list[str]] = []
    size = 2
    for row in rows:
        row_size = len(json.dumps(row).encode()) + 2
        if chunk and size + row_size > LEDGER_ITEM_BYTES:
            yield json.dumps(chunk)
            chunk, size = [], 2
        chunk.append(row)
        size += row_size
    if chunk:
        yield json.dumps(chunk)


class DynamoLedgerStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self) -> Ledger:
        ledger = Ledger()
        for item in self._table.query(KIND):  # sk order = the order the batches were sent
            for key, view_ref, watched_at in json.loads(read_str(item, "entries") or "[]"):
                ledger.keys.add(key)
                ledger.watched_at_by_view[view_ref] = watched_at
                ledger.view_by_key[key] = view_ref
        return ledger

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        # Sorted by the batch's send time; the random suffix keeps two batches of the same millisecond apart.
        sent_at = iso_z(min(entry.sent_at for entry in entries))
        rows = [[entry.key, entry.view_ref, entry.watched_at] for entry in entries]
        self._table.put_all(
            {**self._table.key(KIND, f"{sent_at}#{uuid.uuid4().hex}"), "entries": s(chunk)} for chunk in _chunks(rows)
        )
