"""Trakt's history as the audit reads it: plays, the keys each answers to, windows of whole minutes, and the
exact duplicates among them.

Trakt stores ``watched_at`` to the minute and never dedupes (docs/trakt.md#history), so two plays of the same
movie or episode in the same minute are one viewing sent twice: an *exact duplicate*. A play of the same item at
another minute is a rewatch and is never one. Plays of unknown date (Trakt shows them at 1970-01-01) share the
minute ``unknown``: per item, every such play after the first is a duplicate.

The history is read newest first in *windows*: a window ends at a bound (none for the first) and holds every
play of the minutes it covers, whole, because all plays of one minute are needed to judge them. The next window
ends where this one's oldest, incomplete minute begins again, so nothing is judged on half a minute, and a
window whose extra plays were removed does not shift the pages of the next one (each window starts at page 1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from kinotrakt.sync.keys import episode_key, minute_or_unknown, movie_key, parse_key, play_time
from kinotrakt.trakt.client import HistoryPage
from kinotrakt.trakt.models import HistoryItem, HistoryKind

PlayKind = Literal["movie", "episode"]
# The end of a minute, for a window's ``end_at``: Trakt's times carry milliseconds.
TO_MINUTE_END = timedelta(seconds=59, milliseconds=999)


class HistoryReader(Protocol):
    def history_page(self, kind: HistoryKind, *, end_at: datetime | None, page: int) -> HistoryPage: ...


def minute_of(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Play:
    """One play in the user's Trakt history."""

    history_id: int
    kind: PlayKind
    trakt_id: int | None
    watched_at: datetime  # as Trakt answers it (1970-01-01 for an unknown date)
    label: str
    keys: frozenset[str]  # every dedupe key it answers to (a movie by its IMDb id and by its Trakt id)

    @property
    def minute(self) -> str:
        return minute_or_unknown(play_time(self.watched_at))

    @property
    def identity(self) -> str | None:
        """Same kind, same Trakt id, same minute: plays that are one viewing. None without a Trakt id (such a play
        is never judged a duplicate, so never removed)."""
        if self.trakt_id is None:
            return None
        when = play_time(self.watched_at)
        if self.kind == "movie":
            return movie_key(when, imdb=None, trakt_id=self.trakt_id)
        return episode_key(when, trakt_episode_id=self.trakt_id)

    @property
    def items(self) -> frozenset[str]:
        """The item part of each of its keys: what an unknown-time view of the same movie or episode matches."""
        return frozenset(parse_key(key).item for key in self.keys)


def play_of(item: HistoryItem) -> Play:
    when = play_time(item.watched_at)
    if item.type == "movie" and item.movie is not None:
        movie = item.movie
        keys = set()
        if movie.ids.imdb:
            keys.add(movie_key(when, imdb=movie.ids.imdb))
        if movie.ids.trakt is not None:
            keys.add(movie_key(when, imdb=None, trakt_id=movie.ids.trakt))
        title = movie.title or f"Trakt movie {movie.ids.trakt}"
        label = f"{title} ({movie.year})" if movie.year else title
        return Play(item.id, "movie", movie.ids.trakt, item.watched_at, label, frozenset(keys))
    episode, show = item.episode, item.show
    trakt_id = episode.ids.trakt if episode is not None else None
    keys = {episode_key(when, trakt_episode_id=trakt_id)} if trakt_id is not None else set()
    show_title = (show.title if show is not None else None) or "Trakt show"
    where = f" S{episode.season:02d}E{episode.number:02d}" if episode is not None else ""
    return Play(item.id, "episode", trakt_id, item.watched_at, f"{show_title}{where}", frozenset(keys))


@dataclass(frozen=True)
class Window:
    """Every play of ``kind`` in the minutes after ``until`` up to ``end_at``, whole minutes only."""

    kind: HistoryKind
    plays: list[Play]
    end_at: datetime | None  # None: no upper bound (the first window)
    until: datetime | None  # the oldest minute on the last page, not covered (None: the window reached the oldest play)
    pages: int

    def covers(self, when: datetime) -> bool:
        """True when a play at ``when`` belongs to this window (the first window also covers the future)."""
        return (self.end_at is None or when <= self.end_at) and (self.until is None or minute_of(when) > self.until)

    @property
    def next_end_at(self) -> datetime | None:
        """Where the next window ends (None: this one was the last)."""
        return None if self.until is None else self.until + TO_MINUTE_END


def read_window(trakt: HistoryReader, kind: HistoryKind, end_at: datetime | None) -> Window:
    """One window, usually one page: the page's plays minus its oldest minute (which may go on on the next page).
    A page that is all one minute is followed by the next until the minute ends."""
    plays: list[Play] = []
    seen: set[int] = set()
    page = 1
    while True:
        answer = trakt.history_page(kind, end_at=end_at, page=page)
        fresh = [play_of(item) for item in answer.items if item.id not in seen]
        seen.update(play.history_id for play in fresh)
        plays += fresh
        if answer.last or not answer.items:
            return Window(kind, plays, end_at, None, page)
        oldest = min(minute_of(item.watched_at) for item in answer.items)
        whole = [play for play in plays if minute_of(play.watched_at) > oldest]
        if whole:
            return Window(kind, whole, end_at, oldest, page)
        page += 1


@dataclass(frozen=True)
class DuplicateGroup:
    """The plays of one viewing: the oldest (lowest history id) is kept, the rest are extra."""

    identity: str
    kind: PlayKind
    label: str
    watched_at: datetime
    kept: int
    extra: tuple[int, ...]

    @property
    def minute(self) -> str:
        return minute_or_unknown(play_time(self.watched_at))


def exact_duplicates(plays: Iterable[Play]) -> list[DuplicateGroup]:
    """Every viewing with more than one play, in the order met."""
    by_identity: dict[str, list[Play]] = defaultdict(list)
    for play in plays:
        if play.identity is not None:
            by_identity[play.identity].append(play)
    groups = []
    for identity, same in by_identity.items():
        if len(same) > 1:
            ids = sorted(play.history_id for play in same)
            first = same[0]
            groups.append(DuplicateGroup(identity, first.kind, first.label, first.watched_at, ids[0], tuple(ids[1:])))
    return groups


def regroup(group: DuplicateGroup, present: Sequence[Play]) -> DuplicateGroup | None:
    """``group`` as a fresh read shows it: the lowest id still there is kept, and only the extra plays it had that
    are still there stay extra (a play that arrived since is not ours to judge). None when nothing is extra."""
    ids = sorted(play.history_id for play in present if play.identity == group.identity)
    if len(ids) < 2:
        return None
    still = tuple(i for i in ids[1:] if i in group.extra or i == group.kept)
    return DuplicateGroup(group.identity, group.kind, group.label, group.watched_at, ids[0], still) if still else None
