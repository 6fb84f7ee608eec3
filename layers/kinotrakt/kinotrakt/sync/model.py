"""The typed data that flows between the pipeline's steps, from Kinopub JSON to a Trakt play."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ViewKind = Literal["movie", "episode"]

# Kinopub types (reference/kinopub-api.md). Anything else is reported, never guessed.
MOVIE_TYPES = frozenset({"movie", "documovie", "concert", "3d"})
SERIES_TYPES = frozenset({"serial", "docuserial", "tvshow"})

WatchedAtSource = Literal["updated", "last_seen", "unknown", "ledger"]


@dataclass(frozen=True)
class CompletedView:
    """One finished view on Kinopub: a whole movie-like item, or one episode."""

    kind: ViewKind
    kinopub_id: int  # the Kinopub item (for an episode: the series)
    item_type: str  # Kinopub type, lowercase
    title: str  # as Kinopub shows it, e.g. "Черное зеркало / Black Mirror"
    original_title: str  # the original-language part of the title, for Trakt text search
    year: int | None
    imdb: str | None  # "tt…" normalised; for an episode, the show's id
    watched_at: datetime | None  # UTC; None means "unknown" (never "now": that would drift between runs)
    watched_at_source: WatchedAtSource
    season: int | None = None
    episode: int | None = None
    media_id: int | None = None  # Kinopub video / episode id

    @property
    def view_ref(self) -> str:
        """Stable name of the view across runs (the ledger keeps the watched_at it was sent with)."""
        if self.kind == "movie":
            return f"movie:{self.kinopub_id}"
        return f"episode:{self.kinopub_id}:{self.season}:{self.episode}"

    @property
    def label(self) -> str:
        if self.kind == "movie":
            return f"{self.title} ({self.year})" if self.year else self.title
        return f"{self.title} S{self.season:02d}E{self.episode:02d}"


@dataclass(frozen=True)
class ItemFailure:
    """A Kinopub item that could not be read this run (404, HTML, invalid JSON, validation error)."""

    kinopub_id: int
    title: str
    reason: str


@dataclass(frozen=True)
class SkippedItem:
    """An item deliberately not synced, with the reason (e.g. an unknown Kinopub type)."""

    kinopub_id: int
    title: str
    reason: str


@dataclass
class CollectResult:
    views: list[CompletedView] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    items_examined: int = 0
    examined: list[int] = field(default_factory=list)  # Kinopub item ids read this run (failed ones too)
    history_pages: int = 0
    full_scan: bool = False
    interrupted: bool = False  # the deadline came before every item was read
