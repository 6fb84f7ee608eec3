"""What Trakt answers, as pydantic models (reference/trakt-api.md). Extra fields are ignored: Trakt adds
fields over time, and a new one must never break a sync."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from kinotrakt.clock import parse_iso
from kinotrakt.tokens import TokenGrant

MediaType = Literal["movie", "show"]
HistoryKind = Literal["movies", "episodes"]


def _utc(value: Any) -> Any:
    return parse_iso(value) if isinstance(value, str) else value


UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]


class TraktModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ids(TraktModel):
    trakt: int | None = None
    slug: str | None = None
    imdb: str | None = None
    tmdb: int | None = None
    tvdb: int | None = None


class Movie(TraktModel):
    title: str | None = None
    year: int | None = None
    ids: Ids = Field(default_factory=Ids)


class Show(TraktModel):
    title: str | None = None
    year: int | None = None
    ids: Ids = Field(default_factory=Ids)


class Episode(TraktModel):
    season: int
    number: int
    title: str | None = None
    ids: Ids = Field(default_factory=Ids)


class SearchHit(TraktModel):
    """One row of ``/search/...``: ``type`` says which of ``movie`` / ``show`` is filled."""

    type: str
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
    """A season of ``/shows/{id}/seasons?extended=episodes`` (season 0 holds the specials)."""

    number: int
    ids: Ids = Field(default_factory=Ids)
    episodes: list[Episode] = Field(default_factory=list)


class HistoryItem(TraktModel):
    """One play in ``/sync/history``: ``id`` is the history id (what ``/sync/history/remove`` takes)."""

    id: int
    watched_at: UtcDatetime
    action: str
    type: Literal["movie", "episode"]
    movie: Movie | None = None
    episode: Episode | None = None
    show: Show | None = None


class ActivityGroup(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    watched_at: UtcDatetime | None = None


class LastActivities(BaseModel):
    """``/sync/last_activities``. Every field is kept (``extra="allow"``) so the whole answer can be cached
    and compared with the next one."""

    model_config = ConfigDict(extra="allow", frozen=True)

    all: UtcDatetime | None = None
    movies: ActivityGroup = Field(default_factory=ActivityGroup)
    episodes: ActivityGroup = Field(default_factory=ActivityGroup)

    def as_cacheable(self) -> dict[str, Any]:
        """JSON-ready form, for ``StateStore.set_last_activities``."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data


class AddedCounts(TraktModel):
    movies: int = 0
    episodes: int = 0


class NotFoundItem(TraktModel):
    """An item we sent that Trakt could not find, echoed back with the ids we sent."""

    ids: Ids = Field(default_factory=Ids)


class NotFound(TraktModel):
    movies: list[NotFoundItem] = Field(default_factory=list)
    shows: list[NotFoundItem] = Field(default_factory=list)
    seasons: list[NotFoundItem] = Field(default_factory=list)
    episodes: list[NotFoundItem] = Field(default_factory=list)


class HistoryResult(TraktModel):
    """The answer to ``POST /sync/history``."""

    added: AddedCounts = Field(default_factory=AddedCounts)
    not_found: NotFound = Field(default_factory=NotFound)


class DeviceCode(TraktModel):
    """``POST /oauth/device/code``. ``user_code`` and ``verification_url`` are shown to the user;
    ``device_code`` is what we poll with and is kept out of every repr."""

    device_code: SecretStr
    user_code: str
    verification_url: str
    expires_in: int
    interval: int = 5


class TokenResponse(TraktModel):
    access_token: SecretStr
    refresh_token: SecretStr
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    scope: str | None = None
    created_at: int | None = None

    def to_grant(self) -> TokenGrant:
        return TokenGrant(
            access_token=self.access_token.get_secret_value(),
            refresh_token=self.refresh_token.get_secret_value(),
            expires_in=self.expires_in,
            created_at=self.created_at,
        )
