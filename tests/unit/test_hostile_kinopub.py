"""Kinopub's models fed hostile JSON: every body is either read correctly or refused with a reason, and
nothing that is not exactly a watched status, a sane time and a positive id ever becomes part of a play."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kinotrakt.kinopub.models import (
    WatchingEpisode,
    WatchingResponse,
    WatchingVideo,
    describe_validation_error,
    parse_history_page,
)
from tests.hostile import CANARY, OTHER_DIGITS, damaged, json_values, scalars

LIBRARY = json.loads((Path(__file__).parents[1] / "fixtures" / "kinopub" / "library.json").read_text("utf-8"))
HISTORY_PAGE = {
    "status": 200,
    "history": LIBRARY["history"][:6],
    "pagination": {"total": 3, "current": 1, "perpage": 50, "total_items": 120},
}
WATCHING = list(LIBRARY["watching"].values())
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
ASCII_INT = re.compile(r"\s*-?[0-9]+\s*")
HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_clean_reason(reason: str) -> None:
    assert reason.strip()
    assert CANARY not in reason


def is_plain_int(value: object, allowed: set[int] | None = None) -> bool:
    """An int (not a bool) or a string of ASCII digits: the only forms a strict field may come in."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and ASCII_INT.fullmatch(value):
        number = int(value)
    else:
        return False
    return allowed is None or number in allowed


@HOSTILE
@given(st.one_of(damaged(HISTORY_PAGE), json_values.filter(lambda v: isinstance(v, dict))))
def test_any_history_page_is_read_row_by_row_or_refused_with_a_reason(body: dict[str, Any]) -> None:
    try:
        page = parse_history_page(body)
    except ValidationError as exc:
        # the page itself is unusable: the run stops reading and says why (fields, never values)
        assert_clean_reason(describe_validation_error(exc))
        return
    for row in page.rows:
        assert row.item.id > 0
        assert row.last_seen is None or EARLIEST <= row.last_seen < LATEST
        assert row.item.imdb is None or re.fullmatch(r"tt[0-9]{7,9}", row.item.imdb)
    for broken in page.broken:
        # one bad row costs its item (reported with the reason), not the page
        assert_clean_reason(broken.reason)
        assert broken.item_id is None or broken.item_id > 0


@HOSTILE
@given(st.one_of(st.sampled_from(WATCHING).flatmap(damaged), json_values))
def test_any_watching_answer_is_read_exactly_or_refused_with_a_reason(body: Any) -> None:
    try:
        item = WatchingResponse.model_validate(body).item
    except ValidationError as exc:
        assert_clean_reason(describe_validation_error(exc))
        return
    media: list[WatchingVideo | WatchingEpisode] = [*item.videos]
    media += [episode for season in item.seasons for episode in season.episodes]
    for entry in media:
        assert entry.id > 0
        assert entry.status in (-1, 0, 1)
        assert entry.updated is None or EARLIEST <= entry.updated < LATEST
    for season in item.seasons:
        assert season.number >= 0
        for episode in season.episodes:
            assert episode.number >= 0


@HOSTILE
@given(status=scalars, updated=scalars, media_id=scalars, number=scalars)
def test_a_watch_state_is_accepted_only_in_the_plain_forms(
    status: object, updated: object, media_id: object, number: object
) -> None:
    # Given an episode's watch state where any field may be anything
    raw = {"id": media_id, "number": number, "status": status, "updated": updated}
    try:
        episode = WatchingEpisode.model_validate(raw)
    except ValidationError as exc:
        assert_clean_reason(describe_validation_error(exc))
        return
    # Then it was accepted only because every strict field was an integer (or ASCII digits) in range:
    # no float, bool, "1.5", "1e3", full-width or other scripts' digits becomes a watched status or a time
    assert is_plain_int(status, {-1, 0, 1})
    assert is_plain_int(media_id)
    assert is_plain_int(number)
    assert updated in (None, "", 0, "0") or is_plain_int(updated)
    assert episode.status == int(str(status))


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_digits_of_other_scripts_are_no_watched_status(digits: str) -> None:
    with pytest.raises(ValidationError):
        WatchingVideo.model_validate({"id": 1, "status": digits})
    with pytest.raises(ValidationError):
        WatchingVideo.model_validate({"id": 1, "status": 1, "updated": digits + "600000000"})
