"""The one-time login ``state`` (``<acct>#oauth``), with a 10-minute expiry set by the login route."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from kinotrakt.storage.dynamo.table import Table, expiry, n, read_str, s

KIND = "oauth"


class DynamoLoginStateStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None:
        self._table.put(
            {**self._table.key(KIND, state), "data": s(json.dumps(dict(data))), "expires_at": n(expiry(expires_at))}
        )

    def consume(self, state: str, now: datetime) -> dict[str, str] | None:
        table = self._table
        # One conditional delete: of two callbacks racing with the same state, exactly one gets the data.
        try:
            response = table.client.delete_item(
                TableName=table.name,
                Key=table.key(KIND, state),
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues={":now": n(now.timestamp())},
                ReturnValues="ALL_OLD",
            )
        except table.conditional_check_failed:
            return None
        data = read_str(response.get("Attributes", {}), "data")
        if data is None:
            return None
        decoded: dict[str, str] = json.loads(data)
        return decoded
