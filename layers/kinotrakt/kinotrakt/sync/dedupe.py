"""Steps 5-6: the remote index (Trakt's own history, the dedupe source of truth) and the strict dedupe.

Trakt does not dedupe plays and stores ``watched_at`` to the minute, so a candidate is skipped when its
key (``sync/keys.py``) is already on Trakt, in the ledger of what this deployment sent, or earlier in the
same run. A view of ``unknown`` time is a duplicate when Trakt has *any* play of that item. A film of several
parts the ledger has no record of is a duplicate of a Trakt play of it between its parts' times (see
:func:`played_between_parts`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from kinotrakt.errors import ItemRefused
from kinotrakt.storage.ports import Ledger
from kinotrakt.sync.keys import episode_key, has_unknown_time, movie_key, play_time
from kinotrakt.sync.mapping import MappedView
from kinotrakt.sync.model import CompletedView, ViewKind
from kinotrakt.trakt.models import HistoryItem, HistoryKind, SearchHit

# The window starts two days before the earliest candidate, so a play Trakt shifted by a time zone or stored
# at a rounded minute is still in the index.
WINDOW_LEAD = timedelta(days=2)


class TraktHistory(Protocol):
    def history(self, kind: HistoryKind, start_at: datetime, end_at: datetime) -> list[HistoryItem]: ...

    def item_history(self, kind: HistoryKind, trakt_id: int) -> list[HistoryItem]: ...

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]: ...


def history_keys(item: HistoryItem) -> set[str]:
    """Every key a Trakt play answers to (a movie by IMDb id and by Trakt id)."""
    when = item.watched_at
    keys: set[str] = set()
    if item.type == "movie" and item.movie is not None:
        if item.movie.ids.imdb:
            keys.add(movie_key(when, imdb=item.movie.ids.imdb))
        if item.movie.ids.trakt is not None:
            keys.add(movie_key(when, imdb=None, trakt_id=item.movie.ids.trakt))
    elif item.type == "episode" and item.episode is not None and item.episode.ids.trakt is not None:
        keys.add(episode_key(when, trakt_episode_id=item.episode.ids.trakt))
    return keys


@dataclass
class RemoteIndex:
    """Trakt's plays, per kind, from ``since[kind]`` until the time the index was first read."""

    keys: set[str] = field(default_factory=set)
    since: dict[HistoryKind, datetime] = field(default_factory=dict)
    # The dated plays of each movie, by IMDb id and by Trakt id ("imdb:tt…", "trakt:…"), to the minute.
    movie_plays: dict[str, set[datetime]] = field(default_factory=dict)

    def add(self, items: Iterable[HistoryItem]) -> None:
        for item in items:
            self.keys |= history_keys(item)
            when = play_time(item.watched_at)
            if item.type == "movie" and item.movie is not None and when is not None:
                minute = when.replace(second=0, microsecond=0)
                for name in _movie_names(item.movie.ids.imdb, item.movie.ids.trakt):
                    self.movie_plays.setdefault(name, set()).add(minute)

    def movie_played(self, imdb: str | None, trakt_id: int | None, start: datetime, end: datetime) -> list[datetime]:
        """The minutes of this movie's plays from ``start`` to ``end`` (both included), oldest first."""
        found = set().union(*(self.movie_plays.get(name, set()) for name in _movie_names(imdb, trakt_id)))
        return sorted(at for at in found if start <= at <= end)

    def cover(
        self,
        trakt: TraktHistory,
        kind: HistoryKind,
        oldest: datetime,
        now: datetime,
    ) -> None:
        """Make the index hold the plays of ``kind`` from WINDOW_LEAD before ``oldest``: read the missing part
        only (nothing when it is already held). The first read of a kind runs until ``now``."""
        start = oldest - WINDOW_LEAD
        held = self.since.get(kind)
        if held is not None and start >= held:
            return
        self.add(trakt.history(kind, start, now if held is None else held))
        self.since[kind] = start


def _movie_names(imdb: str | None, trakt_id: int | None) -> list[str]:
    return [*([f"imdb:{imdb}"] if imdb else []), *([f"trakt:{trakt_id}"] if trakt_id is not None else [])]


HISTORY_KINDS: tuple[tuple[ViewKind, HistoryKind], ...] = (("movie", "movies"), ("episode", "episodes"))


def build_remote_index(trakt: TraktHistory, views: Sequence[CompletedView], now: datetime) -> RemoteIndex:
    """Read Trakt's history for the window of these views, from WINDOW_LEAD before the oldest until now.

    It needs only the views' own times, not their Trakt ids, so it can be read before mapping starts."""
    index = RemoteIndex()
    for view_kind, history_kind in HISTORY_KINDS:
        times = [v.watched_at for v in views if v.kind == view_kind and v.watched_at is not None]
        # a multi-part film's earliest part too: a play of it from there on may be the viewing's
        times += [at for v in views if v.kind == view_kind and (at := v.earliest_part) is not None]
        if times:
            index.cover(trakt, history_kind, min(times), now)
    return index


