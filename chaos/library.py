"""A small random library per schedule, seeded into both fakes, and what a correct sync must make of it.

The expectations are computed here from the fakes' own state, independently of the product (the rules of
docs/ARCHITECTURE.md#the-scan-and-the-watermark and docs/ARCHITECTURE.md#dedupe-keys re-stated in a few lines):
which views are completed, the minute each must be sent with, which Trakt play keys count as that view being on
Trakt, and when incremental runs can still discover it.

Movies carry Kinopub's real-data traps (issue 12): trailers next to the film (extras: never a reason to hold a
film back or to move its time) and multi-part films whose parts are opened again later (not a rewatch). The
library knows which videos are extras because it made them; it does not re-derive the product's 40% rule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from devkit.fakes.fake_kinopub import FakeKinopub, KpMedia
from devkit.fakes.fake_trakt import FakeTrakt, iso_ms

ViewKind = Literal["movie", "episode"]
UNKNOWN = "unknown"
DAY = 86_400
MOVIE_TYPES = ("movie", "movie", "movie", "movie", "documovie", "concert", "3d")
SERIES_TYPES = ("serial", "serial", "serial", "docuserial", "tvshow")


def minute_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class ViewSpec:
    """One view of the library: a whole movie-like item, or one episode."""

    kind: ViewKind
    kp_item: int
    label: str
    videos: int = 1  # movie-like: how many videos (the film's parts) must all be watched
    extras: int = 0  # movie-like: trailers after the parts (videos videos+1 ..): never decide anything
    season: int | None = None
    episode: int | None = None
    key_base: str | None = None  # "movie:tt…", "movie:trakt:{id}", "episode:{id}"; None = Trakt lacks it
    trakt_item: tuple[ViewKind, int] | None = None  # (kind, Trakt movie/episode id)

    @property
    def on_trakt(self) -> bool:
        return self.key_base is not None


@dataclass(frozen=True)
class SeriesSpec:
    """A series of the library as Trakt knows it: its show id and how many episodes each season lists there
    (None: Trakt does not know the show)."""

    show_id: int | None
    trakt_seasons: dict[int, int]


@dataclass
class Library:
    views: list[ViewSpec] = field(default_factory=list)
    # Every minute a complete multi-part film has shown as its time (the newest part's): a part opened again
    # moves it, and the first sync may come before or after that; either is the film's one play.
    part_minutes: dict[str, set[str]] = field(default_factory=dict)
    # The earliest minute any part of a complete multi-part film has shown: a play of the film from there to its
    # newest time is that viewing's (a sync with no record of it takes such a play for it, README "What gets
    # synced": a wrong play is worse than a missing one).
    part_earliest: dict[str, str] = field(default_factory=dict)
    series: dict[int, SeriesSpec] = field(default_factory=dict)
    # Views marked watched by hand on a series finished until then (label → when): the daily rescan does not
    # read a complete item again (README, "What gets synced"), so such a view is due only once a history row
    # of its series is newer than the marking (the series played or opened again).
    marked_by_hand: dict[str, int] = field(default_factory=dict)
    # Episodes marked watched by hand, nothing played, on a series with episodes still to watch (label → when):
    # no history row shows them, so the daily rescan, which reads every item that can still change, must.
    marked_quietly: dict[str, int] = field(default_factory=dict)

    def media(self, kinopub: FakeKinopub, view: ViewSpec) -> list[KpMedia]:
        """The media that make the view: a film's parts (not its trailers), or the episode."""
        item = kinopub.items[view.kp_item]
        if view.kind == "movie":
            return [m for m in item.videos or [] if m.number <= view.videos]
        return [m for m in item.media() if m.snumber == view.season and m.number == view.episode]

    def note(self, kinopub: FakeKinopub) -> None:
        """After any change on Kinopub: remember the time each complete multi-part film shows now."""
        for view in self.views:
            if view.kind == "movie" and view.videos > 1 and self.completed(kinopub, view):
                updated = [m.updated for m in self.media(kinopub, view) if m.updated is not None]
                if updated:
                    self.part_minutes.setdefault(view.label, set()).add(minute_of(max(updated)))
                    earliest = minute_of(min(updated))
                    self.part_earliest[view.label] = min(earliest, self.part_earliest.get(view.label, earliest))

    def part_span(self, view: ViewSpec) -> tuple[str, str] | None:
        """For a complete multi-part film: from the earliest minute any of its parts showed to the newest minute the
        film showed (``None`` for anything else)."""
        if view.label not in self.part_earliest or not self.part_minutes.get(view.label):
            return None
        return self.part_earliest[view.label], max(self.part_minutes[view.label])

    def reopenable(self, kinopub: FakeKinopub) -> list[ViewSpec]:
        """Complete multi-part films: one of their parts can be opened again (only part 1, so never every part:
        the chaos suite does not rewatch)."""
        return [v for v in self.views if v.kind == "movie" and v.videos > 1 and self.completed(kinopub, v)]

    def with_extras(self) -> list[ViewSpec]:
        return [v for v in self.views if v.extras]

    def completed(self, kinopub: FakeKinopub, view: ViewSpec) -> bool:
        media = self.media(kinopub, view)
        return bool(media) and all(m.status == 1 for m in media)

    def acceptable_minutes(self, kinopub: FakeKinopub, view: ViewSpec) -> set[str]:
        """The ``watched_at`` minutes a correct sync may send for a completed view: its newest ``updated``;
        else its history ``last_seen`` — or ``unknown``, because an incremental run that does not reread an
        old history row cannot see that fallback (the ledger then pins whichever value was sent first);
        else ``unknown``."""
        media = self.media(kinopub, view)
        updated = [m.updated for m in media if m.updated is not None]
        if updated:
            return {minute_of(max(updated)), *self.part_minutes.get(view.label, set())}
        rows = [kinopub.history[m.id] for m in media if m.id in kinopub.history]
        seen = [row.last_seen for row in rows if not row.deleted]
        if seen:
            return {minute_of(max(seen)), UNKNOWN}
        return {UNKNOWN}

    def acceptable_keys(self, kinopub: FakeKinopub, view: ViewSpec) -> set[str]:
        if view.key_base is None:
            return set()
        return {f"{view.key_base}:{minute}" for minute in self.acceptable_minutes(kinopub, view)}

    def discovery(self, kinopub: FakeKinopub, view: ViewSpec) -> int | None:
        """When incremental runs last had a reason to look at the view's item: its newest non-deleted history
        row (an incremental run examines an item when one of its rows is newer than watermark - overlap:
        docs/ARCHITECTURE.md#the-scan-and-the-watermark). A view
        marked by hand with nothing played is not discovered before a row newer than the marking (the daily
        rescan finds it on a series that can still change: :attr:`marked_quietly`)."""
        rows = [row.last_seen for row in kinopub.history.values() if row.item_id == view.kp_item and not row.deleted]
        newest = max(rows) if rows else None
        marked = self.marked_by_hand.get(view.label, self.marked_quietly.get(view.label))
        if marked is not None and (newest is None or newest < marked):
            return None
        return newest

    def finished_series(self, kinopub: FakeKinopub) -> list[int]:
        """Series with every Kinopub episode watched whose Trakt show lists an episode after Kinopub's last:
        the next one can air on Kinopub."""
        found = []
        for kp_item, spec in self.series.items():
            seasons = kinopub.items[kp_item].seasons or []
            last = seasons[-1]
            announced = spec.trakt_seasons.get(last.number, 0) > len(last.episodes)
            if announced and all(e.status == 1 for season in seasons for e in season.episodes):
                found.append(kp_item)
        return found

    def air_next_episode(self, kinopub: FakeKinopub, kp_item: int) -> ViewSpec:
        """The series' next episode comes out on Kinopub (Trakt has listed it already)."""
        spec = self.series[kp_item]
        last = (kinopub.items[kp_item].seasons or [])[-1]
        (media,) = kinopub.add_episodes(kp_item, last.number)
        title = next(v.label for v in self.views if v.kp_item == kp_item).rsplit(" S", 1)[0]
        assert spec.show_id is not None
        episode_id = FakeTrakt.episode_id(spec.show_id, last.number, media.number)
        view = ViewSpec(
            "episode",
            kp_item,
            f"{title} S{last.number:02d}E{media.number:02d}",
            season=last.number,
            episode=media.number,
            key_base=f"episode:{episode_id}",
            trakt_item=("episode", episode_id),
        )
        self.views.append(view)
        return view

    def pending(self, kinopub: FakeKinopub) -> list[ViewSpec]:
        """Views not completed yet: candidates for "finished between runs"."""
        return [view for view in self.views if not self.completed(kinopub, view)]


