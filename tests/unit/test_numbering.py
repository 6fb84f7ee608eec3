"""Specials and shifted numbering never become wrong plays (issue 12, point 3), and the season table stays small.

The mapper is driven with a stub of Trakt's catalog; Kinopub's side comes from the collector's own rules on
``/v1/watching`` bodies (the recorded Black Mirror one among them), so what is compared is what a run compares.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.clock import VirtualClock
from devkit.memory import InMemoryMappingStore
from kinotrakt.kinopub.models import HistoryItem, WatchingResponse
from kinotrakt.storage.ports import EpisodePin, NumberingPins, Pin, SeasonPin
from kinotrakt.sync.collect import episode_views
from kinotrakt.sync.mapping import Mapper, MappingCache, MapResult, expand_pinned_episodes
from kinotrakt.sync.model import CompletedView, KinopubSeason
from kinotrakt.sync.numbering import Doubt, Merge, SeasonComparison, find_merge
from kinotrakt.sync.seasons import CACHE_BYTES, SeasonTable, TraktEpisodeInfo
from kinotrakt.sync.titles import is_generic, titles_agree
from kinotrakt.trakt.models import Episode, Ids, SearchHit, Season, Show

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AIRED = NOW - timedelta(days=400)
RECORDED = json.loads((Path(__file__).parents[1] / "fixtures" / "kinopub" / "recorded-2021.json").read_text("utf-8"))


class Catalog:
    """One show on Trakt as the mapper sees it."""

    def __init__(self, show_id: int, imdb: str, seasons: dict[int, list[Episode]]) -> None:
        self.show = Show(title="Show", year=2011, ids=Ids(trakt=show_id, imdb=imdb))
        self.seasons = seasons
        self.calls: list[str] = []

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        self.calls.append(f"imdb:{imdb}")
        return [SearchHit(type="show", show=self.show)] if type == "show" and imdb == self.show.ids.imdb else []

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]:
        return []

    def show_seasons(self, show: int | str) -> list[Season] | None:
        """By Trakt id or IMDb id, as ``/shows/{id}/seasons`` takes either."""
        self.calls.append(f"seasons:{show}")
        if str(show) not in (str(self.show.ids.trakt), self.show.ids.imdb):
            return None
        return [Season(number=n, episodes=eps) for n, eps in sorted(self.seasons.items())]


def trakt_episode(
    season: int, number: int, title: str | None = None, runtime: int | None = 45, aired: datetime | None = AIRED
) -> Episode:
    return Episode(
        season=season,
        number=number,
        title=title or f"Episode {number}",
        ids=Ids(trakt=season * 1000 + number),
        runtime=runtime,
        first_aired=aired,
    )


def kinopub_series(item_id: int, imdb: str, seasons: dict[int, list[tuple[str, int]]]) -> list[CompletedView]:
    """Every episode watched, through the collector's rule: (title, duration in seconds) per episode."""
    body = {
        "id": item_id,
        "type": "serial",
        "seasons": [
            {
                "number": number,
                "episodes": [
                    {"id": item_id * 1000 + number * 100 + n, "number": n, "title": t, "duration": d, "status": 1}
                    | {"updated": 1_700_000_000}
                    for n, (t, d) in enumerate(episodes, 1)
                ],
            }
            for number, episodes in seasons.items()
        ],
    }
    item = HistoryItem(id=item_id, title="Шоу / Show", type="serial", imdb=imdb)
    return episode_views(item, WatchingResponse.model_validate({"item": body}).item, {})


def run_mapper(
    catalog: Catalog,
    views: list[CompletedView],
    *,
    pins: dict[int, Pin] | None = None,
    numbering: NumberingPins | None = None,
    state: InMemoryMappingStore | None = None,
) -> MapResult:
    clock = VirtualClock(NOW)
    cache = MappingCache(state or InMemoryMappingStore(), clock)
    numbering = numbering or NumberingPins()
    result = Mapper(catalog, cache, pins or {}, clock, numbering).map(expand_pinned_episodes(views, numbering))
    cache.flush()
    return result


