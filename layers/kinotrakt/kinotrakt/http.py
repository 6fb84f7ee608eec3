"""The one HTTP transport both services use: timeouts, User-Agent, pacing, retries, Retry-After, deadline.

Policy (DESIGN §4):
- 429 → wait ``Retry-After`` (+ jitter), bounded attempts;
- 500, 502-504, 520-522, connection errors and timeouts → exponential backoff with jitter, bounded —
  but only for requests that are safe to repeat. A non-idempotent request (a Trakt history POST, a
  single-use refresh token) that may have reached the server is **never re-sent**: it raises
  :class:`OutcomeUnknown` and the caller decides (re-read, or re-link);
- every wait goes through the deadline: a wait that would cross it raises :class:`OutOfTime` instead;
- writes are spaced start-to-start by ``min_write_interval`` (Trakt: 1 write/s per user), GETs are kept
  under ``get_limit`` per ``get_window`` seconds (Trakt: 1000 per 5 minutes).
"""

from __future__ import annotations

import json
import random
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import BadResponse, OutcomeUnknown, OutOfTime, ServiceUnavailable
from kinotrakt.observability import logger

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522})


@dataclass
class CallCounter:
    """Every request sent, per service and per endpoint: OAuth and retries included (report ``http_calls``)."""

    by_service: Counter[str] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    waited_seconds: float = 0.0

    def count(self, service: str, method: str, endpoint: str) -> None:
        self.by_service[service] += 1
        self.by_endpoint[f"{service} {method} {endpoint}"] += 1

    def total(self, service: str) -> int:
        return self.by_service[service]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0


@dataclass(frozen=True)
class Pacing:
    min_write_interval: float = 0.0
    get_limit: int | None = None
    get_window: float = 300.0


class Transport:
    def __init__(
        self,
        service: str,
        *,
        clock: Clock,
        deadline: Deadline,
        counter: CallCounter,
        user_agent: str,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        pacing: Pacing | None = None,
        session: requests.Session | None = None,
        endpoint_label: Callable[[str], str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.deadline = deadline
        self.counter = counter
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.pacing = pacing or Pacing()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._endpoint_label = endpoint_label or _path_of
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._last_write_start: float | None = None
        self._recent_gets: deque[float] = deque()

    # --- waiting ----------------------------------------------------------------------------------------

    def wait(self, seconds: float, why: str) -> None:
        """Sleep on the clock, or raise OutOfTime when the wait would cross the deadline."""
        if seconds <= 0:
            return
        if not self.deadline.allows_wait(seconds):
            raise OutOfTime(f"{self.service}: waiting {seconds:.1f}s ({why}) would cross the Lambda deadline")
        self.counter.waited_seconds += seconds
        self.clock.sleep(seconds)

    def _pace(self, method: str) -> None:
        now = self.clock.monotonic()
        if method != "GET":
            if self._last_write_start is not None and self.pacing.min_write_interval > 0:
                self.wait(self._last_write_start + self.pacing.min_write_interval - now, "write pacing")
            self._last_write_start = self.clock.monotonic()
            return
        limit = self.pacing.get_limit
        if limit is None:
            return
        window = self.pacing.get_window
        while self._recent_gets and self._recent_gets[0] <= now - window:
            self._recent_gets.popleft()
        if len(self._recent_gets) >= limit:
            self.wait(self._recent_gets[0] + window - now, "GET budget")
            self._recent_gets.popleft()
        self._recent_gets.append(self.clock.monotonic())

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    # --- sending ----------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        pass_through: Collection[int] = (),
    ) -> requests.Response:
        """Send with the retry policy; return the final response (any status the policy does not retry).

        ``idempotent`` defaults to True for GET and False otherwise. Statuses in ``pass_through`` are returned
        to the caller untouched, for protocols that give them their own meaning (an OAuth device poll's 429
        means "poll slower", not "retry now")."""
        safe = method == "GET" if idempotent is None else idempotent
        endpoint = self._endpoint_label(url)
        attempt = 0
        while True:
            attempt += 1
            if self.deadline.expired():
                raise OutOfTime(f"{self.service}: the Lambda deadline is near; not starting {method} {endpoint}")
            self._pace(method)
            self.counter.count(self.service, method, endpoint)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=form,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                detail = type(exc).__name__
                if not safe and not _never_sent(exc):
                    raise OutcomeUnknown(self.service, method, endpoint, detail) from None
                logger.warning("request failed", extra={"service": self.service, "endpoint": endpoint, "error": detail})
                if attempt >= self.retry.max_attempts:
                    raise ServiceUnavailable(self.service, f"{method} {endpoint}: {detail}") from None
                self.wait(self._backoff(attempt), f"backoff after {detail}")
                continue

            status = response.status_code
            if status in pass_through:
                return response
            if status == 429:
                # Rejected before processing, so even a write is safe to repeat after the wait.
                delay = _retry_after(response)
                delay = (delay if delay is not None else self._backoff(attempt)) + self._rng.uniform(0, 1)
                logger.warning(
                    "rate limited",
                    extra={"service": self.service, "endpoint": endpoint, "retry_after": round(delay, 1)},
                )
                if attempt >= self.retry.max_attempts:
                    raise ServiceUnavailable(self.service, f"{method} {endpoint}: still 429 after retries")
                self.wait(delay, "Retry-After")
                continue
            if status in RETRYABLE_STATUSES:
                if not safe:
                    raise OutcomeUnknown(self.service, method, endpoint, f"HTTP {status}")
                logger.warning("server error", extra={"service": self.service, "endpoint": endpoint, "status": status})
                if attempt >= self.retry.max_attempts:
                    raise ServiceUnavailable(self.service, f"{method} {endpoint}: HTTP {status}")
                delay = _retry_after(response)
                self.wait(delay if delay is not None else self._backoff(attempt), f"backoff after HTTP {status}")
                continue
            return response


def _path_of(url: str) -> str:
    return urlsplit(url).path


def _never_sent(exc: Exception) -> bool:
    """True when the connection was never established, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: object = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ in {"NewConnectionError", "NameResolutionError"}


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    date_header = response.headers.get("Date")
    try:
        now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError):
        now = None
    if now is None:
        return None
    return max(0.0, (when - now).total_seconds())


def is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "")
    head = response.content[:200].lstrip().lower()
    return "html" in content_type or head.startswith((b"<!doctype", b"<html"))


def decode_json(response: requests.Response, service: str) -> Any:
    """The body as JSON, or a BadResponse that names the path (never the query string, never the body)."""
    path = urlsplit(response.url).path
    if is_html(response):
        raise BadResponse(service, path, "answered an HTML page instead of JSON", response.status_code)
    try:
        return json.loads(response.content)
    except ValueError:
        raise BadResponse(service, path, "answered invalid JSON", response.status_code) from None
