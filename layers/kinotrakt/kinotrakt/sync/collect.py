"""Step 3: read Kinopub (read only) and turn its watch state into completed views.

History says *which* items to look at; ``/v1/watching`` says *what* is finished. Only ``status == 1`` ever
becomes a play, and a time we cannot know stays "unknown": never "now", which would drift between runs and
turn into duplicate plays on Trakt.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kinotrakt.clock import minute_z, parse_iso, utc_from_epoch
from kinotrakt.errors import BadResponse, OutOfTime, RateLimited, ServiceUnavailable
from kinotrakt.kinopub.client import SERVICE
from kinotrakt.kinopub.models import BrokenRow, HistoryItem, HistoryPage, WatchingItem, WatchingVideo, original_title
from kinotrakt.observability import logger
from kinotrakt.storage.ports import KnownItem
from kinotrakt.sync.keys import UNKNOWN, minute_or_unknown
from kinotrakt.sync.model import (
    MOVIE_TYPES,
    SERIES_TYPES,
    CollectResult,
    CompletedView,
    ItemFailure,
    KeptPlay,
    KinopubSeason,
    Rewatches,
    SkippedItem,
    WatchedAtSource,
)

HISTORY_PERPAGE = 50
# A video shorter than this share of the item's longest video is an extra (trailer, clip, making-of), not a
# part of the film: opening one registers like a viewing and one never opened stays status -1 forever
# (docs/kinopub.md#what-the-user-watched, from Tramort/kinopub-watchinfo-exporter). The parts of a multi-part
# film are of similar length, far above it.
EXTRA_SHARE = 0.4


class KinopubReader(Protocol):
    """What the collector reads; :class:`~kinotrakt.kinopub.client.KinopubClient` in production."""

    def history_page(self, page: int, perpage: int = ...) -> HistoryPage: ...

    def watching(self, item_id: int) -> WatchingItem: ...

    def item(self, item_id: int) -> HistoryItem: ...


@dataclass
class HistoryWindow:
    """What the history pages of this run say: the items to examine, newest first, and every
    non-deleted ``last_seen`` read, the fallback time for a view whose ``updated`` is null."""

    items: dict[int, HistoryItem] = field(default_factory=dict)
    last_seen: dict[tuple[int, int], datetime] = field(default_factory=dict)  # (item id, media id) → newest
    broken: dict[int, BrokenRow] = field(default_factory=dict)
    pages: int = 0
    newest_first: bool = True  # every row read so far came in newest-first order by ``last_seen``
    oldest_seen: datetime | None = None  # the last ``last_seen`` read, to check the next row's order


@dataclass(frozen=True)
class ItemRead:
    """One item read: its completed views (settled against the ledger), and whether Kinopub has every feature
    part (a film) or every episode it lists (a series) watched, so nothing is left to finish on it."""

    item: HistoryItem
    views: tuple[CompletedView, ...]
    whole: bool

    @property
    def item_id(self) -> int:
        return self.item.id


@dataclass
class ReadingList:
    """The items one run reads, in order — its history window's (newest first), the book's (newest row first), the
    pinned ones — with the fallback times of all of them by (item id, media id)."""

    items: list[HistoryItem] = field(default_factory=list)
    last_seen: dict[tuple[int, int], datetime] = field(default_factory=dict)
    catalog: list[int] = field(default_factory=list)  # pinned items neither describes: read from the catalog
    failed: frozenset[int] = frozenset()  # items whose history row is broken: they fail this run

    @property
    def to_do(self) -> frozenset[int]:
        return frozenset(item.id for item in self.items) | frozenset(self.catalog) | self.failed

    def oldest_seen(self, kind_types: Collection[str], read: Collection[int]) -> datetime | None:
        """The oldest fallback time among the items of these Kinopub types not in ``read``: a guess of how far
        back the views still to read go."""
        wanted = {item.id for item in self.items if item.type in kind_types and item.id not in read}
        times = [at for (item_id, _), at in self.last_seen.items() if item_id in wanted]
        return min(times, default=None)


def reading_list(
    window: HistoryWindow,
    book: Iterable[KnownItem],
    *,
    skip: Collection[int] = (),
    also: Collection[int] = (),
) -> ReadingList:
    """What a run reads: the window's items (but those in ``skip``, unless pinned), then the book's items the
    window does not hold, then the pinned items neither describes (from the catalog). A book item kept without
    its metadata is read from the catalog too."""
    reading = ReadingList(last_seen=dict(window.last_seen), failed=frozenset(window.broken))
    reading.items = [item for item in window.items.values() if item.id not in skip or item.id in also]
    described = {item.id for item in reading.items} | set(window.broken)
    for known in sorted(book, key=lambda k: (-max(k.last_seen.values(), default=0), k.kinopub_id)):
        for media, at in known.last_seen.items():
            seen = utc_from_epoch(at)
            key = (known.kinopub_id, media)
            reading.last_seen[key] = max(seen, reading.last_seen.get(key, seen))
        if known.kinopub_id in described:
            continue
        described.add(known.kinopub_id)
        if known.type is None:
            reading.catalog.append(known.kinopub_id)
            continue
        reading.items.append(
            HistoryItem.model_construct(
                id=known.kinopub_id, title=known.title, type=known.type, subtype="", year=known.year, imdb=known.imdb
            )
        )
    reading.catalog += [item_id for item_id in also if item_id not in described and item_id not in reading.catalog]
    return reading


def collect(
    client: KinopubReader,
    *,
    since: datetime | None,
    sent_watched_at: Mapping[str, str] | None = None,
    rewatches: Rewatches = "new_play",
    skip: Collection[int] = (),
    also: Collection[int] = (),
    stop: Callable[[], bool] | None = None,
) -> CollectResult:
    """Completed views of the items with history rows at or after ``since`` (every item when None): the history
    window, then every item in it, read through :func:`read_items`.

    Items in ``skip`` (finished earlier by the same full scan) are not read again; items in ``also`` (pinned
    since the last run) are read whatever their history says. A failing history page propagates (the run ends
    partial)."""
    window = read_history(client, since)
    result = CollectResult(history_pages=window.pages, full_scan=since is None)
    note_broken_rows(window, result)
    items = itertools.chain(
        (item for item in window.items.values() if item.id not in skip or item.id in also),
        extra_items(client, also, window.items.keys() | window.broken.keys(), result),
    )
    for _ in read_items(
        client, items, window.last_seen, result, sent_watched_at=sent_watched_at, rewatches=rewatches, stop=stop
    ):
        pass
    log_collected(result)
    return result


def note_broken_rows(window: HistoryWindow, result: CollectResult) -> None:
    """An item whose history row could not be read fails this run (it is read again by a later one)."""
    for item_id, row in window.broken.items():
        result.failures.append(ItemFailure(item_id, row.title, f"kinopub /v1/history row: {row.reason}"))


def read_items(
    client: KinopubReader,
    items: Iterable[HistoryItem],
    last_seen: Mapping[tuple[int, int], datetime],
    result: CollectResult,
    *,
    sent_watched_at: Mapping[str, str] | None = None,
    rewatches: Rewatches = "new_play",
    stop: Callable[[], bool] | None = None,
) -> Generator[ItemRead]:
    """Read each item's ``/v1/watching`` and yield its completed views, one item at a time, so the caller can
    sync what was read while reading goes on. ``last_seen`` holds the fallback times by (item id, media id).

    ``sent_watched_at`` maps ``CompletedView.view_ref`` to the last play the ledger sent for it (ISO minute or
    ``unknown``): a view already sent is only sent again when it is a rewatch (:func:`settle_with_ledger`).
    A failing item is reported in ``result`` and skipped. When ``stop()`` says so (the pipeline keeps time to
    push what was read), the deadline comes or Kinopub asks for a pause the run cannot wait out
    (``result.rate_limited``), reading ends with ``result.interrupted``: what was read still gets synced."""
    ledger = sent_watched_at or {}
    for item in items:
        if stop is not None and stop():
            result.interrupted = True
            logger.warning("kinopub reading paused to keep time for Trakt", extra={"items_read": result.items_examined})
            return
        if item.type not in MOVIE_TYPES and item.type not in SERIES_TYPES:
            _examined(result, item.id)
            result.skipped.append(SkippedItem(item.id, item.title, f"unknown_type: {item.type or '(none)'}"))
            yield ItemRead(item, (), whole=False)
            continue
        # An item counts as examined once it was read, or failed to read as itself; whatever else stops the run
        # (the deadline, a token to refresh) leaves it unread, for the next run (or the rest of this full scan).
        try:
            state = client.watching(item.id)
            views, whole = _views_of(item, state, last_seen)
        except (OutOfTime, RateLimited) as exc:
            _interrupt(result, exc)
            return
        except (BadResponse, ServiceUnavailable) as exc:
            _examined(result, item.id)
            logger.warning("kinopub item unreadable", extra={"kinopub_id": item.id, "reason": str(exc)})
            result.failures.append(ItemFailure(item.id, item.title, str(exc)))
            continue
        _examined(result, item.id)
        settled_views: list[CompletedView] = []
        for view in views:
            settled, kept = settle_with_ledger(view, ledger.get(view.view_ref), rewatches)
            settled_views.append(settled)
            if kept is not None:
                result.kept.append(KeptPlay(settled, kept))
                logger.info("not a rewatch: the play already sent stands", extra={"view": view.label, "why": kept})
        result.views.extend(settled_views)
        yield ItemRead(item, tuple(settled_views), whole)


def _interrupt(result: CollectResult, cause: OutOfTime | RateLimited) -> None:
    result.interrupted = True
    if isinstance(cause, RateLimited):
        result.rate_limited = cause
        logger.warning("kinopub reading stopped by a rate limit", extra={"items_read": result.items_examined})
    else:
        logger.warning("kinopub reading stopped by the deadline", extra={"items_read": result.items_examined})


def _examined(result: CollectResult, item_id: int) -> None:
    result.items_examined += 1
    result.examined.append(item_id)


def _views_of(
    item: HistoryItem, state: WatchingItem, last_seen: Mapping[tuple[int, int], datetime]
) -> tuple[list[CompletedView], bool]:
    if item.type in MOVIE_TYPES:
        view = movie_view(item, state, last_seen)
        return ([] if view is None else [view]), view is not None
    views = episode_views(item, state, last_seen)
    return views, all(episode.status == 1 for season in state.seasons for episode in season.episodes)


def log_collected(result: CollectResult) -> None:
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


def extra_items(
    client: KinopubReader, item_ids: Collection[int], known: Collection[int], result: CollectResult
) -> Iterator[HistoryItem]:
    """The catalog entries of items to read that the caller does not already know (``known``), one at a time
    (the reader keeps the deadline between them). One Kinopub cannot describe (removed from the catalog) is read
    with what ``/v1/watching`` says: its title and type, no IMDb id. The deadline or a rate limit ends the
    reading."""
    for item_id in item_ids:
        if item_id in known:
            continue
        try:
            item = _catalog_entry(client, item_id)
        except (BadResponse, ServiceUnavailable) as exc:
            result.failures.append(ItemFailure(item_id, "", str(exc)))
            continue
        except (OutOfTime, RateLimited) as exc:
            _interrupt(result, exc)
            return
        yield item


def _catalog_entry(client: KinopubReader, item_id: int) -> HistoryItem:
    try:
        return client.item(item_id)
    except (BadResponse, ServiceUnavailable) as exc:
        logger.warning("kinopub catalog entry unreadable", extra={"kinopub_id": item_id, "reason": str(exc)})
        state = client.watching(item_id)
        return HistoryItem(id=item_id, title=state.title, type=state.type)


def read_history(client: KinopubReader, since: datetime | None) -> HistoryWindow:
    """Page ``/v1/history`` until a row is older than ``since`` — but only while the rows come newest first
    by ``last_seen``: every client sees that order, yet no document promises it (docs/kinopub.md#what-the-user-watched),
    and stopping early on a misordered page would never look at the newer rows after it. Once the order is
    broken, every page is read (and the run says so once in the log)."""
    window = HistoryWindow()
    page_number = 1
    while True:
        page = client.history_page(page_number, HISTORY_PERPAGE)
        window.pages += 1
        was_ordered = window.newest_first
        reached_older = _take_page(window, page, since)
        if was_ordered and not window.newest_first:
            logger.warning(
                "kinopub history is not newest first; reading every page instead of stopping at the window",
                extra={"page": page_number},
            )
        rows_on_page = len(page.rows) + len(page.broken)
        if (reached_older and window.newest_first) or rows_on_page == 0:
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
    # The order is judged over every row as the page holds them, broken ones where Kinopub put them.
    for seen in page.seen_in_order or [*(row.last_seen for row in page.rows), *(b.last_seen for b in page.broken)]:
        _check_order(window, seen)
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


def _check_order(window: HistoryWindow, last_seen: datetime | None) -> None:
    """A row newer than the one before it breaks the newest-first order (rows without a time are not judged).
    Broken rows sit where Kinopub put them too, so they are judged with the others, in page order."""
    if last_seen is None:
        return
    if window.oldest_seen is not None and last_seen > window.oldest_seen:
        window.newest_first = False
    window.oldest_seen = last_seen


def feature_parts(videos: Sequence[WatchingVideo]) -> list[WatchingVideo]:
    """The videos that make up the film: every video except the extras. A video is an extra when its duration is
    known and under ``EXTRA_SHARE`` of the item's longest video; one of unknown length counts as a part, so a
    missing duration can only hold a view back, never let an unfinished film through."""
    longest = max((video.duration for video in videos if video.duration is not None), default=None)
    if longest is None:
        return list(videos)
    return [video for video in videos if video.duration is None or video.duration >= EXTRA_SHARE * longest]


def movie_view(
    item: HistoryItem,
    state: WatchingItem,
    last_seen: Mapping[tuple[int, int], datetime],
) -> CompletedView | None:
    """One view when every feature part is watched (a multi-part film counts only when all its parts are; an
    extra never counts), at the newest ``updated`` of the parts; else their newest history ``last_seen``; else
    unknown."""
    if not state.videos:
        raise BadResponse(SERVICE, "/v1/watching", f"movie-like item {item.id} has no videos")
    videos = feature_parts(state.videos)
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
        part_updates=tuple(video.updated for video in videos),
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
    title = item.title or state.title
    shown_as = original_title(title)  # the show's, once: not for each of its episodes
    for season in state.seasons:
        ordered = sorted(season.episodes, key=lambda e: e.number)
        shape = KinopubSeason(
            number=season.number,
            numbers=tuple(e.number for e in ordered),
            durations=tuple(e.duration for e in ordered),
        )
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
                    title=title,
                    original_title=shown_as,
                    year=item.year,
                    imdb=item.imdb,  # the show's id: Kinopub has no per-episode IMDb ids
                    watched_at=watched_at,
                    watched_at_source=source,
                    season=season.number,
                    episode=episode.number,
                    media_id=episode.id,
                    part_updates=(episode.updated,),
                    episode_title=episode.title,
                    duration=episode.duration,
                    kinopub_season=shape,
                )
            )
    return views


def settle_with_ledger(view: CompletedView, sent: str | None, rewatches: Rewatches) -> tuple[CompletedView, str | None]:
    """The view as it must be sent, given the last play the ledger sent for it (``sent``: ISO minute or
    ``unknown``). Returns the view and, when Kinopub's times moved without a new complete viewing, why the
    play already sent stands.

    - Never sent: the view as collected.
    - ``REWATCHES=ignore``: once sent, the sent value stands (each view at most once).
    - A *fallback* time (``last_seen``, ``unknown``) can change between runs without a new viewing — a history
      row outside this run's window, a row deleted — and a changed value would be a second play: the sent
      value stands.
    - Kinopub's ``updated`` is "the last viewing" (kinoapi), not "finished again": the 2021 recording has a
      3-part documentary with part 1 touched years after parts 2-3. So a view already sent is a rewatch (a new
      play) only when every feature part was watched again after the last play sent: for one video, its
      ``updated`` at a later minute; for a multi-part film, every part's. Otherwise the sent value stands."""
    if sent is None:
        return view, None
    if rewatches == "ignore" or view.watched_at_source != "updated":
        return _with_sent(view, sent), None
    if minute_or_unknown(view.watched_at) == sent:
        return view, None
    try:
        sent_minute = None if sent == UNKNOWN else minute_z(parse_iso(sent))
    except ValueError:
        logger.warning("ledger watched_at unreadable; resolving again", extra={"view_ref": view.view_ref})
        return view, None
    stale = [
        number
        for number, updated in enumerate(view.part_updates, start=1)
        if updated is None or (sent_minute is not None and minute_z(updated) <= sent_minute)
    ]
    if view.part_updates and not stale:
        return view, None
    return _with_sent(view, sent), _not_a_rewatch(view, stale, sent)


def _not_a_rewatch(view: CompletedView, stale: list[int], sent: str) -> str:
    if len(view.part_updates) == 1:
        return f"Kinopub's time moved to {minute_or_unknown(view.watched_at)} but not past the play sent for {sent}"
    again = [n for n in range(1, len(view.part_updates) + 1) if n not in stale]
    watched = f"part {', '.join(map(str, again))} watched again" if again else "no part watched again"
    not_since = f"part {', '.join(map(str, stale))} not since"
    return f"{watched}, {not_since} the play sent for {sent}: not a rewatch"


def _with_sent(view: CompletedView, sent: str) -> CompletedView:
    if sent == UNKNOWN:
        return dataclasses.replace(view, watched_at=None, watched_at_source="ledger")
    try:
        return dataclasses.replace(view, watched_at=parse_iso(sent), watched_at_source="ledger")
    except ValueError:
        logger.warning("ledger watched_at unreadable; resolving again", extra={"view_ref": view.view_ref})
        return view