def outcome(result: MapResult) -> dict[tuple[int | None, int | None, int], str]:
    """(season, episode, pin part) → the Trakt episode id it maps to, or the unmatched reason."""
    mapped = {(m.view.season, m.view.episode, m.view.pin_part): str(m.episode_trakt_id) for m in result.mapped}
    missed = {(u.season, u.episode, 0): u.reason for u in result.unmatched}
    return mapped | missed


# --- titles ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinopub", "trakt", "agree"),
    [
        ("Белое Рождество / White Christmas", "White Christmas", True),
        ("White Christmas / Белое Рождество", "white christmas!", True),
        ("Ёлки", "Елки", True),
        ("Маска / eps2.0_unm4sk-pt1.tc", "eps2.0_unm4sk-pt1.tc", True),
        ("Рождество / Christmas", "White Christmas", False),
        ("Эпизод 5 / Episode 5", "Episode 5", False),  # generic on both sides says nothing
        ("Серия 5", "Серия 5", False),
        ("Something", None, False),
        ("", "", False),
    ],
)
def test_titles_agree_after_normalisation_and_never_on_a_generic_title(
    kinopub: str, trakt: str | None, agree: bool
) -> None:
    assert titles_agree(kinopub, trakt) is agree


def test_generic_titles() -> None:
    assert is_generic("Episode 12")
    assert is_generic("серия 3")
    assert not is_generic("Episode Twelve")


# --- specials and inline specials --------------------------------------------------------------------------


def test_black_mirror_season_two_as_recorded_posts_three_episodes_and_refuses_white_christmas() -> None:
    # Given the recorded Black Mirror state (White Christmas is Kinopub S02E04) and Trakt's numbering, where
    # season 2 has three episodes and White Christmas is the special S00E01
    (entry,) = [e for e in RECORDED if e["httpRequest"].get("queryStringParameters", {}).get("id") == ["8632"]]
    item = HistoryItem(id=8632, title="Черное зеркало / Black Mirror", type="serial", imdb="tt2085059")
    views = episode_views(item, WatchingResponse.model_validate(entry["httpResponse"]["body"]).item, {})
    season_two = [view for view in views if view.season == 2]
    catalog = Catalog(
        41793,
        "tt2085059",
        {
            0: [trakt_episode(0, 1, "White Christmas")],
            2: [trakt_episode(2, n, t) for n, t in enumerate(["Be Right Back", "White Bear", "The Waldo Moment"], 1)],
        },
    )

    # When its season 2 is mapped
    result = run_mapper(catalog, season_two)

    # Then the three whose titles agree with Trakt's are posted by number, and the special is refused
    assert outcome(result) == {
        (2, 1, 0): "2001",
        (2, 2, 0): "2002",
        (2, 3, 0): "2003",
        (2, 4, 0): "numbering_mismatch",
    }
    (refused,) = result.unmatched
    assert refused.detail.startswith(
        "Kinopub season 2 has 4 episodes, Trakt's season 2 3: specials inside the season shift the numbers; "
        "Trakt has no S02E04"
    )
    assert refused.trakt_show == "tt2085059"


def test_an_inline_special_shifts_the_numbers_and_only_agreeing_titles_are_posted() -> None:
    # Given Kinopub's season 1 with a special inserted as E03, so Kinopub E04-E05 are Trakt E03-E04
    trakt_titles = ["Pilot", "Second", "Third", "Fourth"]
    catalog = Catalog(7, "tt0000007", {1: [trakt_episode(1, n, t) for n, t in enumerate(trakt_titles, 1)]})
    kinopub = [("Пилот / Pilot", 2700), ("Второй / Second", 2700), ("Спецвыпуск / Special", 1500)]
    kinopub += [("Третий / Third", 2700), ("Четвёртый / Fourth", 2700)]

    result = run_mapper(catalog, kinopub_series(70, "tt0000007", {1: kinopub}))

    # Then E01-E02 (titles agree) are posted; the special and the shifted ones are not, each saying what differs
    assert outcome(result) == {
        (1, 1, 0): "1001",
        (1, 2, 0): "1002",
        (1, 3, 0): "numbering_mismatch",
        (1, 4, 0): "numbering_mismatch",
        (1, 5, 0): "numbering_mismatch",
    }
    details = {u.episode: u.detail for u in result.unmatched}
    assert "titles differ: Kinopub “Третий / Third”, Trakt S01E04 “Fourth”" in details[4]
    assert "Trakt has no S01E05" in details[5]
    assert "kinotrakt map 70 episode 1 4 S..E.." in details[4]


