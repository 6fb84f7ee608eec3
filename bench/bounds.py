"""The fewest calls and the least time a run needs, computed from the data alone (no product code).

What a correct sync must at least ask (docs/ARCHITECTURE.md#one-views-way-from-kinopub-to-a-trakt-play):
- Kinopub: the history pages down to the first row older than the window (every page on the first scan), and one
  ``/v1/watching`` per item with a non-deleted row in the window; a daily rescan pages the same window and
  reads, besides, every item that can still change (:func:`unfinished_items`);
- Trakt, only when some completed view is not yet in the ledger: one ``/shows/{imdb}/seasons`` per show whose
  mapping is not cached (Trakt takes the IMDb id there, so no search comes first; a movie with an IMDb id needs
  no lookup, a title without one needs a text search), the remote index pages of each kind with timed
  candidates (250 plays a page, from two days before the earliest candidate), and ``ceil(new plays / batch)``
  history POSTs; nothing at all when nothing is new;
- plus a token refresh per service whose access token expires within its refresh margin.

The time floor is what Trakt's limits allow for those calls with zero network latency: writes one per second
(start to start), GETs 500 per sliding 5 minutes (2026). GETs and writes have separate budgets, but a play can only be
written once its ids are known (its show looked up) and the remote index read, so the floor
(``min_seconds``) schedules the lookups that free the most plays per GET first and writes each batch as soon as
its plays are free. ``min_limits_only_seconds`` ignores that dependency (the larger of the two budgets alone);
``min_sequential_seconds`` is the floor for a client that finishes every GET before its first write. With a
latency model, every call also costs its latency, one at a time.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

HISTORY_PERPAGE = 50  # Kinopub's maximum perpage
TRAKT_PAGE = 250  # Trakt's cap on `limit` (2026)
WINDOW_LEAD_SECONDS = 2 * 86400  # the remote index starts two days before the earliest candidate
WRITE_INTERVAL = 1.0  # Trakt: 1 write per second per user
GET_LIMIT = 500  # Trakt (2026, trakt/trakt-api#909): 500 GETs ...
GET_WINDOW = 300.0  # ... per 5 minutes per user

ViewKind = Literal["movie", "episode"]


@dataclass(frozen=True)
class Row:
    """A Kinopub history row as ``/v1/history`` serves it (newest first by ``last_seen``)."""

    item_id: int
    last_seen: int
    deleted: bool = False


@dataclass(frozen=True)
class View:
    """A completed view the data holds, with the dedupe key it must end up under on Trakt.

    ``lookup`` names the Trakt lookup mapping needs (``show:<imdb>``, ``title:<item>``) or None (a movie sent
    by its IMDb id); ``key`` is None when Trakt does not have the title (it can never be posted)."""

    item_id: int
    kind: ViewKind
    watched_at: int | None
    key: str | None
    lookup: str | None


@dataclass(frozen=True)
class Dataset:
    rows: Sequence[Row]
    views: Sequence[View]
    trakt_minutes: Mapping[ViewKind, Sequence[int]]  # sorted play minutes (epoch seconds) per kind
    trakt_keys: frozenset[str]
    whole: frozenset[int] = frozenset()  # items with every feature video / every episode Kinopub lists watched


@dataclass(frozen=True)
class Bound:
    kinopub_history_pages: int = 0
    kinopub_watching: int = 0
    kinopub_refresh: int = 0
    trakt_searches: int = 0
    trakt_seasons: int = 0
    trakt_history_pages: int = 0
    trakt_posts: int = 0
    trakt_refresh: int = 0
    new_plays: int = 0
    fresh_views: int = 0
    items_touched: int = 0
    lookups: tuple[str, ...] = field(default=(), repr=False)
    # For the time floor: new plays that need no lookup, and (GETs, new plays) of each lookup to make.
    ready_plays: int = 0
    lookup_plays: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    batch_size: int = 100

    @property
    def kinopub(self) -> int:
        return self.kinopub_history_pages + self.kinopub_watching + self.kinopub_refresh

    @property
    def trakt(self) -> int:
        return (
            self.trakt_searches + self.trakt_seasons + self.trakt_history_pages + self.trakt_posts + self.trakt_refresh
        )

    @property
    def trakt_gets(self) -> int:
        return self.trakt_searches + self.trakt_seasons + self.trakt_history_pages

    def as_dict(self) -> dict[str, int]:
        return {
            "kinopub_history_pages": self.kinopub_history_pages,
            "kinopub_watching": self.kinopub_watching,
            "kinopub_refresh": self.kinopub_refresh,
            "trakt_searches": self.trakt_searches,
            "trakt_seasons": self.trakt_seasons,
            "trakt_history_pages": self.trakt_history_pages,
            "trakt_posts": self.trakt_posts,
            "trakt_refresh": self.trakt_refresh,
            "items_touched": self.items_touched,
            "fresh_views": self.fresh_views,
            "new_plays": self.new_plays,
        }


def sum_bounds(bounds: Sequence[Bound]) -> Bound:
    """The bound of several runs (a day of hourly runs): their calls added up. Their time floors add up too,
    but each is computed on its own run (:func:`min_seconds`)."""
    if not bounds:
        return Bound()
    counted = {
        name: sum(int(getattr(bound, name)) for bound in bounds) for name in (*bounds[0].as_dict(), "ready_plays")
    }
    return Bound(
        **counted,
        lookups=tuple(lookup for bound in bounds for lookup in bound.lookups),
        lookup_plays=tuple(plays for bound in bounds for plays in bound.lookup_plays),
        batch_size=bounds[0].batch_size,
    )


def history_window(rows: Sequence[Row], since: float | None) -> tuple[int, list[int]]:
    """(pages to read, items to examine): pages until one holds a row older than ``since``, or the last page."""
    total_pages = max(1, math.ceil(len(rows) / HISTORY_PERPAGE))
    if since is None:
        pages = total_pages
        window: Iterable[Row] = rows
    else:
        first_older = next((i for i, row in enumerate(rows) if row.last_seen < since), None)
        pages = total_pages if first_older is None else first_older // HISTORY_PERPAGE + 1
        window = rows if first_older is None else rows[:first_older]
    items = list(dict.fromkeys(row.item_id for row in window if not row.deleted))
    return pages, items


def remote_pages(minutes: Sequence[int], start: int) -> int:
    """Pages of Trakt history from ``start`` to now: at least one, even when it comes back empty."""
    plays = len(minutes) - bisect_left(minutes, start)
    return max(1, math.ceil(plays / TRAKT_PAGE))


def unfinished_items(data: Dataset, ledger_keys: frozenset[str] | set[str]) -> list[int]:
    """Items in history that can still change: not every feature video / episode watched, or a view not in the
    ledger (Trakt lacks the title, or it was never sent). A rescan must read these; the others (complete)
    show anything new in history, where the incremental window reads it."""
    _, items = history_window(data.rows, None)
    open_items = {item for item in items if item not in data.whole}
    open_items |= {v.item_id for v in data.views if v.key is None or v.key not in ledger_keys}
    return [item for item in items if item in open_items]


def lower_bound(
    data: Dataset,
    *,
    since: float | None,
    ledger_keys: frozenset[str] | set[str],
    cached_lookups: frozenset[str] | set[str],
    batch_size: int,
    refresh: Mapping[str, bool] | None = None,
    rescan: bool = False,
) -> Bound:
    """The fewest calls one complete run makes (see the module docstring). A ``rescan`` also reads every item
    that can still change (:func:`unfinished_items`) besides the history window's."""
    refresh = refresh or {}
    pages, items = history_window(data.rows, since)
    if rescan:
        items = list(dict.fromkeys([*items, *unfinished_items(data, ledger_keys)]))
    touched = set(items)
    fresh = [v for v in data.views if v.item_id in touched and (v.key is None or v.key not in ledger_keys)]
    lookups = tuple(dict.fromkeys(v.lookup for v in fresh if v.lookup is not None and v.lookup not in cached_lookups))
    shows = sum(1 for lookup in lookups if lookup.startswith("show:"))
    titles = len(lookups) - shows
    mapped = [v for v in fresh if v.key is not None]
    history_pages = 0
    for kind in ("movie", "episode"):
        times = [v.watched_at for v in mapped if v.kind == kind and v.watched_at is not None]
        if times:
            history_pages += remote_pages(data.trakt_minutes.get(kind, ()), min(times) - WINDOW_LEAD_SECONDS)
    new = {v.key for v in mapped if v.key not in data.trakt_keys}
    freed = dict.fromkeys(lookups, 0)
    ready = 0
    for lookup in {v.key: v.lookup for v in mapped if v.key in new}.values():
        if lookup in freed:
            freed[lookup] += 1
        else:
            ready += 1
    return Bound(
        kinopub_history_pages=pages,
        kinopub_watching=len(items),
        kinopub_refresh=int(refresh.get("kinopub", False)),
        trakt_searches=titles,
        trakt_seasons=shows,
        trakt_history_pages=history_pages,
        trakt_posts=math.ceil(len(new) / batch_size),
        trakt_refresh=int(refresh.get("trakt", False)) if lookups or mapped else 0,
        new_plays=len(new),
        fresh_views=len(fresh),
        items_touched=len(items),
        lookups=lookups,
        ready_plays=ready,
        lookup_plays=tuple((1, plays) for plays in freed.values()),
        batch_size=batch_size,
    )


