"""The run lease (``<acct>#sync`` / ``lease``): a conditional put, so of two invocations one runs."""

from __future__ import annotations

from datetime import datetime

from kinotrakt.storage.dynamo.table import Table, expiry, n, s

KIND = "sync"
SK = "lease"


class DynamoLeaseStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def acquire(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        table = self._table
        try:
            table.client.put_item(
                TableName=table.name,
                Item={**table.key(KIND, SK), "owner": s(owner), "expires_at": n(expiry(expires_at))},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": n(now.timestamp())},
            )
        except table.conditional_check_failed:
            return False
        return True

    def release(self, owner: str) -> None:
        table = self._table
        try:
            table.client.delete_item(
                TableName=table.name,
                Key=table.key(KIND, SK),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": s(owner)},
            )
        except table.conditional_check_failed:
            # Our lease expired and another run took it: it is theirs to release now.
            return