def test_season_zero_is_posted_only_when_the_titles_agree() -> None:
    catalog = Catalog(
        7, "tt0000007", {0: [trakt_episode(0, 1, "The Abominable Bride"), trakt_episode(0, 2, "Unaired Pilot")]}
    )
    kinopub = [("Безобразная невеста / The Abominable Bride", 5400), ("Как снимали / Making of", 1800)]

    result = run_mapper(catalog, kinopub_series(71, "tt0000007", {0: kinopub}))

    assert outcome(result) == {(0, 1, 0): "1", (0, 2, 0): "numbering_mismatch"}
    assert "Kinopub's specials (season 0) rarely follow Trakt's numbering" in result.unmatched[0].detail


def test_fewer_episodes_than_trakt_lists_is_normal_and_numbers_are_trusted() -> None:
    # Given a running show: Trakt lists 10 (3 not aired yet), Kinopub has 7 with generic titles
    episodes = [trakt_episode(1, n) for n in range(1, 8)] + [trakt_episode(1, n, aired=None) for n in range(8, 11)]
    catalog = Catalog(7, "tt0000007", {1: episodes})

    result = run_mapper(catalog, kinopub_series(72, "tt0000007", {1: [(f"Серия {n}", 2700) for n in range(1, 8)]}))

    assert outcome(result) == {(1, n, 0): str(1000 + n) for n in range(1, 8)}


# --- merged episodes ---------------------------------------------------------------------------------------


def rebels_season_four(kinopub_count: int = 15) -> tuple[Catalog, list[CompletedView]]:
    """Star Wars Rebels S04 (docs/kinopub.md#what-the-user-watched): Trakt 16 episodes of ~22 min; Kinopub merges
    the two-part finale E15 + E16 into one 45-minute E15."""
    runtimes = [22, 23, 22, 22, 23, 22, 22, 22, 23, 22, 22, 22, 22, 23, 22, 23]
    catalog = Catalog(65553, "tt2930604", {4: [trakt_episode(4, n, runtime=r) for n, r in enumerate(runtimes, 1)]})
    durations = [1330, 1360, 1320, 1340, 1370, 1330, 1310, 1330, 1360, 1320, 1330, 1340, 1310, 1390, 2700]
    kinopub = [(f"Эпизод {n}", d) for n, d in enumerate(durations[:kinopub_count], 1)]
    return catalog, kinopub_series(73, "tt2930604", {4: kinopub})


def test_the_merged_finale_is_refused_with_both_trakt_numbers_and_the_others_are_posted() -> None:
    catalog, views = rebels_season_four()

    result = run_mapper(catalog, views)

    assert outcome(result) == {**{(4, n, 0): str(4000 + n) for n in range(1, 15)}, (4, 15, 0): "merged_episode"}
    (merged,) = result.unmatched
    assert merged.detail.startswith("Kinopub S04E15 (45 min) looks like Trakt S04E15 + S04E16 (22 + 23 min; ")
    assert "kinotrakt map 73 episode 4 15 S04E15 S04E16" in merged.detail


