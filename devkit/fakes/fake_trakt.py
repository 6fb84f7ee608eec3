"""A fake Trakt: one loopback server that plays both ``api.trakt.tv`` and ``auth.trakt.tv``.

It follows what the real Trakt does (``docs/trakt.md``, its 2026 facts first) and the real answers recorded in
``tests/fixtures/trakt/`` (``tests/contract`` checks that its answers have their shapes): Cloudflare's HTML 403
without a User-Agent and its HTML 429 past 500 GETs in 5 minutes, ``trakt-api-key``/``trakt-api-version``
checks, a JSON 403 for every request of a deleted API app, 🔒 endpoints behind a Bearer token, single-use
refresh tokens, ``watched_at`` stored to the minute, **no** dedupe of plays, ``limit`` capped at 250, IMDb
lookups that ignore ``type``, ``/shows/{id}`` by Trakt id, slug or IMDb id, ``extended=full``.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import html
import math
import re
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode

from devkit.fakes.base import (
    Clock,
    FakeServer,
    RecordedRequest,
    Response,
    dumps,
    html_response,
    issued,
    json_response,
)

PlayKind = Literal["movie", "episode"]

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
PAGE_LIMIT_CAP = 250
# (2026) "The GET limit is currently 500 requests per 5 minutes, not 1000" (a Trakt maintainer,
# trakt/trakt-api#909). Past it Cloudflare, not the API, answers: an HTML 429 with Retry-After: 300 and no
# X-Ratelimit header (trakt/trakt-api#922). One budget per user; the fake has one user on one address, so
# every GET counts, public ones included.
GET_LIMIT = 500
GET_WINDOW_SECONDS = 300
CLOUDFLARE_RETRY_AFTER = 300
UNKNOWN_WATCHED_AT = 0  # Trakt shows "unknown" plays at the epoch
_LUCENE_ESCAPE = re.compile(r"\\(.)")

CLOUDFLARE_403 = """<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title></head>
<body><div id="cf-wrapper"><h1>Sorry, you have been blocked</h1>
<h2>You are unable to access trakt.tv</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<p>Cloudflare Ray ID: <strong>8f1c0ffee0000000</strong></p></div></body></html>
"""

CLOUDFLARE_429 = """<!DOCTYPE html>
<html lang="en-US"><head><title>Access denied | api.trakt.tv used Cloudflare to restrict access</title></head>
<body><div id="cf-wrapper"><h1>Error 1015</h1><h2>You are being rate limited</h2>
<p>The owner of this website (api.trakt.tv) has banned you temporarily from accessing this website.</p>
<p>Cloudflare Ray ID: <strong>8f1c0ffee0000001</strong></p></div></body></html>
"""

# What an ``extended=full`` answer carries besides the summary (the recorded answers in tests/fixtures/trakt);
# fixed values: only the shapes matter to a client.
_TRANSLATIONS = ["de", "en", "es", "fr", "ru", "uk"]
_UPDATED_AT = "2026-10-01T12:00:00.000Z"


def parse_iso(value: str) -> float:
    """ISO 8601 → epoch seconds; a value without an offset is UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_ms(ts: float) -> str:
    """Epoch seconds → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (Trakt's timestamp format)."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def minute_floor(ts: float) -> int:
    return int(ts // 60) * 60


def key_minute(ts: float) -> str:
    """The minute part of a dedupe key (docs/ARCHITECTURE.md#dedupe-keys): ``YYYY-MM-DDTHH:MMZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


@dataclass
class TraktMovie:
    trakt: int
    title: str
    year: int | None
    imdb: str | None
    slug: str
    tmdb: int
    runtime: int = 120
    # Translations and aliases: Trakt's text search matches them too, while the hit shows ``title``.
    aliases: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "year": self.year,
            "ids": {"trakt": self.trakt, "slug": self.slug, "imdb": self.imdb, "tmdb": self.tmdb},
        }

    def full(self) -> dict[str, Any]:
        """``extended=full``: the fields the recorded answer holds (tests/fixtures/trakt)."""
        return {
            **self.summary(),
            "tagline": f"{self.title}.",
            "overview": f"The story of {self.title}.",
            "released": f"{self.year or 1970}-05-04",
            "runtime": self.runtime,
            "trailer": f"https://youtube.com/watch?v={self.slug}",
            "homepage": f"https://example.com/{self.slug}",
            "rating": 7.5,
            "votes": 1000,
            "updated_at": _UPDATED_AT,
            "language": "en",
            "available_translations": _TRANSLATIONS,
            "genres": ["drama"],
            "certification": "PG-13",
        }


@dataclass
class TraktEpisode:
    trakt: int
    show: int
    season: int
    number: int
    title: str
    tvdb: int
    tmdb: int
    # Trakt has no IMDb id for many episodes (specials above all): null. Ids also carry the long-dead TVRage
    # id, as the recorded answers do (0 or null when unknown).
    imdb: str | None = None
    first_aired: float | None = None
    runtime: int | None = None
    number_abs: int | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "season": self.season,
            "number": self.number,
            "title": self.title,
            "ids": {"trakt": self.trakt, "tvdb": self.tvdb, "imdb": self.imdb, "tmdb": self.tmdb, "tvrage": 0},
        }

    def full(self) -> dict[str, Any]:
        """``extended=full``: the recorded fields, plus those the 2026 contract added (``episode_type``,
        ``comment_count``, ``original_title``)."""
        return {
            **self.summary(),
            "number_abs": self.number_abs,
            "overview": f"{self.title}: what happens.",
            "first_aired": None if self.first_aired is None else iso_ms(self.first_aired),
            "updated_at": _UPDATED_AT,
            "rating": 8.0,
            "votes": 100,
            "comment_count": 0,
            "available_translations": _TRANSLATIONS,
            "runtime": self.runtime,
            "episode_type": "season_premiere" if self.number == 1 else "standard",
            "original_title": self.title,
        }

    def render(self, *, full: bool) -> dict[str, Any]:
        return self.full() if full else self.summary()


