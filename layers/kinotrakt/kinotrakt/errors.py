"""Typed errors. Each says what the user must do; none ever carries a token, a body with a token, or a URL
with a query string (docs/ARCHITECTURE.md#security)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal

RunStatus = Literal["failed", "partial"]


class KinotraktError(Exception):
    """Base of every error the sync knows how to report.

    ``run_status`` is what a run that meets this error reports: ``failed`` for what needs the user,
    ``partial`` for what the next scheduled run can finish by itself.
    """

    run_status: ClassVar[RunStatus] = "failed"
    code: ClassVar[str] = "error"


# --- transport ------------------------------------------------------------------------------------------


class OutOfTime(KinotraktError):
    """A wait (pacing, Retry-After, backoff) would cross the Lambda deadline; stop and resume next run."""

    run_status = "partial"
    code = "out_of_time"


class ServiceUnavailable(KinotraktError):
    """Retries exhausted on a temporary failure (429, 5xx, connection error, timeout).

    ``host`` is the host the requests went to; ``unreachable`` is True when no answer came at all (connection
    refused, name not resolved, timeout), so the CLI can say what to check rather than "try again later"."""

    run_status = "partial"
    code = "service_unavailable"

    def __init__(self, service: str, detail: str, *, host: str | None = None, unreachable: bool = False) -> None:
        super().__init__(f"{service} is unavailable after retries: {detail}; the next run will try again")
        self.service = service
        self.detail = detail
        self.host = host
        self.unreachable = unreachable


class OutcomeUnknown(KinotraktError):
    """A non-idempotent request was sent but its answer never arrived (timeout, reset, 5xx after sending).

    The transport never re-sends it: the caller must find out whether it was applied."""

    run_status = "partial"
    code = "outcome_unknown"

    def __init__(self, service: str, method: str, path: str, detail: str) -> None:
        super().__init__(f"{service} {method} {path}: outcome unknown ({detail})")
        self.service = service
        self.method = method
        self.path = path
        self.detail = detail


class RateLimited(KinotraktError):
    """A service asked for a longer pause (``Retry-After``) than this run may wait: no more requests to it in
    this run; the next run after ``resume_after`` carries on (docs/trakt.md#limits-and-errors, 2026: do not sleep
    5 minutes inside a Lambda)."""

    run_status = "partial"
    code = "rate_limited"

    def __init__(self, service: str, resume_after: datetime) -> None:
        # Shown and reported to the second: rounded up, so a run at the time shown is never early.
        if resume_after.microsecond:
            resume_after = resume_after.replace(microsecond=0) + timedelta(seconds=1)
        when = resume_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(
            f"{service.capitalize()} rate limit: it asked kinotrakt to pause until {when}, longer than this run "
            f"may wait; nothing more goes to {service.capitalize()} in this run, and a run after {when} carries on"
        )
        self.service = service
        self.resume_after = resume_after


class BadResponse(KinotraktError):
    """The service answered something that is not what its API promises (HTML, invalid JSON, wrong shape)."""

    run_status = "partial"
    code = "bad_response"

    def __init__(self, service: str, path: str, reason: str, status: int | None = None) -> None:
        where = f"{service} {path}" + (f" (HTTP {status})" if status is not None else "")
        super().__init__(f"{where}: {reason}")
        self.service = service
        self.path = path
        self.reason = reason
        self.status = status


class ItemRefused(BadResponse):
    """A 4xx that is about the one item asked for, not the account or the app: 400, 404, 414 (a URI too long
    for a huge title), 422, ... Where the request was a lookup for one view, the view is left unmatched with
    the reason and the run goes on; elsewhere it is a bad response like any other."""


class ForbiddenPath(KinotraktError):
    """A Kinopub path outside the read-only allow-list was requested (a bug, never a user error)."""

    code = "forbidden_path"


# --- auth -----------------------------------------------------------------------------------------------


class RelinkRequired(KinotraktError):
    """The refresh token is dead (or was never stored): only linking again fixes it."""

    code = "relink_required"

    def __init__(self, service: Literal["kinopub", "trakt"], reason: str) -> None:
        super().__init__(
            f"{service} authorization is no longer valid ({reason}); "
            f"run `kinotrakt link {service}` to link the account again"
        )
        self.service = service
        self.reason = reason


class NotLinked(RelinkRequired):
    """The account was never linked (no tokens stored yet): the same code and alarm as a dead link, in words that
    fit a first run."""

    def __init__(self, service: Literal["kinopub", "trakt"]) -> None:
        KinotraktError.__init__(
            self, f"{service.capitalize()} is not linked yet; run `kinotrakt link {service}` to link the account"
        )
        self.service = service
        self.reason = "not linked yet"


class NotConfigured(KinotraktError):
    """Client credentials are missing from the secret."""

    code = "not_configured"

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} client credentials are missing; run `kinotrakt setup` and then link the account")
        self.service = service


class MalformedSecret(KinotraktError):
    """The secret's value is not the contract's JSON (docs/contract.md#secrets); the reason names fields and
    error types, never values.

    ``version`` is the id of the unreadable version, so ``setup --reset`` can replace exactly that one."""

    code = "malformed_secret"

    def __init__(self, secret_id: str, reason: str, version: str | None = None) -> None:
        super().__init__(
            f"the secret {secret_id} does not hold kinotrakt's token JSON ({reason}); "
            "`kinotrakt setup --reset` overwrites it, then link the account again"
        )
        self.secret_id = secret_id
        self.reason = reason
        self.version = version


class TokenRefreshOutcomeUnknown(OutcomeUnknown):
    """A token refresh was sent but its answer was lost or unreadable, and nobody stored a newer pair.

    The service may have applied it (refresh tokens are single-use: the stored one would then be dead) or
    not. The run stops without writing the secret; the next run refreshes with the stored token again."""

    code = "refresh_outcome_unknown"

    def __init__(self, service: Literal["kinopub", "trakt"], cause: OutcomeUnknown) -> None:
        KinotraktError.__init__(
            self,
            f"the answer to the {service.capitalize()} token refresh was lost ({cause.detail}); nothing was "
            f"stored. The next run refreshes with the stored token again; if {service.capitalize()} had already "
            f"applied the lost refresh, that token is dead and the run will ask you to run `kinotrakt link {service}`",
        )
        self.service = service
        self.method = cause.method
        self.path = cause.path
        self.detail = cause.detail


class ConcurrentTokenWrite(KinotraktError):
    """Somebody else wrote the secret since we read it; we did not overwrite their tokens."""

    run_status = "partial"
    code = "concurrent_token_write"


# --- Trakt account states: stop the run at the first such answer (docs/ARCHITECTURE.md#time-http-and-failures)


class TraktAccountError(KinotraktError):
    code = "trakt_account"
    status: ClassVar[int] = 0
    message: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__(self.message)


class TraktUnauthorized(TraktAccountError):
    code = "trakt_unauthorized"
    status = 401
    message = (
        "Trakt rejected the access token even after a refresh (HTTP 401); "
        "run `kinotrakt link trakt` to link the account again"
    )


class TraktAppRejected(TraktAccountError):
    """Trakt's own JSON 403: the API app (the secret's client_id) is unknown, unapproved or deleted. Since
    2026-07-31 Trakt deletes the API apps of non-VIP accounts, after which every request with that client id,
    public ones included, gets this answer (docs/trakt.md#tokens, 2026)."""

    code = "trakt_app_rejected"
    status = 403
    message = (
        "Trakt rejected the API app (HTTP 403 JSON): the Trakt API app may have been deleted or not approved. "
        "Creating Trakt API apps needs Trakt VIP (since 2026-07-31 Trakt deletes the apps of non-VIP "
        "accounts): create a new app at https://trakt.tv/oauth/applications, then run `kinotrakt setup` with "
        "its new client id (and client secret) and link Trakt again"
    )


class TraktCloudflareBlocked(TraktAccountError):
    code = "trakt_cloudflare_blocked"
    status = 403
    message = (
        "Trakt's Cloudflare front blocked the request (HTTP 403 HTML page); this is usually temporary or an "
        "IP reputation issue - wait for the next run, and open an issue if it persists"
    )


class TraktAccountLimit(TraktAccountError):
    code = "trakt_account_limit"
    status = 420
    message = (
        "Trakt account limit exceeded (HTTP 420): the history or a list is over the free account's limit; "
        "upgrade to VIP or remove items on trakt.tv"
    )


class TraktAccountLocked(TraktAccountError):
    code = "trakt_account_locked"
    status = 423
    message = (
        "Trakt says the account is locked or deactivated (HTTP 423); contact Trakt support - kinotrakt "
        "stopped and will not write until the account is unlocked"
    )


class TraktVipRequired(TraktAccountError):
    code = "trakt_vip_required"
    status = 426
    message = "Trakt answered VIP only (HTTP 426): this feature needs a Trakt VIP account"
