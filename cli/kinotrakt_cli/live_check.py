"""``kinotrakt check``: a live, read-only self-check of a deployment against the real Kinopub and Trakt.

With the deployment's own stored tokens it asks each service what a sync asks (Kinopub ``/v1/user``, the first
two ``/v1/history`` pages, one ``/v1/watching``; Trakt ``/users/settings``, one ``/sync/history`` page, one
``/shows/{imdb}/seasons``) and says, for each answer: the HTTP status, whether our models read it, which fields
the models read are missing and which fields nobody expected are there (the raw JSON against the shapes below),
and the rate-limit headers seen. kinotrakt has met the real services only through recordings and fakes written
from their documentation; this is how a user finds out whether the services still answer that way.

It writes nothing anywhere: GETs only (Kinopub's read-only allow-list), no table access, and the secrets are only
read; the one exception is an access token that has already expired, refreshed through the same single-writer
token keeper a sync uses (a refresh token is single-use: the new pair must be stored at once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from pydantic import TypeAdapter, ValidationError
from rich.table import Table
from rich.text import Text

from kinotrakt import wiring
from kinotrakt.clock import iso_z, parse_iso, utc_from_epoch
from kinotrakt.errors import BadResponse, KinotraktError
from kinotrakt.http import Transport, decode_json
from kinotrakt.kinopub.client import body_status, error_reason, send
from kinotrakt.kinopub.models import HistoryPage, WatchingResponse, describe_validation_error, parse_history_page
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.sync.collect import HISTORY_PERPAGE
from kinotrakt.sync.model import SERIES_TYPES
from kinotrakt.trakt.client import raise_for_status, trakt_headers
from kinotrakt.trakt.models import HistoryItem, Season
from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_OK
from kinotrakt_cli.output import plain, when

# When the user's Kinopub history names no show with an IMDb id: Breaking Bad, on Trakt under its IMDb id for
# as long as the API has existed (tests/fixtures/trakt holds its recorded search answer).
WELL_KNOWN_SHOW = "tt0903747"
TRAKT_HISTORY_LIMIT = 10

# --- the shapes the answers should have ------------------------------------------------------------------------
#
# A path names a field in the raw JSON: ``history[].item.imdb`` is ``imdb`` of the ``item`` of any row of
# ``history``; ``[]`` alone is an item of a top-level array. ``needed``: what our models read; one is *missing*
# when the object that should hold it is there without it. ``known``: what the service also sends (its recorded
# answers, the 2026 contract) and the sync ignores; ``x.*`` stands for ``x`` and anything under it. A field in
# neither is *unexpected*: the service's answer has changed.


@dataclass(frozen=True)
class Shape:
    needed: frozenset[str]
    known: frozenset[str] = frozenset()

    def covers(self, path: str) -> bool:
        if path in self.needed or path in self.known:
            return True
        return any(
            path == pattern[:-2] or path.startswith(pattern[:-1]) for pattern in self.known if pattern.endswith(".*")
        )


def _paths(*groups: str) -> frozenset[str]:
    return frozenset(path for group in groups for path in group.split())


TRAKT_SETTINGS = Shape(
    needed=_paths("user user.username"),
    known=_paths("user.* account.* connections.* sharing_text.* limits.* permissions.*"),
)
TRAKT_HISTORY = Shape(
    needed=_paths(
        "[].id [].watched_at [].type",
        "[].movie.ids [].movie.ids.trakt [].movie.ids.imdb",
        "[].episode.ids [].episode.ids.trakt",
    ),
    known=_paths(
        "[].action [].movie [].movie.title [].movie.year [].movie.ids.slug [].movie.ids.tmdb",
        "[].episode [].episode.season [].episode.number [].episode.title",
        "[].episode.ids.tvdb [].episode.ids.imdb [].episode.ids.tmdb [].episode.ids.tvrage [].show.*",
    ),
)
TRAKT_SEASONS = Shape(  # ?extended=full,episodes
    needed=_paths(
        "[].number",
        "[].episodes[].season [].episodes[].number [].episodes[].title [].episodes[].first_aired",
        "[].episodes[].runtime [].episodes[].ids [].episodes[].ids.trakt",
    ),
    known=_paths(
        "[].ids.* [].episodes [].title [].overview [].first_aired [].rating [].votes [].episode_count",
        "[].aired_episodes [].updated_at [].network [].original_title",
        "[].episodes[].ids.* [].episodes[].number_abs [].episodes[].overview [].episodes[].rating",
        "[].episodes[].votes [].episodes[].updated_at [].episodes[].available_translations",
        "[].episodes[].comment_count [].episodes[].episode_type [].episodes[].original_title",
        "[].episodes[].after_credits [].episodes[].during_credits",
    ),
)
KINOPUB_USER = Shape(needed=_paths("status user user.username"), known=_paths("user.*"))
KINOPUB_HISTORY = Shape(
    needed=_paths(
        "status history pagination pagination.total",
        "history[].item history[].item.id history[].item.title history[].item.type history[].item.year",
        "history[].item.imdb history[].media history[].media.id history[].last_seen history[].deleted",
    ),
    known=_paths(
        "pagination.* history[].item.* history[].media.* history[].time history[].counter history[].first_seen"
    ),
)
KINOPUB_WATCHING = Shape(
    needed=_paths(
        "status item item.id item.title item.type",
        "item.videos[].id item.videos[].number item.videos[].title item.videos[].duration",
        "item.videos[].status item.videos[].updated",
        "item.seasons[].number item.seasons[].episodes",
        "item.seasons[].episodes[].id item.seasons[].episodes[].number item.seasons[].episodes[].title",
        "item.seasons[].episodes[].duration item.seasons[].episodes[].status item.seasons[].episodes[].updated",
    ),
    known=_paths(
        "item.videos item.seasons item.status item.watched item.videos[].time",
        "item.seasons[].id item.seasons[].status item.seasons[].watched item.seasons[].episodes[].time",
    ),
)


@dataclass
class _Fields:
    keys: set[str] = field(default_factory=set)  # every field path in the answer
    objects: set[str] = field(default_factory=set)  # paths holding an object ("" is the root)

    def walk(self, value: Any, path: str = "") -> None:
        if isinstance(value, dict):
            self.objects.add(path)
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                self.keys.add(inner)
                self.walk(item, inner)
        elif isinstance(value, list):
            for item in value:
                self.walk(item, f"{path}[]")


def _parent(path: str) -> str:
    head, _, _ = path.rpartition(".")
    return head


def compare(raw: Any, shape: Shape) -> tuple[list[str], list[str]]:
    """(missing, unexpected) field paths of a raw JSON answer against ``shape``; an unexpected object's fields are
    not listed one by one."""
    found = _Fields()
    found.walk(raw)
    missing = sorted(path for path in shape.needed if _parent(path) in found.objects and path not in found.keys)
    strange = sorted(path for path in found.keys if not shape.covers(path))
    unexpected = [
        path for path in strange if not any(path.startswith((f"{other}.", f"{other}[]")) for other in strange)
    ]
    return missing, unexpected


# --- what each request found ------------------------------------------------------------------------------------


@dataclass
class Finding:
    service: Service
    endpoint: str
    status: int | None = None
    parsed: bool | None = None  # None: there was no answer to parse
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    rate_limit: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what failed or drifted, in words
    notes: list[str] = field(default_factory=list)  # what the user should know, nothing wrong
    skipped: bool = False  # nothing to ask (an empty history): not a failure

    @property
    def ok(self) -> bool:
        if self.skipped:
            return True
        return (
            self.status is not None
            and 200 <= self.status < 300
            and self.parsed is True
            and not (self.missing or self.unexpected or self.problems)
        )


@dataclass
class TokenState:
    service: Service
    state: str  # "valid", "expired, refreshed", "not linked", ...
    expires_at: str | None = None
    refreshed: bool = False


_RATE_LIMIT_HEADERS = ("retry-after", "x-ratelimit", "ratelimit")


def _rate_limit_headers(response: requests.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith(_RATE_LIMIT_HEADERS)}


def _describe(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    return str(exc)


@dataclass(frozen=True)
class _Service:
    """How one service answers: the status an answer really has, and what a refusal means to the user."""

    name: Service
    status_of: Callable[[requests.Response, Any], int]
    refusal: Callable[[requests.Response, Any], str]


def _http_status(response: requests.Response, data: Any) -> int:
    return response.status_code


def _kinopub_status(response: requests.Response, data: Any) -> int:
    """Kinopub repeats the status in the body, and an error status in a 200 answer is an error."""
    return body_status(response, data) if isinstance(data, dict) else response.status_code


def _kinopub_refusal(response: requests.Response, data: Any) -> str:
    status = _kinopub_status(response, data)
    if status == 401:
        return "the access token was refused (HTTP 401); a sync refreshes it, or run `kinotrakt link kinopub`"
    return f"HTTP {status}: {error_reason(status, data if isinstance(data, dict) else {})}"


def _trakt_refusal(response: requests.Response, data: Any) -> str:
    if response.status_code == 401:
        return "the access token was refused (HTTP 401); a sync refreshes it, or run `kinotrakt link trakt`"
    if response.status_code == 404:
        return "HTTP 404: Trakt has no such item"
    try:
        raise_for_status(response)
    except KinotraktError as exc:
        return str(exc)
    return f"HTTP {response.status_code}"


KINOPUB = _Service("kinopub", _kinopub_status, _kinopub_refusal)
TRAKT = _Service("trakt", _http_status, _trakt_refusal)


class _Prober:
    """Sends one request and reads its answer against a shape and our model; every failure becomes a finding.

    A 429 is read here, not waited out by the transport: the check reports it with its headers, and asks that
    service nothing more (after Cloudflare's 429 Trakt wants no more calls for 5 minutes,
    docs/trakt.md#limits-and-errors)."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._paused: dict[Service, str] = {}

    def failed(self, service: Service, endpoint: str, problem: str) -> None:
        self.findings.append(Finding(service, endpoint, problems=[problem]))

    def probe(
        self,
        service: _Service,
        finding: Finding,
        request: Callable[[], requests.Response],
        shape: Shape,
        parse: Callable[[Any], Any],
    ) -> Any:
        """The parsed answer, or None (what went wrong is in the finding)."""
        self.findings.append(finding)
        response = self._send(service, finding, request)
        return None if response is None else self._read(service, finding, response, shape, parse)

    def _send(
        self, service: _Service, finding: Finding, request: Callable[[], requests.Response]
    ) -> requests.Response | None:
        if service.name in self._paused:
            finding.problems.append(self._paused[service.name])
            return None
        try:
            response = request()
        except KinotraktError as exc:
            finding.problems.append(str(exc))
            return None
        finding.status = response.status_code
        finding.rate_limit = _rate_limit_headers(response)
        if response.status_code == 429:
            name = label(service.name)
            finding.problems.append(f"{name} asked for a pause (HTTP 429): not asked again by this check")
            self._paused[service.name] = f"not asked: {name} asked this check for a pause (HTTP 429)"
            return None
        return response

    def _read(
        self,
        service: _Service,
        finding: Finding,
        response: requests.Response,
        shape: Shape,
        parse: Callable[[Any], Any],
    ) -> Any:
        try:
            data = decode_json(response, service.name)
        except BadResponse as exc:
            ok_status = 200 <= response.status_code < 300
            finding.parsed = False if ok_status else None
            finding.problems.append(exc.reason if ok_status else service.refusal(response, None))
            return None
        if not 200 <= service.status_of(response, data) < 300:
            finding.problems.append(service.refusal(response, data))
            return None
        finding.missing, finding.unexpected = compare(data, shape)
        try:
            parsed = parse(data)
        except (ValidationError, ValueError) as exc:
            finding.parsed = False
            finding.problems.append(f"our models cannot read it: {_describe(exc)}")
            return None
        finding.parsed = True
        return parsed


def _username(data: Any) -> str:
    user = data.get("user") if isinstance(data, dict) else None
    name = user.get("username") if isinstance(user, dict) else None
    if not isinstance(name, str):
        raise ValueError("user.username: not there, or not text")
    return name


def _object[T](parse: Callable[[dict[str, Any]], T]) -> Callable[[Any], T]:
    def read(data: Any) -> T:
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        return parse(data)

    return read


# --- the two services ------------------------------------------------------------------------------------------


@dataclass
class _Linked:
    token: str | None
    client_id: str | None


def _token(cli: Cli, service: Service, transport: Transport, tokens: list[TokenState]) -> _Linked:
    """The stored access token, used as it is; refreshed (and stored, by the token keeper) only when it has
    already expired."""
    store = cli.deployment.token_store(service)
    secret = store.load().secret
    linked = _Linked(None, secret.client_id)
    state = TokenState(service, _link_state(secret))
    tokens.append(state)
    if secret.access_token is None or not secret.client_id:
        return linked
    now = cli.clock.now()
    if secret.expires_at is not None:
        state.expires_at = iso_z(utc_from_epoch(secret.expires_at))
    if secret.expires_at is None or utc_from_epoch(secret.expires_at) > now:
        linked.token = secret.access_token.get_secret_value()
        return linked
    build = wiring.trakt_keeper if service == "trakt" else wiring.kinopub_keeper
    keeper = build(cli.deployment.settings, store, transport, cli.clock)
    try:
        linked.token = keeper.access_token()
    except KinotraktError as exc:
        state.state = f"expired; refreshing it failed: {exc}"
        return linked
    state.refreshed = True
    fresh = keeper.secret
    state.expires_at = iso_z(utc_from_epoch(fresh.expires_at)) if fresh.expires_at is not None else None
    state.state = "had expired: refreshed now and stored, as a sync would"
    return linked


def _link_state(secret: ServiceSecret) -> str:
    if not secret.client_id or secret.client_secret is None:
        return "not set up (`kinotrakt setup`)"
    if secret.access_token is None:
        return "not linked"
    return "linked"


def _kinopub(cli: Cli, prober: _Prober, tokens: list[TokenState]) -> list[HistoryPage]:
    transport = cli.deployment.transport("kinopub")
    base = cli.deployment.settings.kinopub_base
    linked = _token(cli, "kinopub", transport, tokens)
    if linked.token is None:
        for endpoint in ("/v1/user", "/v1/history", "/v1/watching"):
            prober.failed("kinopub", endpoint, f"Kinopub is {tokens[-1].state}")
        return []
    token = linked.token

    def ask(finding: Finding, path: str, params: dict[str, Any], shape: Shape, parse: Callable[[Any], Any]) -> Any:
        request = lambda: send(transport, base, "GET", path, params=params, token=token, pass_through=(429,))  # noqa: E731
        return prober.probe(KINOPUB, finding, request, shape, _object(parse))

    ask(Finding("kinopub", "/v1/user"), "/v1/user", {}, KINOPUB_USER, _username)
    pages: list[HistoryPage] = []
    for number in (1, 2):
        finding = Finding("kinopub", f"/v1/history page {number}")
        params = {"page": number, "perpage": HISTORY_PERPAGE}
        page = ask(finding, "/v1/history", params, KINOPUB_HISTORY, parse_history_page)
        if not isinstance(page, HistoryPage):
            break
        pages.append(page)
        if page.broken:
            finding.problems.append(f"{len(page.broken)} row(s) our models cannot read: {page.broken[0].reason}")
        total = page.pagination.total if page.pagination is not None else None
        if (total is not None and total < 2) or len(page.rows) + len(page.broken) < HISTORY_PERPAGE:
            finding.notes.append("the only page" if number == 1 else "the last page")
            break
    if pages:
        _order(prober.findings[-1], pages)
    rows = [row for page in pages for row in page.rows]
    if not rows:
        empty = Finding("kinopub", "/v1/watching", skipped=True, notes=["nothing to read: no row in your history"])
        prober.findings.append(empty)
        return pages
    item = rows[0].item
    finding = Finding("kinopub", f"/v1/watching?id={item.id}", notes=[f"your latest item: {item.title or item.id}"])
    ask(finding, "/v1/watching", {"id": item.id}, KINOPUB_WATCHING, WatchingResponse.model_validate)
    return pages


def _order(finding: Finding, pages: list[HistoryPage]) -> None:
    """Kinopub's history comes newest first by ``last_seen`` for every client, yet no document promises it: the
    sync checks the order it gets, and so does this."""
    times = [row.last_seen for page in pages for row in page.rows if row.last_seen is not None]
    backwards = next((n for n in range(1, len(times)) if times[n] > times[n - 1]), None)
    if backwards is None:
        finding.notes.append(f"newest first by last_seen ({len(times)} rows)")
    else:
        finding.problems.append(
            f"not newest first: row {backwards + 1} is newer than the one before it (the sync then reads every page)"
        )


def _trakt(cli: Cli, prober: _Prober, tokens: list[TokenState], pages: list[HistoryPage]) -> None:
    transport = cli.deployment.transport("trakt")
    base = cli.deployment.settings.trakt_api_base
    linked = _token(cli, "trakt", transport, tokens)
    client_id = linked.client_id or ""

    def ask(finding: Finding, path: str, params: dict[str, Any], shape: Shape, parse: Callable[[Any], Any]) -> None:
        headers = trakt_headers(client_id, linked.token if path.startswith(("/sync", "/users")) else None)
        request = lambda: transport.request("GET", base + path, params=params, headers=headers, pass_through=(429,))  # noqa: E731
        prober.probe(TRAKT, finding, request, shape, parse)

    if linked.token is None:
        for endpoint in ("/users/settings", "/sync/history"):
            prober.failed("trakt", endpoint, f"Trakt is {tokens[-1].state}")
    else:
        ask(Finding("trakt", "/users/settings"), "/users/settings", {}, TRAKT_SETTINGS, _username)
        history = Finding("trakt", "/sync/history page 1")
        params = {"page": 1, "limit": TRAKT_HISTORY_LIMIT}
        ask(history, "/sync/history", params, TRAKT_HISTORY, TypeAdapter(list[HistoryItem]).validate_python)
    if not client_id:
        prober.failed("trakt", "/shows/{imdb}/seasons", f"Trakt is {tokens[-1].state}")
        return
    # Public: the API key is enough, as for the sync's own lookups.
    imdb, whose = _a_show(pages)
    seasons = Finding("trakt", f"/shows/{imdb}/seasons", notes=[whose])
    path = f"/shows/{quote(imdb, safe='')}/seasons"
    ask(seasons, path, {"extended": "full,episodes"}, TRAKT_SEASONS, TypeAdapter(list[Season]).validate_python)


def _a_show(pages: list[HistoryPage]) -> tuple[str, str]:
    """An IMDb id of a show from the user's own history (what a sync would look up), else a well-known one."""
    for page in pages:
        for row in page.rows:
            if row.item.type in SERIES_TYPES and row.item.imdb:
                return row.item.imdb, f"a show from your Kinopub history: {row.item.title or row.item.id}"
    return WELL_KNOWN_SHOW, "a well-known show (Breaking Bad): no show with an IMDb id in your Kinopub history pages"


# --- the command -----------------------------------------------------------------------------------------------


def _as_json(ok: bool, findings: list[Finding], tokens: list[TokenState]) -> dict[str, Any]:
    return {
        "ok": ok,
        "checks": [{**asdict(finding), "ok": finding.ok} for finding in findings],
        "tokens": {state.service: {k: v for k, v in asdict(state).items() if k != "service"} for state in tokens},
    }


def _show(cli: Cli, ok: bool, findings: list[Finding], tokens: list[TokenState]) -> None:
    """A table of the checks, then what each one found, then the tokens and the verdict; each `kinotrakt ...`
    they name as the user started this one (:meth:`Cli.with_commands`)."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header in ("", "CHECK", "HTTP", "READ", "FIELDS"):
        table.add_column(header, overflow="fold")
    for finding in findings:
        fields = [f"{len(finding.missing)} missing"] if finding.missing else []
        fields += [f"{len(finding.unexpected)} unexpected"] if finding.unexpected else []
        table.add_row(
            _verdict(finding),
            plain(f"{label(finding.service)} {finding.endpoint}"),
            plain("-" if finding.status is None else finding.status),
            plain({True: "yes", False: "no", None: "-"}[finding.parsed]),
            plain(", ".join(fields) or ("as expected" if finding.parsed else "-")),
        )
    say = cli.output.say
    cli.output.show(table)
    say()
    for finding in findings:
        lines = [
            *finding.problems,
            *(f"missing {path}" for path in finding.missing),
            *(f"unexpected {path}" for path in finding.unexpected),
            *(f"{name}: {value}" for name, value in finding.rate_limit.items()),
            *finding.notes,
        ]
        if lines:
            say(f"{label(finding.service)} {finding.endpoint}:")
            for line in lines:
                say(f"  {cli.with_commands(line)}")
    say()
    now = cli.clock.now()
    for state in tokens:
        expiry = ""
        if state.expires_at is not None:
            moment = parse_iso(state.expires_at)
            expiry = f"; access token {'expires' if moment > now else 'expired'} {when(moment, now)}"
        say(f"{label(state.service)} token: {cli.with_commands(state.state)}{expiry}")
    say()
    drifted = sum(1 for finding in findings if not finding.ok)
    say("Everything matches." if ok else f"{drifted} of {len(findings)} checks drifted or failed.")


def _verdict(finding: Finding) -> Text:
    if finding.skipped:
        return Text("skip")
    if finding.ok:
        return Text("ok", style="green")
    return Text("DRIFT" if finding.parsed is not None else "FAILED", style="bold red")


def check(cli: Cli, as_json: bool) -> int:
    """Ask both services, compare their answers with the known shapes, print the findings; the exit code."""
    tokens: list[TokenState] = []
    prober = _Prober()
    pages = _kinopub(cli, prober, tokens)
    _trakt(cli, prober, tokens, pages)
    findings = prober.findings
    ok = all(finding.ok for finding in findings)
    if as_json:
        cli.output.say(json.dumps(_as_json(ok, findings, tokens), indent=2, ensure_ascii=False))
    else:
        _show(cli, ok, findings, tokens)
    return EXIT_OK if ok else EXIT_FAILURE
