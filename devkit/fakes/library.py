"""Seeded libraries shared by both fakes: a small realistic one (demo, integration tests) and generated ones
(benchmark). Each returns what a correct sync must do with it, so callers assert against that."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt, PlayKind, iso_ms, minute_floor

ViewKind = Literal["movie", "episode"]


def unix(iso: str) -> int:
    """``"2025-02-08T21:47:12"`` (UTC) → unix seconds."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class DemoView:
    """One view of the demo library and what must become of it."""

    kind: ViewKind
    title: str  # as Kinopub shows it
    kinopub_id: int
    media_id: int
    watched_at: str  # the Trakt form of the minute, "YYYY-MM-DDTHH:MM:00.000Z"
    exercises: str  # what this entry tests
    season: int | None = None
    episode: int | None = None
    imdb: str | None = None  # "tt…" normalised; the show's for an episode
    trakt_id: int | None = None  # Trakt movie or episode id, when Trakt has the title
    reason: str | None = None  # expected unmatched reason

    @property
    def minute(self) -> str:
        """The minute as it appears in a dedupe key: ``YYYY-MM-DDTHH:MMZ``."""
        return self.watched_at[:16] + "Z"

    @property
    def key(self) -> str:
        """The dedupe key (docs/ARCHITECTURE.md#dedupe-keys; only meaningful when Trakt has the title)."""
        if self.kind == "episode":
            return f"episode:{self.trakt_id}:{self.minute}"
        if self.imdb:
            return f"movie:{self.imdb}:{self.minute}"
        return f"movie:trakt:{self.trakt_id}:{self.minute}"

    @property
    def label(self) -> str:
        if self.kind == "episode":
            return f"{self.title} S{self.season:02d}E{self.episode:02d}"
        return self.title


@dataclass(frozen=True)
class Reopening:
    """Between the demo's two runs, one part of a multi-part film already synced is opened again on Kinopub:
    its ``updated`` moves, but not every part was watched again, so it is not a rewatch (no new play)."""

    view: DemoView
    video: int  # the part re-opened

    def apply(self, kinopub: FakeKinopub, at: int) -> None:
        kinopub.watch(self.view.kinopub_id, video=self.video, at=at)


@dataclass(frozen=True)
class DemoLibrary:
    """The expected outcome of syncing the demo library (first run; a second run adds nothing)."""

    to_add: tuple[DemoView, ...]  # completed, mapped, new: must become exactly one play each
    duplicates: tuple[DemoView, ...]  # completed, already on Trakt at that minute: skipped
    unmatched: tuple[DemoView, ...]  # completed, cannot be mapped: recorded with ``reason``, never posted
    in_progress: tuple[DemoView, ...]  # not completed: never collected, never posted
    ignored: tuple[DemoView, ...]  # finished, but the item's only history row is deleted: never examined
    trakt_keys_before: tuple[str, ...]  # dedupe keys of the plays seeded on Trakt before any sync
    reopened: tuple[Reopening, ...] = ()  # what happens on Kinopub between the runs: never a new play

    def real_data_cases(self) -> tuple[DemoView, ...]:
        """The views that show how Kinopub's real data is handled (extras, parts, specials, merged episodes)."""
        views = (*self.to_add, *self.unmatched, *self.in_progress)
        return tuple(view for view in views if view.exercises.startswith(REAL_DATA))

    @property
    def candidates(self) -> int:
        return len(self.to_add) + len(self.duplicates) + len(self.unmatched)

    @property
    def added_movies(self) -> int:
        return sum(1 for v in self.to_add if v.kind == "movie")

    @property
    def added_episodes(self) -> int:
        return sum(1 for v in self.to_add if v.kind == "episode")

    def expected_counts(self) -> dict[str, int]:
        """The run-report counts (docs/contract.md#sync-report) of the first sync."""
        return {
            "candidates": self.candidates,
            "added_movies": self.added_movies,
            "added_episodes": self.added_episodes,
            "skipped_duplicates": len(self.duplicates),
            "not_found": 0,
            "unmatched": len(self.unmatched),
        }

    def expected_trakt_keys(self) -> list[str]:
        """``FakeTrakt.play_keys()`` after a correct sync (sorted), however many runs."""
        return sorted([*self.trakt_keys_before, *(v.key for v in self.to_add)])

    def never_posted(self) -> tuple[DemoView, ...]:
        """Views whose ids must never appear in a ``POST /sync/history`` body."""
        return self.in_progress + self.ignored + self.duplicates