def _get_time(number: int) -> float:
    """The earliest the ``number``-th GET (1-based) may start: 500 per sliding 5 minutes."""
    return GET_WINDOW * ((number - 1) // GET_LIMIT) if number > 0 else 0.0


def min_seconds(bound: Bound, *, latency: Mapping[str, float] | None = None) -> float:
    """The least time Trakt's limits allow for the bound's calls, given that a play is written only after the
    remote index is read and its show looked up (and the latency model's floor, if any)."""
    gets = bound.trakt_history_pages
    index_read = _get_time(gets)
    freed: list[tuple[float, int]] = [(index_read, bound.ready_plays)]
    for lookup_gets, plays in sorted(bound.lookup_plays, key=lambda lp: -lp[1] / lp[0]):
        gets += lookup_gets
        freed.append((max(index_read, _get_time(gets)), plays))
    done = _get_time(bound.trakt_gets)
    total = sum(plays for _, plays in freed)
    written, last_write, available = 0, -WRITE_INTERVAL, 0
    pending = iter(freed)
    moment = 0.0
    for _ in range(bound.trakt_posts):
        wanted = min(written + bound.batch_size, total)
        while available < wanted:
            moment, plays = next(pending)
            available += plays
        last_write = max(last_write + WRITE_INTERVAL, moment)
        written = wanted
    if bound.trakt_posts:
        done = max(done, last_write)
    return max(done, _latency_floor(bound, latency))


def min_limits_only_seconds(bound: Bound) -> float:
    """The larger of the two budgets alone, as if every play's ids were known from the start."""
    writes = bound.trakt_posts
    return max((writes - 1) * WRITE_INTERVAL if writes else 0.0, _get_time(bound.trakt_gets))


def min_sequential_seconds(bound: Bound, *, latency: Mapping[str, float] | None = None) -> float:
    """The floor for a client that reads everything before its first write (kinotrakt's step order)."""
    writes = bound.trakt_posts
    limits = _get_time(bound.trakt_gets) + ((writes - 1) * WRITE_INTERVAL if writes else 0.0)
    return max(limits, _latency_floor(bound, latency))


def _latency_floor(bound: Bound, latency: Mapping[str, float] | None) -> float:
    if not latency:
        return 0.0
    return bound.kinopub * latency.get("kinopub", 0.0) + bound.trakt * latency.get("trakt", 0.0)


def ratio(measured: float, floor: float, *, unit: float) -> float:
    """``measured / floor``; a zero floor counts as one ``unit`` (one call, one write interval) so that
    "nothing needed, nothing done" reads 1.0 and "nothing needed, something done" reads above it."""
    if measured <= floor:
        return 1.0 if floor == 0 else measured / floor
    return measured / max(floor, unit)
