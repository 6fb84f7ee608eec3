"""Kinopub device-flow linking and token refresh (docs/kinopub.md#auth-device-flow-only).

Kinopub's refresh tokens are single-use: the refresh POST is never re-sent blindly (the transport raises
``OutcomeUnknown``), and the new pair is persisted by :class:`~kinotrakt.tokens.TokenKeeper` before
anything else happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from pydantic import SecretStr, ValidationError

from kinotrakt import __version__
from kinotrakt.clock import Clock
from kinotrakt.errors import BadResponse, KinotraktError, NotConfigured, OutcomeUnknown, RelinkRequired
from kinotrakt.http import Transport
from kinotrakt.kinopub.client import SERVICE, body_status, error_reason, json_object, send
from kinotrakt.kinopub.models import DeviceCode, OAuthError, TokenResponse, describe_validation_error
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.tokens import TokenGrant, TokenKeeper, kinopub_margin

# The client pair open-source Kinopub clients ship in their source (the Kodi add-on's ``xbmc`` client, docs/kinopub.md):
# public, so not a secret of the user's; ``kinotrakt setup`` offers it when Kinopub support has issued no pair.
PUBLIC_CLIENT_ID = "xbmc"
PUBLIC_CLIENT_SECRET = "cgg3gtifu46urtfp2zp1nqtba0k2ezxh"  # noqa: S105 - published with the Kodi add-on

DEVICE_PATH = "/oauth2/device"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret

_EXPIRED = frozenset({"code_expired", "authorization_expired", "expired_token"})
_DENIED = frozenset({"access_denied", "authorization_denied"})
_DEAD_REFRESH = frozenset({"invalid_refresh_token", "invalid_grant"})
_BAD_CLIENT = frozenset({"invalid_client", "unauthorized_client"})


class LinkFailed(KinotraktError):
    """The device flow ended without a token: the code expired, the user declined, or Kinopub refused it."""

    code = "link_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Kinopub linking failed: {reason}; run `kinotrakt link kinopub` to try again")
        self.reason = reason


class KinopubOAuth:
    def __init__(self, transport: Transport, base_url: str, client_id: str, client_secret: SecretStr | str) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)

    # --- linking ----------------------------------------------------------------------------------------

    def request_device_code(self) -> DeviceCode:
        form = {"grant_type": "device_code", **self._credentials(None)}
        # Asking again only yields another code, so a retry after a 5xx is harmless.
        response = self._post(DEVICE_PATH, form, idempotent=True)
        body = json_object(response, DEVICE_PATH)
        status = body_status(response, body)
        if status != 200:
            raise self._oauth_error(DEVICE_PATH, status, body)
        return _validate(DeviceCode, body, DEVICE_PATH)

    def poll_device_token(
        self,
        device: DeviceCode,
        clock: Clock,
        on_tick: Callable[[float], None] | None = None,
    ) -> TokenGrant:
        """Poll every ``interval`` seconds until the user approves or the device code expires.

        ``on_tick`` gets the seconds left after each wait (the CLI shows a countdown)."""
        interval = max(1, device.interval)
        ends_at = clock.monotonic() + device.expires_in
        form = {"grant_type": "device_token", "code": device.code.get_secret_value(), **self._credentials(None)}
        while True:
            response = self._post(DEVICE_PATH, form, idempotent=True)
            body = json_object(response, DEVICE_PATH)
            status = body_status(response, body)
            if status == 200:
                return _grant(_validate(TokenResponse, body, DEVICE_PATH), DEVICE_PATH, previous_refresh=None)
            error = _error_code(body)
            if error == "slow_down":
                interval += 5  # RFC 8628 §3.5
            elif error in _EXPIRED:
                raise LinkFailed(f"the code expired before it was approved ({error})")
            elif error in _DENIED:
                raise LinkFailed(f"the request was declined on kino.pub ({error})")
            elif error == "invalid_grant":
                raise LinkFailed("Kinopub no longer accepts this device code (invalid_grant)")
            elif error != "authorization_pending":
                raise self._oauth_error(DEVICE_PATH, status, body)
            remaining = ends_at - clock.monotonic()
            if remaining <= 0:
                raise LinkFailed("the code expired before it was approved")
            clock.sleep(min(interval, remaining))
            if on_tick is not None:
                on_tick(max(0.0, ends_at - clock.monotonic()))

    def notify_device(
        self,
        access_token: str,
        title: str = "kinotrakt",
        hardware: str = "AWS Lambda",
        software: str = f"kinotrakt {__version__}",
    ) -> None:
        """Name this client in the user's Kinopub device list; called once after linking."""
        path = "/v1/device/notify"
        form = {"title": title, "hardware": hardware, "software": software}
        response = send(self._transport, self._base_url, "POST", path, form=form, token=access_token, idempotent=True)
        body = json_object(response, path)
        status = body_status(response, body)
        if status != 200:
            raise BadResponse(SERVICE, path, error_reason(status, body), status)

    # --- refresh ----------------------------------------------------------------------------------------

    def refresh(self, secret: ServiceSecret) -> TokenGrant:
        """Exchange the single-use refresh token (the ``TokenKeeper`` refresher)."""
        if secret.refresh_token is None:
            raise RelinkRequired(SERVICE, "no refresh token stored")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": secret.refresh_token.get_secret_value(),
            **self._credentials(secret),
        }
        # Never re-sent on a lost answer: the token may already be spent (OutcomeUnknown propagates).
        path = TOKEN_PATH
        response = self._post(path, form, idempotent=False)
        if _no_such_route(response):
            # Older clients refreshed on /oauth2/device (docs/kinopub.md#auth-device-flow-only): try there, but only
            # when the first answer says the route does not exist, so the token was certainly not spent. Any other
            # answer (an HTML page with a 200 or a 400 included) may come from a proxy after Kinopub applied
            # the refresh: sending the single-use token again would spend a dead one and lose the link.
            path = DEVICE_PATH
            response = self._post(path, form, idempotent=False)
        try:
            body = json_object(response, path)
            status = body_status(response, body)
            if status == 200:
                return _grant(_validate(TokenResponse, body, path), path, previous_refresh=secret.refresh_token)
        except BadResponse as exc:
            if not 200 <= response.status_code < 300:
                raise
            # Kinopub answered 2xx: it may have rotated the pair already (the old refresh token is then dead),
            # and the new one is in an answer that cannot be read. A lost answer, not a bad one.
            raise OutcomeUnknown(SERVICE, "POST", path, exc.reason) from None
        error = _error_code(body)
        if error in _DEAD_REFRESH:
            raise RelinkRequired(SERVICE, f"Kinopub rejected the refresh token ({error})")
        raise self._oauth_error(path, status, body)

    # --- helpers ----------------------------------------------------------------------------------------

    def _credentials(self, secret: ServiceSecret | None) -> dict[str, str]:
        client_id = (secret.client_id if secret else None) or self._client_id
        client_secret = (secret.client_secret if secret else None) or self._client_secret
        return {"client_id": client_id, "client_secret": client_secret.get_secret_value()}

    def _post(self, path: str, form: dict[str, Any], *, idempotent: bool) -> requests.Response:
        return send(self._transport, self._base_url, "POST", path, form=form, idempotent=idempotent)

    def _oauth_error(self, path: str, status: int, body: dict[str, Any]) -> KinotraktError:
        if _error_code(body) in _BAD_CLIENT:
            return NotConfigured(SERVICE)
        return BadResponse(SERVICE, path, error_reason(status, body), status)