@dataclass
class TraktShow:
    trakt: int
    title: str
    year: int | None
    imdb: str | None
    slug: str
    tmdb: int
    tvdb: int
    runtime: int = 45
    tvrage: int | None = None
    seasons: dict[int, list[TraktEpisode]] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "year": self.year,
            "ids": {
                "trakt": self.trakt,
                "slug": self.slug,
                "tvdb": self.tvdb,
                "imdb": self.imdb,
                "tmdb": self.tmdb,
                "tvrage": self.tvrage,
            },
        }

    def full(self) -> dict[str, Any]:
        """``extended=full``: the fields the recorded answer holds (tests/fixtures/trakt)."""
        aired = [e.first_aired for episodes in self.seasons.values() for e in episodes if e.first_aired is not None]
        return {
            **self.summary(),
            "overview": f"The story of {self.title}.",
            "first_aired": iso_ms(min(aired)) if aired else None,
            "airs": {"day": "Sunday", "time": "21:00", "timezone": "America/New_York"},
            "runtime": self.runtime,
            "certification": "TV-MA",
            "network": "HBO",
            "country": "us",
            "trailer": f"https://youtube.com/watch?v={self.slug}",
            "homepage": f"https://example.com/{self.slug}",
            "status": "ended",
            "rating": 8.5,
            "votes": 5000,
            "updated_at": _UPDATED_AT,
            "language": "en",
            "available_translations": _TRANSLATIONS,
            "genres": ["drama"],
            "aired_episodes": sum(len(episodes) for number, episodes in self.seasons.items() if number > 0),
        }

    def season_summary(self, number: int, *, with_episodes: bool, full: bool = False) -> dict[str, Any]:
        episodes = self.seasons[number]
        season: dict[str, Any] = {
            "number": number,
            "ids": {
                "trakt": self.trakt * 1000 + number,
                "tvdb": self.tvdb * 100 + number,
                "tmdb": self.tmdb * 100 + number,
                "tvrage": None,
            },
        }
        if full:
            aired = [e.first_aired for e in episodes if e.first_aired is not None]
            season.update(
                {
                    "title": "Specials" if number == 0 else f"Season {number}",
                    "overview": None,
                    "first_aired": iso_ms(min(aired)) if aired else None,
                    "episode_count": len(episodes),
                    "aired_episodes": len(episodes),
                    "rating": 8.0,
                    "votes": 100,
                    "network": "HBO",
                    "updated_at": _UPDATED_AT,
                }
            )
        if with_episodes:
            season["episodes"] = [episode.render(full=full) for episode in episodes]
        return season


@dataclass
class Play:
    id: int
    kind: PlayKind
    trakt_id: int  # movie id or episode id
    minute: int  # epoch seconds, truncated to the minute
    unknown: bool
    action: str


@dataclass
class _Grant:
    access_token: str
    refresh_token: str
    created_at: int
    expires_at: float
    access_alive: bool = True
    refresh_alive: bool = True

    def payload(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": round(self.expires_at - self.created_at),
            "refresh_token": self.refresh_token,
            "scope": "public",
            "created_at": self.created_at,
        }


@dataclass
class _DeviceCode:
    device_code: str
    user_code: str
    expires_at: float
    state: Literal["pending", "approved", "denied", "used", "expired"] = "pending"
    last_poll: float | None = None


@dataclass
class _AuthCode:
    code: str
    redirect_uri: str
    challenge: str | None
    expires_at: float
    used: bool = False