def test_after_a_merged_episode_the_numbers_are_not_trusted() -> None:
    # Given a merge in the middle: Kinopub E05 = Trakt E05 + E06, so Kinopub E06.. = Trakt E07..
    runtimes = [44, 43, 45, 44, 22, 23, 44, 45]
    catalog = Catalog(9, "tt0000009", {1: [trakt_episode(1, n, runtime=r) for n, r in enumerate(runtimes, 1)]})
    durations = [2640, 2580, 2700, 2640, 2700, 2640, 2700]
    views = kinopub_series(74, "tt0000009", {1: [(f"Серия {n}", d) for n, d in enumerate(durations, 1)]})

    result = run_mapper(catalog, views)

    assert outcome(result) == {
        **{(1, n, 0): str(1000 + n) for n in range(1, 5)},
        (1, 5, 0): "merged_episode",
        (1, 6, 0): "numbering_mismatch",
        (1, 7, 0): "numbering_mismatch",
    }
    shifted = next(u for u in result.unmatched if u.episode == 6)
    assert "Kinopub E06 is likely Trakt E07" in shifted.detail
    assert "kinotrakt map 74 season 1 --offset 1 --from-episode 6" in shifted.detail


def test_pins_resolve_a_merged_episode_into_two_plays_and_the_shifted_rest() -> None:
    # Given the mid-season merge above, pinned by the user as the refusals suggest
    runtimes = [44, 43, 45, 44, 22, 23, 44, 45]
    catalog = Catalog(9, "tt0000009", {1: [trakt_episode(1, n, runtime=r) for n, r in enumerate(runtimes, 1)]})
    durations = [2640, 2580, 2700, 2640, 2700, 2640, 2700]
    views = kinopub_series(74, "tt0000009", {1: [(f"Серия {n}", d) for n, d in enumerate(durations, 1)]})
    numbering = NumberingPins()
    numbering.add(EpisodePin(74, 1, 5, ((1, 5), (1, 6))))
    numbering.add(SeasonPin(74, 1, 1, episode_offset=1, from_episode=6))

    result = run_mapper(catalog, views, numbering=numbering)

    # Then Kinopub E05 is two plays (each its own ledger entry) and E06-E07 go to Trakt E07-E08
    assert outcome(result) == {
        **{(1, n, 0): str(1000 + n) for n in range(1, 5)},
        (1, 5, 0): "1005",
        (1, 5, 1): "1006",
        (1, 6, 0): "1007",
        (1, 7, 0): "1008",
    }
    refs = [m.view.view_ref for m in result.mapped if m.view.episode == 5]
    assert refs == ["episode:74:1:5", "episode:74:1:5:1"]


def test_a_pin_to_an_episode_trakt_does_not_list_is_unmatched_not_guessed() -> None:
    catalog, views = rebels_season_four()
    numbering = NumberingPins()
    numbering.add(EpisodePin(73, 4, 15, ((4, 15), (4, 17))))

    result = run_mapper(catalog, [v for v in views if v.episode == 15], numbering=numbering)

    assert [(m.view.pin_part, m.episode_trakt_id) for m in result.mapped] == [(0, 4015)]
    (missing,) = result.unmatched
    assert (missing.reason, missing.detail) == (
        "episode_not_on_trakt",
        "pinned to S04E17, which Trakt show tt2930604 does not list",
    )


def test_an_item_pin_with_a_season_offset_compares_the_shifted_season() -> None:
    catalog = Catalog(9, "tt0000009", {2: [trakt_episode(2, n, t) for n, t in enumerate(["A", "B"], 1)]})
    views = kinopub_series(75, "tt0000009", {1: [("Первая / A", 2700), ("Вторая / B", 2700), ("Третья / C", 2700)]})

    result = run_mapper(catalog, views, pins={75: Pin(75, "show", 9, season_offset=1)})

    assert outcome(result) == {(1, 1, 0): "2001", (1, 2, 0): "2002", (1, 3, 0): "numbering_mismatch"}
    assert "Kinopub season 1 has 3 episodes, Trakt's season 2 2" in result.unmatched[0].detail


