"""DESIGN §3 step 3: read Kinopub (read only) and turn its watch state into completed views.

History says *which* items to look at; ``/v1/watching`` says *what* is finished. Only ``status == 1`` ever
becomes a play, and a time we cannot know stays "unknown": never "now", which would drift between runs and
turn into duplicate plays on Trakt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kinotrakt.clock import parse_iso
from kinotrakt.errors import BadResponse, OutOfTime, ServiceUnavailable
from kinotrakt.kinopub.client import SERVICE
from kinotrakt.kinopub.models import BrokenRow, HistoryItem, HistoryPage, WatchingItem, original_title
from kinotrakt.observability import logger
from kinotrakt.sync.keys import UNKNOWN
from kinotrakt.sync.model import (
    MOVIE_TYPES,
    SERIES_TYPES,
    CollectResult,
    CompletedView,
    ItemFailure,
    SkippedItem,
    WatchedAtSource,
)

HISTORY_PERPAGE = 50


class KinopubReader(Protocol):
    """What the collector reads; :class:`~kinotrakt.kinopub.client.KinopubClient` in production."""

    def history_page(self, page: int, perpage: int = ...) -> HistoryPage: ...

    def watching(self, item_id: int) -> WatchingItem: ...


@dataclass
class HistoryWindow:
    """What the history pages of this run say: the items to examine, newest first, and every
    non-deleted ``last_seen`` read, the fallback time for a view whose ``updated`` is null."""

    items: dict[int, HistoryItem] = field(default_factory=dict)
    last_seen: dict[tuple[int, int], datetime] = field(default_factory=dict)  # (item id, media id) → newest
    broken: dict[int, BrokenRow] = field(default_factory=dict)
    pages: int = 0


def collect(
    client: KinopubReader,
    *,
    since: datetime | None,
    sent_watched_at: Mapping[str, str] | None = None,
    skip: Collection[int] = (),
    stop: Callable[[], bool] | None = None,
) -> CollectResult:
    """Completed views of the items with history rows at or after ``since`` (every item when None).

    ``sent_watched_at`` maps ``CompletedView.view_ref`` to the value the ledger already sent (ISO minute or
    ``unknown``); it wins over a fresh resolution, so a fallback time never changes once sent.
    A failing history page propagates (the run ends partial); a failing item is reported and skipped.
    Items in ``skip`` (finished earlier by the same full scan) are not read again. When ``stop()`` says so
    (the pipeline keeps time to push what was read) or the deadline comes, the result so far is returned
    with ``interrupted`` set."""
    window = read_history(client, since)
    result = CollectResult(history_pages=window.pages, full_scan=since is None)
    for item_id, row in window.broken.items():
        result.failures.append(ItemFailure(item_id, row.title, f"kinopub /v1/history row: {row.reason}"))
    ledger = sent_watched_at or {}
    for item in window.items.values():
        if item.id in skip:
            continue
        if stop is not None and stop():
            result.interrupted = True
            logger.warning("kinopub reading paused to keep time for Trakt", extra={"items_read": result.items_examined})
            break
        result.items_examined += 1
        result.examined.append(item.id)
        if item.type not in MOVIE_TYPES and item.type not in SERIES_TYPES:
            result.skipped.append(SkippedItem(item.id, item.title, f"unknown_type: {item.type or '(none)'}"))
            continue
        try:
            state = client.watching(item.id)
            views = (
                [movie_view(item, state, window.last_seen)]
                if item.type in MOVIE_TYPES
                else episode_views(item, state, window.last_seen)
            )
        except OutOfTime:
            # Not read: the next run (or the rest of this full scan) reads it.
            result.items_examined -= 1
            result.examined.pop()
            result.interrupted = True
            logger.warning("kinopub reading stopped by the deadline", extra={"items_read": result.items_examined})
            break
        except (BadResponse, ServiceUnavailable) as exc:
            logger.warning("kinopub item unreadable", extra={"kinopub_id": item.id, "reason": str(exc)})
            result.failures.append(ItemFailure(item.id, item.title, str(exc)))
            continue
        result.views.extend(_sent_value_wins(view, ledger) for view in views if view is not None)
    logger.info(
        "kinopub collected",
        extra={
            "history_pages": result.history_pages,
            "items_examined": result.items_examined,
            "views": len(result.views),
            "failures": len(result.failures),
            "skipped": len(result.skipped),
            "full_scan": result.full_scan,
        },
    )
    return result


def read_history(client: KinopubReader, since: datetime | None) -> HistoryWindow:
    """Page ``/v1/history`` (newest first by ``last_seen``) until a row is older than ``since``."""
    window = HistoryWindow()
    page_number = 1
    while True:
        page = client.history_page(page_number, HISTORY_PERPAGE)
        window.pages += 1
        reached_older = _take_page(window, page, since)
        rows_on_page = len(page.rows) + len(page.broken)
        if reached_older or rows_on_page == 0:
            break
        total_pages = page.pagination.total if page.pagination is not None else None
        if total_pages is not None and page_number >= total_pages:
            break
        if total_pages is None and rows_on_page < HISTORY_PERPAGE:
            break
        page_number += 1
    for item_id in window.broken:
        window.items.pop(item_id, None)
    return window


def _take_page(window: HistoryWindow, page: HistoryPage, since: datetime | None) -> bool:
    """Add one page to the window; True when it reached rows older than ``since``."""
    reached_older = False
    for row in page.rows:
        older = since is not None and row.last_seen is not None and row.last_seen < since
        reached_older = reached_older or older
        if row.deleted:
            continue
        if row.media is not None and row.last_seen is not None:
            key = (row.item.id, row.media.id)
            known = window.last_seen.get(key)
            window.last_seen[key] = row.last_seen if known is None else max(known, row.last_seen)
        if not older:
            window.items.setdefault(row.item.id, row.item)
    for broken in page.broken:
        if since is not None and broken.last_seen is not None and broken.last_seen < since:
            reached_older = True
            continue
        if broken.item_id is None:
            # Without an item id the failure cannot be pinned on one item, so the page as a whole is unusable.
            raise BadResponse(SERVICE, "/v1/history", f"a row without a readable item id ({broken.reason})")
        window.broken.setdefault(broken.item_id, broken)
    return reached_older


def movie_view(
    item: HistoryItem,
    state: WatchingItem,
    last_seen: Mapping[tuple[int, int], datetime],
) -> CompletedView | None:
    """One view when every video is watched (a multi-part documovie counts only when all parts are),
    at the newest ``updated``; else the newest history ``last_seen`` of its videos; else unknown."""
    videos = state.videos
    if not videos:
        raise BadResponse(SERVICE, "/v1/watching", f"movie-like item {item.id} has no videos")
    if any(video.status != 1 for video in videos):
        return None
    watched_at: datetime | None = None
    source: WatchedAtSource = "unknown"
    media_id = videos[0].id
    updated = [(video.updated, video.id) for video in videos if video.updated is not None]
    seen = [(last_seen[(item.id, video.id)], video.id) for video in videos if (item.id, video.id) in last_seen]
    if updated:
        watched_at, media_id = max(updated)
        source = "updated"
    elif seen:
        watched_at, media_id = max(seen)
        source = "last_seen"
    return CompletedView(
        kind="movie",
        kinopub_id=item.id,
        item_type=item.type or "",
        title=item.title or state.title,
        original_title=original_title(item.title or state.title),
        year=item.year,
        imdb=item.imdb,
        watched_at=watched_at,
        watched_at_source=source,
        media_id=media_id,
    )


def episode_views(
    item: HistoryItem,
    state: WatchingItem,
    last_seen: Mapping[tuple[int, int], datetime],
) -> list[CompletedView]:
    """One view per watched episode, at its own ``updated`` (a season marked watched at once shares one
    value); else that episode's history ``last_seen``; else unknown."""
    if not any(season.episodes for season in state.seasons):
        raise BadResponse(SERVICE, "/v1/watching", f"series item {item.id} has no episodes")
    views: list[CompletedView] = []
    for season in state.seasons:
        for episode in season.episodes:
            if episode.status != 1:
                continue
            watched_at = episode.updated
            source: WatchedAtSource = "updated"
            if watched_at is None:
                watched_at = last_seen.get((item.id, episode.id))
                source = "last_seen" if watched_at is not None else "unknown"
            views.append(
                CompletedView(
                    kind="episode",
                    kinopub_id=item.id,
                    item_type=item.type or "",
                    title=item.title or state.title,
                    original_title=original_title(item.title or state.title),
                    year=item.year,
                    imdb=item.imdb,  # the show's id: Kinopub has no per-episode IMDb ids
                    watched_at=watched_at,
                    watched_at_source=source,
                    season=season.number,
                    episode=episode.number,
                    media_id=episode.id,
                )
            )
    return views


def _sent_value_wins(view: CompletedView, ledger: Mapping[str, str]) -> CompletedView:
    """Reuse the value the ledger sent, but only instead of a *fallback* time.

    A fallback (``last_seen``, ``unknown``) can change between runs without a new viewing — a history row
    outside this run's window, a row deleted — and a changed value would be sent again as a second play.
    Kinopub's own ``updated`` only changes when the watched state changes, which is a new completion (a
    rewatch, or the item marked watched again): that must reach Trakt as a new play."""
    sent = ledger.get(view.view_ref)
    if sent is None or view.watched_at_source == "updated":
        return view
    if sent == UNKNOWN:
        return dataclasses.replace(view, watched_at=None, watched_at_source="ledger")
    try:
        return dataclasses.replace(view, watched_at=parse_iso(sent), watched_at_source="ledger")
    except ValueError:
        logger.warning("ledger watched_at unreadable; resolving again", extra={"view_ref": view.view_ref})
        return view