def build_library(rng: random.Random, kinopub: FakeKinopub, trakt: FakeTrakt, now: int) -> Library:
    """A few movies and one or two shows, with everything the sync must cope with mixed in: multi-part
    documovies, IMDb ids as ints, ``tt`` strings or missing, titles Trakt does not know, seasons Trakt does
    not list, in-progress and unwatched media, ``updated: null`` (``last_seen`` fallback and unknown time),
    a season marked watched by hand, and plays another app already put on Trakt at the same minute (some of them
    twice)."""
    library = Library()
    for index in range(rng.randint(1, 4)):
        _add_movie(rng, kinopub, trakt, library, index, now)
    for index in range(rng.randint(1, 2)):
        _add_show(rng, kinopub, trakt, library, index, now)
    library.note(kinopub)
    for view in library.views:
        if view.trakt_item is not None and library.completed(kinopub, view) and rng.random() < 0.15:
            minutes = library.acceptable_minutes(kinopub, view) - {UNKNOWN}
            if minutes:
                other_app_play(trakt, view, min(minutes), rng)
                if rng.random() < 0.5:  # and scrobbled it twice: an exact duplicate already there
                    other_app_play(trakt, view, min(minutes), rng)
    return library


def other_app_play(trakt: FakeTrakt, view: ViewSpec, minute: str, rng: random.Random) -> None:
    """A play logged by another app (a scrobble), in ``minute`` with its own seconds."""
    assert view.trakt_item is not None
    ts = datetime.strptime(minute, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC).timestamp() + rng.randint(0, 59)
    trakt.add_play(view.trakt_item[0], view.trakt_item[1], iso_ms(ts), action="scrobble")


