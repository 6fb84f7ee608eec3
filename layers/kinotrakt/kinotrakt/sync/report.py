"""The run report: what one run did, as a typed model for the metrics and the CLI, and as the runtime
contract's JSON (:meth:`SyncReport.to_dict`) for the handler's return value, the log line and ``status``.

The contract's fields (``status``, the counts, ``watermark``, ``http_calls``) are read by tools outside this
code (CloudWatch queries, the dashboard, whoever invokes the function), so their names and JSON forms stay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from kinotrakt.clock import iso_z, parse_iso
from kinotrakt.errors import KinotraktError, RateLimited

Status = Literal["ok", "partial", "failed", "skipped"]
STATUSES: tuple[Status, ...] = ("ok", "partial", "failed", "skipped")

# The report keeps titles for people reading it; long lists are cut so a log line stays readable.
LIST_LIMIT = 50
_MORE = re.compile(r"\.\.\. and (\d+) more")
LIST_FIELDS = ("added", "unmatched_items", "failed_items", "skipped_items", "kept_plays")
# The lists fit_report may cut: a sync report's, and an audit report's (audit/report.py), which the same report
# store and the same log keep.
FITTED_LISTS = (*LIST_FIELDS, "duplicates", "missing", "unexpected", "unreadable_items")
# What is left of a text field when a report is cut to fit (fit_report's last step).
_FIT_TEXT_CHARS = 1000


@dataclass(frozen=True)
class RunError:
    code: str
    message: str


@dataclass(frozen=True)
class ItemNote:
    """A Kinopub item the run could not read, or left out on purpose, and why."""

    kinopub_id: int
    title: str
    reason: str


@dataclass(frozen=True)
class UnmatchedNote:
    """A view the run could not map to Trakt (or that Trakt did not find), and why."""

    kinopub_id: int
    title: str
    reason: str
    detail: str
    season: int | None
    episode: int | None


@dataclass(frozen=True)
class KeptPlay:
    """A view already on Trakt that was not sent again, and why (a part re-opened, not watched again)."""

    title: str
    detail: str


@dataclass(frozen=True)
class HttpCalls:
    """Every request the run sent, OAuth and retries included."""

    kinopub: int = 0
    trakt: int = 0


@dataclass
class SyncReport:
    run_id: str
    started_at: datetime
    dry_run: bool = False
    status: Status = "ok"
    full_scan: bool = False
    candidates: int = 0
    added_movies: int = 0
    added_episodes: int = 0
    skipped_duplicates: int = 0
    not_found: int = 0
    # Trakt's `updated` counts of this run's writes (2026 contract; Trakt does not say what it means).
    updated_on_trakt: int = 0
    unmatched: int = 0
    watermark: datetime | None = None
    http_calls: HttpCalls = field(default_factory=HttpCalls)
    items_examined: int = 0
    finished_at: datetime | None = None
    error: RunError | None = None
    # When the service that rate-limited this run (``error.code`` ``rate_limited``) may be asked again.
    resume_after: datetime | None = None
    added: list[str] = field(default_factory=list)
    unmatched_items: list[UnmatchedNote] = field(default_factory=list)
    failed_items: list[ItemNote] = field(default_factory=list)
    skipped_items: list[ItemNote] = field(default_factory=list)
    # Views already on Trakt whose Kinopub times moved without a new complete viewing (a re-opened part).
    kept_plays: list[KeptPlay] = field(default_factory=list)
    # A skipped run: since when the other run holds the lease (None if its version did not record it), and until.
    lease_held_since: datetime | None = None
    lease_held_until: datetime | None = None

    def stopped_by(self, error: KinotraktError) -> None:
        """Record what stopped (part of) the run. A rate limit says when the run after may go on: it stays the
        run's error when something temporary follows it (the deadline), and a second one (the other service)
        is added to it, the later resume time winning."""
        limited = self.error is not None and self.error.code == RateLimited.code
        if isinstance(error, RateLimited):
            message = f"{self.error.message}; {error}" if limited and self.error is not None else str(error)
            self.error = RunError(error.code, message)
            self.resume_after = max(self.resume_after or error.resume_after, error.resume_after)
            return
        if limited and error.run_status == "partial":
            return
        self.error = RunError(error.code, str(error))
        self.resume_after = None

    def to_dict(self) -> dict[str, Any]:
        """The runtime contract's JSON-ready form."""
        data = asdict(self)
        data["started_at"] = iso_z(self.started_at)
        data["finished_at"] = iso_z(self.finished_at) if self.finished_at else None
        data["watermark"] = watermark_text(self.watermark)
        data["resume_after"] = watermark_text(self.resume_after)
        data["lease_held_since"] = watermark_text(self.lease_held_since)
        data["lease_held_until"] = watermark_text(self.lease_held_until)
        for name in LIST_FIELDS:
            data[name] = listed(data[name])
        return data

    @classmethod
    def from_stored(cls, data: object) -> SyncReport | None:
        """A report as the report store keeps it (``to_dict``'s JSON, maybe written by another version):
        a missing or malformed field takes its default and a cut list loses its "... and N more" line.
        None when it is not a sync run's report at all (no known status, no readable start time, or an audit's)."""
        if not isinstance(data, Mapping) or data.get("action") == "audit":
            return None
        status = data.get("status")
        started_at = _time(data.get("started_at"))
        if status not in STATUSES or started_at is None:
            return None
        calls = data.get("http_calls")
        calls = calls if isinstance(calls, Mapping) else {}
        error = data.get("error")
        return cls(
            run_id=_text(data.get("run_id")),
            started_at=started_at,
            dry_run=data.get("dry_run") is True,
            status=cast("Status", status),
            full_scan=data.get("full_scan") is True,
            candidates=_count(data.get("candidates")),
            added_movies=_count(data.get("added_movies")),
            added_episodes=_count(data.get("added_episodes")),
            skipped_duplicates=_count(data.get("skipped_duplicates")),
            not_found=_count(data.get("not_found")),
            updated_on_trakt=_count(data.get("updated_on_trakt")),
            unmatched=_count(data.get("unmatched")),
            watermark=_time(data.get("watermark")),
            http_calls=HttpCalls(_count(calls.get("kinopub")), _count(calls.get("trakt"))),
            items_examined=_count(data.get("items_examined")),
            finished_at=_time(data.get("finished_at")),
            error=(
                RunError(_text(error.get("code")), _text(error.get("message"))) if isinstance(error, Mapping) else None
            ),
            resume_after=_time(data.get("resume_after")),
            added=[
                entry for entry in _list(data.get("added")) if isinstance(entry, str) and not _MORE.fullmatch(entry)
            ],
            unmatched_items=[
                UnmatchedNote(
                    _count(entry.get("kinopub_id")),
                    _text(entry.get("title")),
                    _text(entry.get("reason")),
                    _text(entry.get("detail")),
                    _optional_count(entry.get("season")),
                    _optional_count(entry.get("episode")),
                )
                for entry in _list(data.get("unmatched_items"))
                if isinstance(entry, Mapping)
            ],
            failed_items=_notes(data.get("failed_items")),
            skipped_items=_notes(data.get("skipped_items")),
            kept_plays=[
                KeptPlay(_text(entry.get("title")), _text(entry.get("detail")))
                for entry in _list(data.get("kept_plays"))
                if isinstance(entry, Mapping)
            ],
            lease_held_since=_time(data.get("lease_held_since")),
            lease_held_until=_time(data.get("lease_held_until")),
        )


