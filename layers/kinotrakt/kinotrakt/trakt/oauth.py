"""Trakt OAuth on ``TRAKT_AUTH_URL`` (2026: ``auth.trakt.tv``): device flow, authorization code + PKCE,
refresh with single-use rotating refresh tokens, revoke (docs/trakt.md#tokens)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import requests
from pydantic import SecretStr

from kinotrakt.clock import Clock
from kinotrakt.errors import (
    BadResponse,
    KinotraktError,
    OutcomeUnknown,
    RelinkRequired,
    TraktAppRejected,
    TraktCloudflareBlocked,
)
from kinotrakt.http import Transport, decode_json, is_html
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.tokens import TokenGrant, TokenKeeper, trakt_margin
from kinotrakt.trakt.client import parse_as, raise_for_status, trakt_headers
from kinotrakt.trakt.models import DeviceCode, TokenResponse

# Trakt's documented out-of-band redirect, for tokens obtained by the device flow.
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

# RFC 8628 §3.5: on slow_down, add 5 seconds to the polling interval for this and all later polls.
SLOW_DOWN_STEP = 5

LINK_COMMAND = "kinotrakt link trakt"


# --- outcomes the user must act on ---------------------------------------------------------------------


class DeviceFlowFailed(KinotraktError):
    """The device flow ended without tokens; ``outcome`` says why."""

    code = "trakt_device_flow_failed"
    outcome: ClassVar[str] = ""
    message: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__(self.message)


class DeviceCodeInvalid(DeviceFlowFailed):
    outcome = "invalid_code"
    message = f"Trakt does not know this device code (HTTP 404); run `{LINK_COMMAND}` again"


class DeviceCodeAlreadyUsed(DeviceFlowFailed):
    outcome = "already_used"
    message = f"this device code was already used (HTTP 409); run `{LINK_COMMAND}` again for a new code"


class DeviceCodeExpired(DeviceFlowFailed):
    outcome = "expired"
    message = (
        f"the code expired before it was approved on trakt.tv; run `{LINK_COMMAND}` again and enter the "
        "new code before it expires"
    )


class DeviceAccessDenied(DeviceFlowFailed):
    outcome = "denied"
    message = f"access was denied on trakt.tv (HTTP 418); run `{LINK_COMMAND}` again and choose Allow"


class DeviceFlowRefused(DeviceFlowFailed):
    """Trakt answered a poll with an OAuth error of its own (a wrong client secret: ``invalid_client``).
    Polling on would only end, minutes later, as a misleading "expired"."""

    outcome = "refused"

    def __init__(self, error: str, status: int) -> None:
        KinotraktError.__init__(
            self,
            f"Trakt refused the device login: {error} (HTTP {status}); check the Trakt client id and client "
            f"secret stored by `kinotrakt setup`, then run `{LINK_COMMAND}` again",
        )
        self.error = error
        self.status = status


class TraktAuthorizationRefused(KinotraktError):
    """Trakt refused to link: tokens for an authorization code, or (403, 426) the app or the account itself."""

    code = "trakt_authorization_refused"

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


# A 426 while linking ("VIP only"): the account may not connect this app.
APP_LIMIT_REASON = (
    "Trakt refused the authorization (HTTP {status}): a free Trakt account can connect only one community "
    "app at a time, and creating a Trakt API app needs VIP (2026). Disconnect the other app on trakt.tv "
    "(Settings > Connected Apps) or upgrade to VIP, check that the client_id in the Trakt secret is your "
    f"approved app, then run `{LINK_COMMAND}` (or open /trakt/login) again"
)

CODE_REJECTED_REASON = (
    "Trakt rejected the authorization code (HTTP {status}): it expired, was already used, or the "
    "redirect URI does not match the one registered for the Trakt app; open /trakt/login again"
)


# --- the client ------------------------------------------------------------------------------------------


class TraktOAuth:
    def __init__(self, transport: Transport, auth_base: str, client_id: str, client_secret: str | SecretStr) -> None:
        self._transport = transport
        self._auth_base = auth_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)

    def _post(
        self, path: str, body: dict[str, Any], *, idempotent: bool, pass_through: tuple[int, ...] = ()
    ) -> requests.Response:
        return self._transport.request(
            "POST",
            self._auth_base + path,
            json_body=body,
            headers=trakt_headers(self._client_id),
            idempotent=idempotent,
            pass_through=pass_through,
        )

    # --- device flow (the CLI) -------------------------------------------------------------------------

    def request_device_code(self) -> DeviceCode:
        # Asking again only issues another code, so this is safe to repeat.
        response = self._post("/oauth/device/code", {"client_id": self._client_id}, idempotent=True)
        _raise_for_authorization(response)
        return parse_as(DeviceCode, response)

    def poll_device_token(
        self, device: DeviceCode, clock: Clock, on_tick: Callable[[float], None] | None = None
    ) -> TokenGrant:
        """Poll every ``interval`` seconds until the user approves, denies, or the code expires.

        ``on_tick`` gets the seconds left before the code expires, after each pending poll."""
        body = {
            "code": device.device_code.get_secret_value(),
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        started = clock.monotonic()
        interval = float(max(1, device.interval))
        wait = interval
        while True:
            clock.sleep(wait)
            left = device.expires_in - (clock.monotonic() - started)
            if left <= 0:
                raise DeviceCodeExpired
            # A poll is meant to be repeated: after a lost answer the next poll gets 409 at worst.
            response = self._post("/oauth/device/token", body, idempotent=True, pass_through=(429,))
            status = response.status_code
            if status == 200:
                return parse_as(TokenResponse, response).to_grant()
            # Trakt's own codes come first; an RFC 8628 error in a JSON body means the same thing.
            error = _oauth_error_code(response) if status in (400, 401) else None
            if status == 429 or error == "slow_down":
                interval += SLOW_DOWN_STEP
                wait = max(interval, _retry_after_seconds(response))
            elif status == 400 and error in (None, "authorization_pending"):
                wait = interval  # pending: the user has not approved yet (Trakt's answer has no JSON body)
            elif error in _DEVICE_ERRORS:
                raise _DEVICE_ERRORS[error]
            elif error is not None:
                raise DeviceFlowRefused(error, status)
            elif status in _DEVICE_OUTCOMES:
                raise _DEVICE_OUTCOMES[status]
            else:
                _raise_for_authorization(response)
                raise_for_status(response)
            if on_tick is not None:
                on_tick(device.expires_in - (clock.monotonic() - started))

    # --- authorization code + PKCE (the auth function) -------------------------------------------------

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        body = {
            "code": code,
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
            "code_verifier": code_verifier,
        }
        # The code is single-use: a lost answer is OutcomeUnknown, never a second exchange.
        response = self._post("/oauth/token", body, idempotent=False)
        if response.status_code in (400, 401):
            raise TraktAuthorizationRefused(
                CODE_REJECTED_REASON.format(status=response.status_code), response.status_code
            )
        _raise_for_authorization(response)
        raise_for_status(response)
        return _applied_grant(response)

    # --- refresh (the TokenKeeper's refresher) ---------------------------------------------------------

    def refresh(self, secret: ServiceSecret) -> TokenGrant:
        """Exchange the single-use refresh token for a new pair.

        Never repeated by the transport: if the answer is lost, the old refresh token may already be dead,
        and OutcomeUnknown says so rather than burning it twice."""
        if secret.refresh_token is None:
            raise RelinkRequired("trakt", "no refresh token stored")
        extra = secret.model_extra or {}
        redirect_uri = extra.get("redirect_uri")
        client_secret = secret.client_secret or self._client_secret
        body = {
            "refresh_token": secret.refresh_token.get_secret_value(),
            "client_id": secret.client_id or self._client_id,
            "client_secret": client_secret.get_secret_value(),
            "redirect_uri": redirect_uri if isinstance(redirect_uri, str) and redirect_uri else OOB_REDIRECT_URI,
            "grant_type": "refresh_token",
        }
        response = self._post("/oauth/token", body, idempotent=False)
        if response.status_code in (400, 401) and not is_html(response):
            raise RelinkRequired("trakt", f"Trakt refused the refresh token ({_oauth_error(response)})")
        raise_for_status(response)
        return _applied_grant(response)

    def revoke(self, token: str) -> None:
        body = {
            "token": token,
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        # Revoking twice changes nothing, so a lost answer may be retried.
        raise_for_status(self._post("/oauth/revoke", body, idempotent=True))


def make_token_keeper(store: TokenStore, oauth: TraktOAuth, clock: Clock) -> TokenKeeper:
    """The Trakt TokenKeeper: refreshes through ``oauth`` with Trakt's margin (docs/ARCHITECTURE.md#tokens)."""
    return TokenKeeper("trakt", store, oauth.refresh, clock, trakt_margin)


