"""The run report (DESIGN §2): what one run did, for the handler's return value, the log and ``status``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from kinotrakt.clock import iso_z

Status = Literal["ok", "partial", "failed", "skipped"]

# The report keeps titles for people reading it; long lists are cut so a log line stays readable.
LIST_LIMIT = 50


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
    http_calls: dict[str, int] = field(default_factory=lambda: {"kinopub": 0, "trakt": 0})
    items_examined: int = 0
    finished_at: datetime | None = None
    error: dict[str, str] | None = None
    added: list[str] = field(default_factory=list)
    unmatched_items: list[dict[str, Any]] = field(default_factory=list)
    failed_items: list[dict[str, Any]] = field(default_factory=list)
    skipped_items: list[dict[str, Any]] = field(default_factory=list)
    # Views already on Trakt whose Kinopub times moved without a new complete viewing (a re-opened part).
    kept_plays: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = iso_z(self.started_at)
        data["finished_at"] = iso_z(self.finished_at) if self.finished_at else None
        # The contract: ISO 8601 UTC with Z, or null.
        data["watermark"] = self.watermark.strftime("%Y-%m-%dT%H:%M:%SZ") if self.watermark else None
        for name in ("added", "unmatched_items", "failed_items", "skipped_items", "kept_plays"):
            items = data[name]
            if len(items) > LIST_LIMIT:
                data[name] = [*items[:LIST_LIMIT], f"... and {len(items) - LIST_LIMIT} more"]
        return data

    def counts(self) -> dict[str, int]:
        return {
            "candidates": self.candidates,
            "added_movies": self.added_movies,
            "added_episodes": self.added_episodes,
            "skipped_duplicates": self.skipped_duplicates,
            "not_found": self.not_found,
            "updated_on_trakt": self.updated_on_trakt,
            "unmatched": self.unmatched,
        }