def watermark_text(value: datetime | None) -> str | None:
    """The contract's form of the watermark (and of ``resume_after``): ISO 8601 UTC to the second with ``Z``, or
    null."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def listed[T](items: Sequence[T]) -> list[T | str]:
    """The first LIST_LIMIT items, then one "... and N more" line for the rest."""
    if len(items) <= LIST_LIMIT:
        return list(items)
    return [*items[:LIST_LIMIT], f"... and {len(items) - LIST_LIMIT} more"]


def fit_report(data: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """``data`` (:meth:`SyncReport.to_dict`'s form, or an audit report's) cut to at most ``max_bytes`` of UTF-8
    JSON: the lists keep fewer entries, halving until it fits, their "... and N more" line counting every entry
    cut; then the texts that are left (an error message) are cut. The counts, the status and every other field
    stay as they are.

    A DynamoDB item holds at most 400 KB and a CloudWatch log line 256 KB, while five lists of 50 entries,
    each a 300-character Cyrillic title with its detail, come close to that."""
    fitted = dict(data)
    keep = LIST_LIMIT
    while _json_bytes(fitted) > max_bytes and keep > 0:
        keep //= 2
        for name in FITTED_LISTS:
            entries = data.get(name)
            if isinstance(entries, list):
                fitted[name] = _relisted(entries, keep)
    if _json_bytes(fitted) > max_bytes:
        fitted = {name: _cut_texts(value) for name, value in fitted.items()}
    return fitted


def _json_bytes(data: Mapping[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False).encode("utf-8"))


def _relisted(entries: list[Any], keep: int) -> list[Any]:
    """The first ``keep`` entries, then one "... and N more" line for the rest (and those an earlier cut left)."""
    more = 0
    if entries and isinstance(entries[-1], str) and (match := _MORE.fullmatch(entries[-1])):
        entries, more = entries[:-1], int(match[1])
    more += max(0, len(entries) - keep)
    return [*entries[:keep], *([f"... and {more} more"] if more else [])]


def _cut_texts(value: Any) -> Any:
    if isinstance(value, str):
        return value[:_FIT_TEXT_CHARS]
    if isinstance(value, dict):
        return {name: _cut_texts(inner) for name, inner in value.items()}
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _optional_count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _notes(value: object) -> list[ItemNote]:
    return [
        ItemNote(_count(entry.get("kinopub_id")), _text(entry.get("title")), _text(entry.get("reason")))
        for entry in _list(value)
        if isinstance(entry, Mapping)
    ]
