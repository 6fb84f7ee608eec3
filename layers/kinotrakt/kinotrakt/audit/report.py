"""The audit's report: what the audit found and fixed, as a typed model for the metrics and the CLI, and as JSON
(:meth:`AuditReport.to_dict`) for the handler's return value, its log line (``audit run finished``) and the
report store, next to the sync's run reports (``"action": "audit"`` tells them apart).

The counts and lists cover the whole audit, across the runs it took (``runs``); ``http_calls`` is this run's, as in
a sync report. The lists are cut at LIST_LIMIT in the stored and logged form; the CLI's ``--json`` prints them
whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from kinotrakt.audit.progress import AuditProgress
from kinotrakt.clock import iso_z
from kinotrakt.sync.report import STATUSES, HttpCalls, ItemNote, RunError, Status, listed, watermark_text

# The stored report's shared readers (a missing or malformed field takes its default).
from kinotrakt.sync.report import _count as count_of
from kinotrakt.sync.report import _list as list_of
from kinotrakt.sync.report import _notes as notes_of
from kinotrakt.sync.report import _text as text_of
from kinotrakt.sync.report import _time as time_of

ACTION = "audit"


@dataclass(frozen=True)
class DuplicatePlays:
    """One viewing on Trakt with extra plays: the kept play and the extra ones (history ids)."""

    title: str
    watched_at: str  # the minute, or "unknown"
    kept: int
    extra: list[int]
    removed: list[int]


@dataclass(frozen=True)
class MissingView:
    """A completed Kinopub view with no play at its minute on Trakt."""

    title: str
    watched_at: str
    reason: str  # never_sent | removed_on_trakt
    fixed: str | None  # resent | on_trakt | trakt_not_found | trakt_refused, after --fix missing / removed


@dataclass(frozen=True)
class UnexpectedPlay:
    """A play kinotrakt sent (or found) for a view Kinopub no longer shows finished."""

    title: str
    watched_at: str
    reason: str


@dataclass
class AuditReport:
    run_id: str
    started_at: datetime
    status: Status = "ok"
    fix: list[str] = field(default_factory=list)
    dry_run: bool = False  # DRY_RUN: fixes are not applied
    audit_id: str = ""
    audit_started_at: datetime | None = None
    runs: int = 1
    finished_at: datetime | None = None
    http_calls: HttpCalls = field(default_factory=HttpCalls)
    plays_read: int = 0
    views_checked: int = 0
    unmatched: int = 0
    duplicates_found: int = 0
    duplicates_removed: int = 0
    missing_on_trakt: int = 0
    missing_never_sent: int = 0
    missing_removed_on_trakt: int = 0
    missing_resent: int = 0
    unexpected_plays: int = 0
    error: RunError | None = None
    resume_after: datetime | None = None  # a rate limit stopped the run: when the service may be asked again
    duplicates: list[DuplicatePlays] = field(default_factory=list)
    missing: list[MissingView] = field(default_factory=list)
    unexpected: list[UnexpectedPlay] = field(default_factory=list)
    unreadable_items: list[ItemNote] = field(default_factory=list)

    def fill(self, progress: AuditProgress) -> None:
        """The audit's counts and findings so far (all its runs)."""
        self.audit_id = progress.audit_id
        self.audit_started_at = progress.started_at
        self.runs = progress.runs
        self.plays_read = progress.plays_read
        self.views_checked = progress.views_checked
        self.unmatched = progress.unmatched
        self.duplicates = [
            DuplicatePlays(note.title, note.minute, note.kept, list(note.extra), list(note.removed))
            for note in progress.duplicates
        ]
        self.duplicates_found = sum(len(note.extra) for note in progress.duplicates)
        self.duplicates_removed = sum(len(note.removed) for note in progress.duplicates)
        self.missing = [
            MissingView(note.view.label, note.view.minute, note.reason, note.outcome) for note in progress.missing
        ]
        self.missing_on_trakt = len(progress.missing)
        self.missing_never_sent = sum(1 for note in progress.missing if note.reason == "never_sent")
        self.missing_removed_on_trakt = self.missing_on_trakt - self.missing_never_sent
        self.missing_resent = sum(1 for note in progress.missing if note.outcome == "resent")
        self.unexpected = [UnexpectedPlay(n.title, n.minute, n.reason) for n in progress.unexpected]
        self.unexpected_plays = len(progress.unexpected)
        self.unreadable_items = list(progress.unreadable)

    def to_dict(self, *, complete: bool = False) -> dict[str, Any]:
        """The JSON-ready form; lists cut at LIST_LIMIT unless ``complete`` (the CLI's ``--json``)."""
        data = {"action": ACTION, **dataclasses.asdict(self)}
        data["started_at"] = iso_z(self.started_at)
        data["finished_at"] = iso_z(self.finished_at) if self.finished_at else None
        data["audit_started_at"] = iso_z(self.audit_started_at) if self.audit_started_at else None
        data["resume_after"] = watermark_text(self.resume_after)  # as a sync's: to the second, rounded up
        if not complete:
            for name in ("duplicates", "missing", "unexpected", "unreadable_items"):
                data[name] = listed(data[name])
        return data

    @classmethod
    def from_stored(cls, data: object) -> AuditReport | None:
        """An audit report as the report store keeps it; None for anything else (a sync run's report)."""
        if not isinstance(data, Mapping) or data.get("action") != ACTION:
            return None
        status, started_at = data.get("status"), time_of(data.get("started_at"))
        if status not in STATUSES or started_at is None:
            return None
        calls = data.get("http_calls")
        calls = calls if isinstance(calls, Mapping) else {}
        error = data.get("error")
        report = cls(
            run_id=text_of(data.get("run_id")),
            started_at=started_at,
            status=cast("Status", status),
            fix=[entry for entry in list_of(data.get("fix")) if isinstance(entry, str)],
            dry_run=data.get("dry_run") is True,
            audit_id=text_of(data.get("audit_id")),
            audit_started_at=time_of(data.get("audit_started_at")),
            runs=count_of(data.get("runs")),
            finished_at=time_of(data.get("finished_at")),
            resume_after=time_of(data.get("resume_after")),
            http_calls=HttpCalls(count_of(calls.get("kinopub")), count_of(calls.get("trakt"))),
            error=(
                RunError(text_of(error.get("code")), text_of(error.get("message")))
                if isinstance(error, Mapping)
                else None
            ),
            duplicates=[
                DuplicatePlays(
                    text_of(row.get("title")),
                    text_of(row.get("watched_at")),
                    count_of(row.get("kept")),
                    _ids(row.get("extra")),
                    _ids(row.get("removed")),
                )
                for row in _rows(data.get("duplicates"))
            ],
            missing=[
                MissingView(
                    text_of(row.get("title")),
                    text_of(row.get("watched_at")),
                    text_of(row.get("reason")),
                    text_of(row.get("fixed")) or None,
                )
                for row in _rows(data.get("missing"))
            ],
            unexpected=[
                UnexpectedPlay(text_of(row.get("title")), text_of(row.get("watched_at")), text_of(row.get("reason")))
                for row in _rows(data.get("unexpected"))
            ],
            unreadable_items=notes_of(data.get("unreadable_items")),
        )
        for name in COUNTS:
            setattr(report, name, count_of(data.get(name)))
        return report


# The contract's counts and the ones the audit adds (all in docs/contract.md#audit-report).
COUNTS = (
    "plays_read",
    "views_checked",
    "unmatched",
    "duplicates_found",
    "duplicates_removed",
    "missing_on_trakt",
    "missing_never_sent",
    "missing_removed_on_trakt",
    "missing_resent",
    "unexpected_plays",
)


def _rows(value: object) -> list[Mapping[str, Any]]:
    return [row for row in list_of(value) if isinstance(row, Mapping)]


def _ids(value: object) -> list[int]:
    return [entry for entry in list_of(value) if isinstance(entry, int) and not isinstance(entry, bool)]
