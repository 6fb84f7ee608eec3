"""Run reports (``<acct>#report``), keyed by time so the newest come first in one reverse query."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from kinotrakt.clock import iso_z
from kinotrakt.storage.dynamo.table import Table, expiry, n, read_str, s

KIND = "report"
REPORT_RETENTION = timedelta(days=90)


class DynamoReportStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, report: Mapping[str, Any], at: datetime) -> None:
        self._table.put(
            {
                **self._table.key(KIND, iso_z(at)),
                "report": s(json.dumps(report)),
                "expires_at": n(expiry(at + REPORT_RETENTION)),
            }
        )

    def latest(self, limit: int = 10) -> list[dict[str, Any]]:
        return [json.loads(read_str(item, "report") or "{}") for item in self._table.query(KIND, newest_first=limit)]
