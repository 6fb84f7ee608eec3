"""The state ports on DynamoDB: one module per kind of data, all on the one table (``table.py`` lists the
items and builds the keys)."""

from __future__ import annotations

from kinotrakt.storage.dynamo.audit import DynamoAuditProgressStore
from kinotrakt.storage.dynamo.failures import DynamoItemFailureStore
from kinotrakt.storage.dynamo.known_items import DynamoKnownItemStore
from kinotrakt.storage.dynamo.lease import DynamoLeaseStore
from kinotrakt.storage.dynamo.ledger import DynamoLedgerStore
from kinotrakt.storage.dynamo.login_state import DynamoLoginStateStore
from kinotrakt.storage.dynamo.mappings import DynamoMappingStore
from kinotrakt.storage.dynamo.pins import DynamoPinStore
from kinotrakt.storage.dynamo.reports import DynamoReportStore
from kinotrakt.storage.dynamo.sync_state import DynamoSyncStateStore
from kinotrakt.storage.dynamo.table import Table
from kinotrakt.storage.dynamo.unmatched import DynamoUnmatchedStore
from kinotrakt.storage.ports import SyncStores, TokenStore

__all__ = [
    "DynamoAuditProgressStore",
    "DynamoItemFailureStore",
    "DynamoKnownItemStore",
    "DynamoLeaseStore",
    "DynamoLedgerStore",
    "DynamoLoginStateStore",
    "DynamoMappingStore",
    "DynamoPinStore",
    "DynamoReportStore",
    "DynamoSyncStateStore",
    "DynamoUnmatchedStore",
    "Table",
    "dynamo_sync_stores",
]


def dynamo_sync_stores(table: Table, *, kinopub_tokens: TokenStore, trakt_tokens: TokenStore) -> SyncStores:
    """Every state port of a sync run (and an audit) on ``table``, with the two services' token stores."""
    return SyncStores(
        lease=DynamoLeaseStore(table),
        sync_state=DynamoSyncStateStore(table),
        known_items=DynamoKnownItemStore(table),
        mappings=DynamoMappingStore(table),
        ledger=DynamoLedgerStore(table),
        unmatched=DynamoUnmatchedStore(table),
        failures=DynamoItemFailureStore(table),
        reports=DynamoReportStore(table),
        pins=DynamoPinStore(table),
        kinopub_tokens=kinopub_tokens,
        trakt_tokens=trakt_tokens,
        audit_progress=DynamoAuditProgressStore(table),
    )