def _add_movie(
    rng: random.Random, kinopub: FakeKinopub, trakt: FakeTrakt, library: Library, index: int, now: int
) -> None:
    kp_id, trakt_id, imdb_number = 100 + index, 9_000 + index, 1_000_000 + index
    imdb = f"tt{imdb_number:07d}"
    kind = rng.choice(MOVIE_TYPES)
    videos = rng.choice((2, 3)) if kind in ("documovie", "movie") and rng.random() < 0.4 else 1
    extras = rng.choice((0, 0, 1, 2))  # trailers, clips: a few percent of a part's length
    title, year = f"Chaos Movie {index}", 1990 + index
    form = rng.choices(("int", "tt", "none"), weights=(6, 2, 2))[0]
    kp_imdb: int | str | None = imdb_number if form == "int" else imdb if form == "tt" else None
    parts = [(f"Часть {n} / Part {n}", rng.randint(2800, 3300)) for n in range(1, videos + 1)]
    trailers = [(f"Трейлер {n} / Trailer {n}", rng.randint(60, 600)) for n in range(1, extras + 1)]
    kinopub.add_movie(kp_id, f"Фильм {index} / {title}", year, kp_imdb, type=kind, videos=[*parts, *trailers])
    key_base: str | None = None
    trakt_item: tuple[ViewKind, int] | None = None
    if rng.random() < 0.9:  # Trakt knows the title
        trakt_imdb = imdb if form != "none" or rng.random() < 0.5 else None
        trakt.add_movie(trakt_id, title, year, trakt_imdb)
        key_base = f"movie:{trakt_imdb}" if trakt_imdb else f"movie:trakt:{trakt_id}"
        trakt_item = ("movie", trakt_id)
    library.views.append(
        ViewSpec("movie", kp_id, title, videos=videos, extras=extras, key_base=key_base, trakt_item=trakt_item)
    )

    at = now - rng.randint(2 * 3600, 30 * DAY)
    state = rng.random()
    if state < 0.65:  # finished
        for video in range(1, videos + 1):
            kinopub.watch(kp_id, video=video, at=at + (video - 1) * 7200)
    elif state < 0.75 and videos == 1:  # finished, but Kinopub lost the time: last_seen fallback
        kinopub.watch(kp_id, at=at)
        kinopub.set_state(kp_id, status=1, updated=None)
    else:  # started: the last part is in progress
        for video in range(1, videos):
            kinopub.watch(kp_id, video=video, at=at + (video - 1) * 7200)
        kinopub.watch(kp_id, video=videos, at=at + videos * 7200, status=0)
    for trailer in range(videos + 1, videos + extras + 1):
        choice = rng.random()
        if choice < 0.3:  # the trailer watched too, before or after the film: it must not move the film's time
            kinopub.watch(kp_id, video=trailer, at=min(at + rng.randint(-DAY, DAY), now - 600))
        elif choice < 0.45:  # opened, not finished
            kinopub.watch(kp_id, video=trailer, at=min(at + rng.randint(-DAY, DAY), now - 600), status=0)
        # else never opened: status -1 forever, which must not hold the film back