class FakeTrakt(FakeServer):
    """Seed a catalog and plays, point TRAKT_API_URL and TRAKT_AUTH_URL at ``start()``'s URL."""

    server_name = "openresty"

    def __init__(
        self,
        *,
        client_id: str = "fake-trakt-client-id",
        client_secret: str = "fake-trakt-client-secret",  # noqa: S107 - a fake's fixed test value
        clock: Clock = time.time,
        access_token_ttl: float = 7 * 24 * 3600,
        username: str = "kinotrakt-demo",
        device_interval: int = 5,
        device_expires_in: int = 600,
        verification_url: str = "https://trakt.tv/activate",
        auto_approve: bool = False,
        enforce_limits: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        self.client_id = client_id
        self.client_secret = issued(client_secret)
        self.access_token_ttl = access_token_ttl
        self.username = username
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.verification_url = verification_url
        self.auto_approve = auto_approve
        self.enforce_limits = enforce_limits
        self.locked = False
        # Trakt deleted this API app (2026: the apps of non-VIP accounts): every request with its client id,
        # public ones and OAuth included, gets a JSON 403.
        self.app_deleted = False
        # Plays Trakt refuses to take: a write naming one of these fails validation whole (422), nothing applied.
        self.refused_plays: set[tuple[PlayKind, int]] = set()

        self.movies: dict[int, TraktMovie] = {}
        self.shows: dict[int, TraktShow] = {}
        self.episodes: dict[int, TraktEpisode] = {}
        self._movie_by_imdb: dict[str, TraktMovie] = {}
        self._show_by_imdb: dict[str, TraktShow] = {}
        self._movie_by_slug: dict[str, TraktMovie] = {}
        self._show_by_slug: dict[str, TraktShow] = {}
        self._episode_by_imdb: dict[str, TraktEpisode] = {}

        self._plays: dict[int, Play] = {}
        self._timeline: dict[PlayKind, list[tuple[int, int]]] = {"movie": [], "episode": []}
        self._plays_by_item: dict[tuple[PlayKind, int], list[int]] = {}
        self._next_play_id = 1
        created = iso_ms(clock())
        self._activity: dict[str, str] = {"all": created, "movies": created, "episodes": created}

        self._grants_by_access: dict[str, _Grant] = {}
        self._grants_by_refresh: dict[str, _Grant] = {}
        self._devices: dict[str, _DeviceCode] = {}
        self._devices_by_user_code: dict[str, _DeviceCode] = {}
        self._auth_codes: dict[str, _AuthCode] = {}
        self._last_write: float | None = None
        self._recent_gets: deque[float] = deque()

        self._register_routes()

    # ------------------------------------------------------------------ seeding

    def add_movie(
        self,
        trakt_id: int,
        title: str,
        year: int | None,
        imdb: str | None,
        slug: str | None = None,
        *,
        tmdb: int | None = None,
        aliases: tuple[str, ...] = (),
    ) -> TraktMovie:
        """``aliases``: other titles the text search matches (translations, e.g. the Russian one)."""
        with self.lock:
            movie = TraktMovie(
                trakt=trakt_id,
                title=title,
                year=year,
                imdb=imdb,
                slug=slug or self._free_slug(title, year, self._movie_by_slug),
                tmdb=tmdb if tmdb is not None else 500_000 + trakt_id,
                aliases=aliases,
            )
            self.movies[trakt_id] = movie
            self._movie_by_slug[movie.slug] = movie
            if imdb:
                self._movie_by_imdb[imdb] = movie
            return movie

    def add_show(
        self,
        trakt_id: int,
        title: str,
        year: int | None,
        imdb: str | None,
        seasons: Mapping[int, int | list[str]],
        *,
        slug: str | None = None,
        tmdb: int | None = None,
        tvdb: int | None = None,
        episode_imdb: Mapping[tuple[int, int], str] | None = None,
        runtime: int = 45,
        tvrage: int | None = None,
        aliases: tuple[str, ...] = (),
    ) -> TraktShow:
        """``seasons`` maps a season number (0 = specials) to an episode count or to the episode titles.

        Episodes have no IMDb id (``null``, as Trakt answers for many) unless ``episode_imdb`` maps their
        (season, number) to one. Season N's episodes aired weekly from January 1st of ``year + N - 1``
        (specials from the show's first year); a show without a year has no air dates."""
        with self.lock:
            show = TraktShow(
                trakt=trakt_id,
                title=title,
                year=year,
                imdb=imdb,
                slug=slug or self._free_slug(title, year, self._show_by_slug),
                tmdb=tmdb if tmdb is not None else 600_000 + trakt_id,
                tvdb=tvdb if tvdb is not None else 700_000 + trakt_id,
                runtime=runtime,
                tvrage=tvrage,
                aliases=aliases,
            )
            absolute = 0
            for number in sorted(seasons):
                spec = seasons[number]
                titles = [f"Episode {n}" for n in range(1, spec + 1)] if isinstance(spec, int) else spec
                premiere = None if year is None else parse_iso(f"{year + max(0, number - 1)}-01-01T01:00:00Z")
                episodes = []
                for index, episode_title in enumerate(titles, start=1):
                    episode_id = self.episode_id(trakt_id, number, index)
                    if number > 0:
                        absolute += 1
                    episode = TraktEpisode(
                        trakt=episode_id,
                        show=trakt_id,
                        season=number,
                        number=index,
                        title=episode_title,
                        tvdb=episode_id + 1,
                        tmdb=episode_id + 2,
                        imdb=(episode_imdb or {}).get((number, index)),
                        first_aired=None if premiere is None else premiere + (index - 1) * 7 * 86400,
                        runtime=runtime,
                        number_abs=absolute if number > 0 else None,
                    )
                    episodes.append(episode)
                    self.episodes[episode_id] = episode
                    if episode.imdb:
                        self._episode_by_imdb[episode.imdb] = episode
                show.seasons[number] = episodes
            self.shows[trakt_id] = show
            self._show_by_slug[show.slug] = show
            if imdb:
                self._show_by_imdb[imdb] = show
            return show

    def set_episode(
        self,
        show_id: int,
        season: int,
        number: int,
        *,
        title: str | None = None,
        runtime: int | None = None,
        first_aired: str | None = None,
    ) -> TraktEpisode:
        """Change one episode's details (what ``extended=full`` shows); None leaves a field as it is."""
        with self.lock:
            episode = self.episodes[self.episode_id(show_id, season, number)]
            if title is not None:
                episode.title = title
            if runtime is not None:
                episode.runtime = runtime
            if first_aired is not None:
                episode.first_aired = parse_iso(first_aired)
            return episode

    @staticmethod
    def episode_id(show_id: int, season: int, number: int) -> int:
        """The Trakt id the fake gives an episode: ``show_id * 10000 + season * 100 + number``, unique because
        seasons and episode numbers stay under 100 (a bigger one is refused rather than silently colliding)."""
        if not (0 <= season < 100 and 0 < number < 100):
            raise ValueError(f"the fake numbers episodes S0-S99, E1-E99; got S{season}E{number}")
        return show_id * 10_000 + season * 100 + number

    def add_play(self, kind: PlayKind, trakt_id: int, watched_at: str, action: str = "watch") -> int:
        """Another app's play (or an earlier sync's). ``watched_at``: ISO 8601 or ``"unknown"``."""
        return self.add_plays([(kind, trakt_id, watched_at)], action=action)[0]

    def add_plays(self, plays: Iterable[tuple[PlayKind, int, str]], action: str = "watch") -> list[int]:
        """Bulk ``add_play`` (one sort for the lot): for benchmarks."""
        with self.lock:
            ids: list[int] = []
            for kind, trakt_id, watched_at in plays:
                catalog: Mapping[int, object] = self.movies if kind == "movie" else self.episodes
                if trakt_id not in catalog:
                    raise KeyError(f"no {kind} with trakt id {trakt_id} in the fake catalog")
                unknown = watched_at == "unknown"
                minute = UNKNOWN_WATCHED_AT if unknown else minute_floor(parse_iso(watched_at))
                ids.append(self._store_play(kind, trakt_id, minute, unknown, action, keep_sorted=False))
            for timeline in self._timeline.values():
                timeline.sort()
            if ids:
                self._touch_activity({self._play_kind_of(pid) for pid in ids})
            return ids

    def remove_play(self, history_id: int) -> None:
        """The user removed one play on trakt.tv."""
        with self.lock:
            removed = self._remove_play(history_id)
            self._touch_activity({removed.kind})

    def issue_tokens(self, access_ttl: float | None = None) -> dict[str, Any]:
        """A valid token pair, as ``POST /oauth/token`` would return it."""
        with self.lock:
            return self._new_grant(access_ttl).payload()

    def expire_access_token(self, token: str) -> None:
        with self.lock:
            self._grants_by_access[token].expires_at = self.clock() - 1

    def revoke(self, token: str) -> None:
        """Kill an access or refresh token together with the other half of its pair."""
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

    def deny_device(self, user_code: str) -> None:
        with self.lock:
            self._devices_by_user_code[user_code].state = "denied"

    def expire_device(self, user_code: str) -> None:
        with self.lock:
            self._devices_by_user_code[user_code].state = "expired"

    @property
    def pending_user_codes(self) -> list[str]:
        with self.lock:
            return [d.user_code for d in self._devices.values() if d.state == "pending"]

    # ------------------------------------------------------------------ assertions

    def plays(self, kind: PlayKind | None = None) -> list[dict[str, Any]]:
        """Every play as ``GET /sync/history`` renders it, newest first."""
        with self.lock:
            ordered = sorted(self._plays.values(), key=lambda p: (p.minute, p.id), reverse=True)
            return [self._render_play(p) for p in ordered if kind is None or p.kind == kind]

    def play_keys(self) -> list[str]:
        """The dedupe key of every play (docs/ARCHITECTURE.md#dedupe-keys; a key repeats when a play is duplicated)."""
        with self.lock:
            return [self._play_key(p) for p in sorted(self._plays.values(), key=lambda p: p.id)]

    def duplicate_keys(self) -> list[str]:
        counts = Counter(self.play_keys())
        return sorted(key for key, count in counts.items() if count > 1)

    # ------------------------------------------------------------------ internals: catalog and plays

    @staticmethod
    def _free_slug(title: str, year: int | None, taken: Mapping[str, object]) -> str:
        slug = slugify(title)
        if slug in taken and year is not None:
            slug = f"{slug}-{year}"
        suffix = 2
        base = slug
        while slug in taken:
            slug = f"{base}-{suffix}"
            suffix += 1
        return slug

    def _play_kind_of(self, play_id: int) -> PlayKind:
        return self._plays[play_id].kind

    def _store_play(
        self, kind: PlayKind, trakt_id: int, minute: int, unknown: bool, action: str, *, keep_sorted: bool
    ) -> int:
        play = Play(self._next_play_id, kind, trakt_id, minute, unknown, action)
        self._next_play_id += 1
        self._plays[play.id] = play
        entry = (play.minute, play.id)
        if keep_sorted:
            bisect.insort(self._timeline[kind], entry)
        else:
            self._timeline[kind].append(entry)
        self._plays_by_item.setdefault((kind, trakt_id), []).append(play.id)
        return play.id

    def _remove_play(self, play_id: int) -> Play:
        play = self._plays.pop(play_id)
        timeline = self._timeline[play.kind]
        index = bisect.bisect_left(timeline, (play.minute, play.id))
        del timeline[index]
        self._plays_by_item[(play.kind, play.trakt_id)].remove(play.id)
        return play

    def _touch_activity(self, kinds: Iterable[PlayKind]) -> None:
        """Bump ``last_activities`` strictly forward (a virtual clock may not move between two writes)."""
        now = self.clock()
        for kind in kinds:
            name = "movies" if kind == "movie" else "episodes"
            self._activity[name] = self._later_than(self._activity[name], now)
        self._activity["all"] = self._later_than(self._activity["all"], now)

    @staticmethod
    def _later_than(previous: str, now: float) -> str:
        before = parse_iso(previous)
        return iso_ms(now if now >= before + 0.001 else before + 0.001)

    def _play_key(self, play: Play) -> str:
        minute = "unknown" if play.unknown else key_minute(play.minute)
        if play.kind == "episode":
            return f"episode:{play.trakt_id}:{minute}"
        imdb = self.movies[play.trakt_id].imdb
        return f"movie:{imdb}:{minute}" if imdb else f"movie:trakt:{play.trakt_id}:{minute}"

    def _render_play(self, play: Play) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "id": play.id,
            "watched_at": iso_ms(play.minute),
            "action": play.action,
            "type": play.kind,
        }
        if play.kind == "movie":
            rendered["movie"] = self.movies[play.trakt_id].summary()
        else:
            episode = self.episodes[play.trakt_id]
            rendered["episode"] = episode.summary()
            rendered["show"] = self.shows[episode.show].summary()
        return rendered

    def _find_movie(self, ids: Any) -> TraktMovie | None:
        if not isinstance(ids, dict):
            return None
        if isinstance(ids.get("trakt"), int) and ids["trakt"] in self.movies:
            return self.movies[ids["trakt"]]
        if ids.get("imdb") in self._movie_by_imdb:
            return self._movie_by_imdb[ids["imdb"]]
        if ids.get("slug") in self._movie_by_slug:
            return self._movie_by_slug[ids["slug"]]
        if ids.get("tmdb") is not None:
            return next((m for m in self.movies.values() if m.tmdb == ids["tmdb"]), None)
        return None

    def _find_show(self, ids: Any) -> TraktShow | None:
        if not isinstance(ids, dict):
            return None
        if isinstance(ids.get("trakt"), int) and ids["trakt"] in self.shows:
            return self.shows[ids["trakt"]]
        if ids.get("imdb") in self._show_by_imdb:
            return self._show_by_imdb[ids["imdb"]]
        if ids.get("slug") in self._show_by_slug:
            return self._show_by_slug[ids["slug"]]
        for name in ("tvdb", "tmdb"):
            if ids.get(name) is not None:
                return next((s for s in self.shows.values() if getattr(s, name) == ids[name]), None)
        return None

    def _find_episode(self, ids: Any) -> TraktEpisode | None:
        if not isinstance(ids, dict):
            return None
        if isinstance(ids.get("trakt"), int):
            return self.episodes.get(ids["trakt"])
        for name in ("tvdb", "tmdb"):
            if ids.get(name) is not None:
                return next((e for e in self.episodes.values() if getattr(e, name) == ids[name]), None)
        return None

    def _show_by_ref(self, ref: str) -> TraktShow | None:
        """``/shows/{id}``: a Trakt id, a slug or an IMDb id."""
        if ref.isdigit():
            return self.shows.get(int(ref))
        return self._show_by_slug.get(ref) or self._show_by_imdb.get(ref)

    def _movie_by_ref(self, ref: str) -> TraktMovie | None:
        if ref.isdigit():
            return self.movies.get(int(ref))
        return self._movie_by_slug.get(ref) or self._movie_by_imdb.get(ref)

    # ------------------------------------------------------------------ internals: tokens

    def _new_grant(self, access_ttl: float | None = None) -> _Grant:
        now = self.clock()
        grant = _Grant(
            access_token=issued(secrets.token_hex(32)),
            refresh_token=issued(secrets.token_hex(32)),
            created_at=int(now),
            expires_at=int(now) + (self.access_token_ttl if access_ttl is None else access_ttl),
        )
        self._grants_by_access[grant.access_token] = grant
        self._grants_by_refresh[grant.refresh_token] = grant
        return grant

    def _bearer_ok(self, request: RecordedRequest) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and self.token_is_valid(token.strip())

    def _client_ok(self, params: Mapping[str, Any]) -> bool:
        return params.get("client_id") == self.client_id and params.get("client_secret") == self.client_secret

    # ------------------------------------------------------------------ header rules and limits

    def precheck(self, request: RecordedRequest) -> Response | None:  # noqa: PLR0911 - one return per rule
        if request.method == "GET" and request.path == "/oauth/authorize":
            if self.app_deleted:
                return html_response(400, "<html><body><h1>The client is not authorized</h1></body></html>")
            return None  # a browser page
        if not request.headers.get("user-agent"):
            return html_response(403, CLOUDFLARE_403, {"server": "cloudflare", "cf-ray": "8f1c0ffee0000000-FRA"})
        if self.app_deleted and self.client_id in (
            request.headers.get("trakt-api-key"),
            request.params().get("client_id"),
        ):
            return json_response(403, {"error": "forbidden", "error_description": "Invalid API key or unapproved app"})
        if request.headers.get("trakt-api-key") != self.client_id:
            return json_response(403, {"error": "invalid api key", "error_description": "API key is invalid"})
        if request.headers.get("trakt-api-version") != "2":
            return json_response(400, {"error": "bad request", "error_description": "trakt-api-version 2"})
        protected = request.path.startswith(("/sync", "/users"))
        if protected:
            if not self._bearer_ok(request):
                return json_response(
                    401,
                    {"error": "invalid_token", "error_description": "The access token is invalid or expired"},
                    {"WWW-Authenticate": 'Bearer realm="trakt", error="invalid_token"'},
                )
            if self.locked:
                return json_response(423, {"error": "locked", "error_description": "Locked User Account"})
            if request.method in WRITE_METHODS and "application/json" not in request.headers.get("content-type", ""):
                return json_response(412, {"error": "precondition failed", "error_description": "use JSON"})
        if self.enforce_limits:
            return self._rate_limit(request, protected)
        return None

    def _rate_limit(self, request: RecordedRequest, protected: bool) -> Response | None:
        now = self.clock()
        if request.method in WRITE_METHODS and protected:
            if self._last_write is not None and now - self._last_write < 1.0:
                return self._too_many("AUTHED_API_POST_LIMIT", 1, 1, self._last_write + 1.0, now)
            self._last_write = now
        elif request.method == "GET":
            window = self._recent_gets
            while window and window[0] <= now - GET_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= GET_LIMIT:
                return _cloudflare_rate_limited()
            window.append(now)
        return None

    @staticmethod
    def _too_many(name: str, period: int, limit: int, until: float, now: float) -> Response:
        """The API's own 429 (writes): JSON, ``Retry-After`` and the ``X-Ratelimit`` JSON header."""
        ratelimit = {"name": name, "period": period, "limit": limit, "remaining": 0, "until": iso_ms(until)}
        return json_response(
            429,
            {"error": "rate limit exceeded"},
            {"Retry-After": str(max(1, math.ceil(until - now))), "X-Ratelimit": dumps(ratelimit).decode()},
        )

    # ------------------------------------------------------------------ routes

    def _register_routes(self) -> None:
        self.route("GET", r"/oauth/authorize", self._authorize)
        self.route("POST", r"/oauth/device/code", self._device_code)
        self.route("POST", r"/oauth/device/token", self._device_token)
        self.route("POST", r"/oauth/token", self._token)
        self.route("POST", r"/oauth/revoke", self._revoke)
        self.route("GET", r"/users/settings", self._settings)
        self.route("GET", r"/search/(?P<id_type>imdb|trakt|tmdb|tvdb)/(?P<id>[^/]+)", self._search_id)
        self.route("GET", r"/search/(?P<types>[a-z,]+)", self._search_text)
        self.route("GET", r"/movies/(?P<id>[^/]+)", self._movie_summary)
        self.route("GET", r"/shows/(?P<id>[^/]+)", self._show_summary)
        self.route("GET", r"/shows/(?P<id>[^/]+)/seasons", self._seasons)
        self.route("GET", r"/shows/(?P<id>[^/]+)/seasons/(?P<season>\d+)", self._season)
        self.route("GET", r"/shows/(?P<id>[^/]+)/seasons/(?P<season>\d+)/episodes/(?P<episode>\d+)", self._episode)
        self.route("POST", r"/sync/history", self._add_history)
        self.route("POST", r"/sync/history/remove", self._remove_history)
        self.route("GET", r"/sync/history(?:/(?P<type>movies|episodes|shows)(?:/(?P<id>[^/]+))?)?", self._history)
        self.route("GET", r"/sync/last_activities", self._last_activities)

    # OAuth: authorization code + PKCE

    def _authorize(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type") != "code" or query.get("client_id") != self.client_id or not redirect_uri:
            return html_response(400, "<html><body><h1>The client is not authorized</h1></body></html>")
        challenge = query.get("code_challenge")
        if challenge is not None and query.get("code_challenge_method", "plain") != "S256":
            return html_response(400, "<html><body><h1>Unsupported code_challenge_method</h1></body></html>")
        code = issued(secrets.token_hex(16))
        self._auth_codes[code] = _AuthCode(code, redirect_uri, challenge, self.clock() + 600)
        state = query.get("state")
        approve = _with_query(redirect_uri, {"code": code, "state": state})
        deny = _with_query(redirect_uri, {"error": "access_denied", "state": state})
        if self.auto_approve:
            return html_response(302, "", {"Location": approve})
        page = f"""<!DOCTYPE html>
<html><head><title>Authorize kinotrakt | Trakt</title></head>
<body><h1>Authorize kinotrakt to use your Trakt account {html.escape(self.username)}?</h1>
<a id="approve" class="btn" href="{html.escape(approve)}">Approve</a>
<a id="deny" class="btn" href="{html.escape(deny)}">Deny</a>
</body></html>
"""
        return html_response(200, page)

    def _token(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        params = request.params()
        if not self._client_ok(params):
            return json_response(401, {"error": "invalid_client", "error_description": "Client auth failed"})
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(params)
        if grant_type == "refresh_token":
            old = self._grants_by_refresh.get(str(params.get("refresh_token")))
            if old is None or not old.refresh_alive:
                return _invalid_grant("The refresh token is invalid, expired, revoked or already used")
            # single-use refresh tokens (2026): the pair is replaced, the old access token dies too
            old.refresh_alive = old.access_alive = False
            return json_response(200, self._new_grant().payload())
        return json_response(400, {"error": "unsupported_grant_type"})

    def _exchange_code(self, params: Mapping[str, Any]) -> Response:
        record = self._auth_codes.get(str(params.get("code")))
        if record is None or record.used or self.clock() > record.expires_at:
            return _invalid_grant("The authorization code is invalid, expired or already used")
        record.used = True
        if params.get("redirect_uri") != record.redirect_uri:
            return _invalid_grant("The redirect_uri does not match the authorization request")
        if record.challenge is not None:
            verifier = params.get("code_verifier")
            if not isinstance(verifier, str) or pkce_s256(verifier) != record.challenge:
                return _invalid_grant("The code_verifier does not match the code_challenge")
        return json_response(200, self._new_grant().payload())

    def _revoke(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        params = request.params()
        if not self._client_ok(params):
            return json_response(401, {"error": "invalid_client"})
        self.revoke(str(params.get("token")))
        return json_response(200, {})

    # OAuth: device flow

    def _device_code(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        if request.params().get("client_id") != self.client_id:
            return json_response(401, {"error": "invalid_client"})
        device = _DeviceCode(
            device_code=issued(secrets.token_hex(32)),
            user_code=secrets.token_hex(4).upper(),
            expires_at=self.clock() + self.device_expires_in,
            state="approved" if self.auto_approve else "pending",
        )
        self._devices[device.device_code] = device
        self._devices_by_user_code[device.user_code] = device
        return json_response(
            200,
            {
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_url": self.verification_url,
                "expires_in": self.device_expires_in,
                "interval": self.device_interval,
            },
        )

    def _device_token(self, request: RecordedRequest, match: re.Match[str]) -> Response:  # noqa: PLR0911
        params = request.params()
        device = self._devices.get(str(params.get("code")))
        if device is None:
            return Response(404)
        if not self._client_ok(params):
            # A wrong client secret: 400 with a JSON error (RFC 6749 §5.2), unlike "pending", which has no body.
            return json_response(400, {"error": "invalid_client", "error_description": "Client authentication failed"})
        now = self.clock()
        polled_too_fast = device.last_poll is not None and now - device.last_poll < self.device_interval
        device.last_poll = now
        if device.state == "used":
            return Response(409)
        if device.state == "expired" or now > device.expires_at:
            device.state = "expired"
            return Response(410)
        if device.state == "denied":
            return Response(418)
        if polled_too_fast:
            return Response(429)
        if device.state == "pending":
            return Response(400, content_type="text/html")  # Trakt's pending answer has no JSON body
        device.state = "used"
        return json_response(200, self._new_grant().payload())

    # users, search, catalog

    def _settings(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        return json_response(
            200,
            {
                "user": {
                    "username": self.username,
                    "private": False,
                    "name": self.username.replace("-", " ").title(),
                    "vip": True,
                    "vip_ep": False,
                    "ids": {"slug": self.username, "uuid": hashlib.md5(self.username.encode()).hexdigest()},  # noqa: S324
                    "joined_at": "2015-01-22T06:26:25.000Z",
                    "location": "",
                    "about": "",
                    "gender": "",
                    "age": None,
                },
                "account": {"timezone": "Europe/Moscow", "date_format": "dmy", "time_24hr": True},
                "connections": {"facebook": False, "twitter": False, "google": False, "tumblr": False},
                "sharing_text": {"watching": "I'm watching [item]", "watched": "I just watched [item]"},
                "limits": {"list": {"count": 2, "item_count": 100}, "watchlist": {"item_count": 100}},
            },
        )

    def _search_id(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        id_type, ref = match["id_type"], match["id"]
        full = _full(request)
        if id_type == "imdb":
            # (2026) an IMDb lookup ignores `type` and is not paginated: whatever has that IMDb id comes back,
            # movie, show or episode; an id lookup has no score (the recorded answers say null).
            results: list[dict[str, Any]] = []
            movie, show, episode = (
                self._movie_by_imdb.get(ref),
                self._show_by_imdb.get(ref),
                self._episode_by_imdb.get(ref),
            )
            if movie is not None:
                results.append({"type": "movie", "score": None, "movie": movie.full() if full else movie.summary()})
            if show is not None:
                results.append({"type": "show", "score": None, "show": show.full() if full else show.summary()})
            if episode is not None:
                parent = self.shows[episode.show]
                results.append(
                    {"type": "episode", "score": None, "episode": episode.render(full=full), "show": parent.summary()}
                )
            return json_response(200, results)
        types = _types(request.query.get("type"))
        rows: list[dict[str, Any]] = []
        if "movie" in types:
            movies = [m for m in self.movies.values() if str(getattr(m, id_type, None)) == ref]
            rows += [{"type": "movie", "score": None, "movie": m.full() if full else m.summary()} for m in movies]
        if "show" in types:
            shows = [s for s in self.shows.values() if str(getattr(s, id_type, None)) == ref]
            rows += [{"type": "show", "score": None, "show": s.full() if full else s.summary()} for s in shows]
        return self._paginated(request, rows)

    def _search_text(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        types = _types(match["types"])
        if not types:
            return json_response(404, {"error": "not found"})
        query = _LUCENE_ESCAPE.sub(r"\1", request.query.get("query", "")).strip().casefold()
        years = _year_range(request.query.get("years"))
        scored: list[tuple[float, str, int, dict[str, Any]]] = []
        candidates: list[tuple[str, TraktMovie | TraktShow]] = []
        if "movie" in types:
            candidates += [("movie", m) for m in self.movies.values()]
        if "show" in types:
            candidates += [("show", s) for s in self.shows.values()]
        for kind, entry in candidates:
            names = [entry.title.casefold(), *(alias.casefold() for alias in entry.aliases)]
            matched = next((name for name in names if query and query in name), None)
            if matched is None:
                continue
            if years is not None and (entry.year is None or not years[0] <= entry.year <= years[1]):
                continue
            score = 1000.0 if matched == query else 500.0 * len(query) / len(matched)
            media = entry.full() if _full(request) else entry.summary()
            scored.append((-score, kind, entry.trakt, {"type": kind, "score": score, kind: media}))
        scored.sort(key=lambda row: (row[0], row[1], row[2]))
        return self._paginated(request, [row[3] for row in scored])

    def _movie_summary(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        movie = self._movie_by_ref(match["id"])
        if movie is None:
            return _not_found()
        return json_response(200, movie.full() if _full(request) else movie.summary())

    def _show_summary(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        show = self._show_by_ref(match["id"])
        if show is None:
            return _not_found()
        return json_response(200, show.full() if _full(request) else show.summary())

    def _seasons(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        """``extended=episodes`` adds each season's episodes, ``full`` their details (``full,episodes``: both)."""
        show = self._show_by_ref(match["id"])
        if show is None:
            return _not_found()
        extended = _extended(request)
        seasons = [
            show.season_summary(n, with_episodes="episodes" in extended, full="full" in extended)
            for n in sorted(show.seasons)
        ]
        return json_response(200, seasons)

    def _season(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        show = self._show_by_ref(match["id"])
        season = int(match["season"])
        if show is None or season not in show.seasons:
            return _not_found()
        full = _full(request)
        return json_response(200, [episode.render(full=full) for episode in show.seasons[season]])

    def _episode(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        show = self._show_by_ref(match["id"])
        season, number = int(match["season"]), int(match["episode"])
        if show is None or season not in show.seasons or not 0 < number <= len(show.seasons[season]):
            return _not_found()
        return json_response(200, show.seasons[season][number - 1].render(full=_full(request)))

    # history

    def _add_history(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        body = request.json
        if not isinstance(body, dict):
            return json_response(400, {"error": "bad request", "error_description": "JSON object expected"})
        now = self.clock()
        pending: list[tuple[PlayKind, int, int, bool]] = []
        not_found: dict[str, list[Any]] = {"movies": [], "shows": [], "seasons": [], "episodes": []}
        try:
            for item in _list(body.get("movies")):
                movie = self._find_movie(item.get("ids") if isinstance(item, dict) else None)
                if movie is None:
                    not_found["movies"].append(item)
                    continue
                pending.append(("movie", movie.trakt, *_when(item.get("watched_at"), now, movie.year)))
            for item in _list(body.get("episodes")):
                episode = self._find_episode(item.get("ids") if isinstance(item, dict) else None)
                if episode is None:
                    not_found["episodes"].append(item)
                    continue
                year = self.shows[episode.show].year
                pending.append(("episode", episode.trakt, *_when(item.get("watched_at"), now, year)))
            for item in _list(body.get("shows")):
                pending += self._show_plays(item, now, not_found)
        except ValueError as exc:
            return json_response(422, {"error": "validation failed", "error_description": str(exc)})
        refused = [f"{kind} {trakt_id}" for kind, trakt_id, *_ in pending if (kind, trakt_id) in self.refused_plays]
        if refused:
            return json_response(422, {"error": "validation failed", "error_description": ", ".join(refused)})
        for kind, trakt_id, minute, unknown in pending:
            self._store_play(kind, trakt_id, minute, unknown, "watch", keep_sorted=True)
        if pending:
            self._touch_activity({kind for kind, *_ in pending})
        added = {
            "movies": sum(1 for p in pending if p[0] == "movie"),
            "episodes": sum(1 for p in pending if p[0] == "episode"),
        }
        # The 2026 contract (trakt/trakt-api historyResponseSchema) has an undocumented `updated` block next to
        # `added`; the fake never updates a play, so it is always zero here.
        updated = {"movies": 0, "episodes": 0}
        return json_response(201, {"added": added, "updated": updated, "not_found": not_found})

    def _show_plays(
        self, item: Any, now: float, not_found: dict[str, list[Any]]
    ) -> list[tuple[PlayKind, int, int, bool]]:
        """``{"shows": [{"ids", "watched_at"?, "seasons"?: [{"number", "episodes"?: [{"number"}]}]}]}``."""
        show = self._find_show(item.get("ids") if isinstance(item, dict) else None)
        if show is None:
            not_found["shows"].append(item)
            return []
        plays: list[tuple[PlayKind, int, int, bool]] = []
        show_when = item.get("watched_at")
        seasons = item.get("seasons")
        if seasons is None:
            for episodes_of_season in show.seasons.values():
                for episode in episodes_of_season:
                    plays.append(("episode", episode.trakt, *_when(show_when, now, show.year)))
            return plays
        for season in _list(seasons):
            number = season.get("number") if isinstance(season, dict) else None
            if not isinstance(number, int) or number not in show.seasons:
                not_found["seasons"].append(season)
                continue
            season_when = season.get("watched_at", show_when)
            episodes = season.get("episodes")
            if episodes is None:
                for episode in show.seasons[number]:
                    plays.append(("episode", episode.trakt, *_when(season_when, now, show.year)))
                continue
            for wanted in _list(episodes):
                index = wanted.get("number") if isinstance(wanted, dict) else None
                if not isinstance(index, int) or not 0 < index <= len(show.seasons[number]):
                    not_found["episodes"].append(wanted)
                    continue
                episode = show.seasons[number][index - 1]
                plays.append(("episode", episode.trakt, *_when(wanted.get("watched_at", season_when), now, show.year)))
        return plays

    def _remove_history(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        body = request.json
        if not isinstance(body, dict):
            return json_response(400, {"error": "bad request"})
        not_found: dict[str, list[Any]] = {"movies": [], "shows": [], "seasons": [], "episodes": [], "ids": []}
        doomed: list[int] = []
        history_ids = _list(body.get("ids"))
        if any(not isinstance(history_id, int) or isinstance(history_id, bool) for history_id in history_ids):
            # The contract's ids are int64 (trakt/trakt-api historyIdsRequestSchema): anything else fails validation.
            return json_response(422, {"error": "validation failed", "error_description": "ids must be integers"})
        for history_id in history_ids:
            if history_id in self._plays:
                doomed.append(history_id)
            else:
                not_found["ids"].append(history_id)
        for kind, section in (("movie", "movies"), ("episode", "episodes")):
            for item in _list(body.get(section)):
                ids = item.get("ids") if isinstance(item, dict) else None
                found = self._find_movie(ids) if kind == "movie" else self._find_episode(ids)
                if found is None:
                    not_found[section].append(item)
                else:
                    doomed += self._plays_by_item.get((cast(PlayKind, kind), found.trakt), [])
        removed = [self._remove_play(play_id) for play_id in dict.fromkeys(doomed)]
        if removed:
            self._touch_activity({play.kind for play in removed})
        deleted = {
            "movies": sum(1 for p in removed if p.kind == "movie"),
            "episodes": sum(1 for p in removed if p.kind == "episode"),
        }
        return json_response(200, {"deleted": deleted, "not_found": not_found})

    def _history(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        try:
            start = parse_iso(request.query["start_at"]) if request.query.get("start_at") else None
            end = parse_iso(request.query["end_at"]) if request.query.get("end_at") else None
        except ValueError:
            return json_response(400, {"error": "bad request", "error_description": "start_at/end_at"})
        low = -sys.maxsize if start is None else math.ceil(start)
        high = sys.maxsize if end is None else math.floor(end)
        section, ref = match["type"], match["id"]
        page, limit = _page_and_limit(request.query)
        if ref is None and section in ("movies", "episodes"):
            # the hot path: one kind, a date window, one page: bisect, never scan
            timeline = self._timeline["movie" if section == "movies" else "episode"]
            first = bisect.bisect_left(timeline, (low, -sys.maxsize))
            stop = bisect.bisect_right(timeline, (high, sys.maxsize))
            total = max(0, stop - first)
            upper = stop - (page - 1) * limit
            chunk = timeline[max(first, upper - limit) : max(first, upper)][::-1]
            rows = [self._render_play(self._plays[play_id]) for _, play_id in chunk]
            return json_response(200, rows, _pagination_headers(page, limit, total))
        selected = [p for p in self._select_plays(section, ref) if low <= p.minute <= high]
        selected.sort(key=lambda p: (p.minute, p.id), reverse=True)
        rows = [self._render_play(p) for p in selected[(page - 1) * limit : page * limit]]
        return json_response(200, rows, _pagination_headers(page, limit, len(selected)))

    def _select_plays(self, section: str | None, ref: str | None) -> list[Play]:
        if section is None:
            return list(self._plays.values())
        if ref is None:  # shows
            return [p for p in self._plays.values() if p.kind == "episode"]
        if section == "movies":
            movie = self._movie_by_ref(ref)
            keys: list[tuple[PlayKind, int]] = [] if movie is None else [("movie", movie.trakt)]
        elif section == "episodes":
            keys = [("episode", int(ref))] if ref.isdigit() else []
        else:
            show = self._show_by_ref(ref)
            keys = [] if show is None else [("episode", e.trakt) for s in show.seasons.values() for e in s]
        return [self._plays[pid] for key in keys for pid in self._plays_by_item.get(key, [])]

    def _last_activities(self, request: RecordedRequest, match: re.Match[str]) -> Response:
        epoch = "2015-01-22T06:26:25.000Z"
        return json_response(
            200,
            {
                "all": self._activity["all"],
                "movies": {
                    "watched_at": self._activity["movies"],
                    "collected_at": epoch,
                    "rated_at": epoch,
                    "watchlisted_at": epoch,
                    "favorited_at": epoch,
                    "commented_at": epoch,
                    "paused_at": epoch,
                    "hidden_at": epoch,
                },
                "episodes": {
                    "watched_at": self._activity["episodes"],
                    "collected_at": epoch,
                    "rated_at": epoch,
                    "watchlisted_at": epoch,
                    "commented_at": epoch,
                    "paused_at": epoch,
                },
                "shows": {"rated_at": epoch, "watchlisted_at": epoch, "commented_at": epoch, "hidden_at": epoch},
                "seasons": {"rated_at": epoch, "watchlisted_at": epoch, "commented_at": epoch, "hidden_at": epoch},
                "account": {"settings_at": epoch, "followed_at": epoch, "following_at": epoch},
            },
        )

    def _paginated(self, request: RecordedRequest, rows: list[dict[str, Any]]) -> Response:
        page, limit = _page_and_limit(request.query)
        chunk = rows[(page - 1) * limit : page * limit]
        return json_response(200, chunk, _pagination_headers(page, limit, len(rows)))


def pkce_s256(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _invalid_grant(description: str) -> Response:
    return json_response(400, {"error": "invalid_grant", "error_description": description})


def _cloudflare_rate_limited() -> Response:
    """Over the GET budget (2026): Cloudflare's HTML page, ``Retry-After: 300``, no ``X-Ratelimit``."""
    headers = {"server": "cloudflare", "cf-ray": "8f1c0ffee0000001-FRA", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)}
    return html_response(429, CLOUDFLARE_429, headers)


def _not_found() -> Response:
    return json_response(404, {"error": "not found"})


def _with_query(url: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _extended(request: RecordedRequest) -> set[str]:
    return {part.strip() for part in request.query.get("extended", "").split(",")}


def _full(request: RecordedRequest) -> bool:
    return "full" in _extended(request)


def _types(value: str | None) -> set[str]:
    if not value:
        return {"movie", "show"}
    return {part.strip() for part in value.split(",")} & {"movie", "show"}


def _year_range(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    first, _, last = value.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _when(value: Any, now: float, year: int | None) -> tuple[int, bool]:
    """``watched_at`` as Trakt stores it: (epoch minute, unknown?). Missing → now; ``released`` → the year."""
    if value is None:
        return minute_floor(now), False
    if value == "unknown":
        return UNKNOWN_WATCHED_AT, True
    if value == "released":
        return (minute_floor(parse_iso(f"{year}-01-01T00:00:00Z")) if year else UNKNOWN_WATCHED_AT), year is None
    if not isinstance(value, str):
        raise ValueError(f"watched_at must be a string, got {value!r}")
    try:
        return minute_floor(parse_iso(value)), False
    except ValueError as exc:
        raise ValueError(f"watched_at is not ISO 8601: {value!r}") from exc


def _page_and_limit(query: Mapping[str, str]) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        try:
            value = int(query.get(name, default))
        except ValueError:
            return default
        return value if value > 0 else default

    return number("page", 1), min(number("limit", 10), PAGE_LIMIT_CAP)  # the cap is silent (2026)


def _pagination_headers(page: int, limit: int, total: int) -> dict[str, str]:
    return {
        "X-Pagination-Page": str(page),
        "X-Pagination-Limit": str(limit),
        "X-Pagination-Page-Count": str(math.ceil(total / limit)),
        "X-Pagination-Item-Count": str(total),
    }
