"""Kinopub items that failed to read (``<acct>#failures``): an atomic counter per item, so two overlapping runs
cannot lose a count."""

from __future__ import annotations

from collections.abc import Iterable

from kinotrakt.storage.dynamo.table import Table, n, read_int, read_str

KIND = "failures"


class DynamoItemFailureStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self) -> dict[int, int]:
        return {int(read_str(item, "sk") or 0): read_int(item, "failures") or 0 for item in self._table.query(KIND)}

    def record(self, item_ids: Iterable[int]) -> dict[int, int]:
        table = self._table
        counts: dict[int, int] = {}
        for item_id in dict.fromkeys(item_ids):
            response = table.client.update_item(
                TableName=table.name,
                Key=table.key(KIND, str(item_id)),
                UpdateExpression="ADD failures :one",
                ExpressionAttributeValues={":one": n(1)},
                ReturnValues="UPDATED_NEW",
            )
            counts[item_id] = read_int(response.get("Attributes", {}), "failures") or 0
        return counts

    def clear(self, item_ids: Iterable[int]) -> None:
        self._table.delete_all(KIND, (str(item_id) for item_id in item_ids))