def test_merge_detection_needs_its_neighbours_to_match() -> None:
    trakt = tuple(TraktEpisodeInfo(1, n, n, None, r, 0) for n, r in enumerate([44, 22, 23, 44], 1))
    # One long Kinopub episode whose neighbours match one to one: a merge
    assert find_merge(KinopubSeason(1, (1, 2, 3), (2640, 2700, 2640)), trakt, 1) == Merge(2, 2700, (2, 3), (22, 23))
    # ... whose neighbour does not: no claim of a merge, but no trust in the numbers from there either
    assert find_merge(KinopubSeason(1, (1, 2, 3), (2640, 2700, 1000)), trakt, 1) == Doubt(
        2, "Kinopub E02 (45 min) lasts as long as Trakt E02 + E03"
    )
    # Unknown durations or runtimes prove nothing either way
    assert find_merge(KinopubSeason(1, (1, 2, 3), (2640, None, 2640)), trakt, 1) == Doubt(
        2, "Kinopub E02 has no duration to compare"
    )
    unknown = (*trakt[:2], TraktEpisodeInfo(1, 3, 3, None, None, 0), trakt[3])
    assert find_merge(KinopubSeason(1, (1, 2, 3), (2640, 1320, 1380)), unknown, 1) == Doubt(
        2, "Trakt S01E03 has no runtime"
    )
    # Every episode one to one: nothing to doubt
    assert find_merge(KinopubSeason(1, (1, 2, 3), (2640, 1320, 1380)), trakt, 1) is None


@st.composite
def kinopub_seasons(draw: st.DrawFn) -> tuple[list[int], list[int | None], list[tuple[int, ...]], int]:
    """Trakt's runtimes, and a Kinopub season cut from the same episodes: each Kinopub episode covers one Trakt
    episode or merges two, sometimes a special is inserted, its duration is the covered runtimes within 10%
    (or unknown), and Kinopub may stop before Trakt's last episodes. Returns runtimes, Kinopub durations, what
    each Kinopub episode truly is (the Trakt numbers it covers; () for a special) and how many Trakt episodes
    have not aired."""
    runtimes = draw(st.lists(st.integers(min_value=15, max_value=70), min_size=1, max_size=12))
    durations: list[int | None] = []
    truth: list[tuple[int, ...]] = []
    # Inline specials in a season Kinopub has whole; merges in any (the rules see only one of them at a time)
    specials = draw(st.booleans())
    n = 1
    while n <= len(runtimes):
        if specials and len(truth) < 20 and draw(st.integers(0, 9)) == 9:  # an inline special
            durations.append(draw(st.integers(5, 120)) * 60)
            truth.append(())
            continue
        covers = (n, n + 1) if not specials and n < len(runtimes) and draw(st.integers(0, 5)) == 5 else (n,)
        seconds = sum(runtimes[c - 1] for c in covers) * 60
        noise = draw(st.floats(min_value=-0.1, max_value=0.1))
        durations.append(None if draw(st.integers(0, 9)) == 9 else int(seconds * (1 + noise)))
        truth.append(covers)
        n += len(covers)
    stop = len(durations) if specials else draw(st.integers(min_value=1, max_value=len(durations)))
    covered = max((max(covers) for covers in truth[:stop] if covers), default=0)
    # Trakt's not-yet-aired episodes can only be after everything Kinopub already has
    unaired = min(draw(st.integers(min_value=0, max_value=3)), len(runtimes) - covered)
    return runtimes, durations[:stop], truth[:stop], unaired


