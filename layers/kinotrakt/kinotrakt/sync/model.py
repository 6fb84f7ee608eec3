"""The typed data that flows between the pipeline's steps, from Kinopub JSON to a Trakt play."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from kinotrakt.errors import RateLimited
from kinotrakt.sync.keys import episode_view_ref, movie_view_ref, unmatched_episode_key, unmatched_item_key

ViewKind = Literal["movie", "episode"]

# Kinopub types (docs/kinopub.md#types-and-ids). Anything else is reported, never guessed.
MOVIE_TYPES = frozenset({"movie", "documovie", "concert", "3d"})
SERIES_TYPES = frozenset({"serial", "docuserial", "tvshow"})

WatchedAtSource = Literal["updated", "last_seen", "unknown", "ledger"]

# REWATCHES (an environment variable): a view finished again is a new play, or each view is sent at most once.
Rewatches = Literal["new_play", "ignore"]


@dataclass(frozen=True)
class KinopubSeason:
    """The shape of one Kinopub season, every episode in number order (watched or not): what the numbering
    rules compare with Trakt's season (counts, and durations to spot two episodes merged into one)."""

    number: int
    numbers: tuple[int, ...]
    durations: tuple[int | None, ...]  # seconds; None when Kinopub gave none


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
    # The ``updated`` of every feature part (a film's parts without its extras; an episode's own): a view
    # already sent is a rewatch only when every part was watched again since (sync/collect.py).
    part_updates: tuple[datetime | None, ...] = ()
    episode_title: str = ""  # as Kinopub shows it, e.g. "Белое Рождество / White Christmas"
    duration: int | None = None  # the episode's, in seconds
    kinopub_season: KinopubSeason | None = None
    # One Kinopub episode the user pinned to several Trakt episodes is one view per Trakt episode (0, 1, ...),
    # each with its own ledger entry, so a run stopped between them still sends the rest later.
    pin_part: int = 0

    @property
    def earliest_part(self) -> datetime | None:
        """A film of several parts: the earliest of its parts' times (None for anything else, or no part time).
        A Trakt play from there to the film's time may be this viewing's (``dedupe.played_between_parts``)."""
        if self.kind != "movie" or len(self.part_updates) < 2:
            return None
        return min((at for at in self.part_updates if at is not None), default=None)

    @functools.cached_property
    def view_ref(self) -> str:
        """Stable name of the view across runs (the ledger keeps the watched_at it was sent with)."""
        if self.kind == "movie":
            return movie_view_ref(self.kinopub_id)
        return episode_view_ref(self.kinopub_id, self.season, self.episode, self.pin_part)

    @property
    def unmatched_key(self) -> str:
        """Its entry in the unmatched list: a movie by its item, an episode on its own (every part of a pinned
        merged episode shares it)."""
        if self.kind == "movie":
            return unmatched_item_key(self.kinopub_id)
        return unmatched_episode_key(self.kinopub_id, self.season, self.episode)

    @property
    def label(self) -> str:
        if self.kind == "movie":
            return f"{self.title} ({self.year})" if self.year else self.title
        part = f" (part {self.pin_part + 1})" if self.pin_part else ""
        return f"{self.title} S{self.season:02d}E{self.episode:02d}{part}"


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


@dataclass(frozen=True)
class KeptPlay:
    """A view already on Trakt whose Kinopub times moved without a new complete viewing (a re-opened part):
    the play sent before stands, no new one is sent (sync/collect.py, the rewatch rule)."""

    view: CompletedView
    detail: str


@dataclass
class CollectResult:
    views: list[CompletedView] = field(default_factory=list)
    kept: list[KeptPlay] = field(default_factory=list)  # not rewatches: reported, nothing sent
    failures: list[ItemFailure] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    items_examined: int = 0
    examined: list[int] = field(default_factory=list)  # Kinopub item ids read this run (failed ones too)
    history_pages: int = 0
    full_scan: bool = False
    interrupted: bool = False  # the deadline or a rate limit came before every item was read
    rate_limited: RateLimited | None = None  # Kinopub asked for a pause longer than the run may wait
