"""Step 4: map completed views to Trakt ids, through the mapping cache (a storage port, DynamoDB in production).

- a movie with an IMDb id is sent as ``{"ids": {"imdb": ...}}`` — no lookup;
- a movie or show without IMDb → a text search by the original title, then by the Russian one, within a year
  either side; accepted only when unambiguous;
- a show with an IMDb id → **one** call: its whole season table, ``/shows/{imdb}/seasons``, asked with the IMDb
  id itself (every ``/shows/{id}`` route takes one, 2026); a play needs only the episodes' own Trakt ids, which
  that answer carries. Only when Trakt answers 404 is ``/search/imdb/{id}`` asked (Trakt may list the IMDb id
  under another id), and then the season table of the show it names; episodes by (season, number) where the
  numbers may be trusted (``sync/numbering.py``);
- every answer is cached: season tables for a day (so new episodes appear) under the id they were asked with,
  show ids found by search for 30 days, and negative answers for a few days (retried later, never every run).
  A user's pin (CLI ``map``) wins: an item pin over any lookup, an episode or season pin over the numbering rules.

Cache keys (kept readable by deployments that cached under the older search-then-seasons scheme):
``show:imdb:{imdb}`` → ``{"trakt": id}`` or a miss; ``seasons:{imdb or trakt id}`` → the compact table of
``sync/seasons.py`` (ids, and the titles, runtimes and air dates the numbering rules compare; a table cached in
an older form is fetched again) or a miss; ``movie:imdb:{imdb}``, ``movie:title:{item}``, ``show:title:{item}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from kinotrakt.clock import Clock, iso_z
from kinotrakt.errors import ItemRefused
from kinotrakt.kinopub.models import russian_title
from kinotrakt.observability import logger
from kinotrakt.storage.ports import MappingStore, NumberingPins, Pin, UnmatchedItem
from kinotrakt.sync.keys import (
    episode_key,
    movie_imdb_key,
    movie_key,
    movie_title_key,
    seasons_key,
    show_imdb_key,
    show_title_key,
)
from kinotrakt.sync.model import CompletedView
from kinotrakt.sync.numbering import Refusal, SeasonComparison
from kinotrakt.sync.seasons import SeasonTable, TraktEpisodeInfo
from kinotrakt.sync.titles import titles_agree
from kinotrakt.trakt.models import Movie, SearchHit, Season, Show

SHOW_TTL = timedelta(days=30)
MOVIE_TTL = timedelta(days=30)
SEASONS_TTL = timedelta(hours=24)
# A season table older than this is fetched again when it lacks an episode Kinopub says exists.
SEASONS_REFRESH_ON_MISS = timedelta(hours=6)
NEGATIVE_TTL = timedelta(days=3)
NOT_FOUND_TTL = timedelta(days=7)


class TraktLookup(Protocol):
    """What mapping needs from Trakt (implemented by ``TraktClient``)."""

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]: ...

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]: ...

    def show_seasons(self, show: int | str) -> list[Season] | None: ...


@dataclass(frozen=True)
class MappedView:
    """A completed view with the Trakt ids a play needs, and its dedupe key."""

    view: CompletedView
    key: str
    movie_imdb: str | None = None
    movie_trakt_id: int | None = None
    episode_trakt_id: int | None = None
    show_trakt_id: int | None = None  # None when the show was read by its IMDb id (its Trakt id is not needed)

    @property
    def kind(self) -> Literal["movie", "episode"]:
        return self.view.kind

    @property
    def trakt_id(self) -> int | None:
        return self.movie_trakt_id if self.view.kind == "movie" else self.episode_trakt_id

    def payload(self, watched_at: str) -> dict[str, Any]:
        """The ``POST /sync/history`` entry. ``watched_at`` is an ISO time or ``unknown``."""
        if self.view.kind == "episode":
            ids: dict[str, Any] = {"trakt": self.episode_trakt_id}
        elif self.movie_imdb:
            ids = {"imdb": self.movie_imdb}
        else:
            ids = {"trakt": self.movie_trakt_id}
        return {"ids": ids, "watched_at": watched_at}

    def watched_at_value(self) -> str:
        return "unknown" if self.view.watched_at is None else iso_z(self.view.watched_at)


@dataclass
class MapResult:
    mapped: list[MappedView] = field(default_factory=list)
    unmatched: list[UnmatchedItem] = field(default_factory=list)
    unmatched_views: list[CompletedView] = field(default_factory=list)  # the views ``unmatched`` is about


class MappingCache:
    """The cached mappings of one run: loaded with one query, written back in one batch."""

    def __init__(self, store: MappingStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._entries = store.load(clock.now())
        self._dirty: dict[str, tuple[dict[str, Any], datetime | None]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, value: dict[str, Any], ttl: timedelta | None) -> None:
        self._entries[key] = value
        self._dirty[key] = (value, None if ttl is None else self._clock.now() + ttl)

    def flush(self) -> None:
        if self._dirty:
            self._store.put(self._dirty)
            self._dirty = {}


def unmatched_item(
    view: CompletedView, reason: str, detail: str, now: datetime, trakt_show: str | None = None
) -> UnmatchedItem:
    key = view.unmatched_key
    if view.kind == "movie":
        return UnmatchedItem(key, view.kinopub_id, view.title, reason, detail, seen_at=now)
    return UnmatchedItem(key, view.kinopub_id, view.title, reason, detail, view.season, view.episode, now, trakt_show)


def refused_miss(refused: ItemRefused) -> dict[str, str]:
    """The cached miss for a lookup Trakt refused (a 4xx about the item: a 414 for a huge title, a 422, ...):
    the view is unmatched with the reason, asked again when the miss expires, and the run goes on."""
    detail = (
        f"Trakt refused the lookup ({refused.path}: HTTP {refused.status}); it is asked again later (within days), "
        "or pin the item with `kinotrakt map`"
    )
    return {"miss": "trakt_refused", "detail": detail}


def expand_pinned_episodes(views: Sequence[CompletedView], numbering: NumberingPins) -> list[CompletedView]:
    """A Kinopub episode pinned to several Trakt episodes (a merged one) becomes one view per Trakt episode, each
    its own ledger entry: a run stopped between them still sends the rest later."""
    expanded: list[CompletedView] = []
    for view in views:
        expanded.append(view)
        if view.kind != "episode" or view.season is None or view.episode is None:
            continue
        pin = numbering.episode(view.kinopub_id, view.season, view.episode)
        if pin is not None:
            expanded.extend(dataclasses.replace(view, pin_part=part) for part in range(1, len(pin.trakt_episodes)))
    return expanded


class _NeedsLookup(Exception):
    """Raised by the cache-only probe where mapping would have to ask Trakt."""


class _CacheOnly:
    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        raise _NeedsLookup

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]:
        raise _NeedsLookup

    def show_seasons(self, show: int | str) -> list[Season] | None:
        raise _NeedsLookup


@dataclass(frozen=True)
class _ShowRef:
    """How a show is asked for: ``ref`` is what ``/shows/{id}`` gets (an IMDb id, or a Trakt id as text)."""

    ref: str
    season_offset: int = 0
    trakt_id: int | None = None
    imdb: str | None = None  # set when ``ref`` is this IMDb id: a 404 then falls back to /search/imdb


class _Miss(Exception):
    def __init__(self, reason: str, detail: str, show: _ShowRef | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.show = show  # the Trakt show an episode was looked up in (``map`` checks episode pins against it)


class Mapper:
    def __init__(
        self,
        trakt: TraktLookup,
        cache: MappingCache,
        pins: Mapping[int, Pin],
        clock: Clock,
        numbering: NumberingPins | None = None,
    ) -> None:
        self._trakt = trakt
        self._cache = cache
        self._pins = pins
        self._clock = clock
        self._numbering = numbering or NumberingPins()
        self._refetched_this_run: set[str] = set()
        self._tables: dict[str, tuple[_ShowRef, SeasonTable]] = {}  # this run's, also those too big to cache
        self._comparisons: dict[tuple[int, int, str, int], SeasonComparison] = {}

    def map(self, views: Iterable[CompletedView], into: MapResult | None = None) -> MapResult:
        """Each view mapped or unmatched, filling ``into`` as it goes (a stop keeps what was found)."""
        result = MapResult() if into is None else into
        now = self._clock.now()
        for view in views:
            try:
                mapped = self._map_one(view)
            except _Miss as miss:
                show = None if miss.show is None else miss.show.ref
                result.unmatched.append(unmatched_item(view, miss.reason, miss.detail, now, show))
                result.unmatched_views.append(view)
                continue
            result.mapped.append(mapped)
        return result

    def known_unmatched(self, view: CompletedView) -> bool:
        """True when the cache alone already says this view cannot be mapped (no Trakt call is made)."""
        probe = Mapper(_CacheOnly(), self._cache, self._pins, self._clock, self._numbering)
        try:
            probe._map_one(view)
        except _Miss:
            return True
        except _NeedsLookup:
            return False
        return False

    def _map_one(self, view: CompletedView) -> MappedView:
        return self._map_movie(view) if view.kind == "movie" else self._map_episode(view)

    # --- movies -------------------------------------------------------------------------------------------

    def _map_movie(self, view: CompletedView) -> MappedView:
        pin = self._pins.get(view.kinopub_id)
        if pin is not None and pin.trakt_type == "movie":
            return MappedView(view, movie_key(view.watched_at, imdb=None, trakt_id=pin.trakt_id), None, pin.trakt_id)
        if view.imdb:
            # Trakt answered not_found for this IMDb id earlier: don't send it again until the cache expires.
            missing = self._cache.get(movie_imdb_key(view.imdb))
            if missing is not None and "miss" in missing:
                raise _Miss(str(missing["miss"]), str(missing.get("detail", "")))
            return MappedView(view, movie_key(view.watched_at, imdb=view.imdb), movie_imdb=view.imdb)
        found = self._by_title(view, "movie", movie_title_key(view.kinopub_id), MOVIE_TTL)
        imdb = found.get("imdb")
        trakt_id = int(found["trakt"])
        if imdb:
            return MappedView(view, movie_key(view.watched_at, imdb=str(imdb)), str(imdb), trakt_id)
        return MappedView(view, movie_key(view.watched_at, imdb=None, trakt_id=trakt_id), None, trakt_id)

    def record_movie_not_found(self, view: CompletedView) -> tuple[str, str]:
        """Trakt answered not_found for a movie we sent by IMDb: find out why (a movie-like Kinopub item that
        Trakt lists as a show, e.g. a multi-part documentary), and remember it so it is not re-sent every run.
        Returns (reason, detail)."""
        if not view.imdb:
            return "trakt_not_found", "Trakt answered not_found for the ids we sent"
        # /search/imdb ignores `type` (2026): only a hit that is a show says "listed as a show".
        try:
            hits = self._trakt.search_imdb(view.imdb, "show")
        except ItemRefused:
            hits = []
        if any(hit.type == "show" and hit.show for hit in hits):
            reason, detail = "listed_as_show", f"Trakt lists IMDb {view.imdb} as a show, not a movie"
        else:
            reason, detail = "trakt_not_found", f"Trakt has no movie with IMDb {view.imdb}"
        self._cache.put(movie_imdb_key(view.imdb), {"miss": reason, "detail": detail}, NOT_FOUND_TTL)
        return reason, detail

    # --- shows and episodes -------------------------------------------------------------------------------

    def _map_episode(self, view: CompletedView) -> MappedView:
        if view.season is None or view.episode is None:
            raise _Miss("episode_not_on_trakt", "Kinopub gave no season/episode number")
        show = self._show(view)
        pinned = self._pinned_target(view)
        if pinned is not None:
            show, episode = self._pinned_episode(show, pinned)
        else:
            show, episode = self._numbered_episode(view, show, view.season + show.season_offset)
        return MappedView(
            view,
            episode_key(view.watched_at, trakt_episode_id=episode.trakt_id),
            episode_trakt_id=episode.trakt_id,
            show_trakt_id=show.trakt_id,
        )

    def _pinned_target(self, view: CompletedView) -> tuple[int, int] | None:
        """The Trakt (season, number) the user pinned this Kinopub episode to, if any."""
        assert view.season is not None  # noqa: S101 - checked by the caller
        assert view.episode is not None  # noqa: S101
        pin = self._numbering.episode(view.kinopub_id, view.season, view.episode)
        if pin is not None:
            if view.pin_part >= len(pin.trakt_episodes):
                raise _Miss("numbering_mismatch", "the episode's pin changed during the run; the next run uses it")
            return pin.trakt_episodes[view.pin_part]
        season_pin = self._numbering.season(view.kinopub_id, view.season, view.episode)
        if season_pin is not None:
            return season_pin.trakt_season, view.episode + season_pin.episode_offset
        return None

    def _pinned_episode(self, show: _ShowRef, target: tuple[int, int]) -> tuple[_ShowRef, TraktEpisodeInfo]:
        season, number = target
        show, table = self._table(show)
        episode = table.episode(season, number)
        if episode is None and (fresh := self._refetch_if_stale(show)) is not None:
            show, table = fresh
            episode = table.episode(season, number)
        if episode is None:
            detail = f"pinned to S{season:02d}E{number:02d}, which Trakt show {show.ref} does not list"
            raise _Miss("episode_not_on_trakt", detail, show)
        return show, episode

    def _numbered_episode(self, view: CompletedView, show: _ShowRef, season: int) -> tuple[_ShowRef, TraktEpisodeInfo]:
        """By number, where the numbering rules trust it; a stale table is fetched again once before refusing."""
        show, table = self._table(show)
        while True:
            episodes = table.season(season)
            found: TraktEpisodeInfo | Refusal | None = None
            if episodes is not None:
                found = self._comparison(view, show, season, episodes).match(view, f"kinotrakt map {view.kinopub_id}")
            if isinstance(found, TraktEpisodeInfo):
                return show, found
            fresh = self._refetch_if_stale(show)
            if fresh is None:
                break
            show, table = fresh
        if isinstance(found, Refusal):
            raise _Miss(found.reason, found.detail, show)
        assert view.episode is not None  # noqa: S101
        detail = f"Trakt show {show.ref} has no episode S{season:02d}E{view.episode:02d}"
        raise _Miss("episode_not_on_trakt", detail, show)

    def _comparison(
        self, view: CompletedView, show: _ShowRef, season: int, episodes: tuple[TraktEpisodeInfo, ...]
    ) -> SeasonComparison:
        assert view.season is not None  # noqa: S101
        key = (view.kinopub_id, view.season, show.ref, season)
        known = self._comparisons.get(key)
        if known is None or known.trakt is not episodes:
            known = SeasonComparison.of(view.kinopub_season, season, episodes, self._clock.now())
            self._comparisons[key] = known
        return known

    def _show(self, view: CompletedView) -> _ShowRef:
        pin = self._pins.get(view.kinopub_id)
        if pin is not None and pin.trakt_type == "show":
            return _ShowRef(str(pin.trakt_id), pin.season_offset, pin.trakt_id)
        if not view.imdb:
            found = self._by_title(view, "show", show_title_key(view.kinopub_id), SHOW_TTL)
            return _ShowRef(str(found["trakt"]), 0, int(found["trakt"]))
        # A show found through /search/imdb (or cached by a deployment from before the direct lookup): its
        # Trakt id; a miss remembered for this IMDb id: unmatched until it expires.
        cached = self._cache.get(show_imdb_key(view.imdb))
        if cached is not None:
            if "miss" in cached:
                raise _Miss(str(cached["miss"]), str(cached.get("detail", "")))
            return _ShowRef(str(cached["trakt"]), 0, int(cached["trakt"]))
        return _ShowRef(view.imdb, 0, imdb=view.imdb)

    def _table(self, show: _ShowRef) -> tuple[_ShowRef, SeasonTable]:
        """The show's season table: this run's, the cached one, or fetched (which may name another show ref)."""
        known = self._tables.get(show.ref)
        if known is not None:
            return known
        cached = self._cache.get(seasons_key(show.ref))
        if cached is not None and "miss" in cached:
            raise _Miss(str(cached["miss"]), str(cached.get("detail", "")))
        table = None if cached is None else SeasonTable.from_cache(cached)
        if table is None:
            return self._fetch_seasons(show)
        self._tables[show.ref] = (show, table)
        return show, table

    def _refetch_if_stale(self, show: _ShowRef) -> tuple[_ShowRef, SeasonTable] | None:
        """A fresh table when the one at hand is older than SEASONS_REFRESH_ON_MISS (once per show and run)."""
        if show.ref in self._refetched_this_run:
            return None
        age = self._clock.now().timestamp() - self._table(show)[1].fetched_at
        if age <= SEASONS_REFRESH_ON_MISS.total_seconds():
            return None
        return self._fetch_seasons(show)

    def _fetch_seasons(self, show: _ShowRef) -> tuple[_ShowRef, SeasonTable]:
        """The show's season table, one call; on a 404 for an IMDb id, the show /search/imdb names instead."""
        asked = show.ref
        seasons = self._show_seasons(show)
        if seasons is None and show.imdb is not None:
            show = self._search_show(show.imdb)
            seasons = self._show_seasons(show)
        if seasons is None:
            # A pinned or searched show id Trakt no longer has: unmatched, asked again when this expires.
            miss = {"miss": "show_not_found", "detail": f"Trakt has no show {show.ref}"}
            self._cache.put(seasons_key(show.ref), miss, NEGATIVE_TTL)
            raise _Miss(miss["miss"], miss["detail"])
        table = SeasonTable.from_trakt(seasons, int(self._clock.now().timestamp()))
        cached = table.to_cache()
        if cached is None:
            # Too big for one DynamoDB item even without titles: used this run, fetched again by the next.
            logger.warning("season table too big to cache", extra={"show": show.ref, "episodes": table.episode_count()})
        else:
            self._cache.put(seasons_key(show.ref), cached, SEASONS_TTL)
        self._tables[show.ref] = self._tables[asked] = (show, table)
        self._refetched_this_run.update({show.ref, asked})
        return show, table

    def _show_seasons(self, show: _ShowRef) -> list[Season] | None:
        """The show's seasons, None for a 404; another 4xx leaves the show unmatched for a few days."""
        try:
            return self._trakt.show_seasons(show.ref)
        except ItemRefused as refused:
            miss = refused_miss(refused)
            self._cache.put(seasons_key(show.ref), miss, NEGATIVE_TTL)
            raise _Miss(miss["miss"], miss["detail"]) from None

    def _search_show(self, imdb: str) -> _ShowRef:
        """``/search/imdb`` for a show ``/shows/{imdb}`` did not find. It ignores ``type`` (2026): keep shows."""
        key = show_imdb_key(imdb)
        try:
            hits = self._trakt.search_imdb(imdb, "show")
        except ItemRefused as refused:
            miss = refused_miss(refused)
            self._cache.put(key, miss, NEGATIVE_TTL)
            raise _Miss(miss["miss"], miss["detail"]) from None
        ids = {hit.show.ids.trakt for hit in hits if hit.type == "show" and hit.show and hit.show.ids.trakt is not None}
        if len(ids) == 1:
            trakt_id = ids.pop()
            self._cache.put(key, {"trakt": trakt_id}, SHOW_TTL)
            return _ShowRef(str(trakt_id), 0, trakt_id)
        detail = f"Trakt has no show with IMDb {imdb}" if not ids else f"IMDb {imdb} is ambiguous"
        miss = {"miss": "show_not_found" if not ids else "ambiguous", "detail": detail}
        self._cache.put(key, miss, NEGATIVE_TTL)
        raise _Miss(miss["miss"], miss["detail"])

    # --- text search (no IMDb id) -------------------------------------------------------------------------

    def _by_title(
        self, view: CompletedView, kind: Literal["movie", "show"], key: str, ttl: timedelta
    ) -> dict[str, Any]:
        cached = self._cache.get(key)
        if cached is None:
            try:
                cached = self._search_title(view, kind)
            except ItemRefused as refused:
                cached = refused_miss(refused)
            self._cache.put(key, cached, NEGATIVE_TTL if "miss" in cached else ttl)
        if "miss" in cached:
            raise _Miss(str(cached["miss"]), str(cached.get("detail", "")))
        return cached

    def _search_title(self, view: CompletedView, kind: Literal["movie", "show"]) -> dict[str, Any]:
        """The original title first (a hit must carry that title), then the Russian one (Trakt matches it against
        translations, so the hit shows another title: accepted only as the one hit within a year either side).
        A hit of the exact year wins; without one, a single hit a year off (databases disagree by a year)."""
        years = None if view.year is None else (view.year - 1, view.year + 1)
        year = f" ({view.year})" if view.year else ""
        queries = [(view.original_title, False)]
        russian = russian_title(view.title)
        if russian is not None and view.year is not None:
            queries.append((russian, True))
        tried: list[str] = []
        answers: dict[str, list[SearchHit]] = {}  # a Russian-only title is both queries: asked once
        for query, by_translation in queries:
            if query not in answers:
                answers[query] = self._trakt.search_text(kind, query, years)
                tried.append(f"“{query}”")
            hits = answers[query]
            found = [hit.media for hit in hits if hit.type == kind and hit.media and hit.media.ids.trakt is not None]
            if not by_translation:
                found = [media for media in found if titles_agree(query, media.title)]
            chosen = _pick(found, view.year, single_only=by_translation)
            if isinstance(chosen, list):
                titles = ", ".join(f"“{m.title}” ({m.year})" for m in chosen[:3])
                detail = f"{len(chosen)} Trakt {kind}s match “{query}”{year}: {titles}; pin one with `kinotrakt map`"
                return {"miss": "ambiguous", "detail": detail}
            if chosen is not None:
                return {"trakt": chosen.ids.trakt, "imdb": chosen.ids.imdb}
        if kind == "movie":
            other = self._trakt.search_text("show", view.original_title, years)
            if any(
                hit.type == "show" and hit.show and titles_agree(view.original_title, hit.show.title) for hit in other
            ):
                detail = f"Trakt lists “{view.original_title}”{year} only as a show"
                return {"miss": "listed_as_show", "detail": detail}
        detail = f"no IMDb id on Kinopub and no Trakt {kind} titled {' or '.join(tried)}{year}"
        return {"miss": "no_imdb_not_found", "detail": detail}


def _pick(
    found: list[Movie | Show], year: int | None, *, single_only: bool
) -> Movie | Show | list[Movie | Show] | None:
    """The one acceptable hit, a list of the tied ones, or None. ``single_only``: the only hit of the search."""
    if year is None:
        return None if single_only else (found[0] if len(found) == 1 else (found or None))
    near = [media for media in found if media.year is not None and abs(media.year - year) <= 1]
    if single_only:
        return near[0] if len(near) == 1 else (near if len(near) > 1 else None)
    exact = [media for media in near if media.year == year]
    for group in (exact, near):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            return group
    return None
