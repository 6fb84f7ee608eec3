"""Run reports, keyed by time so the newest come first in one reverse query: real runs under ``<acct>#report``,
dry runs under ``<acct>#dryrun`` (added later: before that, dry runs were stored with the real ones, and such an
old dry run is skipped when the real runs are listed).

A DynamoDB item holds at most 400 KB: a report is cut to fit well under it (:func:`fit_report`: fewer list
entries, each list's "... and N more" counting what was cut), so a run with thousands of long Cyrillic titles
left unmatched is still stored, instead of failing its last write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kinotrakt.clock import iso_z
from kinotrakt.storage.dynamo.table import Table, expiry, n, read_str, s
from kinotrakt.sync.report import fit_report

if TYPE_CHECKING:
    from kinotrakt.storage.dynamo.table import Item

KIND = "report"
DRY_RUN_KIND = "dryrun"
REPORT_RETENTION = timedelta(days=90)
# Well under DynamoDB's 400 KB item limit (key and attribute names count too), and cheap to write: an
# on-demand write costs a unit per KB.
MAX_REPORT_BYTES = 100 * 1024


class DynamoReportStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, report: Mapping[str, Any], at: datetime) -> None:
        kind = DRY_RUN_KIND if report.get("dry_run") is True else KIND
        self._table.put(
            {
                **self._table.key(kind, iso_z(at)),
                "report": s(json.dumps(fit_report(report, MAX_REPORT_BYTES), ensure_ascii=False)),
                "expires_at": n(expiry(at + REPORT_RETENTION)),
            }
        )

    def latest(self, limit: int = 10, *, dry_run: bool = False) -> list[dict[str, Any]]:
        if dry_run:
            return [_report(item) for item in self._table.query(DRY_RUN_KIND, newest_first=limit)]
        reports: list[dict[str, Any]] = []
        for item in self._table.newest(KIND, page_size=limit):
            report = _report(item)
            if report.get("dry_run") is not True:
                reports.append(report)
                if len(reports) == limit:
                    break
        return reports


def _report(item: Item) -> dict[str, Any]:
    loaded = json.loads(read_str(item, "report") or "{}")
    return loaded if isinstance(loaded, dict) else {}
