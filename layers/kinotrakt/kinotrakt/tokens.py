"""Access tokens that stay alive: refresh before expiry, persist the rotated pair first, one refresh at a time.

Both services rotate refresh tokens on every refresh and kill the old one (docs/trakt.md#tokens,
docs/kinopub.md#auth-device-flow-only): a new
pair that is not stored at once is a lost account link. So :meth:`TokenKeeper.refresh` writes the new
pair to the token store before it returns, and nothing else happens in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import SecretStr

from kinotrakt.clock import Clock
from kinotrakt.errors import (
    ConcurrentTokenWrite,
    KinotraktError,
    NotConfigured,
    NotLinked,
    OutcomeUnknown,
    RelinkRequired,
    TokenRefreshOutcomeUnknown,
)
from kinotrakt.observability import logger
from kinotrakt.storage.ports import ServiceSecret, StoredSecret, TokenStore

Service = Literal["kinopub", "trakt"]

# Waits between tries to store a refreshed pair (see TokenKeeper._save_refreshed).
SAVE_RETRY_DELAYS = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint's answer, already validated by the service client."""

    access_token: str
    refresh_token: str
    expires_in: int
    created_at: int | None = None  # Trakt sends it; Kinopub does not

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in}, created_at={self.created_at})"


class Refresher(Protocol):
    def __call__(self, secret: ServiceSecret) -> TokenGrant:
        """Exchange ``secret.refresh_token``; raise RelinkRequired when the service says it is dead."""
        ...


def kinopub_margin(secret: ServiceSecret) -> timedelta:
    return timedelta(minutes=10)


def trakt_margin(secret: ServiceSecret) -> timedelta:
    """``min(1 day, half the lifetime)`` when the lifetime is known, else 1 day (docs/ARCHITECTURE.md#tokens).

    Trakt's access-token lifetime changed three times (3 months → 24 h → 7 days), so it is read from
    each grant, never assumed."""
    day = timedelta(days=1)
    if secret.issued_at is not None and secret.expires_at is not None:
        return min(day, timedelta(seconds=max(0, secret.expires_at - secret.issued_at) / 2))
    return day


def apply_grant(secret: ServiceSecret, grant: TokenGrant, now: datetime) -> ServiceSecret:
    issued = grant.created_at if grant.created_at is not None else int(now.timestamp())
    return secret.model_copy(
        update={
            "access_token": SecretStr(grant.access_token),
            "refresh_token": SecretStr(grant.refresh_token),
            "issued_at": issued,
            "expires_at": issued + grant.expires_in,
        }
    )