# Marks the demo views that stand for what Kinopub's real data holds (docs/kinopub.md#what-the-user-watched).
REAL_DATA = "real data: "


def seed_demo_library(kinopub: FakeKinopub, trakt: FakeTrakt) -> DemoLibrary:
    """Seed a small, realistic library into both fakes (real titles and IMDb ids; Trakt ids partly invented).

    Movies (Kinopub ``videos``):
    - Inception (imdb int 1375666) — plain finished movie; Trakt also holds a 2019 play from another app,
      a *different* minute, so the 2025 view is still new (a rewatch is a new play).
    - Oppenheimer (8-digit imdb 15398776) — padding must not truncate 8 digits; watched at 23:58:59, so the
      minute is 23:58 (truncation, not rounding).
    - Parasite (imdb arrives as the string "tt6751668") — finished with ``updated: null``: watched_at falls back
      to the history row's ``last_seen``.
    - The Matrix (imdb 133093 → tt0133093) — already on Trakt at the same minute (seconds differ): a duplicate.
    - Stop Making Sense (type ``concert``, imdb 88178 → tt0088178) — a movie-like type other than ``movie``.
    - Kon-Tiki (2012, ``imdb: null``) — mapped by text search on the original title + year; the query needs
      Lucene escaping (``-``) and Trakt also has the 1950 "Kon-Tiki", which only the year rules out.
    - Ездок (Russian-only title, ``imdb: 0``) — Trakt finds nothing: unmatched ``no_imdb_not_found``.
    - Tenet — finished, but its only history row is ``deleted: true``: the item is never examined.
    - The Beatles: Get Back (``documovie``, subtype ``multi``, 3 videos, 2 finished, 1 started) — not
      completed, never posted (Trakt lists it as a show, so posting it as a movie would also be wrong).
    - Dune (imdb 1160419) — the film watched, its 3-minute trailer (another video of the item) never opened:
      the trailer is an extra, so the film is complete, at the film's own time.
    - Vienna: Empire, Dynasty and Dream (``documovie``, 3 parts of ~49 min, no IMDb id: found by its title) —
      all parts watched: one play at the last part's time. Between the demo's runs part 1 is opened again
      (as item 25130 of the 2021 recording shows happening): not a rewatch, no new play.
    Series (Kinopub ``seasons``):
    - Black Mirror (imdb 2085059) — seasons 1 and 2 bulk-marked watched (no history rows; every episode of a
      season shares one ``updated``; both seasons in the same minute, as in the 2021 recording), S3E1 played
      normally (the history row that makes the item examined). Seven plays, one per episode, even though
      six share a minute. Kinopub's season 2 holds the 2014 special "White Christmas" as a fourth episode (as
      recorded in 2021), Trakt's season 2 has three and lists it as S00E01: season 2 is longer on Kinopub, so
      its episodes are posted only where the titles agree; S02E04 is unmatched ``numbering_mismatch``.
    - Sherlock (imdb 1475582) — two specials watched (Kinopub season 0): S00E01 "Unaired Pilot" is Trakt's
      S00E01 too (the titles agree: posted); Kinopub's S00E02 "The Abominable Bride" is "Many Happy Returns" on
      Trakt: unmatched ``numbering_mismatch``.
    - Star Wars Rebels (imdb 2930604) — Kinopub merges Trakt's two-part finale S04E15 + S04E16 (2 x 22 min)
      into one 45-minute S04E15: S04E14 is posted, S04E15 is unmatched ``merged_episode``.
    - Chernobyl (imdb 7366338) — E1, E2 finished; E3 started (status 0): never posted.
    - Scrubs (imdb 285403 → tt0285403) — S1E1 finished; S10E1 (the 2026 revival, a season Trakt does not list)
      finished: unmatched ``episode_not_on_trakt``.
    Times are fixed unix seconds in 2025-2026.
    """
    to_add: list[DemoView] = []
    duplicates: list[DemoView] = []
    unmatched: list[DemoView] = []
    in_progress: list[DemoView] = []
    ignored: list[DemoView] = []

    def movie_view(
        item_id: int,
        title: str,
        at: int,
        exercises: str,
        imdb: str | None,
        trakt_id: int | None,
        reason: str | None = None,
    ) -> DemoView:
        return DemoView(
            kind="movie",
            title=title,
            kinopub_id=item_id,
            media_id=kinopub.media_id(item_id),
            watched_at=iso_ms(minute_floor(at)),
            exercises=exercises,
            imdb=imdb,
            trakt_id=trakt_id,
            reason=reason,
        )

    # --- Trakt catalog --------------------------------------------------------------------------------
    trakt.add_movie(16662, "Inception", 2010, "tt1375666")
    trakt.add_movie(487191, "Oppenheimer", 2023, "tt15398776")
    trakt.add_movie(360095, "Parasite", 2019, "tt6751668")
    trakt.add_movie(481, "The Matrix", 1999, "tt0133093")
    trakt.add_movie(6960, "Stop Making Sense", 1984, "tt0088178")
    trakt.add_movie(74950, "Kon-Tiki", 2012, "tt1613750")
    trakt.add_movie(27001, "Kon-Tiki", 1950, None)
    trakt.add_movie(354447, "Tenet", 2020, "tt6723592")
    trakt.add_movie(287071, "Dune", 2021, "tt1160419")
    trakt.add_movie(451000, "Vienna: Empire, Dynasty and Dream", 2016, None)
    trakt.add_show(162004, "The Beatles: Get Back", 2021, "tt9735318", {1: ["Part 1", "Part 2", "Part 3"]})
    black_mirror_titles = {
        1: ["The National Anthem", "Fifteen Million Merits", "The Entire History of You"],
        2: ["Be Right Back", "White Bear", "The Waldo Moment"],
        3: ["Nosedive", "Playtest", "Shut Up and Dance", "San Junipero", "Men Against Fire", "Hated in the Nation"],
    }
    trakt.add_show(
        41793,
        "Black Mirror",
        2011,
        "tt2085059",
        {0: ["White Christmas"], **black_mirror_titles, 4: 6, 5: 3, 6: 5, 7: 6},
    )
    sherlock_specials = ["Unaired Pilot", "Many Happy Returns", "The Abominable Bride"]
    trakt.add_show(19792, "Sherlock", 2010, "tt1475582", {0: sherlock_specials, 1: 3, 2: 3, 3: 3, 4: 3})
    trakt.add_show(65553, "Star Wars Rebels", 2014, "tt2930604", {1: 15, 2: 22, 3: 22, 4: 16}, runtime=22)
    chernobyl_titles = [
        "1:23:45",
        "Please Remain Calm",
        "Open Wide, O Earth",
        "The Happiness of All Mankind",
        "Vichnaya Pamyat",
    ]
    trakt.add_show(121361, "Chernobyl", 2019, "tt7366338", {1: chernobyl_titles})
    scrubs_seasons = {1: 24, 2: 22, 3: 22, 4: 25, 5: 24, 6: 22, 7: 11, 8: 19, 9: 13}
    trakt.add_show(1431, "Scrubs", 2001, "tt0285403", scrubs_seasons)

    # --- Movies -----------------------------------------------------------------------------------------
    kinopub.add_movie(1420, "Начало / Inception", 2010, 1375666, kinopoisk=447301, duration=8880)
    at = unix("2025-02-08T21:47:12")
    kinopub.watch(1420, at=at)
    trakt.add_play("movie", 16662, "2019-06-01T20:00:00.000Z")
    to_add.append(
        movie_view(1420, "Начало / Inception", at, "plain movie; an older play is not a dupe", "tt1375666", 16662)
    )

    kinopub.add_movie(61234, "Оппенгеймер / Oppenheimer", 2023, 15398776, kinopoisk=4664634, duration=10800)
    at = unix("2025-03-15T23:58:59")
    kinopub.watch(61234, at=at)
    to_add.append(
        movie_view(61234, "Оппенгеймер / Oppenheimer", at, "8-digit IMDb; minute truncation", "tt15398776", 487191)
    )

    kinopub.add_movie(41234, "Паразиты / Parasite", 2019, "tt6751668", kinopoisk=1188529, duration=7920)
    at = unix("2025-04-19T19:05:44")
    kinopub.watch(41234, at=at)
    kinopub.set_state(41234, status=1, updated=None)
    to_add.append(
        movie_view(41234, "Паразиты / Parasite", at, "'tt…' string IMDb; updated null → last_seen", "tt6751668", 360095)
    )

    kinopub.add_movie(113, "Матрица / The Matrix", 1999, 133093, kinopoisk=301, duration=8225)
    at = unix("2025-05-01T18:30:41")
    kinopub.watch(113, at=at)
    trakt.add_play("movie", 481, "2025-05-01T18:30:05.000Z")
    duplicates.append(
        movie_view(113, "Матрица / The Matrix", at, "already on Trakt in the same minute", "tt0133093", 481)
    )

    kinopub.add_movie(70512, "Talking Heads: Stop Making Sense / Stop Making Sense", 1984, 88178, type="concert")
    at = unix("2025-06-07T22:10:03")
    kinopub.watch(70512, at=at)
    to_add.append(
        movie_view(
            70512,
            "Talking Heads: Stop Making Sense / Stop Making Sense",
            at,
            "type concert; 5-digit IMDb padded",
            "tt0088178",
            6960,
        )
    )

    kinopub.add_movie(15115, "Кон-Тики / Kon-Tiki", 2012, None, kinopoisk=586397, duration=7080)
    at = unix("2025-07-12T20:02:30")
    kinopub.watch(15115, at=at)
    to_add.append(
        movie_view(15115, "Кон-Тики / Kon-Tiki", at, "imdb null → unambiguous title+year search", "tt1613750", 74950)
    )

    kinopub.add_movie(69724, "Ездок", 2020, 0, duration=1007)
    at = unix("2025-07-20T12:00:10")
    kinopub.watch(69724, at=at)
    unmatched.append(
        movie_view(
            69724,
            "Ездок",
            at,
            "imdb 0, Russian-only title: Trakt finds nothing",
            None,
            None,
            reason="no_imdb_not_found",
        )
    )

    kinopub.add_movie(58000, "Довод / Tenet", 2020, 6723592, kinopoisk=1236063, duration=9000)
    at = unix("2025-08-01T21:00:00")
    kinopub.watch(58000, at=at)
    kinopub.delete_history_row(58000, kinopub.media_id(58000))
    ignored.append(
        movie_view(58000, "Довод / Tenet", at, "only history row deleted: item never examined", "tt6723592", 354447)
    )

    get_back = "The Beatles: Get Back / The Beatles: Get Back"
    kinopub.add_movie(
        64200,
        get_back,
        2021,
        9735318,
        type="documovie",
        subtype="multi",
        videos=["Часть 1 / Part 1", "Часть 2 / Part 2", "Часть 3 / Part 3"],
        duration=9300,
    )
    kinopub.watch(64200, video=1, at=unix("2025-09-05T20:00:00"))
    kinopub.watch(64200, video=2, at=unix("2025-09-06T20:30:00"))
    at = unix("2025-09-07T21:00:00")
    kinopub.watch(64200, video=3, at=at, status=0, time=2400)
    in_progress.append(
        movie_view(64200, get_back, at, "documovie, 2 of 3 videos finished: not completed", "tt9735318", None)
    )

    kinopub.add_movie(
        40570,
        "Дюна / Dune",
        2021,
        1160419,
        kinopoisk=409424,
        videos=[("Дюна / Dune", 9360), ("Трейлер / Trailer", 180)],
    )
    at = unix("2025-10-10T21:40:05")
    kinopub.watch(40570, video=1, at=at)
    to_add.append(
        movie_view(
            40570,
            "Дюна / Dune",
            at,
            f"{REAL_DATA}a film whose trailer was never opened: the trailer is an extra, the film counts",
            "tt1160419",
            287071,
        )
    )

    vienna = "Вена. Империя, династия и мечта / Vienna: Empire, Dynasty and Dream"
    kinopub.add_movie(
        25130,
        vienna,
        2016,
        None,
        type="documovie",
        subtype="multi",
        videos=[
            ("Восхождение империи Габсбургов / Rise of the Habsburgs", 2919),
            ("Триумф Вены / Vienna Triumphant", 2992),
            ("Вымирание Габсбургов / Habsburg Extinction", 2953),
        ],
    )
    for part, moment in ((1, "2025-11-20T20:05:00"), (2, "2025-11-21T20:10:00"), (3, "2025-11-22T20:15:30")):
        kinopub.watch(25130, video=part, at=unix(moment))
    vienna_view = movie_view(
        25130,
        vienna,
        unix("2025-11-22T20:15:30"),
        f"{REAL_DATA}a 3-part film: one play at its last part; part 1 re-opened later is not a rewatch",
        None,
        451000,
    )
    to_add.append(vienna_view)

    # --- Series -----------------------------------------------------------------------------------------
    black_mirror = "Черное зеркало / Black Mirror"
    entire_history = "Все о тебе / The Entire History of You"  # noqa: RUF001 - Cyrillic, as Kinopub writes it
    kinopub.add_series(
        8632,
        black_mirror,
        2011,
        2085059,
        {
            1: [
                "Национальный гимн / The National Anthem",
                "15 миллионов призов / Fifteen Million Merits",
                entire_history,
            ],
            2: [
                "Скоро вернусь / Be Right Back",
                "Белый медведь / White Bear",
                "Момент для Уолдо / The Waldo Moment",
                ("Белое Рождество / White Christmas", 4462),
            ],
            3: 6,
            4: 6,
            5: 3,
            6: 5,
            7: 6,
        },
        kinopoisk=655800,
        duration=3600,
    )
    bulk = {1: unix("2025-01-11T19:12:11"), 2: unix("2025-01-11T19:12:20")}
    for season, at in bulk.items():
        kinopub.mark_watched_without_play(8632, season=season, at=at)
        for number in range(1, len(black_mirror_titles[season]) + 1):
            to_add.append(
                _episode_view(
                    kinopub,
                    trakt,
                    8632,
                    black_mirror,
                    "tt2085059",
                    41793,
                    season,
                    number,
                    at,
                    "season bulk-marked: one updated for all, no history row"
                    if season == 1
                    else f"{REAL_DATA}a season longer on Kinopub (a special inside): posted, the titles agree",
                )
            )
    unmatched.append(
        _unmatched_episode(
            kinopub,
            8632,
            black_mirror,
            "tt2085059",
            2,
            4,
            bulk[2],
            f"{REAL_DATA}the special White Christmas as Kinopub S02E04: Trakt has no S02E04",
            "numbering_mismatch",
        )
    )
    at = unix("2025-10-03T21:15:40")
    kinopub.watch(8632, season=3, episode=1, at=at)
    to_add.append(_episode_view(kinopub, trakt, 8632, black_mirror, "tt2085059", 41793, 3, 1, at, "played episode"))

    chernobyl = "Чернобыль / Chernobyl"
    kinopub.add_series(42000, chernobyl, 2019, 7366338, {1: 5}, kinopoisk=1227803, duration=3900)
    for number, moment in ((1, "2025-11-02T20:00:15"), (2, "2025-11-03T20:05:00")):
        at = unix(moment)
        kinopub.watch(42000, season=1, episode=number, at=at)
        to_add.append(
            _episode_view(kinopub, trakt, 42000, chernobyl, "tt7366338", 121361, 1, number, at, "finished episode")
        )
    at = unix("2025-11-04T20:10:00")
    kinopub.watch(42000, season=1, episode=3, at=at, status=0, time=1500)
    in_progress.append(
        _episode_view(kinopub, trakt, 42000, chernobyl, "tt7366338", 121361, 1, 3, at, "episode started (status 0)")
    )

    scrubs = "Клиника / Scrubs"
    kinopub.add_series(1190, scrubs, 2001, 285403, {**scrubs_seasons, 10: 9}, type="serial", duration=1320)
    at = unix("2026-01-10T18:00:00")
    kinopub.watch(1190, season=1, episode=1, at=at)
    to_add.append(
        _episode_view(kinopub, trakt, 1190, scrubs, "tt0285403", 1431, 1, 1, at, "show IMDb padded to 7 digits")
    )
    at = unix("2026-02-26T21:03:00")
    kinopub.watch(1190, season=10, episode=1, at=at)
    unmatched.append(
        _unmatched_episode(
            kinopub, 1190, scrubs, "tt0285403", 10, 1, at, "season 10 is not on Trakt", "episode_not_on_trakt"
        )
    )

    sherlock = "Шерлок / Sherlock"
    kinopub.add_series(
        20180,
        sherlock,
        2010,
        1475582,
        {0: ["Неснятый пилот / Unaired Pilot", ("Безобразная невеста / The Abominable Bride", 5400)], 1: 3},
        duration=3600,
    )
    at = unix("2026-03-07T20:30:00")
    kinopub.watch(20180, season=0, episode=1, at=at)
    to_add.append(
        _episode_view(
            kinopub, trakt, 20180, sherlock, "tt1475582", 19792, 0, 1, at, f"{REAL_DATA}a special whose title agrees"
        )
    )
    at = unix("2026-03-08T20:30:00")
    kinopub.watch(20180, season=0, episode=2, at=at)
    unmatched.append(
        _unmatched_episode(
            kinopub,
            20180,
            sherlock,
            "tt1475582",
            0,
            2,
            at,
            f"{REAL_DATA}a special numbered otherwise on Trakt (titles differ)",
            "numbering_mismatch",
        )
    )

    rebels = "Звёздные войны: Повстанцы / Star Wars Rebels"
    kinopub.add_series(
        31500,
        rebels,
        2014,
        2930604,
        {
            4: [
                *(f"Эпизод {n} / Episode {n}" for n in range(1, 15)),
                ("Воссоединение семьи / Family Reunion and Farewell", 2700),
            ]
        },
        duration=1330,
    )
    at = unix("2026-04-11T19:00:00")
    kinopub.watch(31500, season=4, episode=14, at=at)
    to_add.append(
        _episode_view(
            kinopub, trakt, 31500, rebels, "tt2930604", 65553, 4, 14, at, f"{REAL_DATA}the episode before a merged one"
        )
    )
    at = unix("2026-04-11T19:30:00")
    kinopub.watch(31500, season=4, episode=15, at=at)
    unmatched.append(
        _unmatched_episode(
            kinopub,
            31500,
            rebels,
            "tt2930604",
            4,
            15,
            at,
            f"{REAL_DATA}one Kinopub episode that is Trakt's S04E15 + S04E16",
            "merged_episode",
        )
    )

    return DemoLibrary(
        to_add=tuple(to_add),
        duplicates=tuple(duplicates),
        unmatched=tuple(unmatched),
        in_progress=tuple(in_progress),
        ignored=tuple(ignored),
        trakt_keys_before=tuple(sorted(trakt.play_keys())),
        reopened=(Reopening(vienna_view, video=1),),
    )


