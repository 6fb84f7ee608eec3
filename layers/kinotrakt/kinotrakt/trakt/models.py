"""What Trakt answers, as pydantic models (docs/trakt.md). Extra fields are ignored: Trakt adds
fields over time, and a new one must never break a sync."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from kinotrakt.clock import parse_iso
from kinotrakt.text import LINE_LIMIT, TITLE_LIMIT, WORD_LIMIT, bounded, token_text
from kinotrakt.tokens import TokenGrant

HistoryKind = Literal["movies", "episodes"]


def _utc(value: Any) -> Any:
    return parse_iso(value) if isinstance(value, str) else value


UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]

# Free text, bounded when parsed (kinotrakt/text.py): titles go into logs, reports and DynamoDB items.
Title = Annotated[str, bounded(TITLE_LIMIT)]
Word = Annotated[str, bounded(WORD_LIMIT)]
Line = Annotated[str, bounded(LINE_LIMIT)]
Token = Annotated[SecretStr, BeforeValidator(token_text)]
_IMDB = re.compile(r"tt[0-9]{1,10}")


def _imdb(value: Any) -> Any:
    # Part of dedupe keys and of the mapping cache's DynamoDB items: anything but an IMDb id means "none".
    return value if isinstance(value, str) and _IMDB.fullmatch(value) else None


def _utc_or_none(value: Any) -> Any:
    """A detail time (an air date): unreadable reads as unknown rather than failing the whole answer."""
    if isinstance(value, datetime):
        return value
    try:
        return parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _int_or_none(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


OptionalUtc = Annotated[datetime | None, BeforeValidator(_utc_or_none)]
OptionalInt = Annotated[int | None, BeforeValidator(_int_or_none)]


class TraktModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ids(TraktModel):
    trakt: int | None = None
    slug: Line | None = None
    imdb: Annotated[str | None, BeforeValidator(_imdb)] = None
    tmdb: int | None = None
    tvdb: int | None = None


class Movie(TraktModel):
    title: Title | None = None
    year: int | None = None
    ids: Ids = Field(default_factory=Ids)


class Show(TraktModel):
    title: Title | None = None
    year: int | None = None
    ids: Ids = Field(default_factory=Ids)


class Episode(TraktModel):
    """An episode; ``title`` comes with every answer, ``first_aired`` and ``runtime`` (minutes) with
    ``extended=full``. Details are optional: a missing or unreadable one is None, never a failed answer."""

    season: int
    number: int
    title: Title | None = None
    first_aired: OptionalUtc = None
    runtime: OptionalInt = None
    ids: Ids = Field(default_factory=Ids)


class SearchHit(TraktModel):
    """One row of ``/search/...``: ``type`` says which of ``movie`` / ``show`` is filled."""

    type: Word
    score: float | None = None
    movie: Movie | None = None
    show: Show | None = None

    @property
    def media(self) -> Movie | Show | None:
        if self.type == "movie":
            return self.movie
        if self.type == "show":
            return self.show
        return None


class Season(TraktModel):
    """A season of ``/shows/{id}/seasons?extended=full,episodes`` (season 0 holds the specials)."""

    number: int
    ids: Ids = Field(default_factory=Ids)
    episodes: list[Episode] = Field(default_factory=list)


class HistoryItem(TraktModel):
    """One play in ``/sync/history``: ``id`` is the history id (what ``/sync/history/remove`` takes)."""

    id: int
    watched_at: UtcDatetime
    action: Word
    type: Literal["movie", "episode"]
    movie: Movie | None = None
    episode: Episode | None = None
    show: Show | None = None


def _count(value: Any) -> Any:
    """A play count; anything that is not one (null, a string, a float) reads as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _object_or_empty(value: Any) -> Any:
    return value if isinstance(value, dict) else {}


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


Count = Annotated[int, BeforeValidator(_count)]


class PlayCounts(TraktModel):
    """``{"movies": n, "episodes": n}`` of a write's answer. Only informative (what the sync recorded comes from
    what it sent and ``not_found``), so a missing, null or odd count reads as 0 and never fails the batch."""

    movies: Count = 0
    episodes: Count = 0

    @property
    def total(self) -> int:
        return self.movies + self.episodes


Counts = Annotated[PlayCounts, BeforeValidator(_object_or_empty)]


class NotFoundItem(TraktModel):
    """An item we sent that Trakt could not find, echoed back with the ids we sent."""

    ids: Ids = Field(default_factory=Ids)


class NotFound(TraktModel):
    movies: list[NotFoundItem] = Field(default_factory=list)
    shows: list[NotFoundItem] = Field(default_factory=list)
    seasons: list[NotFoundItem] = Field(default_factory=list)
    episodes: list[NotFoundItem] = Field(default_factory=list)


class HistoryResult(TraktModel):
    """The answer to ``POST /sync/history`` (any 2xx: the 2026 contract says 200, Trakt has long sent 201).

    ``updated`` is in the 2026 contract (trakt/trakt-api ``historyResponseSchema.ts``) next to ``added``, with
    no documented meaning: it is counted and logged, and an answer without it (or with ``null``, or with
    fields we do not know) parses all the same."""

    added: Counts = Field(default_factory=PlayCounts)
    updated: Counts = Field(default_factory=PlayCounts)
    not_found: Annotated[NotFound, BeforeValidator(_empty_if_null)] = Field(default_factory=NotFound)


def _history_ids(value: Any) -> Any:
    """``not_found.ids`` of a removal: the history ids Trakt did not have; anything else in the list is dropped."""
    if not isinstance(value, list):
        return []
    return [entry for entry in value if isinstance(entry, int) and not isinstance(entry, bool)]


class RemoveNotFound(TraktModel):
    """What a removal named that Trakt did not find. Only ``ids`` matters to kinotrakt (it removes by history id
    alone); the 2026 contract's schema lists the media sections (``historyRemoveResponseSchema.ts``), the older
    documentation adds ``ids``, so its absence reads as "none"."""

    ids: Annotated[list[int], BeforeValidator(_history_ids)] = Field(default_factory=list)


class RemoveResult(TraktModel):
    """The answer to ``POST /sync/history/remove``: ``deleted`` counts the plays removed, per kind."""

    deleted: Counts = Field(default_factory=PlayCounts)
    not_found: Annotated[RemoveNotFound, BeforeValidator(_empty_if_null)] = Field(default_factory=RemoveNotFound)


class DeviceCode(TraktModel):
    """``POST /oauth/device/code``. ``user_code`` and ``verification_url`` are shown to the user;
    ``device_code`` is what we poll with and is kept out of every repr."""

    device_code: SecretStr
    user_code: Word
    verification_url: Line
    expires_in: int
    interval: int = 5


class TokenResponse(TraktModel):
    access_token: Token
    refresh_token: Token
    token_type: Word = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    scope: Line | None = None
    created_at: int | None = None

    def to_grant(self) -> TokenGrant:
        return TokenGrant(
            access_token=self.access_token.get_secret_value(),
            refresh_token=self.refresh_token.get_secret_value(),
            expires_in=self.expires_in,
            created_at=self.created_at,
        )
