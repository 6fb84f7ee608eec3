"""The run lease (``<acct>#sync`` / ``lease``): a conditional put, so of two invocations one runs. ``taken_at``
(added later, so a lease written by an older version may lack it) lets a skipped run say since when it is held."""

from __future__ import annotations

from datetime import datetime

from kinotrakt.clock import iso_z, parse_iso, utc_from_epoch
from kinotrakt.storage.dynamo.table import Table, expiry, live, n, read_int, read_str, s
from kinotrakt.storage.ports import LeaseHolder

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
                Item={
                    **table.key(KIND, SK),
                    "owner": s(owner),
                    "expires_at": n(expiry(expires_at)),
                    "taken_at": s(iso_z(now)),
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": n(now.timestamp())},
            )
        except table.conditional_check_failed:
            return False
        return True

    def holder(self, now: datetime) -> LeaseHolder | None:
        item = self._table.get(KIND, SK)
        expires_at = None if item is None else read_int(item, "expires_at")
        if item is None or expires_at is None or not live(item, now):
            return None
        return LeaseHolder(read_str(item, "owner") or "", _time(read_str(item, "taken_at")), utc_from_epoch(expires_at))

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


def _time(value: str | None) -> datetime | None:
    try:
        return parse_iso(value) if value else None
    except ValueError:
        return None