def _unmatched_episode(
    kinopub: FakeKinopub,
    item_id: int,
    title: str,
    imdb: str,
    season: int,
    number: int,
    at: int,
    exercises: str,
    reason: str,
) -> DemoView:
    return DemoView(
        kind="episode",
        title=title,
        kinopub_id=item_id,
        media_id=kinopub.media_id(item_id, season=season, episode=number),
        watched_at=iso_ms(minute_floor(at)),
        exercises=exercises,
        season=season,
        episode=number,
        imdb=imdb,
        reason=reason,
    )


def _episode_view(
    kinopub: FakeKinopub,
    trakt: FakeTrakt,
    item_id: int,
    title: str,
    imdb: str,
    show_id: int,
    season: int,
    number: int,
    at: int,
    exercises: str,
) -> DemoView:
    return DemoView(
        kind="episode",
        title=title,
        kinopub_id=item_id,
        media_id=kinopub.media_id(item_id, season=season, episode=number),
        watched_at=iso_ms(minute_floor(at)),
        exercises=exercises,
        season=season,
        episode=number,
        imdb=imdb,
        trakt_id=trakt.episode_id(show_id, season, number),
    )


@dataclass(frozen=True)
class LeftByOtherTools:
    """Plays other tools left on the demo account (after kinotrakt's first sync): ``extra`` are exact duplicates
    (the same item in the same minute as an older play), ``kept`` the plays that must stay, rewatches included."""

    extra: tuple[int, ...]
    kept: tuple[int, ...]


