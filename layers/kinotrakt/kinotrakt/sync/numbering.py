"""When a Kinopub episode number may be trusted as Trakt's, and when it must not (issue 12).

Trakt's season tables list announced episodes that have not aired yet, so a Kinopub season with fewer
episodes is normal for a running show; more is not. What other Kinopub readers report
(docs/kinopub.md#what-the-user-watched):

- Kinopub's season 0 (specials) rarely matches Trakt's numbering, and specials are sometimes numbered inside a
  regular season, shifting the episodes after them. So an episode of season 0, or of a Kinopub season with
  **more** episodes than Trakt's, is matched only when Trakt has the same season and number **and** the titles
  agree (``sync/titles.py``); otherwise it is ``numbering_mismatch``.
- Kinopub sometimes merges two Trakt episodes into one (Star Wars Rebels S04E15 on Kinopub = Trakt S04E15 +
  S04E16, 45 min against 2 x 22). When a Kinopub season has fewer episodes than Trakt's *aired* ones and one
  Kinopub episode lasts the two consecutive Trakt episodes' runtimes together (within 15%) while its neighbours
  match one to one, it is ``merged_episode``, and the episodes after it are not matched by number (their numbers
  are shifted): ``numbering_mismatch``.
- In that same situation (fewer than aired), where a merge can be neither confirmed nor ruled out — a duration
  or runtime unknown, a double-length episode whose neighbours do not match — the episodes from there on are
  not matched by number either (``numbering_mismatch``, saying why): the rule above decides only what it can see.

A wrong play is worse than a missing one: every doubt ends as an unmatched view whose detail says what differs,
and the user pins it (``kinotrakt map``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kinotrakt.sync.model import CompletedView, KinopubSeason
from kinotrakt.sync.seasons import TraktEpisodeInfo
from kinotrakt.sync.titles import titles_agree

# How far a Kinopub duration may be from Trakt's runtime and still "match" (runtimes are rounded minutes, and
# a file may hold a recap or credits the broadcast slot did not).
DURATION_TOLERANCE = 0.15


@dataclass(frozen=True)
class Refusal:
    reason: str  # numbering_mismatch | merged_episode
    detail: str


@dataclass(frozen=True)
class Merge:
    kinopub_number: int
    kinopub_seconds: int
    trakt_numbers: tuple[int, int]
    trakt_minutes: tuple[int, int]


@dataclass(frozen=True)
class Doubt:
    """From this Kinopub episode on, a merge cannot be ruled out."""

    kinopub_number: int
    why: str


@dataclass(frozen=True)
class SeasonComparison:
    """One Kinopub season against the Trakt season it maps to, computed once per run and season."""

    kinopub: KinopubSeason | None
    trakt_season: int
    trakt: tuple[TraktEpisodeInfo, ...]
    aired: int
    merge: Merge | Doubt | None

    @classmethod
    def of(
        cls, kinopub: KinopubSeason | None, trakt_season: int, trakt: tuple[TraktEpisodeInfo, ...], now: datetime
    ) -> SeasonComparison:
        # Up to the last episode that has aired: one in between without a date has aired too.
        last = max((n for n, episode in enumerate(trakt, 1) if episode.aired_before(now)), default=0)
        aired = list(trakt[:last])
        merge = None
        if kinopub is not None and len(kinopub.numbers) < len(aired):
            merge = find_merge(kinopub, aired, trakt_season)
        return cls(kinopub, trakt_season, trakt, len(aired), merge)

    def _numbers(self) -> str:
        if self.kinopub is None:
            return f"Trakt's season {self.trakt_season} has {len(self.trakt)} episodes"
        kinopub = f"Kinopub season {self.kinopub.number} has {len(self.kinopub.numbers)} episodes"
        return f"{kinopub}, Trakt's season {self.trakt_season} {len(self.trakt)}"

    def match(self, view: CompletedView, pin_hint: str) -> TraktEpisodeInfo | Refusal | None:
        """The Trakt episode of ``view`` by number, a refusal with what differs, or None when Trakt's season
        has no such number and nothing else is in doubt (the caller's ``episode_not_on_trakt``).
        ``pin_hint`` is the ``kinotrakt map`` command prefix for this item, for the detail."""
        assert view.season is not None  # noqa: S101 - only episodes with numbers get here
        assert view.episode is not None  # noqa: S101
        candidate = next((e for e in self.trakt if e.number == view.episode), None)
        more = self.kinopub is not None and len(self.kinopub.numbers) > len(self.trakt)
        if view.season == 0 or more:
            return self._by_title(view, candidate, pin_hint)
        if self.merge is not None and view.episode >= self.merge.kinopub_number:
            return self._after_merge(view, self.merge, pin_hint)
        return candidate

    def _by_title(
        self, view: CompletedView, candidate: TraktEpisodeInfo | None, pin_hint: str
    ) -> TraktEpisodeInfo | Refusal:
        """Season 0, or more episodes than Trakt's season: the same number is not enough, the titles must agree."""
        where = f"S{self.trakt_season:02d}E{view.episode:02d}"
        why = (
            "Kinopub's specials (season 0) rarely follow Trakt's numbering"
            if view.season == 0
            else f"{self._numbers()}: specials inside the season shift the numbers"
        )
        hint = f"; pin it with `{pin_hint} episode {view.season} {view.episode} S..E..`"
        if candidate is None:
            return Refusal("numbering_mismatch", f"{why}; Trakt has no {where}{hint}")
        if titles_agree(view.episode_title, candidate.title):
            return candidate
        kinopub_title = view.episode_title or "(no title)"
        trakt_title = candidate.title or "(no title)"
        detail = f"{why}; titles differ: Kinopub “{kinopub_title}”, Trakt {where} “{trakt_title}”{hint}"
        return Refusal("numbering_mismatch", detail)

    def _after_merge(self, view: CompletedView, merge: Merge | Doubt, pin_hint: str) -> Refusal:
        """At or after a merged episode (or where one cannot be ruled out): the numbers are not Trakt's."""
        assert view.episode is not None  # noqa: S101
        number, ts = view.episode, self.trakt_season
        if isinstance(merge, Doubt):
            detail = (
                f"{self._numbers()} ({self.aired} aired), so two may be merged into one, and {merge.why}: from "
                f"Kinopub E{merge.kinopub_number:02d} on the numbers are not trusted; pin it with "
                f"`{pin_hint} episode {view.season} {number} S..E..` or the season with "
                f"`{pin_hint} season {view.season} --offset N --from-episode N`"
            )
            return Refusal("numbering_mismatch", detail)
        first, second = merge.trakt_numbers
        if number == merge.kinopub_number:
            detail = (
                f"Kinopub S{view.season:02d}E{number:02d} ({round(merge.kinopub_seconds / 60)} min) looks like Trakt "
                f"S{ts:02d}E{first:02d} + S{ts:02d}E{second:02d} ({merge.trakt_minutes[0]} + "
                f"{merge.trakt_minutes[1]} min; {self._numbers()}, {self.aired} aired); pin both with "
                f"`{pin_hint} episode {view.season} {number} S{ts:02d}E{first:02d} S{ts:02d}E{second:02d}`"
            )
            return Refusal("merged_episode", detail)
        detail = (
            f"after Kinopub E{merge.kinopub_number:02d}, which merges Trakt E{first:02d} + E{second:02d}, the "
            f"numbers are shifted: Kinopub E{number:02d} is likely Trakt E{number + 1:02d}; pin the season with "
            f"`{pin_hint} season {view.season} --offset 1 --from-episode {merge.kinopub_number + 1}`"
        )
        return Refusal("numbering_mismatch", detail)


def _close(seconds: int | None, minutes: int | None) -> bool:
    if seconds is None or not minutes:
        return False
    target = minutes * 60
    return abs(seconds - target) <= DURATION_TOLERANCE * target


def find_merge(kinopub: KinopubSeason, aired: Sequence[TraktEpisodeInfo], trakt_season: int) -> Merge | Doubt | None:
    """The first Kinopub episode (by position) that lasts two consecutive aired Trakt episodes together while its
    neighbours match one to one (before it, position p is Trakt's p; after it, Trakt's p + 1); or the first
    position where that cannot be told; or None when every position is a plain one-to-one candidate."""
    durations, runtimes = kinopub.durations, [episode.runtime for episode in aired]
    for p, seconds in enumerate(durations):
        if p + 1 >= len(runtimes):
            break
        number, first, second = kinopub.numbers[p], runtimes[p], runtimes[p + 1]
        if seconds is None:
            return Doubt(number, f"Kinopub E{number:02d} has no duration to compare")
        for position in (p, p + 1):
            if runtimes[position] is None:
                return Doubt(number, f"Trakt S{trakt_season:02d}E{aired[position].number:02d} has no runtime")
        assert first is not None  # noqa: S101 - checked just above
        assert second is not None  # noqa: S101
        if not _close(seconds, first + second):
            continue
        minutes = round(seconds / 60)
        if _close(seconds, first):
            return Doubt(number, f"Kinopub E{number:02d} ({minutes} min) could be one Trakt episode or two")
        before = p == 0 or _close(durations[p - 1], runtimes[p - 1])
        after = p + 1 >= len(durations) or (p + 2 < len(runtimes) and _close(durations[p + 1], runtimes[p + 2]))
        if not (before and after):
            pair = f"Trakt E{aired[p].number:02d} + E{aired[p + 1].number:02d}"
            return Doubt(number, f"Kinopub E{number:02d} ({minutes} min) lasts as long as {pair}")
        return Merge(number, seconds, (aired[p].number, aired[p + 1].number), (first, second))
    return None
