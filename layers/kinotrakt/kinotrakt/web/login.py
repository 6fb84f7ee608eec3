"""The Trakt authorization-code login: ``/trakt/login`` and ``/trakt/callback``.

Why each guard exists:
- the setup key: without it, anyone who finds the URL could link *their* Trakt account and receive the
  owner's Kinopub history;
- the one-time ``state`` (server side, TTL 10 min, consumed by a conditional delete): a callback is accepted
  once, and only for a login this deployment started;
- the ``__Host-`` cookie holding a nonce whose hash is stored with the state: the callback must come back to
  the browser that started the login, so a victim cannot be tricked into finishing an attacker's login
  (login CSRF);
- PKCE (S256, the verifier never leaves the server): a stolen authorization code is useless on its own.

Nothing here logs the code, the state, the nonce, the setup key or a token: log lines carry an outcome name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlencode

from pydantic import SecretStr

from kinotrakt.clock import Clock
from kinotrakt.errors import KinotraktError, NotConfigured
from kinotrakt.observability import logger
from kinotrakt.storage.ports import LoginStateStore, ServiceSecret, TokenStore
from kinotrakt.tokens import TokenGrant, apply_grant, update_secret
from kinotrakt.trakt.oauth import TraktAuthorizationRefused
from kinotrakt.web import pages
from kinotrakt.web.pkce import new_verifier, s256_challenge
from kinotrakt.web.request import ERROR_CODE, TOKEN, BadRequest, token_param

STATE_COOKIE = "__Host-kinotrakt-state"
# RFC 6749 §4.1.2.1: the error codes an authorization server redirects back with.
OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)
STATE_TTL = timedelta(minutes=10)
_USERNAME_MAX = 100


@dataclass(frozen=True)
class StateCookie:
    """The browser-binding cookie: always ``Secure; HttpOnly; SameSite=Lax; Path=/`` (a ``__Host-`` cookie)."""

    value: str
    max_age: int  # 0 clears it


@dataclass(frozen=True)
class WebResponse:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: tuple[StateCookie, ...] = ()

    @classmethod
    def page(cls, page: pages.Page, *, cookies: tuple[StateCookie, ...] = (), **extra: str) -> WebResponse:
        headers = {"Content-Type": pages.HTML_CONTENT_TYPE, **pages.SECURITY_HEADERS, **extra}
        return cls(page.status, page.render(), headers, cookies)


class TraktAuthorization(Protocol):
    """What the callback needs from Trakt (``kinotrakt.web.trakt_gateway`` is the real one)."""

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        """Tokens for an authorization code, using the client credentials in ``client``."""
        ...

    def username(self) -> str | None:
        """The user name of the account whose tokens are now in the Trakt secret."""
        ...


def _nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


class TraktLoginFlow:
    def __init__(
        self,
        *,
        login_states: LoginStateStore,
        trakt_tokens: TokenStore,
        trakt: TraktAuthorization,
        clock: Clock,
        authorize_url: str,
        redirect_uri: str,
        token: Callable[[int], str] = secrets.token_urlsafe,
        verifier: Callable[[], str] = new_verifier,
    ) -> None:
        self._login_states = login_states
        self._trakt_tokens = trakt_tokens
        self._trakt = trakt
        self._clock = clock
        self._authorize_url = authorize_url
        self._redirect_uri = redirect_uri
        self._token = token
        self._verifier = verifier

    # --- GET /trakt/login?key= -------------------------------------------------------------------------

    def login(self, params: Mapping[str, str]) -> WebResponse:
        key = token_param(params, "key")
        secret = self._trakt_tokens.load().secret
        if secret.setup_key is None or not secret.client_id:
            logger.warning("login refused", extra={"outcome": "not_set_up"})
            return WebResponse.page(pages.not_set_up())
        if key is None or not _same(key, secret.setup_key.get_secret_value()):
            logger.warning("login refused", extra={"outcome": "wrong_key" if key else "missing_key"})
            return WebResponse.page(pages.wrong_key())

        state = self._token(32)
        nonce = self._token(32)
        verifier = self._verifier()
        self._login_states.put(
            state,
            {"code_verifier": verifier, "browser": _nonce_digest(nonce)},
            self._clock.now() + STATE_TTL,
        )
        location = (
            self._authorize_url
            + ("&" if "?" in self._authorize_url else "?")
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": secret.client_id,
                    "redirect_uri": self._redirect_uri,
                    "state": state,
                    "code_challenge": s256_challenge(verifier),
                    "code_challenge_method": "S256",
                }
            )
        )
        logger.info("login started", extra={"outcome": "redirect"})
        cookie = StateCookie(nonce, int(STATE_TTL.total_seconds()))
        return WebResponse.page(pages.redirecting(location), cookies=(cookie,), Location=location)

    # --- GET /trakt/callback?code=&state= ---------------------------------------------------------------

    def callback(self, params: Mapping[str, str], cookie_values: Sequence[str]) -> WebResponse:
        checked = self._check_callback(params, cookie_values)
        if isinstance(checked, pages.Page):
            return self._final(checked)
        code, code_verifier = checked
        loaded = self._trakt_tokens.load()
        try:
            grant = self._trakt.exchange_code(loaded.secret, code, code_verifier, self._redirect_uri)
        except KinotraktError as exc:
            return self._final(_exchange_failure_page(exc))
        self._save(grant)
        logger.info("trakt account linked", extra={"outcome": "linked"})
        try:
            username = self._trakt.username()
        except KinotraktError as exc:
            # The link itself worked; only the greeting is less personal.
            logger.warning("could not read the linked user name", extra={"error": type(exc).__name__})
            username = None
        return self._final(pages.linked(_clean_username(username)))

    def _check_callback(self, params: Mapping[str, str], cookie_values: Sequence[str]) -> tuple[str, str] | pages.Page:
        """``(code, code_verifier)`` for a callback that passes every guard, else the refusal page."""
        error = params.get("error")
        if error is not None:
            if ERROR_CODE.fullmatch(error) is None:
                raise BadRequest("malformed error")
            # Only Trakt's error code decides the page; its free-text description is not shown. Whoever crafted
            # the URL chose the value, so only the codes RFC 6749 defines reach the log.
            logged = error if error in OAUTH_ERROR_CODES else "other"
            logger.warning("callback refused", extra={"outcome": "trakt_error", "error": logged})
            return pages.access_denied() if error == "access_denied" else pages.trakt_error()
        state = token_param(params, "state")
        code = token_param(params, "code")
        if state is None:
            logger.warning("callback refused", extra={"outcome": "missing_state"})
            return pages.state_invalid()

        # Consumed before anything else: whatever happens next, this state never works again.
        stored = self._login_states.consume(state, self._clock.now())
        if stored is None or "code_verifier" not in stored or "browser" not in stored:
            logger.warning("callback refused", extra={"outcome": "unknown_or_used_state"})
            return pages.state_invalid()
        if (
            len(cookie_values) != 1
            or TOKEN.fullmatch(cookie_values[0]) is None
            or not _same(_nonce_digest(cookie_values[0]), stored["browser"])
        ):
            outcome = "missing_cookie" if not cookie_values else "cookie_mismatch"
            logger.warning("callback refused", extra={"outcome": outcome})
            return pages.cookie_mismatch()
        if code is None:
            logger.warning("callback refused", extra={"outcome": "missing_code"})
            return pages.missing_code()
        return code, stored["code_verifier"]

    def _save(self, grant: TokenGrant) -> None:
        now = self._clock.now()
        # The refresh must send the redirect URI these tokens were issued for.
        update_secret(
            self._trakt_tokens,
            lambda secret: apply_grant(secret, grant, now).model_copy(update={"redirect_uri": self._redirect_uri}),
        )

    def _final(self, page: pages.Page) -> WebResponse:
        """The callback's page; it also clears the state cookie, which is of no use after a callback."""
        return WebResponse.page(page, cookies=(StateCookie("", 0),))


def _exchange_failure_page(exc: KinotraktError) -> pages.Page:
    if isinstance(exc, NotConfigured):
        logger.warning("callback refused", extra={"outcome": "not_set_up"})
        return pages.not_set_up()
    if isinstance(exc, TraktAuthorizationRefused):
        logger.warning("callback refused", extra={"outcome": "code_refused", "status": exc.status})
        return pages.access_denied() if exc.status in (403, 426) else pages.code_refused()
    logger.warning("callback failed", extra={"outcome": "trakt_unavailable", "error": type(exc).__name__})
    return pages.trakt_unavailable()


def _clean_username(username: str | None) -> str | None:
    if not username:
        return None
    return username[:_USERNAME_MAX]


def new_setup_key() -> SecretStr:
    """The value ``/trakt/login?key=`` requires (CLI ``setup``): 256 random bits, URL-safe."""
    return SecretStr(secrets.token_urlsafe(32))
