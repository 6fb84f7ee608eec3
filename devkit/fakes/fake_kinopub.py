"""A fake Kinopub API (``/oauth2/*`` and ``/v1/*``) on loopback.

Shapes are copied from the answers recorded from the live API in 2021 (``tests/fixtures/kinopub/recorded-2021.json``)
and follow ``docs/kinopub.md``: every JSON body repeats ``"status"``, a wrong path answers an HTML page, mutations are
GETs, numbers sometimes arrive as strings, marking a season watched gives all its episodes one ``updated``.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devkit.fakes.base import Clock, FakeServer, RecordedRequest, Response, html_response, issued, json_response

MOVIE_LIKE_TYPES = frozenset({"movie", "documovie", "concert", "3d"})
SERIES_TYPES = frozenset({"serial", "docuserial", "tvshow"})
HISTORY_PERPAGE_DEFAULT = 20
HISTORY_PERPAGE_MAX = 50
NOT_FOUND = "Requested item or video not found."
MUTATION_PATH = re.compile(
    r"/v1/watching/(?:toggle|marktime|togglewatchlist)|/v1/items/vote|/v1/history/clear-[A-Za-z0-9_-]+"
)

HTML_404 = """<!DOCTYPE html>
<html><head><title>404 Not Found</title></head>
<body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>
"""
HTML_403 = """<!DOCTYPE html>
<html><head><title>403 Forbidden</title></head>
<body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>
"""

Status = Literal[-1, 0, 1]
Route = Callable[[RecordedRequest, re.Match[str]], Response]
# A video or an episode as seeded: its title, or (title, duration in seconds) when it differs from the item's
# (a trailer next to a film, a 45-minute episode that merges two 22-minute ones).
MediaSpec = str | tuple[str, int]


@dataclass
class KpMedia:
    """A video of a movie-like item or an episode of a series (Kinopub calls both "media")."""

    id: int
    number: int
    snumber: int  # season number; 0 for films
    title: str
    duration: int
    time: int = 0
    status: int = -1  # -1 not watched, 0 started, 1 watched
    updated: int | None = None  # unix time of the last state change; None if never opened

    def watching(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "title": self.title,
            "duration": self.duration,
            "time": self.time,
            "status": self.status,
            "updated": self.updated,
        }


@dataclass
class KpSeason:
    id: int
    number: int
    episodes: list[KpMedia]

    @property
    def watched(self) -> int:
        return sum(1 for e in self.episodes if e.status == 1)

    @property
    def status(self) -> int:
        return _aggregate_status(self.episodes)


@dataclass
class KpItem:
    id: int
    title: str  # usually "Русское / Original"
    type: str
    subtype: str = ""
    year: int | None = None
    imdb: int | str | None = None  # an int without "tt", 0/None for none, sometimes a "tt…" string
    kinopoisk: int | None = None
    videos: list[KpMedia] | None = None
    seasons: list[KpSeason] | None = None
    in_catalog: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # more catalog metadata for /v1/items/{id}

    def media(self) -> list[KpMedia]:
        if self.videos is not None:
            return self.videos
        return [episode for season in self.seasons or [] for episode in season.episodes]

    def short(self) -> dict[str, Any]:
        """The item as embedded in a history row."""
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "subtype": self.subtype,
            "year": self.year,
            "imdb": self.imdb,
            "kinopoisk": self.kinopoisk,
            "posters": _posters(self.id),
        }


@dataclass
class HistoryRow:
    item_id: int
    media_id: int
    time: int
    counter: int
    first_seen: int
    last_seen: int
    deleted: bool = False


@dataclass
class _Grant:
    access_token: str
    refresh_token: str
    issued_at: float
    expires_at: float
    access_alive: bool = True
    refresh_alive: bool = True

    def payload(self) -> dict[str, Any]:
        return {
            "status": 200,
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": round(self.expires_at - self.issued_at),
            "refresh_token": self.refresh_token,
            "scope": None,
        }


@dataclass
class _DeviceCode:
    code: str
    user_code: str
    expires_at: float
    state: Literal["pending", "approved", "used", "expired"] = "pending"


class FakeKinopub(FakeServer):
    """Seed items and views, point KINOPUB_API_URL at ``start()``'s URL."""

    server_name = "nginx"

    def __init__(
        self,
        *,
        client_id: str = "xbmc",
        client_secret: str = "cgg3gtifu46urtfp2zp1nqtba0k2ezxh",  # noqa: S107 - the public Kodi pair
        clock: Clock = time.time,
        access_token_ttl: float = 24 * 3600,
        refresh_token_ttl: float | None = None,
        username: str = "kinotrakt-demo",
        string_numbers: bool = False,
        refresh_on_device_endpoint_only: bool = False,
        require_browser_ua: bool = False,
        auto_approve: bool = False,
        device_expires_in: int = 300,
        verification_uri: str = "https://kino.pub/device",
    ) -> None:
        super().__init__(clock=clock)
        self.client_id = client_id
        self.client_secret = issued(client_secret)
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.username = username
        self.string_numbers = string_numbers
        self.refresh_on_device_endpoint_only = refresh_on_device_endpoint_only
        self.require_browser_ua = require_browser_ua
        self.auto_approve = auto_approve
        self.device_expires_in = device_expires_in
        self.verification_uri = verification_uri

        self.items: dict[int, KpItem] = {}
        self.history: dict[int, HistoryRow] = {}  # by media id: one row per media
        self.mutations: list[RecordedRequest] = []
        self.device_info: dict[str, str] | None = None
        self._media: dict[int, tuple[KpItem, KpMedia]] = {}
        self._history_sorted: list[HistoryRow] | None = None
        self._grants_by_access: dict[str, _Grant] = {}
        self._grants_by_refresh: dict[str, _Grant] = {}
        self._devices: dict[str, _DeviceCode] = {}
        self._devices_by_user_code: dict[str, _DeviceCode] = {}
        self._register_routes()

    # ------------------------------------------------------------------ seeding: catalog

    def add_item(
        self,
        item_id: int,
        title: str,
        type: str,
        *,
        subtype: str = "",
        year: int | None = None,
        imdb: int | str | None = None,
        kinopoisk: int | None = None,
        videos: int | list[MediaSpec] | None = None,
        seasons: Mapping[int, int | list[MediaSpec]] | None = None,
        duration: int = 5400,
        extra: Mapping[str, Any] | None = None,
    ) -> KpItem:
        """Any item. ``videos`` (count or titles) makes it movie-like, ``seasons`` ({number: count or titles})
        a series; a title may come with its own duration, ``(title, seconds)`` (a trailer next to the film, a
        merged episode); the others last ``duration``. Media ids are ``item_id * 100000 + number`` for videos
        and ``+ season * 1000 + number`` for episodes, season ids ``item_id * 100 + number``."""
        if (videos is None) == (seasons is None):
            raise ValueError("give exactly one of videos= or seasons=")

        def titled(spec: MediaSpec) -> tuple[str, int]:
            return spec if isinstance(spec, tuple) else (spec, duration)

        with self.lock:
            item = KpItem(item_id, title, type, subtype, year, imdb, kinopoisk, extra=dict(extra or {}))
            if videos is not None:
                specs: list[MediaSpec] = [""] * videos if isinstance(videos, int) else list(videos)
                item.videos = [
                    KpMedia(item_id * 100_000 + n, n, 0, *titled(spec)) for n, spec in enumerate(specs, start=1)
                ]
            else:
                assert seasons is not None
                item.seasons = []
                for number in sorted(seasons):
                    spec = seasons[number]
                    names: list[MediaSpec] = (
                        [f"Эпизод {n} / Episode {n}" for n in range(1, spec + 1)] if isinstance(spec, int) else spec
                    )
                    episodes = [
                        KpMedia(item_id * 100_000 + number * 1000 + n, n, number, *titled(name))
                        for n, name in enumerate(names, start=1)
                    ]
                    item.seasons.append(KpSeason(item_id * 100 + number, number, episodes))
            self.items[item_id] = item
            for media in item.media():
                self._media[media.id] = (item, media)
            return item

    def add_movie(
        self,
        item_id: int,
        title: str,
        year: int | None,
        imdb: int | str | None,
        *,
        type: str = "movie",
        videos: int | list[MediaSpec] = 1,
        subtype: str = "",
        kinopoisk: int | None = None,
        duration: int = 6600,
    ) -> KpItem:
        return self.add_item(
            item_id,
            title,
            type,
            subtype=subtype,
            year=year,
            imdb=imdb,
            kinopoisk=kinopoisk,
            videos=videos,
            duration=duration,
        )

    def add_series(
        self,
        item_id: int,
        title: str,
        year: int | None,
        imdb: int | str | None,
        seasons: Mapping[int, int | list[MediaSpec]] | None = None,
        *,
        type: str = "serial",
        kinopoisk: int | None = None,
        duration: int = 2700,
    ) -> KpItem:
        return self.add_item(
            item_id,
            title,
            type,
            year=year,
            imdb=imdb,
            kinopoisk=kinopoisk,
            seasons=seasons if seasons is not None else {1: 10, 2: 8},
            duration=duration,
        )

    def add_episodes(self, item_id: int, season: int, count: int = 1, *, duration: int = 2700) -> list[KpMedia]:
        """New episodes air: appended to ``season`` (a new season if it has none yet), not watched."""
        with self.lock:
            item = self.items[item_id]
            seasons = item.seasons if item.seasons is not None else []
            found = next((s for s in seasons if s.number == season), None)
            if found is None:
                found = KpSeason(item_id * 100 + season, season, [])
                seasons.append(found)
                seasons.sort(key=lambda s: s.number)
            start = len(found.episodes) + 1
            added = [
                KpMedia(item_id * 100_000 + season * 1000 + n, n, season, f"Эпизод {n} / Episode {n}", duration)
                for n in range(start, start + count)
            ]
            found.episodes += added
            for media in added:
                self._media[media.id] = (item, media)
            return added

    def remove_from_catalog(self, item_id: int) -> None:
        """``/v1/items/{id}`` answers 404 from now on; ``/v1/watching`` and history still answer."""
        with self.lock:
            self.items[item_id].in_catalog = False

    def media_id(
        self, item_id: int, *, season: int | None = None, episode: int | None = None, video: int | None = None
    ) -> int:
        return self._find_media(item_id, season, episode, video).id

    # ------------------------------------------------------------------ seeding: views

    def watch(
        self,
        item_id: int,
        *,
        season: int | None = None,
        episode: int | None = None,
        video: int | None = None,
        at: int,
        status: Status = 1,
        time: int | None = None,
    ) -> HistoryRow:
        """A real play: state (``status``, ``updated = at``, ``time``) and the media's history row
        (created with ``first_seen = at``, or bumped: ``last_seen = at``, ``counter += 1``, un-deleted).
        A movie-like item defaults to video 1; a series needs ``season`` and ``episode``."""
        with self.lock:
            media = self._find_media(item_id, season, episode, video)
            self._set_state(media, status, at, time)
            row = self.history.get(media.id)
            if row is None:
                row = HistoryRow(item_id, media.id, media.time, 1, at, at)
                self.history[media.id] = row
            else:
                row.last_seen = max(row.last_seen, at)
                row.counter += 1
                row.time = media.time
                row.deleted = False
            self._history_sorted = None
            return row

    def mark_watched_without_play(
        self,
        item_id: int,
        *,
        season: int | None = None,
        episode: int | None = None,
        video: int | None = None,
        at: int,
        status: Status = 1,
    ) -> list[KpMedia]:
        """Marked by hand (Kinopub really does this): state only, no history row. Without ``episode``/``video``
        it marks the whole ``season``, or the whole item without ``season`` — every media the same ``updated``."""
        with self.lock:
            item = self.items[item_id]
            if episode is not None or video is not None:
                targets = [self._find_media(item_id, season, episode, video)]
            elif season is not None:
                targets = self._season(item, season).episodes
            else:
                targets = item.media()
            for media in targets:
                self._set_state(media, status, at, None)
            return targets

    def set_state(
        self,
        item_id: int,
        *,
        season: int | None = None,
        episode: int | None = None,
        video: int | None = None,
        status: Status,
        updated: int | None,
        time: int | None = None,
    ) -> KpMedia:
        """Low level: write ``/v1/watching`` state as given (``updated`` may be None), history untouched."""
        with self.lock:
            media = self._find_media(item_id, season, episode, video)
            media.status = status
            media.updated = updated
            media.time = self._position(media, status, time)
            return media

    def add_history_row(
        self,
        item_id: int,
        media_id: int,
        *,
        first_seen: int,
        last_seen: int | None = None,
        counter: int = 1,
        time: int = 0,
        deleted: bool = False,
    ) -> HistoryRow:
        """Low level: a history row as given, state untouched."""
        with self.lock:
            if self._media.get(media_id, (None, None))[0] is not self.items[item_id]:
                raise KeyError(f"media {media_id} is not part of item {item_id}")
            row = HistoryRow(item_id, media_id, time, counter, first_seen, last_seen or first_seen, deleted)
            self.history[media_id] = row
            self._history_sorted = None
            return row

    def delete_history_row(self, item_id: int, media_id: int) -> None:
        """The user removed the row: it stays in ``/v1/history`` with ``deleted: true``."""
        with self.lock:
            row = self.history[media_id]
            if row.item_id != item_id:
                raise KeyError(f"history row of media {media_id} belongs to item {row.item_id}")
            row.deleted = True

    # ------------------------------------------------------------------ tokens and device flow

    def issue_tokens(self, ttl: float | None = None) -> dict[str, Any]:
        """A valid token pair, as the token endpoints return it."""
        with self.lock:
            return self._new_grant(ttl).payload()

    def expire_access_token(self, token: str | None = None) -> None:
        """Expire one access token, or every one when ``token`` is None."""
        with self.lock:
            grants = self._grants_by_access.values() if token is None else [self._grants_by_access[token]]
            for grant in grants:
                grant.expires_at = self.clock() - 1

    def revoke(self, token: str) -> None:
        with self.lock:
            grant = self._grants_by_access.get(token) or self._grants_by_refresh.get(token)
            if grant is not None:
                grant.access_alive = grant.refresh_alive = False

    def token_is_valid(self, token: str) -> bool:
        with self.lock:
            grant = self._grants_by_access.get(token)
            return grant is not None and grant.access_alive and self.clock() < grant.expires_at

    def approve_device(self, user_code: str) -> None:
        with self.lock:
            self._devices_by_user_code[user_code].state = "approved"

    def expire_device(self, user_code: str) -> None:
        with self.lock:
            self._devices_by_user_code[user_code].state = "expired"

    @property
    def pending_user_codes(self) -> list[str]:
        with self.lock:
            return [d.user_code for d in self._devices.values() if d.state == "pending"]

    # ------------------------------------------------------------------ internals

    def _find_media(self, item_id: int, season: int | None, episode: int | None, video: int | None) -> KpMedia:
        item = self.items[item_id]
        if item.videos is not None:
            number = 1 if video is None else video
            for media in item.videos:
                if media.number == number:
                    return media
            raise KeyError(f"item {item_id} has no video {number}")
        if season is None or episode is None:
            raise KeyError(f"series {item_id} needs season= and episode=")
        for media in self._season(item, season).episodes:
            if media.number == episode:
                return media
        raise KeyError(f"item {item_id} has no S{season}E{episode}")

    @staticmethod
    def _season(item: KpItem, number: int) -> KpSeason:
        for season in item.seasons or []:
            if season.number == number:
                return season
        raise KeyError(f"item {item.id} has no season {number}")

    def _set_state(self, media: KpMedia, status: int, at: int, time: int | None) -> None:
        media.status = status
        media.updated = at
        media.time = self._position(media, status, time)

    @staticmethod
    def _position(media: KpMedia, status: int, time: int | None) -> int:
        if time is not None:
            return time
        return {1: media.duration, 0: media.duration // 3}.get(status, 0)

    def _sorted_history(self) -> list[HistoryRow]:
        """Newest first by ``last_seen``; sorted once per change, not per request (benchmarks page a lot)."""
        if self._history_sorted is None:
            self._history_sorted = sorted(
                self.history.values(), key=lambda r: (r.last_seen, r.item_id, r.media_id), reverse=True
            )
        return self._history_sorted

    def _new_grant(self, ttl: float | None = None) -> _Grant:
        now = self.clock()
        grant = _Grant(
            access_token=issued(secrets.token_hex(16)),
            refresh_token=issued(secrets.token_hex(16)),
            issued_at=int(now),
            expires_at=int(now) + (self.access_token_ttl if ttl is None else ttl),
        )
        self._grants_by_access[grant.access_token] = grant
        self._grants_by_refresh[grant.refresh_token] = grant
        return grant

    def _token_of(self, request: RecordedRequest) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return request.query.get("access_token", "")

    def _number(self, value: int) -> int | str:
        return str(value) if self.string_numbers else value

    # ------------------------------------------------------------------ transport rules

    def precheck(self, request: RecordedRequest) -> Response | None:
        if MUTATION_PATH.fullmatch(request.path):
            self.mutations.append(request)  # recorded even when unauthorised: the product must never call them
        if self.require_browser_ua and "Mozilla" not in request.headers.get("user-agent", ""):
            return html_response(403, HTML_403)
        return None

    def not_found(self, request: RecordedRequest) -> Response:
        return html_response(404, HTML_404)

    def _authed(self, handler: Route) -> Route:
        def guarded(request: RecordedRequest, match: re.Match[str]) -> Response:
            if not self.token_is_valid(self._token_of(request)):
                return json_response(401, {"status": 401, "error": "unauthorized"})
            return handler(request, match)

        return guarded

    def _register_routes(self) -> None:
        self.route("POST", r"/oauth2/device", self._oauth_device)
        self.route("POST", r"/oauth2/token", self._oauth_token)
        self.route("GET", r"/v1/user", self._authed(self._user))
        self.route("GET", r"/v1/history", self._authed(self._history))
        self.route("GET", r"/v1/watching", self._authed(self._watching))
        self.route("GET", r"/v1/items/(?P<id>\d+)", self._authed(self._item))
        self.route("POST", r"/v1/device/notify", self._authed(self._notify))
        for method in ("GET", "POST"):
            self.route(method, MUTATION_PATH.pattern, self._authed(self._mutation))

    # ------------------------------------------------------------------ OAuth

    def _oauth_device(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        params = request.params()
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token":
            return self._refresh(params)
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return _error(400, "invalid_client")
        if grant_type == "device_code":
            device = _DeviceCode(
                code=issued(secrets.token_hex(16)),
                user_code=f"{secrets.randbelow(1_000_000):06d}",
                expires_at=self.clock() + self.device_expires_in,
                state="approved" if self.auto_approve else "pending",
            )
            self._devices[device.code] = device
            self._devices_by_user_code[device.user_code] = device
            return json_response(
                200,
                {
                    "status": 200,
                    "code": device.code,
                    "user_code": device.user_code,
                    "verification_uri": self.verification_uri,
                    "expires_in": self.device_expires_in,
                    "interval": "5",  # a string in the real API
                },
            )
        if grant_type == "device_token":
            return self._device_token(str(params.get("code")))
        return _error(400, "unsupported_grant_type")

    def _device_token(self, code: str) -> Response:
        polled = self._devices.get(code)
        if polled is None or polled.state == "used":
            return _error(400, "invalid_grant")
        if polled.state == "expired" or self.clock() > polled.expires_at:
            polled.state = "expired"
            return _error(400, "code_expired")
        if polled.state == "pending":
            return _error(400, "authorization_pending")
        polled.state = "used"
        return json_response(200, self._new_grant().payload())

    def _oauth_token(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        if self.refresh_on_device_endpoint_only:
            return html_response(404, HTML_404)
        params = request.params()
        if params.get("grant_type") != "refresh_token":
            return _error(400, "unsupported_grant_type")
        return self._refresh(params)

    def _refresh(self, params: Mapping[str, Any]) -> Response:
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return _error(400, "invalid_client")
        old = self._grants_by_refresh.get(str(params.get("refresh_token")))
        stale = (
            old is not None
            and self.refresh_token_ttl is not None
            and self.clock() > old.issued_at + self.refresh_token_ttl
        )
        if old is None or not old.refresh_alive or stale:
            return _error(400, "invalid_refresh_token")
        # rotating, single-use: the old pair dies with this answer
        old.refresh_alive = old.access_alive = False
        return json_response(200, self._new_grant().payload())

    # ------------------------------------------------------------------ API

    def _user(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        return json_response(
            200,
            {
                "status": 200,
                "user": {
                    "username": self.username,
                    "reg_date": 1421907985,
                    "subscription": {"active": True, "end_time": 1798761600, "days": 159.5},
                    "settings": {"show_erotic": False, "show_uncertain": False},
                    "profile": {"name": "", "avatar": ""},
                },
            },
        )

    def _history(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        page = _positive_int(request.query.get("page"), 1)
        perpage = min(_positive_int(request.query.get("perpage"), HISTORY_PERPAGE_DEFAULT), HISTORY_PERPAGE_MAX)
        rows = self._sorted_history()
        chunk = rows[(page - 1) * perpage : page * perpage]
        return json_response(
            200,
            {
                "status": 200,
                "history": [self._render_row(row) for row in chunk],
                "pagination": {
                    "total": self._number(math.ceil(len(rows) / perpage)),
                    "current": self._number(page),
                    "perpage": self._number(perpage),
                    "total_items": self._number(len(rows)),
                },
            },
        )

    def _render_row(self, row: HistoryRow) -> dict[str, Any]:
        item, media = self._media[row.media_id]
        return {
            "time": row.time,
            "counter": row.counter,
            "first_seen": row.first_seen,
            "last_seen": row.last_seen,
            "deleted": row.deleted,
            "item": item.short(),
            "media": {
                "id": media.id,
                "number": media.number,
                "snumber": media.snumber,
                "title": media.title,
                "duration": media.duration,
                "thumbnail": f"https://cdn.example.com/thumb/{media.id}/480x270.jpg",
            },
        }

    def _watching(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        raw = request.query.get("id", "")
        item = self.items.get(int(raw)) if raw.isdigit() else None
        if item is None:
            return _error(404, NOT_FOUND)
        body: dict[str, Any] = {"id": item.id, "title": item.title, "type": item.type}
        if item.videos is not None:
            body["status"] = _aggregate_status(item.videos)
            body["videos"] = [video.watching() for video in item.videos]
        else:
            seasons = item.seasons or []
            body["seasons"] = [
                {
                    "id": season.id,
                    "number": season.number,
                    "watched": season.watched,
                    "status": season.status,
                    "episodes": [episode.watching() for episode in season.episodes],
                }
                for season in seasons
            ]
            body["watched"] = sum(1 for season in seasons if season.status == 1)
        return json_response(200, {"status": 200, "item": body})

    def _item(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        item = self.items.get(int(match["id"]))
        if item is None or not item.in_catalog:
            return _error(404, NOT_FOUND)
        media = item.media()
        body: dict[str, Any] = {
            "id": item.id,
            "type": item.type,
            "subtype": item.subtype,
            "title": item.title,
            "year": item.year,
            "cast": "",
            "director": "",
            "genres": [],
            "countries": [],
            "voice": None,
            "duration": {
                "average": sum(m.duration for m in media) / len(media) if media else 0,
                "total": sum(m.duration for m in media),
            },
            "ac3": 0,
            "langs": 1,
            "quality": 1080,
            "plot": "",
            "tracklist": [],
            "imdb": item.imdb,
            "imdb_rating": None,
            "imdb_votes": None,
            "kinopoisk": item.kinopoisk,
            "kinopoisk_rating": None,
            "kinopoisk_votes": None,
            "rating": 0,
            "rating_votes": 0,
            "rating_percentage": 0,
            "views": 0,
            "comments": 0,
            "posters": _posters(item.id),
            "trailer": None,
            "finished": True,
            "advert": False,
            "poor_quality": False,
            "created_at": 1487027375,
            "updated_at": 1487029825,
            "bookmarks": [],
            "subscribed": False,
            "in_watchlist": False,
        }
        body.update(item.extra)
        if item.videos is not None:
            body["videos"] = [_catalog_media(video) for video in item.videos]
        else:
            body["seasons"] = [
                {
                    "id": season.id,
                    "title": "",
                    "number": season.number,
                    "watching": {"status": season.status},
                    "episodes": [_catalog_media(episode) for episode in season.episodes],
                }
                for season in item.seasons or []
            ]
        return json_response(200, {"status": 200, "item": body})

    def _notify(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        params = request.params()
        self.device_info = {k: str(params.get(k, "")) for k in ("title", "hardware", "software")}
        return json_response(200, {"status": 200})

    def _mutation(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        return json_response(200, {"status": 200})


def _aggregate_status(media: list[KpMedia]) -> int:
    if media and all(m.status == 1 for m in media):
        return 1
    if all(m.status == -1 for m in media):
        return -1
    return 0


def _catalog_media(media: KpMedia) -> dict[str, Any]:
    return {
        "id": media.id,
        "number": media.number,
        "snumber": media.snumber,
        "thumbnail": f"https://cdn.example.com/thumb/{media.id}/480x270.jpg",
        "title": media.title,
        "tracks": 1,
        "duration": media.duration,
        "ac3": 0,
        "audios": [],
        "subtitles": [],
        "files": [],
        "watched": media.status,
        "watching": {"status": media.status, "time": media.time},
    }


def _posters(item_id: int) -> dict[str, str]:
    return {size: f"https://cdn.example.com/poster/item/{size}/{item_id}.jpg" for size in ("small", "medium", "big")}


def _error(status: int, error: str) -> Response:
    return json_response(status, {"status": status, "error": error})


def _positive_int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default
