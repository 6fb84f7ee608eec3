"""The Trakt authorization-code login: ``/trakt/login`` and ``/trakt/callback``.

Why each guard exists:
- the setup key: without it, anyone who finds the URL could link *their* Trakt account and receive the
  owner's Kinopub history. It expires (``setup_key_expires_at``, an hour after ``kinotrakt setup`` made it by
  default) and works for one link: the login link sits in browser history, where someone else may find it.
  A key without an expiry (made before expiries existed) counts as expired. A query without a key, or with
  one that cannot be a key we issue (length, alphabet), is refused before any AWS call, and the secret read
  for the key check is kept for up to a minute, so anonymous refusals cost nothing;
- the key the login used, remembered (hashed) with the state: the callback checks it against the secret
  itself, so a key used or replaced meanwhile cannot finish a link, whatever another container remembers;
- the one-time ``state`` (server side, TTL 10 min, consumed by a conditional delete): a callback is accepted
  once, and only for a login this deployment started;
- the ``__Host-`` cookie holding a nonce whose hash is stored with the state: the callback must come back to
  the browser that started the login, so a victim cannot be tricked into finishing an attacker's login
  (login CSRF);
- PKCE (S256, the verifier never leaves the server): a stolen authorization code is useless on its own.

A successful link removes the setup key (in the same secret write that stores the tokens), remembers the
linked Trakt user, and sends a notice naming it (and the user linked before, when that changed) to the
owner's alarm topic, so a link the owner did not make is noticed.

Nothing here logs the code, the state, the nonce, the setup key or a token: log lines carry an outcome name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urlencode

from pydantic import SecretStr

from kinotrakt.clock import Clock
from kinotrakt.errors import KinotraktError, NotConfigured
from kinotrakt.observability import logger
from kinotrakt.storage.ports import LoginStateStore, ServiceSecret, TokenStore
from kinotrakt.text import clean_text
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
# What new_setup_key issues: 32 random bytes, URL-safe base64 without padding. Anything else is refused
# before the secret is read.
SETUP_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
SETUP_KEY_BYTES = 32
# How long one container trusts its read of the Trakt secret for key checks.
SECRET_READ_TTL = timedelta(seconds=60)


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
    # What the request came to, for the handler's metrics: the reason of a refusal, or a link made.
    refused: str | None = None
    linked: bool = False

    @classmethod
    def page(
        cls,
        page: pages.Page,
        *,
        cookies: tuple[StateCookie, ...] = (),
        refused: str | None = None,
        linked: bool = False,
        **extra: str,
    ) -> WebResponse:
        headers = {"Content-Type": pages.HTML_CONTENT_TYPE, **pages.SECURITY_HEADERS, **extra}
        return cls(page.status, page.render(), headers, cookies, refused, linked)


class TraktAuthorization(Protocol):
    """What the callback needs from Trakt (``kinotrakt.web.trakt_gateway`` is the real one)."""

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        """Tokens for an authorization code, using the client credentials in ``client``."""
        ...

    def username(self, client: ServiceSecret, access_token: str) -> str | None:
        """The user name of the account ``access_token`` belongs to."""
        ...


@dataclass(frozen=True)
class LinkNotice:
    """A link was made: who is linked now, and who was before (None: nobody, or a link made before kinotrakt
    remembered user names, then ``replaced_link`` says whether there was one), and how: through the browser
    login (this module) or from a terminal (``kinotrakt link trakt``, the device code)."""

    username: str | None
    previous: str | None
    replaced_link: bool
    at: datetime
    via: Literal["browser", "terminal"] = "browser"

    subject = "kinotrakt: a Trakt account was linked"

    def text(self) -> str:
        who = f"The Trakt account {self.username}" if self.username else "A Trakt account (its user name unknown)"
        if self.via == "terminal":
            how = "from a terminal (`kinotrakt link trakt`)"
            # The device flow needs no login link, but it writes the Trakt secret: only credentials allowed to
            # read and write that secret can make this link.
            culprit = (
                "someone with AWS credentials that may read and write your deployment's Trakt secret linked it "
                "(check who holds such credentials)"
            )
        else:
            how = "through its browser login"
            culprit = "someone used your login link"
        if self.previous is not None and self.previous != self.username:
            before = f"It replaces the Trakt account {self.previous}."
        elif self.previous is not None:
            before = "The same account was linked before."
        elif self.replaced_link:
            before = "It replaces an earlier link (whose user name kinotrakt had not recorded)."
        else:
            before = "No Trakt account was linked before."
        return "\n\n".join(
            [
                f"{who} was linked to kinotrakt {how} at {self.at:%Y-%m-%d %H:%M} UTC. {before}",
                "From now on kinotrakt copies your Kinopub history into that account.",
                f"If you did not do this, {culprit}: run `kinotrakt unlink trakt`, then "
                "`kinotrakt link trakt` in your terminal to link your own account again (it needs no login link).",
            ]
        )


class LinkNotices(Protocol):
    """Where a link is announced to the owner (``storage/sns.py``: the alarm topic)."""

    def linked(self, notice: LinkNotice) -> None: ...


class RecentSecret:
    """The Trakt secret as read at most ``max_age`` ago, for the setup-key check of ``/trakt/login``.

    One read per container and minute however many requests come: a flood of wrong keys costs no Secrets
    Manager calls. A key made or used within that minute may be judged on the older read; the callback checks
    the key against a fresh read, so an old key can start a login but never finish a link."""

    def __init__(self, store: TokenStore, clock: Clock, max_age: timedelta = SECRET_READ_TTL) -> None:
        self._store = store
        self._clock = clock
        self._max_age = max_age.total_seconds()
        self._secret: ServiceSecret | None = None
        self._read_at = 0.0

    def get(self) -> ServiceSecret:
        now = self._clock.monotonic()
        if self._secret is None or now - self._read_at >= self._max_age:
            self._secret = self._store.load().secret
            self._read_at = now
        return self._secret

    def forget(self) -> None:
        self._secret = None


def _nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def setup_key_live(secret: ServiceSecret, now: datetime) -> bool:
    """A setup key is stored and not expired at ``now`` (a key without an expiry counts as expired)."""
    expires_at = secret.setup_key_expires_at
    return secret.setup_key is not None and expires_at is not None and now.timestamp() < expires_at


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
        setup_secret: RecentSecret | None = None,
        notices: LinkNotices | None = None,
        token: Callable[[int], str] = secrets.token_urlsafe,
        verifier: Callable[[], str] = new_verifier,
    ) -> None:
        self._login_states = login_states
        self._trakt_tokens = trakt_tokens
        self._setup_secret = setup_secret or RecentSecret(trakt_tokens, clock, timedelta(0))
        self._trakt = trakt
        self._clock = clock
        self._authorize_url = authorize_url
        self._redirect_uri = redirect_uri
        self._notices = notices
        self._token = token
        self._verifier = verifier

    # --- GET /trakt/login?key= -------------------------------------------------------------------------

    def login(self, params: Mapping[str, str]) -> WebResponse:
        key = token_param(params, "key")
        # Refused before any AWS call: no key, or one that cannot be a key we issue.
        if key is None:
            return _refused("login refused", "missing_key", pages.wrong_key())
        if SETUP_KEY_SHAPE.fullmatch(key) is None:
            return _refused("login refused", "malformed_key", pages.wrong_key())
        secret = self._setup_secret.get()
        if not secret.client_id:
            return _refused("login refused", "not_set_up", pages.not_set_up())
        # No key stored (a link used it) looks like a wrong key: nobody learns more without the key.
        if secret.setup_key is None or not _same(key, secret.setup_key.get_secret_value()):
            return _refused("login refused", "wrong_key", pages.wrong_key())
        # Only someone holding the key learns that it expired.
        if not setup_key_live(secret, self._clock.now()):
            return _refused("login refused", "expired_key", pages.key_expired())

        state = self._token(32)
        nonce = self._token(32)
        verifier = self._verifier()
        self._login_states.put(
            state,
            {"code_verifier": verifier, "browser": _nonce_digest(nonce), "setup_key": _key_digest(key)},
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
        if isinstance(checked, WebResponse):
            return checked
        code, code_verifier, key_digest = checked
        loaded = self._trakt_tokens.load().secret
        # The key this login was started with must still be the deployment's: one link per key, even when the
        # login was started on a container whose read of the secret is older than the last link or setup.
        if loaded.setup_key is None or not _same(_key_digest(loaded.setup_key.get_secret_value()), key_digest):
            return self._final(pages.key_used(), refused="key_used")
        try:
            grant = self._trakt.exchange_code(loaded, code, code_verifier, self._redirect_uri)
        except KinotraktError as exc:
            return self._exchange_failed(exc)
        try:
            username = clean_username(self._trakt.username(loaded, grant.access_token))
        except KinotraktError as exc:
            # The link itself works; only the greeting and the notice are less personal.
            logger.warning("could not read the linked user name", extra={"error": type(exc).__name__})
            username = None
        before = self._save(grant, username)
        self._setup_secret.forget()
        previous = clean_username(before.linked_user)
        logger.info("trakt account linked", extra={"outcome": "linked"})
        notice = LinkNotice(username, previous, before.refresh_token is not None, self._clock.now())
        self._announce(notice)
        replaced = previous if previous is not None and previous != username else None
        return self._final(pages.linked(username, replaced=replaced), linked=True)

    def _check_callback(
        self, params: Mapping[str, str], cookie_values: Sequence[str]
    ) -> tuple[str, str, str] | WebResponse:
        """``(code, code_verifier, setup key digest)`` for a callback that passes every guard, else the refusal."""
        error = params.get("error")
        if error is not None:
            if ERROR_CODE.fullmatch(error) is None:
                raise BadRequest("malformed error")
            # Only Trakt's error code decides the page; its free-text description is not shown. Whoever crafted
            # the URL chose the value, so only the codes RFC 6749 defines reach the log.
            logged = error if error in OAUTH_ERROR_CODES else "other"
            page = pages.access_denied() if error == "access_denied" else pages.trakt_error()
            return self._final(page, refused="trakt_error", error=logged)
        state = token_param(params, "state")
        code = token_param(params, "code")
        if state is None:
            return self._final(pages.state_invalid(), refused="missing_state")

        # Consumed before anything else: whatever happens next, this state never works again.
        stored = self._login_states.consume(state, self._clock.now())
        if stored is None or not {"code_verifier", "browser", "setup_key"} <= set(stored):
            return self._final(pages.state_invalid(), refused="unknown_or_used_state")
        if (
            len(cookie_values) != 1
            or TOKEN.fullmatch(cookie_values[0]) is None
            or not _same(_nonce_digest(cookie_values[0]), stored["browser"])
        ):
            return self._final(
                pages.cookie_mismatch(), refused="missing_cookie" if not cookie_values else "cookie_mismatch"
            )
        if code is None:
            return self._final(pages.missing_code(), refused="missing_code")
        return code, stored["code_verifier"], stored["setup_key"]

    def _save(self, grant: TokenGrant, username: str | None) -> ServiceSecret:
        """Store the tokens, forget the setup key (one link per key) and remember who is linked, in one write;
        returns the secret as it was before."""
        now = self._clock.now()
        before: list[ServiceSecret] = []

        def link(secret: ServiceSecret) -> ServiceSecret:
            before[:] = [secret]
            # The refresh must send the redirect URI these tokens were issued for.
            return apply_grant(secret, grant, now).model_copy(
                update={
                    "redirect_uri": self._redirect_uri,
                    "setup_key": None,
                    "setup_key_expires_at": None,
                    "linked_user": username,
                }
            )

        update_secret(self._trakt_tokens, link)
        return before[0]

    def _exchange_failed(self, exc: KinotraktError) -> WebResponse:
        if isinstance(exc, NotConfigured):
            return self._final(pages.not_set_up(), refused="not_set_up")
        if isinstance(exc, TraktAuthorizationRefused):
            if exc.status == 403:
                page = pages.app_rejected()
            else:
                page = pages.access_denied() if exc.status == 426 else pages.code_refused()
            return self._final(page, refused="code_refused", status=exc.status)
        logger.warning("callback failed", extra={"outcome": "trakt_unavailable", "error": type(exc).__name__})
        return self._final(pages.trakt_unavailable())

    def _announce(self, notice: LinkNotice) -> None:
        if self._notices is None:
            return
        try:
            self._notices.linked(notice)
        except Exception as exc:
            # The link is made and stored; a notice that could not be sent must not undo or hide it.
            logger.error("could not send the link notice", extra={"error": type(exc).__name__})

    def _final(
        self, page: pages.Page, *, refused: str | None = None, linked: bool = False, **logged: object
    ) -> WebResponse:
        """The callback's page; it also clears the state cookie, which is of no use after a callback."""
        if refused is not None:
            logger.warning("callback refused", extra={"outcome": refused, **logged})
        return WebResponse.page(page, cookies=(StateCookie("", 0),), refused=refused, linked=linked)


def _refused(message: str, reason: str, page: pages.Page) -> WebResponse:
    logger.warning(message, extra={"outcome": reason})
    return WebResponse.page(page, refused=reason)


def clean_username(username: str | None) -> str | None:
    """A Trakt user name as stored and shown (the secret's ``linked_user``, pages, notices): control characters
    removed, bounded; None for no name."""
    if not username:
        return None
    return clean_text(username, _USERNAME_MAX).strip() or None


def new_setup_key() -> SecretStr:
    """The value ``/trakt/login?key=`` requires (CLI ``setup``): 256 random bits, URL-safe (SETUP_KEY_SHAPE)."""
    return SecretStr(secrets.token_urlsafe(SETUP_KEY_BYTES))
