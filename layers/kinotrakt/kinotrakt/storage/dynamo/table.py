"""The one DynamoDB table every state port lives in: ``pk`` (S, hash) + ``sk`` (S, range), TTL on ``expires_at``
(whole epoch seconds), on-demand billing (``template.yaml``'s ``StateTable``).

Item kinds; every ``pk`` starts with ``<ACCOUNT_ID>#`` (the runtime contract), so two accounts can share a table.
Existing deployments hold exactly these items, so their keys, attribute names and JSON forms never change
(``tests/unit/test_storage_contract.py`` pins them):

============================  ======================  =====================================================
pk                            sk                      attributes
============================  ======================  =====================================================
``<acct>#sync``               ``lease``               ``owner``, ``expires_at``, ``taken_at`` (``iso_z``;
                                                      absent on leases older versions took)
``<acct>#sync``               ``state``               ``last_success_at`` (``iso_z``), ``last_full_scan``
                                                      (``iso_z``), ``scan_done`` (JSON list of item ids),
                                                      ``reread`` (number set: items pinned since),
                                                      ``trakt_gets`` (JSON: when the last runs' Trakt
                                                      GETs were sent, ``sync_state.py``)
``<acct>#items``              ``<n>#<uuid>#<part>``   ``items``: JSON ``[[id, "c"], [id, "o"|"r", type, year,
                                                      imdb, title, [[media, last_seen], ...]], ...]``, optional
                                                      ``covers_history`` (BOOL); ``<n>``: the save's number
``<acct>#map``                mapping key             ``value`` (JSON), optional ``expires_at``
``<acct>#ledger``             ``<sent_at>#<uuid>``    ``entries``: JSON ``[[key, view_ref, watched_at], ...]``
``<acct>#unmatched``          unmatched key           ``kinopub_id``, ``title``, ``reason``, ``detail``,
                                                      optional ``season``, ``episode``, ``seen_at``,
                                                      ``trakt_show``
``<acct>#failures``           Kinopub item id         ``failures`` (atomic counter)
``<acct>#report``             ``<at>`` (``iso_z``)    ``report`` (JSON), ``expires_at`` (+90 days)
``<acct>#dryrun``             ``<at>`` (``iso_z``)    the same, for dry runs (before: under ``report``)
``<acct>#pin``                Kinopub item id         ``trakt_type``, ``trakt_id``, ``season_offset``
``<acct>#numbering``          ``e:<item>:<s>:<e>``    ``trakt_episodes`` (JSON ``[[season, number], ...]``)
``<acct>#numbering``          ``s:<item>:<s>:<from>`` ``trakt_season``, ``episode_offset``
``<acct>#oauth``              login state             ``data`` (JSON), ``expires_at``
``<acct>#audit``              ``head``                ``generation``, ``parts``, ``expires_at``
``<acct>#audit``              ``part#<gen>#<n>``      ``data`` (a piece of the progress JSON), ``expires_at``
============================  ======================  =====================================================

Why this shape: the sync reads each kind with one paginated Query (a 600-show library's mapping cache or a
20,000-play ledger costs a few calls, not one per item), and the ledger holds one item per pushed batch
rather than one per play; the book of known items holds one item per save (a quiet run saves nothing).
DynamoDB deletes expired items lazily (within a few days of expiry, says its TTL
documentation), so every read that cares about expiry also compares ``expires_at`` with ``now`` itself.
Reads are strongly consistent: the ledger and the watermark guard against duplicates, so a stale read is
never worth the saved half-unit.

Throttling errors propagate as boto3 raises them (botocore already retried them); conditional-check
failures are handled by each port, where its semantics say what they mean.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast

from kinotrakt.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, PaginatorConfigTypeDef, WriteRequestTypeDef

    Item = dict[str, AttributeValueTypeDef]

BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
BATCH_WRITE_ATTEMPTS = 8


def s(value: str) -> AttributeValueTypeDef:
    """A string attribute."""
    return {"S": value}


def n(value: float) -> AttributeValueTypeDef:
    """A number attribute."""
    return {"N": str(value)}


def read_str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("S")


def read_int(item: Item, name: str) -> int | None:
    value = item.get(name)
    number = None if value is None else value.get("N")
    return None if number is None else int(number)


def expiry(value: datetime) -> int:
    """The TTL attribute's format: whole epoch seconds, rounded up so nothing expires early."""
    return math.ceil(value.timestamp())