def read_history_around(
    trakt: TraktHistory,
    views: Sequence[CompletedView],
    *,
    lead: timedelta,
    until: datetime | None = None,
    trail: timedelta = timedelta(0),
) -> RemoteIndex:
    """Trakt's history from ``lead`` before the oldest view to ``until`` (default: ``trail`` after the newest),
    one read per kind that has views with a time."""
    index = RemoteIndex()
    kinds: tuple[tuple[HistoryKind, str], ...] = (("movies", "movie"), ("episodes", "episode"))
    for history_kind, view_kind in kinds:
        times = [v.watched_at for v in views if v.kind == view_kind and v.watched_at is not None]
        if times:
            end = until if until is not None else max(times) + trail
            index.add(trakt.history(history_kind, min(times) - lead, end))
    return index


@dataclass
class DedupeResult:
    to_send: list[MappedView] = field(default_factory=list)
    duplicates: list[MappedView] = field(default_factory=list)
    # Views of unknown time whose plays Trakt refused to list (a 4xx about the item): whether one is already
    # there cannot be told, and a duplicate is worse than a missing play, so they are not sent.
    undecided: list[tuple[MappedView, ItemRefused]] = field(default_factory=list)


def dedupe(
    candidates: Sequence[MappedView],
    remote: RemoteIndex,
    ledger: Ledger,
    trakt: TraktHistory,
    seen: set[str] | None = None,
) -> DedupeResult:
    """``seen`` holds the keys met earlier in the same run (shared across the run's slices)."""
    result = DedupeResult()
    seen = set() if seen is None else seen
    for given in candidates:
        candidate, key = given, given.key
        duplicate = key in seen or key in ledger.keys or key in remote.keys
        if not duplicate:
            on_trakt = played_between_parts(given, remote, ledger)
            if on_trakt is not None:
                candidate, key, duplicate = on_trakt, on_trakt.key, True
        if not duplicate and has_unknown_time(key):
            try:
                duplicate = has_any_play(trakt, candidate)
            except ItemRefused as refused:
                result.undecided.append((candidate, refused))
                continue
        seen.add(key)
        (result.duplicates if duplicate else result.to_send).append(candidate)
    return result


def played_between_parts(candidate: MappedView, remote: RemoteIndex, ledger: Ledger) -> MappedView | None:
    """A film of several parts that the ledger has no record of, with a Trakt play between its earliest and its
    latest part's ``updated``: that play is this viewing's, sent when the film's time was another part's (a run
    whose ledger write was lost after Trakt took the play, or another tool), and the film's time has moved only
    because a part was opened again since — a re-opened part is not a rewatch (``collect.settle_with_ledger``).
    Returns the view at that play's minute, so that the ledger records the play that is on Trakt; None when
    there is none. When in doubt this keeps a play out rather than add a second one: a wrong play is worse than
    a missing one."""
    view = candidate.view
    if view.kind != "movie" or view.watched_at_source == "last_seen" or view.view_ref in ledger.watched_at_by_view:
        return None
    earliest = view.earliest_part
    if earliest is None:
        return None
    latest = max(at for at in view.part_updates if at is not None)
    start, end = (at.replace(second=0, microsecond=0) for at in (earliest, latest))
    played = remote.movie_played(candidate.movie_imdb, candidate.movie_trakt_id, start, end)
    if not played:
        return None
    at = played[-1]
    return dataclasses.replace(
        candidate,
        view=dataclasses.replace(view, watched_at=at, watched_at_source="ledger"),
        key=movie_key(at, imdb=candidate.movie_imdb, trakt_id=candidate.movie_trakt_id),
    )


def has_any_play(trakt: TraktHistory, candidate: MappedView) -> bool:
    """Any play of this movie or episode on Trakt, whenever: a view of unknown time is a duplicate of any play
    (Trakt cannot say which of its plays it would be)."""
    if candidate.kind == "episode":
        assert candidate.episode_trakt_id is not None  # noqa: S101 - mapping guarantees it
        return bool(trakt.item_history("episodes", candidate.episode_trakt_id))
    trakt_id = candidate.movie_trakt_id
    if trakt_id is None and candidate.movie_imdb:
        hits = trakt.search_imdb(candidate.movie_imdb, "movie")
        ids = [hit.movie.ids.trakt for hit in hits if hit.movie is not None and hit.movie.ids.trakt is not None]
        if not ids:
            return False  # Trakt does not know the movie: the POST will report it as not_found
        trakt_id = ids[0]
    assert trakt_id is not None  # noqa: S101
    return bool(trakt.item_history("movies", trakt_id))
