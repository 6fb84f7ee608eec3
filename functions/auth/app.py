"""Auth Lambda: ``GET /trakt/login`` and ``GET /trakt/callback`` (HTTP API, payload v2; the routes and their
guards are described in ``kinotrakt/web/login.py``).

Thin: read the query string and the cookie, wire the stores, call :mod:`kinotrakt.web`, render its answer and
emit its metric (``LoginRefused`` with the refusal's ``reason``, ``TraktLinked``). The raw event is never logged
(it carries the setup key or an authorization code), and an unexpected error becomes a plain 500 page whose
log line names only the exception's type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from kinotrakt.clock import Clock, Deadline, SystemClock
from kinotrakt.config import Settings
from kinotrakt.observability import emit_event, logger
from kinotrakt.storage.ports import LoginStateStore, TokenStore
from kinotrakt.web import pages
from kinotrakt.web.login import (
    STATE_COOKIE,
    LinkNotices,
    RecentSecret,
    TraktAuthorization,
    TraktLoginFlow,
    WebResponse,
)
from kinotrakt.web.request import BadRequest, cookie_values, parse_query, query_from_parameters

# The function's timeout is 30 s; keep a few seconds to answer with a page rather than time out.
DEADLINE_MARGIN_SECONDS = 3.0

app = APIGatewayHttpResolver(debug=False)


@dataclass
class AuthDeps:
    """Everything a request needs: the login states and the Trakt secret, nothing else of the table or the
    Kinopub secret. Tests hand in moto-backed or in-memory stores and a fake Trakt's URLs."""

    settings: Settings
    login_states: LoginStateStore
    trakt_tokens: TokenStore
    clock: Clock = field(default_factory=SystemClock)
    # Builds the Trakt side for one request (it needs that request's deadline); None = the real gateway.
    trakt: Any = None
    # Where a link is announced (the alarm topic); None: only the log line and the metric say so.
    notices: LinkNotices | None = None
    # The Trakt secret as this container last read it for a key check (at most a minute ago).
    setup_secret: RecentSecret = field(init=False)

    def __post_init__(self) -> None:
        self.setup_secret = RecentSecret(self.trakt_tokens, self.clock)

    def trakt_for(self, deadline: Deadline) -> TraktAuthorization:
        if self.trakt is not None:
            built: TraktAuthorization = self.trakt(deadline)
            return built
        from kinotrakt.web.trakt_gateway import TraktGateway

        return TraktGateway(self.settings, self.clock, deadline)


_production: AuthDeps | None = None


def production_deps() -> AuthDeps:
    """Settings and AWS clients, built once per container (cold start)."""
    global _production  # noqa: PLW0603 - one set of clients per Lambda container
    if _production is None:
        from kinotrakt.storage.aws import aws_link_notices, aws_login_stores

        settings = Settings()
        login_states, trakt_tokens = aws_login_stores(settings)
        _production = AuthDeps(
            settings=settings,
            login_states=login_states,
            trakt_tokens=trakt_tokens,
            notices=aws_link_notices(settings),
        )
    return _production


def _flow() -> TraktLoginFlow:
    deps: AuthDeps = app.context.get("deps") or production_deps()
    context = app.lambda_context
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    deadline = Deadline(deps.clock, remaining, DEADLINE_MARGIN_SECONDS)
    if not deps.settings.trakt_redirect_uri:
        raise ValueError("TRAKT_REDIRECT_URI is not set")
    return TraktLoginFlow(
        login_states=deps.login_states,
        trakt_tokens=deps.trakt_tokens,
        setup_secret=deps.setup_secret,
        notices=deps.notices,
        trakt=deps.trakt_for(deadline),
        clock=deps.clock,
        authorize_url=str(deps.settings.trakt_authorize_url),
        redirect_uri=deps.settings.trakt_redirect_uri,
    )


def _query() -> dict[str, str]:
    event = app.current_event
    raw = event.raw_query_string
    if not raw and event.query_string_parameters:
        raw = query_from_parameters(event.query_string_parameters)
    return parse_query(raw or "")


def _cookies() -> list[str]:
    event = app.current_event
    sent = list(event.cookies or [])
    if not sent:
        header = event.headers.get("cookie")
        sent = [header] if header else []
    return cookie_values(sent, STATE_COOKIE)


def _render(answer: WebResponse) -> Response[str]:
    if answer.refused is not None:
        emit_event("LoginRefused", reason=answer.refused)
    if answer.linked:
        emit_event("TraktLinked")
    cookies = [
        Cookie(
            name=STATE_COOKIE,
            value=cookie.value,
            path="/",
            secure=True,
            http_only=True,
            max_age=cookie.max_age,
            same_site=SameSite.LAX_MODE,
        )
        for cookie in answer.cookies
    ]
    return Response(status_code=answer.status, body=answer.body, headers=answer.headers, cookies=cookies)


@app.get("/trakt/login")
def login() -> Response[str]:
    return _render(_flow().login(_query()))


@app.get("/trakt/callback")
def callback() -> Response[str]:
    return _render(_flow().callback(_query(), _cookies()))


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _render(WebResponse.page(pages.not_found()))


# Powertools leaves exception_handler's decorator untyped; the functions below are fully typed.
@app.exception_handler(BadRequest)  # type: ignore[untyped-decorator]
def bad_request(exc: BadRequest) -> Response[str]:
    logger.warning("request refused", extra={"outcome": "bad_request", "reason": exc.reason})
    return _render(WebResponse.page(pages.bad_request(), refused="bad_request"))


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(exc: Exception) -> Response[str]:
    # The type only: a message or a traceback could quote a code, a token or the event.
    logger.error("auth request failed", extra={"error": type(exc).__name__})
    return _render(WebResponse.page(pages.internal_error()))


def handle(event: dict[str, Any], context: LambdaContext, *, deps: AuthDeps | None = None) -> dict[str, Any]:
    """Resolve one API Gateway v2 event; ``deps`` defaults to the production wiring."""
    if deps is not None:
        app.context["deps"] = deps  # cleared by resolve() when the request is done
    return app.resolve(event, context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
