"""Kinopub's response models: tolerant of what the real API sends, strict where a wrong value is a wrong play."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kinotrakt.kinopub.models import (
    DeviceCode,
    TokenResponse,
    WatchingEpisode,
    WatchingResponse,
    WatchingVideo,
    describe_validation_error,
    normalize_imdb,
    original_title,
    parse_history_page,
)

LIBRARY = json.loads((Path(__file__).parents[1] / "fixtures" / "kinopub" / "library.json").read_text("utf-8"))
IMDB_FORM = re.compile(r"tt\d{7,9}")


def _rows_by_item(item_id: int) -> list[dict[str, Any]]:
    return [row for row in LIBRARY["history"] if str(row["item"]["id"]) == str(item_id)]


# --- IMDb ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (2085059, "tt2085059"),  # Black Mirror, as Kinopub sends it
        (133093, "tt0133093"),  # padded to 7 digits
        (12673718, "tt12673718"),  # 8-digit ids stay 8
        ("tt0234215", "tt0234215"),
        ("tt234215", "tt0234215"),
        ("TT0234215", "tt0234215"),
        ("296310", "tt0296310"),
        (" 2085059 ", "tt2085059"),
        (0, None),
        ("0", None),
        ("tt0000000", None),
        (None, None),
        ("", None),
        ("tt", None),
        ("n/a", None),
        ("tt12ab", None),
        (-5, None),
        (True, None),
        (1.5, None),
        ([2085059], None),
        ("٢٠٨٥٠٥٩", None),  # non-ASCII digits are not an IMDb id
    ],
)
def test_imdb_ids_are_normalised_the_way_trakt_expects(raw: object, expected: str | None) -> None:
    assert normalize_imdb(raw) == expected


@given(st.integers(min_value=1, max_value=999_999_999))
def test_every_positive_id_in_any_form_normalises_to_the_same_padded_id(number: int) -> None:
    # Given Kinopub's int, its string form, and the "tt" form of one id
    forms = [number, str(number), f"tt{number}", f"tt{number:07d}"]

    # When each is normalised
    results = {normalize_imdb(form) for form in forms}

    # Then they agree on one "tt" + at-least-7-digit id that still names the same number
    assert len(results) == 1
    (result,) = results
    assert result is not None
    assert IMDB_FORM.fullmatch(result)
    assert int(result[2:]) == number
    assert normalize_imdb(result) == result


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary()))
def test_anything_kinopub_might_send_is_a_wellformed_id_or_none(raw: object) -> None:
    result = normalize_imdb(raw)
    assert result is None or IMDB_FORM.fullmatch(result)


# --- titles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Черное зеркало / Black Mirror", "Black Mirror"),
        (
            "The New York Times Presents: Framing Britney Spears / Нью-Йорк Таймс Представляет: В кадре Бритни Спирс",  # noqa: RUF001
            "The New York Times Presents: Framing Britney Spears",
        ),  # reversed
        ("Апокалипсис: Сталин / Apocalypse: Staline", "Apocalypse: Staline"),  # French original
        ("Вечерний Ургант", "Вечерний Ургант"),  # Russian only
        ("Ходячие мертвецы / The Walking Dead / TWD", "The Walking Dead"),  # three-part
        ("Markus Schulz / Escape To Fisher Towers", "Markus Schulz / Escape To Fisher Towers"),  # no Russian part
        ("Мураками / #воздух", "Мураками / #воздух"),
        ("AC/DC: Live / Концерт", "AC/DC: Live"),  # a slash without spaces is part of the name
        ("  Матрица / The Matrix  ", "The Matrix"),
    ],
)
def test_the_original_title_is_split_out_for_a_text_search(title: str, expected: str) -> None:
    assert original_title(title) == expected


@given(st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=4))
def test_the_original_title_is_always_part_of_the_title(parts: list[str]) -> None:
    title = " / ".join(parts)
    result = original_title(title)
    assert result
    assert result in title


# --- history --------------------------------------------------------------------------------------------------


def test_history_rows_tolerate_string_numbers_nulls_and_extra_fields() -> None:
    # Given the recorded-style rows of the fixture library, with string numbers, null and "tt…" IMDb ids
    page = parse_history_page({"status": 200, "history": LIBRARY["history"], "pagination": {"total": "3"}})

    # Then each readable row keeps what the collector needs
    rows = {(row.item.id, row.media.id if row.media else None): row for row in page.rows}
    blue_planet = rows[(40001, 400011)]
    assert blue_planet.last_seen == datetime(2021, 2, 12, 3, 20, tzinfo=UTC)
    assert blue_planet.item.year == 2001
    assert blue_planet.item.imdb == "tt0296310"
    assert rows[(114, 336)].item.imdb == "tt0234215"
    assert rows[(69877, 791068)].item.imdb == "tt12673718"
    assert rows[(25130, 68995)].item.imdb is None
    assert rows[(57421, 700421)].item.imdb is None  # Kinopub's 0
    assert rows[(60001, 600011)].item.type == "3d"  # the docs' "3D", compared lowercase
    assert rows[(880, 4422)].deleted
    assert page.pagination is not None
    assert page.pagination.total == 3


def test_an_unreadable_history_row_is_set_aside_with_its_item_not_the_whole_page() -> None:
    # Given a page whose Rio 2 row has a media id that is not a number
    page = parse_history_page({"status": 200, "history": LIBRARY["history"]})

    # Then the other rows are read, and the broken one names its item and why
    assert len(page.rows) == len(LIBRARY["history"]) - 1
    (broken,) = page.broken
    assert broken.item_id == 7503
    assert broken.title == "Рио 2 / Rio 2"
    assert broken.last_seen == datetime(2021, 2, 16, 18, 26, 40, tzinfo=UTC)
    assert "media.id" in broken.reason
    assert page.pagination is None


def test_a_history_page_without_a_history_list_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_history_page({"status": 200, "history": "nope"})


# --- watching -------------------------------------------------------------------------------------------------


def test_watching_bodies_of_the_fixture_library_validate() -> None:
    black_mirror = WatchingResponse.model_validate(LIBRARY["watching"]["8632"]).item
    assert [season.number for season in black_mirror.seasons] == [1, 2, 3, 4, 5]
    first = black_mirror.seasons[0].episodes[0]
    assert (first.id, first.number, first.status) == (82468, 1, 1)
    assert first.updated == datetime(2019, 7, 5, 20, 32, 11, tzinfo=UTC)

    blue_planet = WatchingResponse.model_validate(LIBRARY["watching"]["40001"]).item  # everything a string
    assert blue_planet.id == 40001
    episode = blue_planet.seasons[0].episodes[0]
    assert (episode.id, episode.number, episode.status) == (400011, 1, 1)


@pytest.mark.parametrize(("raw", "status"), [(1, 1), ("1", 1), (0, 0), ("-1", -1), (-1, -1), (" 1 ", 1)])
def test_watch_status_accepts_the_three_states_as_int_or_string(raw: object, status: int) -> None:
    assert WatchingVideo.model_validate({"id": 1, "status": raw}).status == status


@pytest.mark.parametrize("raw", [2, "2", True, False, 1.0, "1.0", "watched", None, -2])
def test_any_other_watch_status_fails_rather_than_guessing_a_play(raw: object) -> None:
    with pytest.raises(ValidationError):
        WatchingVideo.model_validate({"id": 1, "status": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (0, None),
        ("0", None),
        (1613050000, datetime(2021, 2, 11, 13, 26, 40, tzinfo=UTC)),
        ("1613050000", datetime(2021, 2, 11, 13, 26, 40, tzinfo=UTC)),
    ],
)
def test_updated_is_a_utc_time_or_none(raw: object, expected: datetime | None) -> None:
    assert WatchingVideo.model_validate({"id": 1, "status": 1, "updated": raw}).updated == expected


@pytest.mark.parametrize("raw", [1613050000000, -1, 12345, "yesterday", 1.5e9, True])
def test_an_updated_time_that_is_no_sane_unix_time_fails(raw: object) -> None:
    with pytest.raises(ValidationError):
        WatchingVideo.model_validate({"id": 1, "status": 1, "updated": raw})


@pytest.mark.parametrize("raw", [0, -3, "abc", None, True, 2.5])
def test_ids_must_be_positive_integers(raw: object) -> None:
    with pytest.raises(ValidationError):
        WatchingEpisode.model_validate({"id": raw, "number": 1, "status": 1})


@pytest.mark.parametrize("raw", [None, "x", -1, True])
def test_episode_numbers_must_be_readable(raw: object) -> None:
    with pytest.raises(ValidationError):
        WatchingEpisode.model_validate({"id": 5, "number": raw, "status": 1})


def test_nulls_where_lists_and_titles_belong_are_empty() -> None:
    item = WatchingResponse.model_validate(
        {"status": 200, "item": {"id": 7, "title": None, "type": "movie", "videos": None, "seasons": None}}
    ).item
    assert (item.title, item.videos, item.seasons) == ("", [], [])


@pytest.mark.parametrize(("raw", "expected"), [(2919, 2919), ("2919", 2919), (None, None), (0, None), ("?", None)])
def test_a_duration_is_seconds_or_unknown(raw: object, expected: int | None) -> None:
    video = WatchingResponse.model_validate({"item": {"id": 1, "videos": [{"id": 2, "status": -1, "duration": raw}]}})
    assert video.item.videos[0].duration == expected


# --- OAuth ----------------------------------------------------------------------------------------------------


def test_device_code_reads_kinopubs_field_names_and_string_interval() -> None:
    device = DeviceCode.model_validate(
        {
            "status": 200,
            "code": "c0de",
            "user_code": "123456",
            "verification_uri": "https://kino.pub/device",
            "expires_in": "300",
            "interval": "1",
        }
    )
    assert (device.user_code, device.expires_in, device.interval) == ("123456", 300, 1)
    assert device.code.get_secret_value() == "c0de"
    assert "c0de" not in repr(device)


def test_validation_errors_never_repeat_the_values_they_reject() -> None:
    # Given a token answer whose fields are wrong, one of them holding a token-like value
    with pytest.raises(ValidationError) as caught:
        TokenResponse.model_validate({"access_token": ["s3cr3t-access"], "expires_in": "s3cr3t-expiry"})

    # When it is turned into a reason for a log line
    reason = describe_validation_error(caught.value)

    # Then the reason names the fields, not their values
    assert "access_token" in reason
    assert "expires_in" in reason
    assert "s3cr3t" not in reason