def live(item: Item, now: datetime) -> bool:
    """Not expired at ``now`` (DynamoDB may not have deleted an expired item yet)."""
    expires_at = read_int(item, "expires_at")
    return expires_at is None or expires_at > now.timestamp()


class Table:
    """One account's slice of the table: key building and the reads and writes every port shares."""

    def __init__(
        self,
        client: DynamoDBClient,
        name: str,
        account_id: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.name = name
        self._account = account_id
        self._sleep = sleep  # backoff between BatchWriteItem retries of unprocessed items

    @property
    def conditional_check_failed(self) -> type[Exception]:
        return self.client.exceptions.ConditionalCheckFailedException

    def pk(self, kind: str) -> str:
        return f"{self._account}#{kind}"

    def key(self, kind: str, sk: str) -> Item:
        return {"pk": s(self.pk(kind)), "sk": s(sk)}

    def get(self, kind: str, sk: str) -> Item | None:
        response = self.client.get_item(TableName=self.name, Key=self.key(kind, sk), ConsistentRead=True)
        return response.get("Item")

    def query(self, kind: str, *, newest_first: int | None = None) -> Iterator[Item]:
        """Every item of one kind in ``sk`` order, or only the last ``newest_first`` in reverse order."""
        pagination: PaginatorConfigTypeDef = {}
        if newest_first is not None:
            pagination = {"MaxItems": newest_first, "PageSize": newest_first}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(self.pk(kind))},
            ConsistentRead=True,
            ScanIndexForward=newest_first is None,
            PaginationConfig=pagination,
        )
        for page in pages:
            yield from page["Items"]

    def newest(self, kind: str, *, page_size: int) -> Iterator[Item]:
        """Every item of one kind in reverse ``sk`` order, read a page of ``page_size`` at a time as the caller
        asks for more (for a caller that skips some and stops once it has enough)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(self.pk(kind))},
            ConsistentRead=True,
            ScanIndexForward=False,
            PaginationConfig={"PageSize": page_size},
        )
        for page in pages:
            yield from page["Items"]

    def put(self, item: Item) -> None:
        self.client.put_item(TableName=self.name, Item=item)

    def put_all(self, items: Iterable[Item]) -> None:
        listed = list(items)
        if len(listed) == 1:
            # One item (a pushed batch's ledger entry) is one PutItem: cheaper to send than a BatchWriteItem.
            self.put(listed[0])
            return
        self.batch_write([{"PutRequest": {"Item": item}} for item in listed])

    def delete_all(self, kind: str, sort_keys: Iterable[str]) -> None:
        # A BatchWriteItem may not name the same key twice.
        unique = dict.fromkeys(sort_keys)
        self.batch_write([{"DeleteRequest": {"Key": self.key(kind, sk)}} for sk in unique])

    def batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: Mapping[str, Sequence[WriteRequestTypeDef]] = {
                self.name: requests[start : start + BATCH_WRITE_LIMIT]
            }
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                response = self.client.batch_write_item(RequestItems=pending)
                unprocessed = response.get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                # DynamoDB hands back what it throttled inside an accepted batch; AWS asks for backoff.
                pending = cast("Mapping[str, Sequence[WriteRequestTypeDef]]", unprocessed)
                self._sleep(min(0.05 * 2**attempt, 2.0))
            else:
                left = sum(len(batch) for batch in pending.values())
                raise ServiceUnavailable("DynamoDB", f"{left} writes still unprocessed after {attempt + 1} attempts")
