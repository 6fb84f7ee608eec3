"""Pure Trakt rules: query escaping, tolerant models, the status → error map, headers. No network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from kinotrakt.errors import (
    BadResponse,
    ItemRefused,
    KinotraktError,
    TraktAccountLimit,
    TraktAccountLocked,
    TraktAppRejected,
    TraktCloudflareBlocked,
    TraktUnauthorized,
    TraktVipRequired,
)
from kinotrakt.trakt.client import (
    escape_query,
    raise_for_status,
    trakt_endpoint_label,
    trakt_headers,
    trakt_user_agent,
)
from kinotrakt.trakt.models import HistoryItem, HistoryResult, SearchHit, Season, TokenResponse

SPECIALS = set('+-&|!(){}[]^"~*?:/\\')


def _unescape(text: str) -> tuple[str, bool]:
    """Read ``text`` as Lucene would: (the literal text, whether any special was left unescaped)."""
    out: list[str] = []
    bare_special = False
    chars = iter(text)
    for char in chars:
        if char == "\\":
            out.append(next(chars, ""))
        else:
            bare_special |= char in SPECIALS
            out.append(char)
    return "".join(out), bare_special


@given(st.text(alphabet=st.sampled_from([*SPECIALS, "a", "Я", " ", "1"]) | st.characters(), max_size=40))
def test_an_escaped_query_means_exactly_the_text_and_has_no_search_syntax_left(text: str) -> None:
    # When any title is escaped
    escaped = escape_query(text)

    # Then Lucene reads it back as the title itself, with no operator in it
    literal, bare_special = _unescape(escaped)
    assert literal == text
    assert not bare_special


@pytest.mark.parametrize(
    ("title", "query"),
    [
        ("Mission: Impossible", "Mission\\: Impossible"),
        ("AC/DC: Live", "AC\\/DC\\: Live"),
        ("Tom && Jerry", "Tom \\&\\& Jerry"),
        ("Who? (2020)", "Who\\? \\(2020\\)"),
        ("Брат 2", "Брат 2"),
    ],
)
def test_titles_with_search_syntax(title: str, query: str) -> None:
    assert escape_query(title) == query


def test_history_items_are_read_in_utc_whatever_the_offset_and_extra_fields() -> None:
    # Given a play as Trakt renders it, with a field kinotrakt does not know
    raw = {
        "id": 7,
        "watched_at": "2024-03-01T23:15:00.000+03:00",
        "action": "watch",
        "type": "episode",
        "episode": {"season": 1, "number": 2, "title": "x", "ids": {"trakt": 73640, "tvdb": 1, "imdb": None}},
        "show": {"title": "Breaking Bad", "year": 2008, "ids": {"trakt": 1388, "imdb": "tt0903747"}},
        "sparkle": True,
    }

    # When it is parsed
    item = HistoryItem.model_validate(raw)

    # Then its time is UTC and its ids are typed
    assert item.watched_at == datetime(2024, 3, 1, 20, 15, tzinfo=UTC)
    assert item.episode is not None
    assert item.episode.ids.trakt == 73640
    assert item.show is not None
    assert item.show.ids.imdb == "tt0903747"


def test_a_search_hit_exposes_the_media_its_type_names() -> None:
    movie = SearchHit.model_validate({"type": "movie", "score": 1, "movie": {"title": "A", "ids": {"trakt": 1}}})
    person = SearchHit.model_validate({"type": "person", "person": {"name": "B"}})
    assert movie.media is not None
    assert movie.media.ids.trakt == 1
    assert person.media is None


def test_a_season_without_episodes_is_an_empty_season() -> None:
    assert Season.model_validate({"number": 3, "ids": {"trakt": 9}}).episodes == []


def test_a_post_answer_without_not_found_means_everything_was_found() -> None:
    result = HistoryResult.model_validate({"added": {"movies": 2, "episodes": 0}})
    assert result.added.movies == 2
    assert result.not_found.movies == []
    assert result.not_found.episodes == []


def test_the_2026_write_answer_reads_added_updated_and_not_found() -> None:
    # Given the answer the 2026 contract documents
    raw = {
        "added": {"movies": 1, "episodes": 2},
        "updated": {"movies": 0, "episodes": 3},
        "not_found": {"movies": [], "shows": [], "seasons": [], "episodes": [{"ids": {"trakt": 9}}]},
    }

    # When it is parsed, Then every block is read
    result = HistoryResult.model_validate(raw)
    assert (result.added.total, result.updated.movies, result.updated.episodes) == (3, 0, 3)
    assert [item.ids.trakt for item in result.not_found.episodes] == [9]


@pytest.mark.parametrize(
    "updated",
    [
        pytest.param(None, id="null"),
        pytest.param({}, id="empty"),
        pytest.param({"movies": None, "episodes": "2"}, id="odd counts"),
        pytest.param({"movies": 1, "episodes": 0, "shows": 4, "seasons": {"x": 1}}, id="extra fields"),
        pytest.param([1, 2], id="a list"),
        pytest.param("many", id="a string"),
    ],
)
def test_an_updated_block_of_any_shape_never_fails_the_answer(updated: object) -> None:
    # Given a write answer whose undocumented `updated` block is missing pieces, null, or unexpected
    raw = {
        "added": {"movies": 1, "episodes": 0},
        "updated": updated,
        "not_found": {"movies": [{"ids": {"imdb": "tt1"}}]},
    }

    # When it is parsed, Then it parses, the known counts hold, and what is not a count reads as 0
    result = HistoryResult.model_validate(raw)
    assert result.added.movies == 1
    assert result.updated.movies == (1 if isinstance(updated, dict) and updated.get("movies") == 1 else 0)
    assert result.updated.episodes == 0
    assert [item.ids.imdb for item in result.not_found.movies] == ["tt1"]


def test_a_write_answer_with_null_blocks_counts_nothing_and_finds_everything() -> None:
    result = HistoryResult.model_validate({"added": None, "updated": None, "not_found": None})
    assert (result.added.total, result.updated.total) == (0, 0)
    assert result.not_found.movies == result.not_found.episodes == []


def test_a_token_answer_never_shows_its_tokens() -> None:
    # Given Trakt's token answer
    answer = TokenResponse.model_validate(
        {"access_token": "AAA-secret", "refresh_token": "RRR-secret", "expires_in": 604800, "created_at": 1}
    )

    # When it is printed or turned into a grant, Then no token shows
    grant = answer.to_grant()
    for shown in (repr(answer), str(answer), repr(grant)):
        assert "AAA-secret" not in shown
        assert "RRR-secret" not in shown
    assert (grant.access_token, grant.refresh_token, grant.expires_in) == ("AAA-secret", "RRR-secret", 604800)


def _response(status: int, body: bytes = b"{}", content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = content_type
    response._content = body
    response.url = "https://api.trakt.tv/sync/history?page=1"
    return response


@pytest.mark.parametrize(
    ("status", "content_type", "error"),
    [
        (401, "application/json", TraktUnauthorized),
        (403, "text/html; charset=UTF-8", TraktCloudflareBlocked),
        (403, "application/json", TraktAppRejected),
        (420, "application/json", TraktAccountLimit),
        (423, "application/json", TraktAccountLocked),
        (426, "application/json", TraktVipRequired),
        (400, "application/json", ItemRefused),
        (404, "application/json", ItemRefused),
        (409, "application/json", ItemRefused),
        (412, "application/json", ItemRefused),
        (422, "application/json", ItemRefused),
        (414, "text/html", ItemRefused),
        (302, "text/html", BadResponse),
    ],
)
def test_each_trakt_status_maps_to_one_error(status: int, content_type: str, error: type[KinotraktError]) -> None:
    with pytest.raises(error) as caught:
        raise_for_status(_response(status, content_type=content_type))
    assert type(caught.value) is error
    assert "page=1" not in str(caught.value)  # never the query string


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_statuses_pass(status: int) -> None:
    raise_for_status(_response(status))


def test_headers_name_the_app_and_carry_the_bearer_only_when_given() -> None:
    assert trakt_headers("cid") == {
        "Content-Type": "application/json",
        "trakt-api-key": "cid",
        "trakt-api-version": "2",
    }
    assert trakt_headers("cid", "tok")["Authorization"] == "Bearer tok"
    assert trakt_user_agent().startswith("kinotrakt/")


def test_endpoint_labels_hide_ids() -> None:
    assert trakt_endpoint_label("https://api.trakt.tv/search/imdb/tt0903747?type=show") == "/search/imdb/{id}"
    assert trakt_endpoint_label("https://api.trakt.tv/shows/1388/seasons") == "/shows/{id}/seasons"
    assert trakt_endpoint_label("https://api.trakt.tv/sync/history/movies") == "/sync/history/movies"