def seed_other_tools_plays(trakt: FakeTrakt) -> LeftByOtherTools:
    """What users arrive with: another app's double scrobble of the 2019 Inception play, another sync tool's
    re-import of The Matrix and of Oppenheimer (already sent by kinotrakt), Tenet marked watched twice with no
    date, and a real rewatch of Dune the day after (a new play, never a duplicate)."""
    dated = {play["id"]: (play["movie"]["ids"]["trakt"], play["watched_at"]) for play in trakt.plays("movie")}
    kept = [i for i, (movie, when) in dated.items() if movie in (16662, 481, 487191) and when[:4] in ("2019", "2025")]
    extra = [
        trakt.add_play("movie", 16662, "2019-06-01T20:00:31.000Z", action="scrobble"),
        trakt.add_play("movie", 481, "2025-05-01T18:30:41.000Z", action="watch"),
        trakt.add_play("movie", 487191, "2025-03-15T23:58:00.000Z", action="watch"),
    ]
    tenet = [trakt.add_play("movie", 354447, "unknown", action="watch") for _ in range(2)]
    rewatch = trakt.add_play("movie", 287071, "2025-08-02T21:00:00.000Z", action="scrobble")
    return LeftByOtherTools(extra=(*extra, tenet[1]), kept=(*kept, tenet[0], rewatch))


