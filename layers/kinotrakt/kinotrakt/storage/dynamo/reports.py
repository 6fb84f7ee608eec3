"""Run reports (``<acct>#report``), keyed by time so the newest come first in one reverse query.

A DynamoDB item holds at most 400 KB: a report is cut to fit well under it (:func:`fit_report`: fewer list
entries, each list's "... and N more" counting what was cut), so a run with thousands of long Cyrillic titles
left unmatched is still stored, instead of failing its last write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from kinotrakt.clock import iso_z
from kinotrakt.storage.dynamo.table import Table, expiry, n, read_str, s
from kinotrakt.sync.report import fit_report

KIND = "report"
REPORT_RETENTION = timedelta(days=90)
# Well under DynamoDB's 400 KB item limit (key and attribute names count too), and cheap to write: an
# on-demand write costs a unit per KB.
MAX_REPORT_BYTES = 100 * 1024


class DynamoReportStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, report: Mapping[str, Any], at: datetime) -> None:
        self._table.put(
            {
                **self._table.key(KIND, iso_z(at)),
                "report": s(json.dumps(fit_report(report, MAX_REPORT_BYTES), ensure_ascii=False)),
                "expires_at": n(expiry(at + REPORT_RETENTION)),
            }
        )

    def latest(self, limit: int = 10) -> list[dict[str, Any]]:
        return [json.loads(read_str(item, "report") or "{}") for item in self._table.query(KIND, newest_first=limit)]