@settings(max_examples=400, deadline=None)
@given(season=kinopub_seasons(), specials=st.booleans())
def test_a_kinopub_episode_is_never_posted_as_another_trakt_episode(
    season: tuple[list[int], list[int | None], list[tuple[int, ...]], int], specials: bool
) -> None:
    # Given any Kinopub season cut from Trakt's (merges, inline specials, unknown durations, unaired episodes),
    # with generic titles on both sides (titles prove nothing)
    runtimes, durations, truth, unaired = season
    number = 0 if specials else 1
    episodes = [
        trakt_episode(number, n, runtime=r, aired=AIRED if n <= len(runtimes) - unaired else None)
        for n, r in enumerate(runtimes, 1)
    ]
    catalog = Catalog(9, "tt0000009", {number: episodes})
    views = kinopub_series(76, "tt0000009", {number: [(f"Серия {n}", d or 0) for n, d in enumerate(durations, 1)]})

    # When it is mapped
    result = run_mapper(catalog, views)

    # Then every posted episode is exactly the Trakt episode it truly is: never a special as an episode, never
    # one half of a merged episode, never a shifted number; season 0 is never posted without agreeing titles
    posted = {m.view.episode: m.episode_trakt_id for m in result.mapped}
    for kinopub_number, trakt_id in posted.items():
        assert kinopub_number is not None
        assert truth[kinopub_number - 1] == (kinopub_number,), f"E{kinopub_number} posted as {trakt_id}"
        assert trakt_id == number * 1000 + kinopub_number
    assert not (specials and posted)
    assert len(result.mapped) + len(result.unmatched) == len(durations)


# --- the cached season table -------------------------------------------------------------------------------


def test_the_season_table_round_trips_through_its_compact_cached_form() -> None:
    seasons = [
        Season(number=1, episodes=[trakt_episode(1, 1, "Pilot", 44, NOW), trakt_episode(1, 2, None, None, None)])
    ]
    table = SeasonTable.from_trakt(seasons, 123)

    cached = table.to_cache()

    assert cached is not None
    assert SeasonTable.from_cache(json.loads(json.dumps(cached))) == table
    assert table.episode(1, 1) == TraktEpisodeInfo(1, 1, 1001, "Pilot", 44, int(NOW.timestamp()) // 3600)


def test_a_season_table_cached_by_an_older_version_is_fetched_again() -> None:
    assert SeasonTable.from_cache({"fetched_at": 1, "episodes": {"1:1": 1001}}) is None


def test_a_daily_soap_fits_in_one_item_by_dropping_what_does_not_fit() -> None:
    # Given a soap of 6,000 episodes with long titles, and one of 40,000
    def soap(count: int) -> SeasonTable:
        episodes = [trakt_episode(1, n, "Серия про многое " * 20, 22, AIRED) for n in range(1, count + 1)]
        return SeasonTable.from_trakt([Season(number=1, episodes=episodes)], 1)

    # Then the first is cached, under DynamoDB's item limit, with titles cut or dropped and every id kept
    cached = soap(6_000).to_cache()
    assert cached is not None
    assert len(json.dumps(cached).encode()) <= CACHE_BYTES < 400_000
    restored = SeasonTable.from_cache(cached)
    assert restored is not None
    assert restored.episode(1, 6000) is not None
    # and the second, too big even without titles, is not cached at all (fetched again by each run)
    assert soap(40_000).to_cache() is None


def test_without_titles_a_special_is_refused_rather_than_trusted() -> None:
    comparison = SeasonComparison.of(None, 0, (TraktEpisodeInfo(0, 1, 1, None, 44, 0),), NOW)
    view = kinopub_series(77, "tt0000009", {0: [("White Christmas", 4462)]})[0]
    refused = comparison.match(view, "kinotrakt map 77")
    assert not isinstance(refused, TraktEpisodeInfo)


def test_mapping_caches_the_compact_table_and_a_second_run_asks_trakt_nothing() -> None:
    catalog, views = rebels_season_four()
    state = InMemoryMappingStore()
    run_mapper(catalog, views, state=state)
    assert catalog.calls == ["seasons:tt2930604"]
    catalog.calls.clear()

    again = run_mapper(catalog, views, state=state)

    assert catalog.calls == []
    assert len(again.mapped) == 14
    stored: dict[str, Any] = state.load(NOW)["seasons:tt2930604"]
    assert stored["v"] == 2
    assert stored["seasons"]["4"]["rt"][:3] == [22, 23, 22]
