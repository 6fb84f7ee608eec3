"""Everything kinotrakt asks the Trakt API, on the shared transport (docs/trakt.md).

Error statuses are mapped to typed errors in one place, :func:`raise_for_status`; every call goes through
:meth:`TraktClient._send`, which adds the headers and does the one refresh + one retry on a 401.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import quote, urlsplit

import requests
from pydantic import TypeAdapter, ValidationError

from kinotrakt import __version__
from kinotrakt.clock import Clock, Deadline, iso_z
from kinotrakt.errors import (
    BadResponse,
    ItemRefused,
    OutcomeUnknown,
    TraktAccountLimit,
    TraktAccountLocked,
    TraktAppRejected,
    TraktCloudflareBlocked,
    TraktUnauthorized,
    TraktVipRequired,
)
from kinotrakt.http import CallCounter, Limits, Pacing, RetryPolicy, Transport, decode_json, is_html
from kinotrakt.tokens import TokenKeeper
from kinotrakt.trakt.models import (
    HistoryItem,
    HistoryKind,
    HistoryResult,
    Movie,
    RemoveResult,
    SearchHit,
    Season,
    Show,
)

SERVICE = "trakt"

# Trakt: 1 write per second per user; GETs: 500 per 5 minutes per user (2026, trakt/trakt-api#909), so by
# default 450 (``TRAKT_GET_LIMIT``) to leave a margin for clocks and other apps of the same user.
DEFAULT_GET_LIMIT = 450
GET_WINDOW_SECONDS = 300.0

# (2026) Trakt silently cuts larger `limit` values to 250.
HISTORY_PAGE_LIMIT = 250

# Lucene specials Trakt's text search interprets (docs/trakt.md#mapping); `\` first so escapes stay intact.
_LUCENE_SPECIALS = re.compile(r'([\\+\-&|!(){}\[\]^"~*?:/])')


def trakt_user_agent() -> str:
    """Cloudflare answers requests without a real User-Agent with an HTML 403 (2026)."""
    return f"kinotrakt/{__version__}"


def trakt_headers(client_id: str, access_token: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "trakt-api-key": client_id,
        "trakt-api-version": "2",
    }
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    return headers


def trakt_endpoint_label(url: str) -> str:
    """The path with ids replaced by ``{id}``: how error messages (and the bench's per-endpoint counts) name an
    endpoint, without an item id in them."""
    parts = urlsplit(url).path.split("/")
    return "/".join("{id}" if re.fullmatch(r"\d+|tt\d+", part) else part for part in parts)


def trakt_transport(
    *,
    post_interval_seconds: float,
    clock: Clock,
    deadline: Deadline,
    counter: CallCounter,
    get_limit: int = DEFAULT_GET_LIMIT,
    limits: Limits | None = None,
    session: requests.Session | None = None,
    rng: random.Random | None = None,
    retry: RetryPolicy | None = None,
) -> Transport:
    """The Trakt transport: writes spaced start to start by ``post_interval_seconds``
    (``TRAKT_POST_INTERVAL_SECONDS``), at most ``get_limit`` GETs per 5 minutes (``TRAKT_GET_LIMIT``)."""
    return Transport(
        SERVICE,
        clock=clock,
        deadline=deadline,
        counter=counter,
        user_agent=trakt_user_agent(),
        limits=limits,
        pacing=Pacing(min_write_interval=post_interval_seconds, get_limit=get_limit, get_window=GET_WINDOW_SECONDS),
        session=session,
        endpoint_label=trakt_endpoint_label,
        rng=rng,
        retry=retry,
    )


def escape_query(text: str) -> str:
    """Escape Lucene specials so a title like ``Mission: Impossible`` is searched as written."""
    return _LUCENE_SPECIALS.sub(r"\\\1", text)


def raise_for_status(response: requests.Response) -> None:
    """Map a Trakt error status to its typed error; return quietly on 2xx.

    429 and 5xx never get here: the transport retries them or raises ServiceUnavailable / OutcomeUnknown.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 401:
        raise TraktUnauthorized
    if status == 403:
        # Cloudflare answers with an HTML page (`server: cloudflare`); Trakt itself with JSON (2026), which
        # means the API app is unknown, unapproved or deleted.
        raise TraktCloudflareBlocked if is_html(response) else TraktAppRejected
    if status == 420:
        raise TraktAccountLimit
    if status == 423:
        raise TraktAccountLocked
    if status == 426:
        raise TraktVipRequired
    path = urlsplit(response.url).path
    if 400 <= status < 500:
        # What is left of the 4xx range (429 never gets here) is about the request itself: the item it names.
        raise ItemRefused(SERVICE, path, f"answered HTTP {status}", status)
    raise BadResponse(SERVICE, path, f"answered HTTP {status}", status)


@functools.cache
def _adapter(kind: Hashable) -> TypeAdapter[Any]:
    # Building an adapter builds its validator: once per shape, not once per answer (a backfill reads
    # hundreds of season tables).
    return TypeAdapter(cast("Any", kind))


def parse_as[T](kind: type[T], response: requests.Response) -> T:
    """The JSON body validated as ``kind``; a wrong shape is a BadResponse naming only the failing fields
    (pydantic's own message quotes input values, and a token response holds tokens)."""
    data = decode_json(response, SERVICE)
    try:
        parsed: T = _adapter(cast("Hashable", kind)).validate_python(data)
        return parsed
    except ValidationError as exc:
        fields = sorted({".".join(str(part) for part in error["loc"]) or "<root>" for error in exc.errors()})
        reason = f"answered an unexpected shape (fields: {', '.join(fields[:5])})"
        raise BadResponse(SERVICE, urlsplit(response.url).path, reason, response.status_code) from None


class TraktWriteOutcomeUnknown(OutcomeUnknown):
    """A Trakt write (``POST /sync/history`` or ``/sync/history/remove``) was sent but its answer was lost: it may
    have been applied.

    Carries the body so the caller can re-read the remote history for that batch and send only what is still
    missing, or remove only what is still there (step 7 of
    docs/ARCHITECTURE.md#one-views-way-from-kinopub-to-a-trakt-play); re-sending an addition blindly would create
    permanent duplicate plays."""

    def __init__(self, cause: OutcomeUnknown, body: dict[str, Any]) -> None:
        Exception.__init__(self, f"{cause}; it may have been applied, re-read before sending it again")
        self.service = cause.service
        self.method = cause.method
        self.path = cause.path
        self.detail = cause.detail
        self.body = body

    @property
    def movies(self) -> list[dict[str, Any]]:
        return list(self.body.get("movies", []))

    @property
    def episodes(self) -> list[dict[str, Any]]:
        return list(self.body.get("episodes", []))


@dataclass(frozen=True)
class HistoryPage:
    """One page of a history read, and whether it was the last."""

    items: list[HistoryItem]
    last: bool


class TraktClient:
    def __init__(self, transport: Transport, api_base: str, client_id: str, tokens: TokenKeeper) -> None:
        self._transport = transport
        self._api_base = api_base.rstrip("/")
        self._client_id = client_id
        self._tokens = tokens

    # --- the one way to call Trakt ---------------------------------------------------------------------

    def _send(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        authorized: bool,
    ) -> requests.Response:
        url = self._api_base + path
        token = self._tokens.access_token() if authorized else None
        response = self._request(method, url, params, json_body, token)
        if response.status_code == 401 and token is not None:
            # A 401 is a refusal before processing, so even a write is safe to send again with a new token.
            token = self._tokens.refresh_after_unauthorized(token)
            response = self._request(method, url, params, json_body, token)
        raise_for_status(response)
        return response

    def _request(
        self, method: str, url: str, params: dict[str, Any] | None, json_body: Any, token: str | None
    ) -> requests.Response:
        headers = trakt_headers(self._client_id, token)
        try:
            return self._transport.request(method, url, params=params, json_body=json_body, headers=headers)
        except OutcomeUnknown as exc:
            raise TraktWriteOutcomeUnknown(exc, json_body if isinstance(json_body, dict) else {}) from None

    # --- mapping (public endpoints: no Bearer needed) ----------------------------------------------------

    def search_imdb(self, imdb: str, type: Literal["movie", "show"]) -> list[SearchHit]:
        """Items with this IMDb id, of ``type`` only. The real service ignores ``type`` on IMDb lookups (2026) and
        answers whatever has the id (a show for a movie's lookup, an episode, a person), so the hits are filtered
        here; ``type`` is still sent, as the API documents it."""
        response = self._send("GET", f"/search/imdb/{quote(imdb, safe='')}", params={"type": type}, authorized=False)
        return [hit for hit in parse_as(list[SearchHit], response) if hit.type == type and hit.media is not None]

    def search_text(
        self, kind: Literal["movie", "show"], query: str, years: int | tuple[int, int] | None
    ) -> list[SearchHit]:
        """``years``: one year, or a range (``1995-1997``; Trakt's ``years`` filter takes both)."""
        params: dict[str, Any] = {"query": escape_query(query)}
        if isinstance(years, tuple):
            params["years"] = f"{years[0]}-{years[1]}"
        elif years is not None:
            params["years"] = years
        response = self._send("GET", f"/search/{kind}", params=params, authorized=False)
        return [hit for hit in parse_as(list[SearchHit], response) if hit.type == kind and hit.media is not None]

    def show_seasons(self, show: int | str) -> list[Season] | None:
        """Every season with its episodes (their titles, air dates and runtimes too), in one call; None when
        Trakt has no such show (404).

        ``show`` is a Trakt id, a slug or an IMDb id: every ``/shows/{id}`` route takes any of them (2026), so
        a show with an IMDb id needs no search first."""
        path = f"/shows/{quote(str(show), safe='')}/seasons"
        try:
            response = self._send("GET", path, params={"extended": "full,episodes"}, authorized=False)
        except BadResponse as exc:
            if exc.status == 404:
                return None
            raise
        return parse_as(list[Season], response)

    def movie(self, ref: str) -> Movie:
        """``/movies/{id}``: a Trakt id, slug or IMDb id (checks a user's pin before it is stored)."""
        return parse_as(Movie, self._send("GET", f"/movies/{quote(ref, safe='')}", authorized=False))

    def show(self, ref: str) -> Show:
        """``/shows/{id}``: a Trakt id, slug or IMDb id."""
        return parse_as(Show, self._send("GET", f"/shows/{quote(ref, safe='')}", authorized=False))

    # --- the remote index (🔒) ------------------------------------------------------------------------

    def history(self, kind: HistoryKind, start_at: datetime, end_at: datetime) -> list[HistoryItem]:
        """Every play of ``kind`` watched between the bounds, newest first, all pages."""
        params = {"start_at": iso_z(start_at), "end_at": iso_z(end_at)}
        return self._all_pages(f"/sync/history/{kind}", params)

    def item_history(self, kind: HistoryKind, trakt_id: int) -> list[HistoryItem]:
        """Every play of one movie or episode, whenever it was watched (dedupes ``unknown``-time views)."""
        return self._all_pages(f"/sync/history/{kind}/{trakt_id}", {})

    def history_page(self, kind: HistoryKind, *, end_at: datetime | None, page: int) -> HistoryPage:
        """One page (newest first) of every play of ``kind`` watched at or before ``end_at`` (None: every play;
        unknown dates included, at 1970-01-01)."""
        params: dict[str, Any] = {} if end_at is None else {"end_at": iso_z(end_at)}
        response = self._history_request(f"/sync/history/{kind}", params, page)
        items = parse_as(list[HistoryItem], response)
        return HistoryPage(items, _last_page(response, page, len(items)))

    def _all_pages(self, path: str, params: dict[str, Any]) -> list[HistoryItem]:
        seen: set[int] = set()
        items: list[HistoryItem] = []
        for page in self._pages(path, params):
            for item in page:
                # A play added while we page shifts older ones down a page: keep each history id once.
                if item.id not in seen:
                    seen.add(item.id)
                    items.append(item)
        return items

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[HistoryItem]]:
        page = 1
        while True:
            response = self._history_request(path, params, page)
            items = parse_as(list[HistoryItem], response)
            yield items
            if _last_page(response, page, len(items)):
                return
            page += 1

    def _history_request(self, path: str, params: dict[str, Any], page: int) -> requests.Response:
        return self._send("GET", path, params={**params, "page": page, "limit": HISTORY_PAGE_LIMIT}, authorized=True)

    # --- writing (🔒) ---------------------------------------------------------------------------------

    def add_to_history(self, movies: list[dict[str, Any]], episodes: list[dict[str, Any]]) -> HistoryResult:
        """``POST /sync/history`` once. Never re-sent when the answer is lost: TraktWriteOutcomeUnknown."""
        body: dict[str, Any] = {}
        if movies:
            body["movies"] = movies
        if episodes:
            body["episodes"] = episodes
        response = self._send("POST", "/sync/history", json_body=body, authorized=True)
        try:
            return parse_as(HistoryResult, response)
        except BadResponse as exc:
            # A 2xx: Trakt has added the plays; only its account of them is unreadable (cut off, damaged).
            raise TraktWriteOutcomeUnknown(OutcomeUnknown(SERVICE, "POST", "/sync/history", exc.reason), body) from None

    def remove_from_history(self, history_ids: Sequence[int]) -> RemoveResult:
        """``POST /sync/history/remove {"ids": [...]}`` once: those plays, by history id, and nothing else. Never
        re-sent when the answer is lost (TraktWriteOutcomeUnknown): the caller re-reads what is still there."""
        body: dict[str, Any] = {"ids": list(history_ids)}
        response = self._send("POST", "/sync/history/remove", json_body=body, authorized=True)
        try:
            return parse_as(RemoveResult, response)
        except BadResponse as exc:
            # A 2xx: Trakt has removed the plays; only its account of them is unreadable.
            reason = exc.reason
            raise TraktWriteOutcomeUnknown(
                OutcomeUnknown(SERVICE, "POST", "/sync/history/remove", reason), body
            ) from None

    def user_settings(self) -> dict[str, Any]:
        """``/users/settings``: the linked account (the login page shows ``user.username``)."""
        return parse_as(dict[str, Any], self._send("GET", "/users/settings", authorized=True))


def _last_page(response: requests.Response, page: int, items: int) -> bool:
    page_count = _int_header(response, "X-Pagination-Page-Count")
    if page_count is not None:
        # The count is for the limit we loop with, which Trakt may have cut; it pages consistently.
        return page >= page_count
    return items < (_int_header(response, "X-Pagination-Limit") or HISTORY_PAGE_LIMIT)


def _int_header(response: requests.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
