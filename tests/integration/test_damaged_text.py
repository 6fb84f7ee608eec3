"""Damaged text from either service — a title of 100,000 characters, terminal escape sequences, line breaks, a
lone UTF-16 surrogate (valid JSON, invalid UTF-8) — is bounded when it is parsed, so it can still go into a
Trakt search, a log line and a DynamoDB item (moto) without breaking any of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr, ValidationError

from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Deadline
from kinotrakt.http import CallCounter
from kinotrakt.kinopub.models import TokenResponse as KinopubTokens
from kinotrakt.kinopub.models import WatchingResponse, original_title, parse_history_page
from kinotrakt.observability import logger
from kinotrakt.storage.dynamo import DynamoUnmatchedStore, Table
from kinotrakt.storage.ports import ServiceSecret, UnmatchedItem
from kinotrakt.trakt.client import TraktClient, trakt_transport
from kinotrakt.trakt.models import SearchHit
from kinotrakt.trakt.models import TokenResponse as TraktTokens
from kinotrakt.trakt.oauth import TraktOAuth, make_token_keeper

# An OSC 52 clipboard write, a screen clear, a header injection attempt, a lone surrogate, then 100,000 letters.
DAMAGED = "\x1b]52;c;ZXZpbA==\x07\x1b[2JНачало / Inception\r\nX-Injected: 1\ud800" + "Ж" * 100_000  # noqa: RUF001
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def from_the_wire(payload: Any) -> Any:
    """What json.loads makes of a body holding ``payload`` (json escapes the lone surrogate as \\ud800)."""
    return json.loads(json.dumps(payload))


def assert_safe(text: str, limit: int = 300) -> None:
    assert len(text) <= limit
    assert not CONTROL.search(text)
    text.encode("utf-8")  # no lone surrogate left: DynamoDB, logs and requests need UTF-8


def kinopub_item(title: str) -> dict[str, Any]:
    return {"id": 7, "title": title, "type": "movie", "year": 2010, "imdb": None}


def test_a_damaged_kinopub_title_is_bounded_in_every_model_that_reads_it() -> None:
    # Given Kinopub answers carrying the damaged title: a history row, a row too broken to read, /v1/watching
    page = from_the_wire(
        {
            "history": [
                {"item": kinopub_item(DAMAGED), "media": {"id": 70, "title": DAMAGED}, "last_seen": 1_700_000_000},
                {"item": {**kinopub_item(DAMAGED), "id": "not a number"}, "last_seen": 1_700_000_000},
            ],
            "pagination": {"total": 1},
        }
    )
    watching = from_the_wire({"item": {**kinopub_item(DAMAGED), "videos": [{"id": 70, "title": DAMAGED, "status": 1}]}})

    # When they are parsed
    history = parse_history_page(page)
    item = WatchingResponse.model_validate(watching).item

    # Then every title is at most 300 characters of printable UTF-8, and still begins as the title did
    titles = [history.rows[0].item.title, history.rows[0].media.title, history.broken[0].title]  # type: ignore[union-attr]
    titles += [item.title, item.videos[0].title]
    for title in titles:
        assert_safe(title)
        assert "Начало / Inception" in title


@pytest.fixture
def trakt() -> Iterator[tuple[FakeTrakt, TraktClient]]:
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time) as fake:
        fake.add_movie(1, "Inception", 2010, "tt1375666")
        pair = fake.issue_tokens()
        secret = ServiceSecret(
            client_id=fake.client_id,
            client_secret=SecretStr(fake.client_secret),
            access_token=SecretStr(pair["access_token"]),
            refresh_token=SecretStr(pair["refresh_token"]),
            issued_at=pair["created_at"],
            expires_at=pair["created_at"] + pair["expires_in"],
        )
        transport = trakt_transport(
            post_interval_seconds=1.0, clock=clock, deadline=Deadline(clock, None, 0), counter=CallCounter()
        )
        keeper = make_token_keeper(
            InMemoryTokenStore(secret), TraktOAuth(transport, fake.base_url, fake.client_id, ""), clock
        )
        yield fake, TraktClient(transport, fake.base_url, fake.client_id, keeper)


def test_a_damaged_title_can_be_searched_logged_and_stored(
    trakt: tuple[FakeTrakt, TraktClient], aws: boto3.Session, state_table: str
) -> None:
    # Given the damaged title as the Kinopub model reads it
    title = parse_history_page(from_the_wire({"history": [{"item": kinopub_item(DAMAGED)}]})).rows[0].item.title
    fake, client = trakt

    # When the sync searches Trakt for it, logs it and records it as unmatched in DynamoDB
    hits = client.search_text("movie", original_title(title), 2010)
    logger.info("unmatched item", extra={"title": title})
    store = DynamoUnmatchedStore(Table(aws.client("dynamodb"), state_table, "me"))
    store.put([UnmatchedItem("item:7", 7, title, "trakt_not_found", "no unambiguous match")])

    # Then the search went out as one clean request line, and the item reads back as stored
    (search,) = fake.calls("GET", "/search/movie")
    assert_safe(search.query["query"])
    assert all(hit.type == "movie" for hit in hits)
    assert [item.title for item in store.load()] == [title]


def test_damaged_trakt_text_is_bounded_and_a_damaged_imdb_id_is_no_id() -> None:
    # Given a search answer whose title and slug are damaged and whose IMDb id is not one
    answer = from_the_wire(
        [
            {
                "type": "movie",
                "score": 1000,
                "movie": {
                    "title": DAMAGED,
                    "year": 2010,
                    "ids": {"trakt": 1, "slug": DAMAGED, "imdb": "tt1375666\r\nX-Injected: 1" + "9" * 100_000},
                },
            }
        ]
    )

    # When it is parsed
    (hit,) = [SearchHit.model_validate(row) for row in answer]

    # Then the text is bounded and the IMDb id, which would end up in dedupe keys and cached items, is none
    assert hit.movie is not None
    assert_safe(hit.movie.title or "")
    assert_safe(hit.movie.ids.slug or "", limit=1000)
    assert hit.movie.ids.imdb is None


@pytest.mark.parametrize("model", [TraktTokens, KinopubTokens], ids=["trakt", "kinopub"])
@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "with space", "", "x" * 5000, "токен"])
def test_a_token_that_could_not_go_into_a_header_is_not_a_token(model: type[Any], token: str) -> None:
    # Given a token answer whose access token could not be sent in an Authorization header
    body = {"access_token": token, "refresh_token": "refresh-0123456789", "expires_in": 3600, "token_type": "bearer"}

    # When it is parsed, Then it is refused, and the refusal does not repeat the value
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert "X-Injected" not in str(caught.value.errors(include_input=False))