class TokenKeeper:
    """Hands out a valid access token for one service; the single writer of its secret during a run."""

    def __init__(
        self,
        service: Service,
        store: TokenStore,
        refresher: Refresher,
        clock: Clock,
        margin: Callable[[ServiceSecret], timedelta],
    ) -> None:
        self.service = service
        self._store = store
        self._refresher = refresher
        self._clock = clock
        self._margin = margin
        self._stored: StoredSecret | None = None
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def secret(self) -> ServiceSecret:
        return self._load().secret

    def _load(self) -> StoredSecret:
        if self._stored is None:
            self._stored = self._store.load()
        return self._stored

    def client_id(self) -> str:
        secret = self.secret
        if not secret.client_id:
            raise NotConfigured(self.service)
        return secret.client_id

    def access_token(self) -> str:
        """A token valid for at least the margin; refreshes (and persists) first when it is not."""
        with self._lock:
            secret = self._load().secret
            if secret.access_token is None or secret.refresh_token is None:
                if secret.client_id is None:
                    raise NotConfigured(self.service)
                raise NotLinked(self.service)
            expires_at = secret.expires_at
            deadline = self._clock.now() + self._margin(secret)
            if expires_at is None or expires_at <= deadline.timestamp():
                return self._refresh_locked(reason="expires soon")
            return secret.access_token.get_secret_value()

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        """A 401 mid-run: one refresh, unless another caller already replaced the rejected token."""
        with self._lock:
            current = self._load().secret.access_token
            if current is not None and current.get_secret_value() != rejected_token:
                return current.get_secret_value()
            return self._refresh_locked(reason="rejected with 401")

    def _refresh_locked(self, reason: str) -> str:
        # Re-read first: if someone else (a re-link, the CLI) wrote the secret since we loaded it, their
        # pair is the live one and our refresh token may already be dead.
        stored = self._store.load()
        if self._stored is not None and stored.version != self._stored.version:
            self._stored = stored
            token = stored.secret.access_token
            expires_at = stored.secret.expires_at or 0
            if token is not None and expires_at > (self._clock.now() + self._margin(stored.secret)).timestamp():
                return token.get_secret_value()
        self._stored = stored
        secret = stored.secret
        if secret.refresh_token is None:
            raise RelinkRequired(self.service, "no refresh token stored")
        if not secret.client_id or secret.client_secret is None:
            raise NotConfigured(self.service)
        logger.info("refreshing access token", extra={"remote": self.service, "reason": reason})
        try:
            grant = self._refresher(secret)
        except OutcomeUnknown as exc:
            return self._after_lost_refresh(stored, exc)
        self.refreshes += 1
        updated = apply_grant(secret, grant, self._clock.now())
        # Persist before anything else: the old refresh token is already dead.
        try:
            self._stored = self._save_refreshed(updated, expected_version=stored.version)
        except ConcurrentTokenWrite:
            # Someone wrote a pair while we refreshed: theirs is valid too, so keep it rather than clobber it.
            logger.warning(
                "token secret changed during refresh; using the newer secret", extra={"remote": self.service}
            )
            self._stored = self._store.load()
            token = self._stored.secret.access_token
            if token is None:
                raise RelinkRequired(self.service, "the secret was cleared during a refresh") from None
            return token.get_secret_value()
        return grant.access_token

    def _after_lost_refresh(self, refreshed_from: StoredSecret, cause: OutcomeUnknown) -> str:
        """The refresh was sent but its answer was lost or unreadable: the service may have applied it.

        Read the secret back. A pair someone else stored meanwhile (a re-link, another process's refresh) is
        live and wins. Otherwise nothing is stored and the run stops: the stored refresh token is spent if
        the refresh was applied, and sending it again in this run cannot tell; the next run tries it once
        more, and the service's refusal (RelinkRequired) then says the account must be linked again."""
        self.refreshes += 1
        current = self._store.load()
        token = current.secret.access_token
        if current.version != refreshed_from.version and token is not None:
            logger.warning(
                "token refresh answer lost; another writer stored a newer pair, using it",
                extra={"remote": self.service, "error": cause.detail},
            )
            self._stored = current
            return token.get_secret_value()
        self._stored = current
        logger.error(
            "token refresh answer lost; nothing stored, the next run refreshes again",
            extra={"remote": self.service, "error": cause.detail},
        )
        raise TokenRefreshOutcomeUnknown(self.service, cause) from None

    def _save_refreshed(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        """Store a freshly refreshed pair, trying again when the store fails (a throttled or failed Secrets
        Manager call, after the SDK's own retries): a pair that is never stored is a lost account link.
        A write that was applied although it reported a failure shows up as ConcurrentTokenWrite on the
        next try, and the caller then reads that (our) version back."""
        for delay in SAVE_RETRY_DELAYS:
            try:
                return self._store.save(secret, expected_version=expected_version)
            except KinotraktError:
                raise
            except Exception as exc:
                logger.warning(
                    "could not store the refreshed token pair; trying again",
                    extra={"remote": self.service, "error": type(exc).__name__, "retry_in": delay},
                )
                self._clock.sleep(delay)
        return self._store.save(secret, expected_version=expected_version)


# Secrets Manager refuses a write based on a stale read; the sync may refresh the secret meanwhile.
SAVE_ATTEMPTS = 3


def update_secret(store: TokenStore, change: Callable[[ServiceSecret], ServiceSecret]) -> ServiceSecret:
    """Read, change, write with the version read; again (up to SAVE_ATTEMPTS) if someone wrote in between.

    For the writers outside a sync run (the CLI, the login callback): they never clobber a refresh."""
    attempt = 0
    while True:
        attempt += 1
        stored = store.load()
        updated = change(stored.secret)
        try:
            store.save(updated, expected_version=stored.version)
        except ConcurrentTokenWrite:
            if attempt >= SAVE_ATTEMPTS:
                raise
            logger.warning("secret changed while writing it; writing again on the newer version")
        else:
            return updated
