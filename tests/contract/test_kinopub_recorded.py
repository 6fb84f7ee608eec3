"""Contract: real Kinopub answers (recorded in 2021 by the Kodi add-on's test suite, BSD-3, see
``tests/fixtures/kinopub/LICENSE-kodi.kino.pub.txt``) parse with our models, and the collector's rules do
what the issue says on the items that motivated them.

Every recorded body is either parsed by the model of the endpoint kinotrakt reads, or listed below as an
endpoint kinotrakt never reads: a new recording with an endpoint nobody thought about fails here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kinotrakt.kinopub.models import (
    DeviceCode,
    HistoryItem,
    ItemResponse,
    TokenResponse,
    WatchingItem,
    WatchingResponse,
)
from kinotrakt.sync.collect import episode_views, feature_parts, movie_view
from kinotrakt.sync.model import MOVIE_TYPES, SERIES_TYPES
from kinotrakt.text import TITLE_LIMIT

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kinopub"
RECORDED: list[dict[str, Any]] = json.loads((FIXTURES / "recorded-2021.json").read_text("utf-8"))

# Endpoints in the recording that kinotrakt never calls (catalog browsing, bookmarks, the add-on's own
# error-injection paths). Reading one of them later means adding its model and a case above this list.
NOT_READ = re.compile(
    r"/v1/|/v1/user|/v1/items/(fresh|popular|hot)|/v1/items|/v1/watching/(movies|serials)"
    r"|/v1/bookmarks(/.*)?|/v1/device/notify"
)


def _body(entry: dict[str, Any]) -> Any:
    return entry["httpResponse"].get("body")


def _query_id(entry: dict[str, Any]) -> int:
    return int(entry["httpRequest"]["queryStringParameters"]["id"][0])


def _entries(method: str, pattern: str) -> list[dict[str, Any]]:
    return [
        e for e in RECORDED if e["httpRequest"]["method"] == method and re.fullmatch(pattern, e["httpRequest"]["path"])
    ]


WATCHING = _entries("GET", r"/v1/watching")
ITEMS = _entries("GET", r"/v1/items/\d+")


def test_every_recorded_answer_is_either_read_by_a_model_or_an_endpoint_we_never_call() -> None:
    parsed = {id(e) for e in [*WATCHING, *ITEMS, *_entries("POST", r"/v1/oauth2/device")]}
    others = [e["httpRequest"]["path"] for e in RECORDED if id(e) not in parsed]
    assert len(parsed) + len(others) == len(RECORDED) == 60
    assert [path for path in others if not NOT_READ.fullmatch(path)] == []


@pytest.mark.parametrize("entry", WATCHING, ids=lambda e: f"watching-{_query_id(e)}")
def test_every_recorded_watching_answer_parses_with_every_video_and_episode(entry: dict[str, Any]) -> None:
    raw = _body(entry)["item"]

    item = WatchingResponse.model_validate(_body(entry)).item

    assert item.id == _query_id(entry) == raw["id"]
    assert [(v.id, v.status, v.duration) for v in item.videos] == [
        (v["id"], v["status"], v["duration"]) for v in raw.get("videos", [])
    ]
    episodes = [(e.id, e.status, e.duration) for s in item.seasons for e in s.episodes]
    assert episodes == [(e["id"], e["status"], e["duration"]) for s in raw.get("seasons", []) for e in s["episodes"]]
    assert all(
        v.updated == (datetime.fromtimestamp(r["updated"], UTC) if r["updated"] else None)
        for v, r in zip(item.videos, raw.get("videos", []), strict=True)
    )


@pytest.mark.parametrize("entry", ITEMS, ids=lambda e: e["httpRequest"]["path"])
def test_every_recorded_catalog_item_parses_and_its_imdb_id_is_normalised(entry: dict[str, Any]) -> None:
    raw = _body(entry)["item"]

    item = ItemResponse.model_validate(_body(entry)).item

    assert (item.id, item.type, item.year) == (raw["id"], raw["type"], raw["year"])
    assert item.imdb is None if not raw["imdb"] else item.imdb == f"tt{int(raw['imdb']):07d}"
    assert len(item.title) <= TITLE_LIMIT


def test_the_recorded_device_code_answer_parses_as_a_device_code_and_as_tokens() -> None:
    (entry,) = _entries("POST", r"/v1/oauth2/device")

    device = DeviceCode.model_validate(_body(entry))
    tokens = TokenResponse.model_validate(_body(entry))

    assert (device.user_code, device.interval) == ("some_user_code", 1)  # "interval": "1", a string
    assert tokens.expires_in == 1


def _item(entry: dict[str, Any]) -> tuple[HistoryItem, WatchingItem]:
    state = WatchingResponse.model_validate(_body(entry)).item
    return HistoryItem(id=state.id, title=state.title, type=state.type), state


@pytest.mark.parametrize("entry", WATCHING, ids=lambda e: f"watching-{_query_id(e)}")
def test_the_collector_rules_accept_every_recorded_item(entry: dict[str, Any]) -> None:
    # Given any recorded item, through the collector's own rules
    item, state = _item(entry)

    # Then a movie-like item is one view exactly when every feature part is watched, never because of an extra
    if item.type in MOVIE_TYPES:
        features = feature_parts(state.videos)
        view = movie_view(item, state, {})
        assert (view is not None) == all(video.status == 1 for video in features)
        if view is not None and any(v.updated for v in features):
            assert view.watched_at == max(v.updated for v in features if v.updated is not None)
    else:
        # and a series item gives one view per watched episode
        assert item.type in SERIES_TYPES
        views = episode_views(item, state, {})
        assert len(views) == sum(1 for s in state.seasons for e in s.episodes if e.status == 1)


def test_the_vienna_documentary_is_three_feature_parts_with_part_one_reopened_years_later() -> None:
    # Given item 25130 as recorded: part 1 `updated` in 2021 while still status 1, parts 2-3 in 2018
    (entry,) = [e for e in WATCHING if _query_id(e) == 25130]
    item, state = _item(entry)

    # Then all three ~49-minute videos are feature parts (none is an extra)
    assert [v.number for v in feature_parts(state.videos)] == [1, 2, 3]
    # and the first sync sends one play at the latest part's time (the rule for a view never sent before)
    view = movie_view(item, state, {})
    assert view is not None
    assert view.watched_at == datetime(2021, 2, 20, 22, 59, 29, tzinfo=UTC)
    assert view.part_updates == (
        datetime(2021, 2, 20, 22, 59, 29, tzinfo=UTC),
        datetime(2018, 11, 10, 18, 29, 37, tzinfo=UTC),
        datetime(2018, 11, 10, 18, 29, 37, tzinfo=UTC),
    )


def test_black_mirror_season_two_holds_white_christmas_as_a_fourth_episode() -> None:
    # Given the recorded Black Mirror state: Kinopub lists the 2014 special inside season 2
    (entry,) = [e for e in WATCHING if _query_id(e) == 8632]
    item, state = _item(entry)

    # Then its views carry what the numbering rules compare with Trakt: titles, durations, the season's shape
    views = {(v.season, v.episode): v for v in episode_views(item, state, {})}
    special = views[(2, 4)]
    assert special.episode_title == "Белое Рождество / White Christmas"
    assert special.duration == 4462
    assert special.kinopub_season is not None
    assert special.kinopub_season.numbers == (1, 2, 3, 4)
    assert special.kinopub_season.durations == (2924, 2545, 2597, 4462)