def _add_show(
    rng: random.Random, kinopub: FakeKinopub, trakt: FakeTrakt, library: Library, index: int, now: int
) -> None:
    kp_id, show_id, imdb_number = 300 + index, 800 + index, 5_000_000 + index
    imdb = f"tt{imdb_number:07d}"
    title, year = f"Chaos Show {index}", 2000 + index
    seasons = {1: rng.randint(2, 5), 2: rng.randint(2, 5)}
    with_imdb = rng.random() < 0.8
    kinopub.add_series(
        kp_id,
        f"Сериал {index} / {title}",
        year,
        imdb_number if with_imdb else None,
        seasons,
        type=rng.choice(SERIES_TYPES),
    )
    known = rng.random() < 0.95
    trakt_seasons = seasons if rng.random() < 0.85 else {1: seasons[1]}  # Trakt may not list season 2 yet
    # Trakt lists episodes before they come out: its last season holds one Kinopub does not have yet.
    last = max(trakt_seasons)
    trakt_seasons = {**trakt_seasons, last: trakt_seasons[last] + 1}
    if known:
        trakt.add_show(show_id, title, year, imdb, trakt_seasons)
        library.series[kp_id] = SeriesSpec(show_id, trakt_seasons)
    for season, count in seasons.items():
        for number in range(1, count + 1):
            listed = known and season in trakt_seasons
            episode_id = FakeTrakt.episode_id(show_id, season, number)
            library.views.append(
                ViewSpec(
                    "episode",
                    kp_id,
                    f"{title} S{season:02d}E{number:02d}",
                    season=season,
                    episode=number,
                    key_base=f"episode:{episode_id}" if listed else None,
                    trakt_item=("episode", episode_id) if listed else None,
                )
            )

    order = [(s, n) for s in sorted(seasons) for n in range(1, seasons[s] + 1)]
    at = now - rng.randint(5, 30) * DAY
    played = False
    for season, number in order[: rng.randint(1, len(order))]:
        at = min(at + rng.randint(1500, DAY), now - 3600)
        state = rng.random()
        if state < 0.75:
            kinopub.watch(kp_id, season=season, episode=number, at=at)
            played = True
        elif state < 0.85:
            kinopub.watch(kp_id, season=season, episode=number, at=at, status=0)
            played = True
        elif state < 0.93:  # marked watched with no time and no history row: "unknown"
            kinopub.set_state(kp_id, season=season, episode=number, status=1, updated=None)
        else:  # played, but Kinopub lost the time: last_seen fallback
            kinopub.watch(kp_id, season=season, episode=number, at=at)
            kinopub.set_state(kp_id, season=season, episode=number, status=1, updated=None)
            played = True
    if not played:  # an item is examined only through a history row
        season, number = order[0]
        kinopub.watch(kp_id, season=season, episode=number, at=min(at, now - 3600))
    if rng.random() < 0.2:  # a season marked watched by hand: every episode gets one `updated`
        kinopub.mark_watched_without_play(kp_id, season=1, at=min(at + 600, now - 1800))
