"""The watermark, the full-scan bookkeeping, the items to re-read and the Trakt GETs of the last runs
(``<acct>#sync`` / ``state``), each attribute updated on its own so a write never clobbers another."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from kinotrakt.clock import iso_z, parse_iso
from kinotrakt.storage.dynamo.table import Table, read_str, s
from kinotrakt.storage.ports import SyncState

KIND = "sync"
SK = "state"


class DynamoSyncStateStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self) -> SyncState:
        item = self._table.get(KIND, SK) or {}
        watermark = read_str(item, "last_success_at")
        full_scan = read_str(item, "last_full_scan")
        scan_done = read_str(item, "scan_done")
        reread = item.get("reread", {}).get("NS", [])
        return SyncState(
            watermark=parse_iso(watermark) if watermark else None,
            last_full_scan=parse_iso(full_scan) if full_scan else None,
            scan_done=frozenset(int(i) for i in json.loads(scan_done)) if scan_done else frozenset(),
            reread=frozenset(int(i) for i in reread),
            trakt_reads=_reads_from_text(read_str(item, "trakt_gets")),
        )

    def advance_watermark(self, value: datetime) -> datetime:
        table = self._table
        candidate = iso_z(value)  # fixed width, so string order is time order
        try:
            table.client.update_item(
                TableName=table.name,
                Key=table.key(KIND, SK),
                UpdateExpression="SET last_success_at = :v",
                ConditionExpression="attribute_not_exists(last_success_at) OR last_success_at < :v",
                ExpressionAttributeValues={":v": s(candidate)},
            )
        except table.conditional_check_failed:
            stored = read_str(table.get(KIND, SK) or {}, "last_success_at")
            return parse_iso(stored or candidate)
        return parse_iso(candidate)

    def set_last_full_scan(self, value: datetime) -> None:
        table = self._table
        table.client.update_item(
            TableName=table.name,
            Key=table.key(KIND, SK),
            UpdateExpression="SET last_full_scan = :v",
            ExpressionAttributeValues={":v": s(iso_z(value))},
        )

    def set_scan_progress(self, done: Iterable[int] | None) -> None:
        table = self._table
        if done is None:
            table.client.update_item(TableName=table.name, Key=table.key(KIND, SK), UpdateExpression="REMOVE scan_done")
            return
        table.client.update_item(
            TableName=table.name,
            Key=table.key(KIND, SK),
            UpdateExpression="SET scan_done = :v",
            ExpressionAttributeValues={":v": s(json.dumps(sorted(done)))},
        )

    def request_reread(self, item_ids: Iterable[int]) -> None:
        self._change_reread("ADD", item_ids)

    def clear_reread(self, item_ids: Iterable[int]) -> None:
        self._change_reread("DELETE", item_ids)

    def _change_reread(self, action: Literal["ADD", "DELETE"], item_ids: Iterable[int]) -> None:
        # A number set changed in place: the CLI asking and a run clearing never overwrite each other.
        ids = sorted({str(item_id) for item_id in item_ids})
        if not ids:
            return  # DynamoDB refuses an empty set
        table = self._table
        table.client.update_item(
            TableName=table.name,
            Key=table.key(KIND, SK),
            UpdateExpression=f"{action} reread :ids",
            ExpressionAttributeValues={":ids": {"NS": ids}},
        )

    def set_trakt_reads(self, sent_at: Iterable[datetime]) -> None:
        table = self._table
        text = _reads_to_text(sent_at)
        if text is None:
            table.client.update_item(
                TableName=table.name, Key=table.key(KIND, SK), UpdateExpression="REMOVE trakt_gets"
            )
            return
        table.client.update_item(
            TableName=table.name,
            Key=table.key(KIND, SK),
            UpdateExpression="SET trakt_gets = :v",
            ExpressionAttributeValues={":v": s(text)},
        )


# Up to TRAKT_GET_LIMIT times: stored compactly as JSON ``{"from": <iso_z>, "tenths": [...]}``, each time
# tenths of a second after ``from`` (a few KB for 450 reads), rounded up so a read never counts too briefly.


def _reads_to_text(sent_at: Iterable[datetime]) -> str | None:
    times = sorted(sent_at)
    if not times:
        return None
    start = times[0].replace(microsecond=0)
    tenths = [math.ceil(round((at - start).total_seconds() * 10, 6)) for at in times]
    return json.dumps({"from": iso_z(start), "tenths": tenths}, separators=(",", ":"))


def _reads_from_text(text: str | None) -> tuple[datetime, ...]:
    """The stored reads; an attribute this version cannot read counts as none (it only paces, it loses nothing)."""
    if not text:
        return ()
    try:
        data = json.loads(text)
        start = parse_iso(data["from"])
        return tuple(start + timedelta(seconds=int(tenth) / 10) for tenth in data["tenths"])
    except (ValueError, KeyError, TypeError):
        return ()