_DEVICE_OUTCOMES: dict[int, type[DeviceFlowFailed]] = {
    404: DeviceCodeInvalid,
    409: DeviceCodeAlreadyUsed,
    410: DeviceCodeExpired,
    418: DeviceAccessDenied,
}
# RFC 8628 §3.5 error codes with an outcome of their own.
_DEVICE_ERRORS: dict[str, type[DeviceFlowFailed]] = {
    "expired_token": DeviceCodeExpired,
    "access_denied": DeviceAccessDenied,
}


def _raise_for_authorization(response: requests.Response) -> None:
    """403 / 426 while linking. Trakt's own JSON 403 is the API app refused (unknown, unapproved, or deleted:
    2026, the apps of non-VIP accounts): the words a run uses for it, so ``link`` and ``status`` say the same; a
    426 is the account's VIP / one-app rule."""
    status = response.status_code
    if status == 403 and is_html(response):
        raise TraktCloudflareBlocked
    if status == 403:
        raise TraktAuthorizationRefused(TraktAppRejected.message, status)
    if status == 426:
        raise TraktAuthorizationRefused(APP_LIMIT_REASON.format(status=status), status)


def _applied_grant(response: requests.Response) -> TokenGrant:
    """The tokens of a 2xx token answer. Trakt has already issued them (and spent the code or refresh token
    they replace): an answer that cannot be read is a lost answer, not a bad one."""
    try:
        return parse_as(TokenResponse, response).to_grant()
    except BadResponse as exc:
        raise OutcomeUnknown("trakt", "POST", "/oauth/token", exc.reason) from None


def _oauth_error_code(response: requests.Response) -> str | None:
    """The OAuth ``error`` code (e.g. ``invalid_grant``) when the body is JSON naming one, ``other`` when it
    names something not shaped like a code (never repeated: it ends up in messages and logs), else None."""
    if is_html(response):
        return None
    try:
        body = decode_json(response, "trakt")
    except BadResponse:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if error is None:
        return None
    return error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else "other"


def _oauth_error(response: requests.Response) -> str:
    return _oauth_error_code(response) or f"HTTP {response.status_code}"


def _retry_after_seconds(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0
