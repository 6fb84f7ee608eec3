"""``StateStore`` on the one DynamoDB table of DESIGN §2: ``pk`` (S, hash) + ``sk`` (S, range), TTL on
``expires_at`` (whole epoch seconds).

Item kinds; every ``pk`` starts with ``<ACCOUNT_ID>#``, so two accounts can share a table:

============================  ======================  =====================================================
pk                            sk                      attributes
============================  ======================  =====================================================
``<acct>#sync``               ``lease``               ``owner``, ``expires_at``
``<acct>#sync``               ``state``               ``last_success_at`` (``iso_z``), ``last_full_scan``,
                                                      ``last_activities`` (JSON), ``scan_done`` (JSON ids),
                                                      ``reread`` (number set: items pinned since)
``<acct>#map``                mapping key             ``value`` (JSON), optional ``expires_at``
``<acct>#ledger``             ``<sent_at>#<uuid>``    ``entries``: JSON ``[[key, view_ref, watched_at], ...]``
``<acct>#unmatched``          item key                ``kinopub_id``, ``title``, ``reason``, ``detail``,
                                                      optional ``season``, ``episode``, ``seen_at``,
                                                      ``trakt_show``
``<acct>#failures``           Kinopub item id         ``failures`` (atomic counter)
``<acct>#report``             ``<at>`` (``iso_z``)    ``report`` (JSON), ``expires_at`` (+90 days)
``<acct>#pin``                Kinopub item id         ``trakt_type``, ``trakt_id``, ``season_offset``
``<acct>#numbering``          ``e:<item>:<s>:<e>``    ``trakt_episodes`` (JSON ``[[season, number], ...]``)
``<acct>#numbering``          ``s:<item>:<s>:<from>`` ``trakt_season``, ``episode_offset``
``<acct>#oauth``              state                   ``data`` (JSON), ``expires_at``
============================  ======================  =====================================================

Why this shape: the sync reads each kind with one paginated Query (a 600-show library's mapping cache or a
20,000-play ledger costs a few calls, not one per item), and the ledger holds one item per pushed batch
rather than one per play. DynamoDB deletes expired items lazily (up to days late), so every read that
cares about expiry also compares ``expires_at`` with ``now`` itself. Reads are strongly consistent: the
ledger and the watermark guard against duplicates, so a stale read is never worth the saved half-unit.

Throttling errors propagate as boto3 raises them (botocore already retried them); conditional-check
failures are handled where the port's semantics say what they mean.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from kinotrakt.clock import iso_z, parse_iso
from kinotrakt.errors import ServiceUnavailable
from kinotrakt.storage.ports import (
    EpisodePin,
    Ledger,
    LedgerEntry,
    NumberingPins,
    Pin,
    SeasonPin,
    SyncState,
    UnmatchedItem,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, PaginatorConfigTypeDef, WriteRequestTypeDef

    Item = dict[str, AttributeValueTypeDef]

REPORT_RETENTION = timedelta(days=90)
# DynamoDB's item limit is 400 KB; a ledger batch whose JSON is larger than this is split over items.
LEDGER_ITEM_BYTES = 350_000
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
BATCH_WRITE_ATTEMPTS = 8


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _expiry(value: datetime) -> int:
    # Whole epoch seconds (the TTL attribute's format), rounded up so nothing expires early.
    return math.ceil(value.timestamp())


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("S")


def _int(item: Item, name: str) -> int | None:
    value = item.get(name)
    number = None if value is None else value.get("N")
    return None if number is None else int(number)


def _live(item: Item, now: datetime) -> bool:
    expires_at = _int(item, "expires_at")
    return expires_at is None or expires_at > now.timestamp()


def _ledger_chunks(rows: list[list[str]]) -> Iterator[str]:
    """The batch's JSON, split so that no item comes near DynamoDB's 400 KB limit."""
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


class DynamoStateStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        account_id: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._account = account_id
        self._sleep = sleep  # backoff between BatchWriteItem retries of unprocessed items

    # keys and generic operations ---------------------------------------------------------------------------

    def _pk(self, kind: str) -> str:
        return f"{self._account}#{kind}"

    def _key(self, kind: str, sk: str) -> Item:
        return {"pk": _s(self._pk(kind)), "sk": _s(sk)}

    def _get(self, kind: str, sk: str) -> Item | None:
        response = self._client.get_item(TableName=self._table, Key=self._key(kind, sk), ConsistentRead=True)
        return response.get("Item")

    def _query(self, kind: str, *, newest_first: int | None = None) -> Iterator[Item]:
        """Every item of one kind in ``sk`` order, or only the last ``newest_first`` in reverse order."""
        pagination: PaginatorConfigTypeDef = {}
        if newest_first is not None:
            pagination = {"MaxItems": newest_first, "PageSize": newest_first}
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(self._pk(kind))},
            ConsistentRead=True,
            ScanIndexForward=newest_first is None,
            PaginationConfig=pagination,
        )
        for page in pages:
            yield from page["Items"]

    def _batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: Mapping[str, Sequence[WriteRequestTypeDef]] = {
                self._table: requests[start : start + BATCH_WRITE_LIMIT]
            }
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                response = self._client.batch_write_item(RequestItems=pending)
                unprocessed = response.get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                # DynamoDB hands back what it throttled inside an accepted batch; AWS asks for backoff.
                pending = cast("Mapping[str, Sequence[WriteRequestTypeDef]]", unprocessed)
                self._sleep(min(0.05 * 2**attempt, 2.0))
            else:
                left = sum(len(batch) for batch in pending.values())
                raise ServiceUnavailable("DynamoDB", f"{left} writes still unprocessed after {attempt + 1} attempts")

    def _put_all(self, items: Iterable[Item]) -> None:
        self._batch_write([{"PutRequest": {"Item": item}} for item in items])

    def _delete_all(self, kind: str, sort_keys: Iterable[str]) -> None:
        # A BatchWriteItem may not name the same key twice.
        unique = dict.fromkeys(sort_keys)
        self._batch_write([{"DeleteRequest": {"Key": self._key(kind, sk)}} for sk in unique])

    # lease (DESIGN §3.1) -----------------------------------------------------------------------------------

    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**self._key("sync", "lease"), "owner": _s(owner), "expires_at": _n(_expiry(expires_at))},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": _n(now.timestamp())},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, owner: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key("sync", "lease"),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # Our lease expired and another run took it: it is theirs to release now.
            return

    # watermark and scan bookkeeping ------------------------------------------------------------------------

    def load_sync_state(self) -> SyncState:
        item = self._get("sync", "state") or {}
        watermark = _str(item, "last_success_at")
        full_scan = _str(item, "last_full_scan")
        activities = _str(item, "last_activities")
        scan_done = _str(item, "scan_done")
        reread = item.get("reread", {}).get("NS", [])
        return SyncState(
            watermark=parse_iso(watermark) if watermark else None,
            last_full_scan=parse_iso(full_scan) if full_scan else None,
            last_activities=json.loads(activities) if activities else None,
            scan_done=frozenset(int(i) for i in json.loads(scan_done)) if scan_done else frozenset(),
            reread=frozenset(int(i) for i in reread),
        )

    def advance_watermark(self, value: datetime) -> datetime:
        candidate = iso_z(value)  # fixed width, so string order is time order
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key("sync", "state"),
                UpdateExpression="SET last_success_at = :v",
                ConditionExpression="attribute_not_exists(last_success_at) OR last_success_at < :v",
                ExpressionAttributeValues={":v": _s(candidate)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            stored = _str(self._get("sync", "state") or {}, "last_success_at")
            return parse_iso(stored or candidate)
        return parse_iso(candidate)

    def set_last_full_scan(self, value: datetime) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._key("sync", "state"),
            UpdateExpression="SET last_full_scan = :v",
            ExpressionAttributeValues={":v": _s(iso_z(value))},
        )

    def set_last_activities(self, value: Mapping[str, Any] | None) -> None:
        if value is None:
            self._client.update_item(
                TableName=self._table, Key=self._key("sync", "state"), UpdateExpression="REMOVE last_activities"
            )
            return
        self._client.update_item(
            TableName=self._table,
            Key=self._key("sync", "state"),
            UpdateExpression="SET last_activities = :v",
            ExpressionAttributeValues={":v": _s(json.dumps(value))},
        )

    def set_scan_progress(self, done: Iterable[int] | None) -> None:
        if done is None:
            self._client.update_item(
                TableName=self._table, Key=self._key("sync", "state"), UpdateExpression="REMOVE scan_done"
            )
            return
        self._client.update_item(
            TableName=self._table,
            Key=self._key("sync", "state"),
            UpdateExpression="SET scan_done = :v",
            ExpressionAttributeValues={":v": _s(json.dumps(sorted(done)))},
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
        self._client.update_item(
            TableName=self._table,
            Key=self._key("sync", "state"),
            UpdateExpression=f"{action} reread :ids",
            ExpressionAttributeValues={":ids": {"NS": ids}},
        )

    # mapping cache -----------------------------------------------------------------------------------------

    def load_mappings(self, now: datetime) -> dict[str, dict[str, Any]]:
        mappings: dict[str, dict[str, Any]] = {}
        for item in self._query("map"):
            value = _str(item, "value")
            sort_key = _str(item, "sk")
            if value is not None and sort_key is not None and _live(item, now):
                mappings[sort_key] = json.loads(value)
        return mappings

    def put_mappings(self, entries: Mapping[str, tuple[dict[str, Any], datetime | None]]) -> None:
        items: list[Item] = []
        for key, (value, expires_at) in entries.items():
            item: Item = {**self._key("map", key), "value": _s(json.dumps(value))}
            if expires_at is not None:
                item["expires_at"] = _n(_expiry(expires_at))
            items.append(item)
        self._put_all(items)

    # ledger ------------------------------------------------------------------------------------------------

    def load_ledger(self) -> Ledger:
        ledger = Ledger()
        for item in self._query("ledger"):  # sk order = the order the batches were sent
            for key, view_ref, watched_at in json.loads(_str(item, "entries") or "[]"):
                ledger.keys.add(key)
                ledger.watched_at_by_view[view_ref] = watched_at
        return ledger

    def add_to_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        sent_at = iso_z(min(entry.sent_at for entry in entries))
        rows = [[entry.key, entry.view_ref, entry.watched_at] for entry in entries]
        self._put_all(
            {**self._key("ledger", f"{sent_at}#{uuid.uuid4().hex}"), "entries": _s(chunk)}
            for chunk in _ledger_chunks(rows)
        )

    # unmatched ---------------------------------------------------------------------------------------------

    def put_unmatched(self, items: Sequence[UnmatchedItem]) -> None:
        latest = {item.key: item for item in items}  # a BatchWriteItem may not name the same key twice
        self._put_all(self._unmatched_item(item) for item in latest.values())

    def _unmatched_item(self, unmatched: UnmatchedItem) -> Item:
        item: Item = {
            **self._key("unmatched", unmatched.key),
            "kinopub_id": _n(unmatched.kinopub_id),
            "title": _s(unmatched.title),
            "reason": _s(unmatched.reason),
            "detail": _s(unmatched.detail),
        }
        if unmatched.season is not None:
            item["season"] = _n(unmatched.season)
        if unmatched.episode is not None:
            item["episode"] = _n(unmatched.episode)
        if unmatched.seen_at is not None:
            item["seen_at"] = _s(unmatched.seen_at.astimezone(UTC).isoformat())
        if unmatched.trakt_show is not None:
            item["trakt_show"] = _s(unmatched.trakt_show)
        return item

    def remove_unmatched(self, keys: Iterable[str]) -> None:
        self._delete_all("unmatched", keys)

    def list_unmatched(self) -> list[UnmatchedItem]:
        unmatched = []
        for item in self._query("unmatched"):
            seen_at = _str(item, "seen_at")
            unmatched.append(
                UnmatchedItem(
                    key=_str(item, "sk") or "",
                    kinopub_id=_int(item, "kinopub_id") or 0,
                    title=_str(item, "title") or "",
                    reason=_str(item, "reason") or "",
                    detail=_str(item, "detail") or "",
                    season=_int(item, "season"),
                    episode=_int(item, "episode"),
                    seen_at=parse_iso(seen_at) if seen_at else None,
                    trakt_show=_str(item, "trakt_show"),
                )
            )
        return unmatched

    # item failures -----------------------------------------------------------------------------------------

    def record_item_failures(self, item_ids: Iterable[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for item_id in dict.fromkeys(item_ids):
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key("failures", str(item_id)),
                UpdateExpression="ADD failures :one",
                ExpressionAttributeValues={":one": _n(1)},
                ReturnValues="UPDATED_NEW",
            )
            counts[item_id] = _int(response.get("Attributes", {}), "failures") or 0
        return counts

    def clear_item_failures(self, item_ids: Iterable[int]) -> None:
        self._delete_all("failures", (str(item_id) for item_id in item_ids))

    def list_item_failures(self) -> dict[int, int]:
        return {int(_str(item, "sk") or 0): _int(item, "failures") or 0 for item in self._query("failures")}

    # run reports -------------------------------------------------------------------------------------------

    def put_report(self, report: Mapping[str, Any], at: datetime) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key("report", iso_z(at)),
                "report": _s(json.dumps(report)),
                "expires_at": _n(_expiry(at + REPORT_RETENTION)),
            },
        )

    def list_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        return [json.loads(_str(item, "report") or "{}") for item in self._query("report", newest_first=limit)]

    # manual mappings ---------------------------------------------------------------------------------------

    def put_pin(self, pin: Pin) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key("pin", str(pin.kinopub_id)),
                "trakt_type": _s(pin.trakt_type),
                "trakt_id": _n(pin.trakt_id),
                "season_offset": _n(pin.season_offset),
            },
        )

    def list_pins(self) -> dict[int, Pin]:
        pins: dict[int, Pin] = {}
        for item in self._query("pin"):
            kinopub_id = int(_str(item, "sk") or "0")
            trakt_type: Literal["movie", "show"] = "movie" if _str(item, "trakt_type") == "movie" else "show"
            pins[kinopub_id] = Pin(
                kinopub_id=kinopub_id,
                trakt_type=trakt_type,
                trakt_id=_int(item, "trakt_id") or 0,
                season_offset=_int(item, "season_offset") or 0,
            )
        return pins

    def put_numbering_pin(self, pin: EpisodePin | SeasonPin) -> None:
        if isinstance(pin, EpisodePin):
            item: Item = {
                **self._key("numbering", f"e:{pin.kinopub_id}:{pin.season}:{pin.episode}"),
                "trakt_episodes": _s(json.dumps([list(target) for target in pin.trakt_episodes])),
            }
        else:
            item = {
                **self._key("numbering", f"s:{pin.kinopub_id}:{pin.season}:{pin.from_episode}"),
                "trakt_season": _n(pin.trakt_season),
                "episode_offset": _n(pin.episode_offset),
            }
        self._client.put_item(TableName=self._table, Item=item)

    def list_numbering_pins(self) -> NumberingPins:
        pins = NumberingPins()
        for item in self._query("numbering"):
            kind, item_id, season, number = (_str(item, "sk") or "").split(":")
            if kind == "e":
                targets = json.loads(_str(item, "trakt_episodes") or "[]")
                pins.add(EpisodePin(int(item_id), int(season), int(number), tuple((s, n) for s, n in targets)))
            else:
                pins.add(
                    SeasonPin(
                        int(item_id),
                        int(season),
                        trakt_season=_int(item, "trakt_season") or 0,
                        episode_offset=_int(item, "episode_offset") or 0,
                        from_episode=int(number),
                    )
                )
        return pins

    # one-time OAuth state (DESIGN §6) ----------------------------------------------------------------------

    def put_oauth_state(self, state: str, data: Mapping[str, str], expires_at: datetime) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key("oauth", state),
                "data": _s(json.dumps(dict(data))),
                "expires_at": _n(_expiry(expires_at)),
            },
        )

    def consume_oauth_state(self, state: str, now: datetime) -> dict[str, str] | None:
        # One conditional delete: of two callbacks racing with the same state, exactly one gets the data.
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key=self._key("oauth", state),
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues={":now": _n(now.timestamp())},
                ReturnValues="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        data = _str(response.get("Attributes", {}), "data")
        if data is None:
            return None
        decoded: dict[str, str] = json.loads(data)
        return decoded