def _no_such_route(response: requests.Response) -> bool:
    """A 404 or 405 that is not an OAuth error of the token endpoint itself: a web server's "no such page"
    (HTML, empty or any other body), answered before anything was processed."""
    if response.status_code not in (404, 405):
        return False
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return True
    return not (isinstance(body, dict) and _error_code(body))


def make_token_keeper(store: TokenStore, oauth: KinopubOAuth, clock: Clock) -> TokenKeeper:
    return TokenKeeper(SERVICE, store, oauth.refresh, clock, kinopub_margin)


def _error_code(body: dict[str, Any]) -> str:
    try:
        return OAuthError.model_validate(body).error.strip()
    except ValidationError:
        return ""


def _validate[M: (DeviceCode, TokenResponse)](model: type[M], body: dict[str, Any], path: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise BadResponse(SERVICE, path, describe_validation_error(exc)) from None


def _grant(response: TokenResponse, path: str, previous_refresh: SecretStr | None) -> TokenGrant:
    # RFC 6749 §6: a server that issues no new refresh token leaves the old one valid.
    refresh = response.refresh_token or previous_refresh
    if refresh is None:
        raise BadResponse(SERVICE, path, "answered a token without a refresh token")
    return TokenGrant(
        access_token=response.access_token.get_secret_value(),
        refresh_token=refresh.get_secret_value(),
        expires_in=response.expires_in,
    )