@dataclass(frozen=True)
class GeneratedLibrary:
    """What a correct first sync of a generated library does."""

    seed: int
    movies: int  # movie-like items
    shows: int
    episodes: int  # watched episodes (finished or started)
    completed_movies: int
    completed_episodes: int
    in_progress: int  # started, not finished: never posted
    duplicate_movies: int  # completed and already on Trakt at the same minute
    duplicate_episodes: int
    history_rows: int

    @property
    def candidates(self) -> int:
        return self.completed_movies + self.completed_episodes

    @property
    def expected_added_movies(self) -> int:
        return self.completed_movies - self.duplicate_movies

    @property
    def expected_added_episodes(self) -> int:
        return self.completed_episodes - self.duplicate_episodes

    @property
    def skipped_duplicates(self) -> int:
        return self.duplicate_movies + self.duplicate_episodes


def generate_library(
    seed: int,
    movies: int,
    shows: int,
    episodes: int,
    already_on_trakt: float = 0.1,
    *,
    kinopub: FakeKinopub,
    trakt: FakeTrakt,
    in_progress: float = 0.02,
    start: int = 1735689600,  # 2025-01-01T00:00:00Z
    span_seconds: int = 330 * 86400,
    season_size: tuple[int, int] = (6, 24),
) -> GeneratedLibrary:
    """Seed a deterministic library of ``movies`` movie-like items and ``shows`` shows holding ``episodes``
    watched episodes, directly (no HTTP), consistent across both fakes: every title exists on Trakt with the
    same IMDb id (synthetic ids: ``tt1000000 + i`` for movies, ``tt5000000 + j`` for shows, a tenth of them
    sent by Kinopub as ``"tt…"`` strings). ``in_progress`` is the share of views left at status 0;
    ``already_on_trakt`` the share of completed views seeded as Trakt plays in the same minute (other seconds).
    Ids: Kinopub movies 100000+i, series 300000+j; Trakt movies 900000+i, shows 80000+j."""
    if shows == 0 and episodes:
        raise ValueError("episodes need at least one show")
    rng = random.Random(seed)
    trakt_plays: list[tuple[PlayKind, int, str]] = []
    completed_movies = completed_episodes = started = duplicate_movies = duplicate_episodes = 0

    def seconds_off(at: int) -> str:
        """The same minute as ``at`` with other seconds: a play another app logged for the same view."""
        return iso_ms(minute_floor(at) + (at % 60 + 17) % 60)

    for i in range(movies):
        imdb_number = 1_000_000 + i
        imdb = f"tt{imdb_number:07d}"
        kind = rng.choices(("movie", "documovie", "concert", "3d"), weights=(85, 8, 5, 2))[0]
        kp_id, trakt_id = 100_000 + i, 900_000 + i
        trakt.add_movie(trakt_id, f"Generated Movie {i}", 1950 + i % 75, imdb, slug=f"generated-movie-{i}")
        kinopub.add_movie(
            kp_id, f"Фильм {i} / Generated Movie {i}", 1950 + i % 75, imdb if i % 10 == 0 else imdb_number, type=kind
        )
        at = start + rng.randrange(span_seconds)
        if rng.random() < in_progress:
            kinopub.watch(kp_id, at=at, status=0)
            started += 1
            continue
        kinopub.watch(kp_id, at=at)
        completed_movies += 1
        if rng.random() < already_on_trakt:
            trakt_plays.append(("movie", trakt_id, seconds_off(at)))
            duplicate_movies += 1

    base, extra = divmod(episodes, shows) if shows else (0, 0)
    for j in range(shows):
        watched = base + (1 if j < extra else 0)
        sizes = [rng.randint(*season_size)]
        target = watched + rng.randrange(0, 5)  # a few unwatched episodes at the end
        while sum(sizes) < target:
            sizes.append(rng.randint(*season_size))
        seasons = dict(enumerate(sizes, start=1))
        kp_id, show_id, imdb_number = 300_000 + j, 80_000 + j, 5_000_000 + j
        imdb = f"tt{imdb_number:07d}"
        trakt.add_show(show_id, f"Generated Show {j}", 1990 + j % 35, imdb, seasons, slug=f"generated-show-{j}")
        kinopub.add_series(
            kp_id, f"Сериал {j} / Generated Show {j}", 1990 + j % 35, imdb if j % 10 == 0 else imdb_number, seasons
        )
        at = start + rng.randrange(span_seconds // 2)
        step = max(1500, (span_seconds // 2) // max(watched, 1))  # binge or weekly, within the span
        order = [(s, n) for s, size in seasons.items() for n in range(1, size + 1)][:watched]
        for season, number in order:
            at += rng.randint(1500, step)
            if rng.random() < in_progress:
                kinopub.watch(kp_id, season=season, episode=number, at=at, status=0)
                started += 1
                continue
            kinopub.watch(kp_id, season=season, episode=number, at=at)
            completed_episodes += 1
            if rng.random() < already_on_trakt:
                trakt_plays.append(("episode", trakt.episode_id(show_id, season, number), seconds_off(at)))
                duplicate_episodes += 1

    trakt.add_plays(trakt_plays)
    return GeneratedLibrary(
        seed=seed,
        movies=movies,
        shows=shows,
        episodes=episodes,
        completed_movies=completed_movies,
        completed_episodes=completed_episodes,
        in_progress=started,
        duplicate_movies=duplicate_movies,
        duplicate_episodes=duplicate_episodes,
        history_rows=len(kinopub.history),
    )


__all__ = [
    "REAL_DATA",
    "DemoLibrary",
    "DemoView",
    "GeneratedLibrary",
    "LeftByOtherTools",
    "Reopening",
    "generate_library",
    "seed_demo_library",
    "seed_other_tools_plays",
    "unix",
]
