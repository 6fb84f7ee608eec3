"""What Kinopub returns, as pydantic models (docs/kinopub.md and the 2021 recordings in tests/fixtures/kinopub/).

Tolerant where Kinopub is sloppy and a wrong value is harmless: numbers as strings, nulls, extra fields,
an odd year. Strict where a wrong value would become a wrong play on Trakt: ids, season/episode numbers,
the watched ``status`` and the ``updated`` time. A strict field that fails makes the whole item fail
(reported, never guessed).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from kinotrakt.clock import utc_from_epoch
from kinotrakt.text import LINE_LIMIT, TITLE_LIMIT, WORD_LIMIT, bounded, clean_text, token_text

# ASCII digits only: ``\d`` would also take Arabic-Indic or full-width digits as a watched status.
_INT_TEXT = re.compile(r"\s*-?[0-9]+\s*")

# Kinopub opened in the 2010s; anything outside this range is a unit or encoding error (ms, garbage),
# and sending it to Trakt would record a play decades away from the real one.
_EARLIEST_EPOCH = 946_684_800  # 2000-01-01
_LATEST_EPOCH = 4_102_444_800  # 2100-01-01


def _as_int(value: object) -> object:
    """An integer or an integer string ("128" happens); never a bool, a float or "1.5"."""
    if type(value) is int:  # the usual case first (a bool is an int, but not of type int)
        return value
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise ValueError("expected an integer")


def _loose_int(value: object) -> int | None:
    """A number we only display or search with: anything unreadable becomes None."""
    try:
        number = _as_int(value)
    except ValueError:
        return None
    return number if isinstance(number, int) else None


def _unix_time(value: object) -> datetime | None:
    """``updated`` / ``last_seen``: epoch seconds (int or string) → aware UTC; null or 0 = never."""
    if value is None or value in ("", 0, "0"):
        return None
    seconds = _as_int(value)
    if not isinstance(seconds, int) or not _EARLIEST_EPOCH <= seconds < _LATEST_EPOCH:
        raise ValueError("expected a unix time between 2000 and 2100 or null")
    return utc_from_epoch(seconds)


def _text(limit: int) -> BeforeValidator:
    """Kinopub's null text is empty text; a string is bounded (text.py); anything else is left to the ``str``
    check, which refuses it. One step, not two: a backfill validates some 150,000 titles."""

    def text(value: object) -> object:
        if value is None:
            return ""
        return clean_text(value, limit) if type(value) is str else value

    return BeforeValidator(text)


def _kinopub_type(value: object) -> object:
    # The docs say "3D", real data says "3d": compare lowercase.
    return clean_text(value.strip().lower(), WORD_LIMIT) if isinstance(value, str) else value


def _list_or_empty(value: object) -> object:
    return [] if value is None else value


def _flag(value: object) -> object:
    return False if value is None else value


def _year(value: object) -> int | None:
    year = _loose_int(value)
    return year if year is not None and 1870 <= year <= 2100 else None


def normalize_imdb(value: object) -> str | None:
    """Kinopub's ``imdb``: ``2085059`` → ``tt2085059``, ``12673718`` → ``tt12673718``; ``"tt…"`` accepted.

    IMDb ids are ``tt`` + at least 7 digits; Kinopub drops the prefix and the zero padding. ``0``, null,
    and anything unreadable mean "no IMDb id" (docs/kinopub.md#types-and-ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        text = text.removeprefix("tt")
        if not text.isascii() or not text.isdigit():
            return None
        number = int(text)
    elif isinstance(value, int):
        number = value
    else:
        return None
    if not 0 < number < 1_000_000_000:
        return None
    return f"tt{number:07d}"


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def _is_latin(part: str) -> bool:
    return len(_LATIN.findall(part)) > len(_CYRILLIC.findall(part))


def original_title(title: str) -> str:
    """The original-language part of a Kinopub title, for a Trakt text search.

    Titles are usually ``"Russian / Original"``, sometimes ``"Original / Russian"``, three-part, or Russian
    only (docs/kinopub.md#types-and-ids). The original is taken to be the first Latin-script part next to a
    Cyrillic one; without such a pair (Russian only, or every part Latin, like ``"Artist / Concert"``)
    the whole title is the best guess."""
    parts = [part.strip() for part in title.split(" / ") if part.strip()]
    latin = [part for part in parts if _is_latin(part)]
    if not latin or len(latin) == len(parts):
        return title.strip()
    return latin[0]


def russian_title(title: str) -> str | None:
    """The Russian part of a Kinopub title (the first Cyrillic-script part), or None when it has none: Trakt's
    text search matches translations too, so it can find an item its original title does not."""
    parts = [part.strip() for part in title.split(" / ") if part.strip()]
    russian = [part for part in parts if _CYRILLIC.search(part) and not _is_latin(part)]
    return russian[0] if russian else None


KinopubId = Annotated[int, BeforeValidator(_as_int), Field(gt=0)]
Number = Annotated[int, BeforeValidator(_as_int), Field(ge=0)]
LooseInt = Annotated[int | None, BeforeValidator(_loose_int)]
UnixTime = Annotated[datetime | None, BeforeValidator(_unix_time)]
Title = Annotated[str, _text(TITLE_LIMIT)]
Word = Annotated[str, _text(WORD_LIMIT)]
Line = Annotated[str, _text(LINE_LIMIT)]
KinopubType = Annotated[str | None, BeforeValidator(_kinopub_type)]
Year = Annotated[int | None, BeforeValidator(_year)]
Imdb = Annotated[str | None, BeforeValidator(normalize_imdb)]
Flag = Annotated[bool, BeforeValidator(_flag)]
# -1 not watched, 0 started, 1 watched; only 1 ever becomes a play, so nothing else is accepted.
WatchStatus = Annotated[Literal[-1, 0, 1], BeforeValidator(_as_int)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- /v1/history --------------------------------------------------------------------------------------------


class HistoryItem(_Model):
    """The catalog item a history row belongs to: the only source of ``imdb`` and ``year`` we read."""

    id: KinopubId
    title: Title = ""
    type: KinopubType = None
    subtype: Word = ""
    year: Year = None
    imdb: Imdb = None


class HistoryMedia(_Model):
    """The video (movie-like) or episode the row is about. ``snumber`` = season, 0 for films."""

    id: KinopubId
    number: LooseInt = None
    snumber: LooseInt = None
    title: Title = ""


class HistoryRow(_Model):
    """One row per media, newest first by ``last_seen``. ``counter`` is a player-access counter, not a play
    count, so it is not read; a rewatch only bumps ``last_seen``."""

    item: HistoryItem
    media: HistoryMedia | None = None
    last_seen: UnixTime = None
    deleted: Flag = False


class BrokenRow(_Model):
    """A history row that failed validation: its item is reported, the rest of the page is still read."""

    item_id: int | None
    title: str
    last_seen: datetime | None
    reason: str


class Pagination(_Model):
    total: Number  # the number of PAGES, not rows (and sometimes a string)
    current: LooseInt = None
    perpage: LooseInt = None
    total_items: LooseInt = None


class HistoryPage(_Model):
    rows: list[HistoryRow]
    broken: list[BrokenRow]
    pagination: Pagination | None
    # Every row's ``last_seen``, readable or broken, in the page's own order (the newest-first check needs it).
    seen_in_order: list[datetime | None] = []


def parse_history_page(body: dict[str, Any]) -> HistoryPage:
    """Validate row by row, so one odd row costs one item, not the run. Raises ValidationError when the
    page itself (its ``history`` list or its ``pagination``) is unreadable."""
    envelope = _HistoryEnvelope.model_validate(body)
    rows: list[HistoryRow] = []
    broken: list[BrokenRow] = []
    seen: list[datetime | None] = []
    for raw in envelope.history:
        try:
            rows.append(HistoryRow.model_validate(raw))
            seen.append(rows[-1].last_seen)
        except ValidationError as exc:
            broken.append(_broken_row(raw, describe_validation_error(exc)))
            seen.append(broken[-1].last_seen)
    return HistoryPage(rows=rows, broken=broken, pagination=envelope.pagination, seen_in_order=seen)


class _HistoryEnvelope(_Model):
    history: Annotated[list[Any], BeforeValidator(_list_or_empty)]
    pagination: Pagination | None = None


def _broken_row(raw: object, reason: str) -> BrokenRow:
    item_id: int | None = None
    title = ""
    last_seen: datetime | None = None
    if isinstance(raw, dict):
        item = raw.get("item")
        if isinstance(item, dict):
            candidate = _loose_int(item.get("id"))
            item_id = candidate if candidate is not None and candidate > 0 else None
            title = clean_text(item["title"], TITLE_LIMIT) if isinstance(item.get("title"), str) else ""
        try:
            last_seen = _unix_time(raw.get("last_seen"))
        except ValueError:
            last_seen = None
    return BrokenRow(item_id=item_id, title=title, last_seen=last_seen, reason=reason)


# --- /v1/watching?id= ---------------------------------------------------------------------------------------


def _duration(value: object) -> int | None:
    """Seconds; unknown (null, 0, unreadable) is None. Only compared, never sent: an unknown duration makes a
    video a feature part (it must be watched) rather than an extra, so it can only hold a view back."""
    seconds = _loose_int(value)
    return seconds if seconds is not None and seconds > 0 else None


Duration = Annotated[int | None, BeforeValidator(_duration)]


class WatchingVideo(_Model):
    """A movie-like item's video: the film, one part of a multi-part film, or an extra (trailer, clip, making-of;
    docs/kinopub.md#what-the-user-watched)."""

    id: KinopubId
    number: LooseInt = None
    title: Title = ""
    duration: Duration = None
    status: WatchStatus
    updated: UnixTime = None  # the last viewing (kinoapi); null if never opened


class WatchingEpisode(_Model):
    id: KinopubId
    number: Number  # within the season (there is no ``snumber`` here)
    title: Title = ""
    duration: Duration = None  # compared with Trakt's runtimes to spot two episodes merged into one
    status: WatchStatus
    updated: UnixTime = None  # a season marked watched at once gives every episode the same value


class WatchingSeason(_Model):
    number: Number
    episodes: Annotated[list[WatchingEpisode], BeforeValidator(_list_or_empty)] = Field(default_factory=list)


class WatchingItem(_Model):
    id: KinopubId
    title: Title = ""
    type: KinopubType = None
    videos: Annotated[list[WatchingVideo], BeforeValidator(_list_or_empty)] = Field(default_factory=list)
    seasons: Annotated[list[WatchingSeason], BeforeValidator(_list_or_empty)] = Field(default_factory=list)


class WatchingResponse(_Model):
    item: WatchingItem


# --- /v1/items/{id} -----------------------------------------------------------------------------------------


class ItemResponse(_Model):
    """The catalog entry: the same metadata a history row carries (title, type, year, imdb), for an item the
    sync must read without a history row in its window (a pin made since the last run)."""

    item: HistoryItem


# --- OAuth (device flow) ------------------------------------------------------------------------------------


class DeviceCode(_Model):
    """``POST /oauth2/device grant_type=device_code``. The field is ``code``, not RFC 8628's ``device_code``."""

    code: SecretStr
    user_code: Annotated[str, bounded(WORD_LIMIT)]
    verification_uri: Annotated[str, bounded(LINE_LIMIT)]
    expires_in: Annotated[int, BeforeValidator(_as_int), Field(gt=0)] = 300
    interval: Annotated[int, BeforeValidator(_as_int), Field(ge=0)] = 5  # "1" in the recorded body


Token = Annotated[SecretStr, BeforeValidator(token_text)]


class TokenResponse(_Model):
    access_token: Token
    refresh_token: Token | None = None
    expires_in: Annotated[int, BeforeValidator(_as_int), Field(gt=0)]


class OAuthError(_Model):
    error: Word = ""
    error_description: Line = ""


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """Where and why validation failed, without the input values (they may hold a token)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = [f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}" for error in errors[:limit]]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "unexpected shape: " + "; ".join(parts) + more
