"""The read-only Kinopub API client, on the shared transport.

Kinopub's mutations are GETs (``/v1/watching/toggle``, ``/marktime``, ``/togglewatchlist``,
``/v1/items/vote``, ``/v1/history/clear-*``; docs/kinopub.md#transport): one wrong URL would change the
user's library. So every request goes through :func:`send`, which refuses any method + path outside a short
allow-list before any I/O; a mutating endpoint cannot be reached from this package by construction.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Final, Literal

import requests
from pydantic import ValidationError

from kinotrakt.errors import BadResponse, ForbiddenPath, RelinkRequired
from kinotrakt.http import Transport, decode_json, is_html
from kinotrakt.kinopub.models import (
    HistoryItem,
    HistoryPage,
    ItemResponse,
    WatchingItem,
    WatchingResponse,
    describe_validation_error,
    parse_history_page,
)
from kinotrakt.text import clean_text
from kinotrakt.tokens import TokenKeeper

SERVICE: Final[Literal["kinopub"]] = "kinopub"
MAX_PERPAGE = 50  # Kinopub caps /v1/history at 50 rows per page
_USER_AGENT_HINT = "if this persists, set KINOPUB_USER_AGENT to a current browser User-Agent"

# (method, path) pairs, matched in full: "/v1/watching" is allowed, "/v1/watching/toggle" is not.
ALLOWED_ENDPOINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GET", re.compile(r"/v1/history")),
    ("GET", re.compile(r"/v1/watching")),
    ("GET", re.compile(r"/v1/items/[1-9][0-9]*")),
    ("GET", re.compile(r"/v1/user")),
    ("POST", re.compile(r"/v1/device/notify")),
    ("POST", re.compile(r"/oauth2/device")),
    ("POST", re.compile(r"/oauth2/token")),
)


def check_allowed(method: str, path: str) -> None:
    if not any(method == allowed and pattern.fullmatch(path) for allowed, pattern in ALLOWED_ENDPOINTS):
        raise ForbiddenPath(f"kinopub {method} {path} is not on the read-only allow-list; refusing to send it")


def send(
    transport: Transport,
    base_url: str,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    token: str | None = None,
    idempotent: bool | None = None,
    pass_through: Collection[int] = (),
) -> requests.Response:
    """The only way this package talks to Kinopub: allow-list first, then the shared transport (``pass_through``:
    statuses the caller reads itself, as :meth:`~kinotrakt.http.Transport.request` says)."""
    check_allowed(method, path)
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return transport.request(
        method,
        base_url.rstrip("/") + path,
        params=params,
        form=form,
        headers=headers,
        idempotent=idempotent,
        pass_through=pass_through,
    )


def json_object(response: requests.Response, path: str) -> dict[str, Any]:
    """The body as a JSON object; HTML pages (a wrong path or base), invalid JSON and redirects are
    BadResponse with a reason a user can act on."""
    if 300 <= response.status_code < 400:
        raise BadResponse(SERVICE, path, "answered a redirect; check KINOPUB_API_URL", response.status_code)
    if response.status_code == 403 and is_html(response):
        # Kinopub has answered 403 to clients without a browser-like User-Agent (docs/kinopub.md#transport).
        raise BadResponse(SERVICE, path, f"answered an HTML 403 page; {_USER_AGENT_HINT}", 403)
    body = decode_json(response, SERVICE)
    if not isinstance(body, dict):
        raise BadResponse(SERVICE, path, "answered JSON that is not an object", response.status_code)
    return body


def body_status(response: requests.Response, body: dict[str, Any]) -> int:
    """Every Kinopub body repeats its status (``{"status": 200, ...}``); an error status in a 200 answer
    is still an error. A non-2xx HTTP status always wins."""
    if not 200 <= response.status_code < 300:
        return response.status_code
    raw = body.get("status", response.status_code)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return response.status_code


def error_reason(status: int, body: dict[str, Any]) -> str:
    message = body.get("error") or body.get("message")
    text = (
        clean_text(message.strip(), 200) if isinstance(message, str) and message.strip() else f"error status {status}"
    )
    if status == 403:
        text += f"; {_USER_AGENT_HINT}"
    return text


class KinopubClient:
    """Reads what the user watched. Sequential by design: Kinopub has no documented rate limit but does
    answer 429, and the transport backs off on 429/5xx."""

    def __init__(self, transport: Transport, base_url: str, tokens: TokenKeeper) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens

    def history_page(self, page: int, perpage: int = MAX_PERPAGE) -> HistoryPage:
        """One page of ``/v1/history``, newest first by ``last_seen``; ``pagination.total`` counts pages."""
        path = "/v1/history"
        body = self._get(path, {"page": page, "perpage": min(perpage, MAX_PERPAGE)})
        try:
            return parse_history_page(body)
        except ValidationError as exc:
            raise BadResponse(SERVICE, path, describe_validation_error(exc)) from None

    def watching(self, item_id: int) -> WatchingItem:
        """Per-video / per-episode state of one item (``status`` -1/0/1, ``updated``)."""
        path = "/v1/watching"
        body = self._get(path, {"id": item_id})
        try:
            item = WatchingResponse.model_validate(body).item
        except ValidationError as exc:
            raise BadResponse(SERVICE, path, describe_validation_error(exc)) from None
        if item.id != item_id:
            raise BadResponse(SERVICE, path, f"answered for item {item.id} when asked for item {item_id}")
        return item

    def item(self, item_id: int) -> HistoryItem:
        """Catalog metadata of one item (title, type, year, imdb). Kinopub answers 404 for titles removed
        from the catalog, while ``/v1/watching`` still answers for them (docs/kinopub.md#what-the-user-watched)."""
        path = f"/v1/items/{item_id}"
        body = self._get(path, {"nolinks": 1})
        try:
            item = ItemResponse.model_validate(body).item
        except ValidationError as exc:
            raise BadResponse(SERVICE, path, describe_validation_error(exc)) from None
        if item.id != item_id:
            raise BadResponse(SERVICE, path, f"answered for item {item.id} when asked for item {item_id}")
        return item

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        token = self._tokens.access_token()
        body = self._attempt(path, params, token)
        if body is None:
            token = self._tokens.refresh_after_unauthorized(token)
            body = self._attempt(path, params, token)
            if body is None:
                raise RelinkRequired(SERVICE, "Kinopub rejected a freshly refreshed access token (HTTP 401)")
        return body

    def _attempt(self, path: str, params: dict[str, Any], token: str) -> dict[str, Any] | None:
        """The JSON body of a 200 answer, or None for a 401."""
        response = send(self._transport, self._base_url, "GET", path, params=params, token=token)
        if response.status_code == 401:
            return None
        body = json_object(response, path)
        status = body_status(response, body)
        if status == 401:
            return None
        if status != 200:
            raise BadResponse(SERVICE, path, error_reason(status, body), status)
        return body
