"""The book of known Kinopub items (``<acct>#items``): each save appends the items it changed as one item (or a
few, under DynamoDB's 400 KB item limit), and a load merges them in save order, so a run writes only what
changed (nothing on a quiet run) and reads the whole book with one paginated query. When saves pile up, the
next save writes the merged book once and deletes the older items it replaces (written first, deleted after:
a run stopped in between still loads the same book)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kinotrakt.storage.dynamo.table import Table, read_str, s
from kinotrakt.storage.ports import KnownItem, KnownItems

if TYPE_CHECKING:
    from kinotrakt.storage.dynamo.table import Item

KIND = "items"
# DynamoDB's item limit is 400 KB; a save whose JSON is larger than this is split over items.
ITEM_BYTES = 350_000
# A save that would make the book more items than this merges it into one save first.
COMPACT_AFTER = 24


def _chunks(rows: Sequence[list[Any]]) -> Iterator[str]:
    """The rows' JSON, split so that no item comes near DynamoDB's 400 KB limit (titles stay UTF-8)."""
    chunk: list[str] = []
    size = 2
    for row in rows:
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        row_size = len(text.encode()) + 1
        if chunk and size + row_size > ITEM_BYTES:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(text)
        size += row_size
    if chunk:
        yield "[" + ",".join(chunk) + "]"


class DynamoKnownItemStore:
    def __init__(self, table: Table) -> None:
        self._table = table
        self._saves: list[str] | None = None  # the sort keys the last load read, in save order

    def load(self) -> KnownItems:
        book = KnownItems()
        sort_keys: list[str] = []
        for item in self._table.query(KIND):  # sk order = save order
            sort_keys.append(read_str(item, "sk") or "")
            if item.get("covers_history", {}).get("BOOL"):
                book.covers_history = True
            for row in json.loads(read_str(item, "items") or "[]"):
                known = KnownItem.from_row(row)
                book.items[known.kinopub_id] = known
        self._saves = sort_keys
        return book

    def save(self, changed: Sequence[KnownItem], *, covers_history: bool = False) -> None:
        if not changed and not covers_history:
            return
        if self._saves is None:
            self.load()
        saves = self._saves or []
        old: list[str] = []
        if len({sk.split("#")[0] for sk in saves}) >= COMPACT_AFTER:
            book = self.load()
            book.items.update((item.kinopub_id, item) for item in changed)
            changed = list(book.items.values())
            covers_history = covers_history or book.covers_history
            old = self._saves or []
        number = max((int(sk.split("#")[0]) for sk in saves), default=0) + 1
        prefix = f"{number:010d}#{uuid.uuid4().hex}#"
        rows = [item.to_row() for item in sorted(changed, key=lambda item: item.kinopub_id)]
        sort_keys: list[str] = []
        items: list[Item] = []
        for part, chunk in enumerate(_chunks(rows) if rows else ["[]"]):
            sort_keys.append(f"{prefix}{part:04d}")
            item: Item = {**self._table.key(KIND, sort_keys[-1]), "items": s(chunk)}
            if covers_history:
                item["covers_history"] = {"BOOL": True}
            items.append(item)
        self._table.put_all(items)
        if old:
            self._table.delete_all(KIND, old)
        self._saves = [*([] if old else saves), *sort_keys]
