"""The one HTTP transport both services use: timeouts, User-Agent, pacing, retries, Retry-After, deadline.

Policy:
- 429 → wait ``Retry-After`` (+ jitter), bounded attempts; a ``Retry-After`` longer than ``max_retry_wait`` or
  past the deadline is not waited out: :class:`RateLimited`, and nothing more goes to that service this run;
- 500, 502-504, 520-522, connection errors, timeouts and broken answers (truncated, undecodable) →
  exponential backoff with jitter, bounded — but only for requests that are safe to repeat. A
  non-idempotent request (a Trakt history POST, a single-use refresh token) that may have reached the
  server is **never re-sent**: it raises :class:`OutcomeUnknown` and the caller decides (re-read, or re-link);
- every answer is read whole here, under a size cap and a total time limit, so no upstream answer can
  exhaust memory or hold a run (requests' own timeout is per socket read: a server that sends one byte
  every few seconds never trips it);
- every wait goes through the deadline: a wait that would cross it raises :class:`OutOfTime` instead;
- writes are spaced start-to-start by ``min_write_interval`` (Trakt: 1 write/s per user), GETs are kept
  under ``get_limit`` per ``get_window`` seconds (Trakt: 500 per 5 minutes, 2026).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import math
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import pydantic_core
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from requests.sessions import _Settings

from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import BadResponse, OutcomeUnknown, OutOfTime, RateLimited, ServiceUnavailable
from kinotrakt.observability import logger

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522})

# No answer either service gives comes near this (a long show's seasons with every episode is a few hundred
# KB); it is counted after decompression, so a small gzip bomb is refused long before it is inflated.
MAX_BODY_BYTES = 5 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"  # the json module skipped one; pydantic-core's parser does not

# Cloudflare's own 429 page (Trakt's GET limit since 2026, trakt/trakt-api#922) comes with Retry-After: 300;
# one without it is given the same pause rather than a quick retry, which can turn into a temporary ban.
CLOUDFLARE_RETRY_AFTER = 300.0
# A Retry-After beyond a week is nonsense (or hostile); it is read as a week, so ``resume_after`` stays a date.
_LONGEST_RETRY_AFTER = 7 * 24 * 3600.0

# Everything requests, urllib3 and the socket layer raise for a failed exchange: requests wraps most of it
# (ConnectionError, Timeout, ChunkedEncodingError, ContentDecodingError, InvalidHeader, TooManyRedirects…),
# and the rest is what a cut connection may raise before requests sees it.
_EXCHANGE_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@dataclass
class CallCounter:
    """Every request sent, per service: OAuth and retries included (report ``http_calls``)."""

    by_service: Counter[str] = field(default_factory=Counter)

    def count(self, service: str) -> None:
        self.by_service[service] += 1

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


@dataclass(frozen=True)
class Limits:
    """What one answer may cost. ``total_seconds`` is real time from sending to the last byte, whatever the
    per-read ``read_timeout`` says; ``max_retry_wait`` is the longest Retry-After this run sleeps through."""

    read_timeout: float = 20.0
    total_seconds: float = 60.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_retry_wait: float = 30.0


@dataclass
class _Sending:
    """One request across its attempts."""

    method: str
    endpoint: str
    safe: bool  # repeating it cannot apply it twice
    host: str = ""
    attempt: int = 0


class _Broken(Exception):
    """An answer that started but could not be read whole; ``retryable`` says whether a GET may try again."""

    def __init__(self, reason: str, *, retryable: bool, out_of_time: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.out_of_time = out_of_time


class Transport:
    def __init__(
        self,
        service: str,
        *,
        clock: Clock,
        deadline: Deadline,
        counter: CallCounter,
        user_agent: str,
        limits: Limits | None = None,
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
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.pacing = pacing or Pacing()
        self.session = session or time_boxed_session()
        self.session.headers["User-Agent"] = user_agent
        self._endpoint_label = endpoint_label or _path_of
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._last_write_start: float | None = None
        self._recent_gets: deque[float] = deque()
        self._resume_after: datetime | None = None

    # --- waiting ----------------------------------------------------------------------------------------

    def wait(self, seconds: float, why: str) -> None:
        """Sleep on the clock, or raise OutOfTime when the wait would cross the deadline."""
        if seconds <= 0:
            return
        if not self.deadline.allows_wait(seconds):
            raise OutOfTime(f"{self.service}: waiting {seconds:.1f}s ({why}) would cross the Lambda deadline")
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

    def seed_get_times(self, sent_at: Iterable[datetime]) -> None:
        """Count GETs sent before this transport existed (an earlier run, same user) against the budget.

        The budget is per user, not per process: a run that starts a minute after a busy one must not spend
        the same 5 minutes' GETs again. Times older than the window are ignored; a time after now (stored rounded
        up, or another clock a little ahead) counts as now rather than not at all."""
        now, mono = self.clock.now(), self.clock.monotonic()
        window = self.pacing.get_window
        earlier = [mono - max(age, 0.0) for at in sent_at if (age := (now - at).total_seconds()) < window]
        self._recent_gets = deque(sorted([*earlier, *self._recent_gets]))

    def get_times(self) -> list[datetime]:
        """When the GETs still inside the budget window were sent (wall clock), to hand to a later run."""
        now, mono = self.clock.now(), self.clock.monotonic()
        return [now - timedelta(seconds=mono - at) for at in self._recent_gets if mono - at < self.pacing.get_window]

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
        """Send with the retry policy; return the final response, its body already read (any status the
        policy does not retry).

        ``idempotent`` defaults to True for GET and False otherwise. Statuses in ``pass_through`` are returned
        to the caller untouched, for protocols that give them their own meaning (an OAuth device poll's 429
        means "poll slower", not "retry now")."""
        safe = method == "GET" if idempotent is None else idempotent
        sending = _Sending(method, self._endpoint_label(url), safe, host=urlsplit(url).netloc)
        while True:
            sending.attempt += 1
            if self._resume_after is not None:
                # "Do not keep calling" (docs/trakt.md#limits-and-errors, 2026): not one more request this run.
                raise RateLimited(self.service, self._resume_after)
            if self.deadline.expired():
                raise OutOfTime(
                    f"{self.service}: the Lambda deadline is near; not starting {method} {sending.endpoint}"
                )
            self._pace(method)
            self.counter.count(self.service)
            try:
                response = self._exchange(method, url, params, json_body, form, headers)
            except _Broken as broken:
                pause = self._after_broken_answer(sending, broken)
            except _EXCHANGE_FAILURES as exc:
                pause = self._after_failed_exchange(sending, exc)
            else:
                status = response.status_code
                if status in pass_through:
                    return response
                if status == 429:
                    pause = self._after_rate_limit(sending, response)
                elif status in RETRYABLE_STATUSES:
                    pause = self._after_server_error(sending, status, response)
                else:
                    return response
            self.wait(*pause)

    # Each ``_after_*`` raises the typed error that ends the request, or says how long to wait before the next
    # attempt and why. The first two run while a failure is being handled: ``from None`` keeps its text (an
    # InvalidHeader quotes the header: a token) out of every traceback.

    def _after_broken_answer(self, sending: _Sending, broken: _Broken) -> tuple[float, str]:
        if not sending.safe:
            raise OutcomeUnknown(self.service, sending.method, sending.endpoint, broken.reason) from None
        if broken.out_of_time:
            raise OutOfTime(f"{self.service}: the Lambda deadline came while reading {sending.endpoint}") from None
        logger.warning(
            "answer unreadable", extra={"remote": self.service, "endpoint": sending.endpoint, "error": broken.reason}
        )
        if not broken.retryable:
            raise BadResponse(self.service, sending.endpoint, broken.reason) from None
        if sending.attempt >= self.retry.max_attempts:
            raise BadResponse(self.service, sending.endpoint, f"{broken.reason} ({sending.attempt} times)") from None
        return self._backoff(sending.attempt), f"backoff after {broken.reason}"

    def _after_failed_exchange(self, sending: _Sending, exc: Exception) -> tuple[float, str]:
        detail = type(exc).__name__
        if not sending.safe and not _never_sent(exc):
            raise OutcomeUnknown(self.service, sending.method, sending.endpoint, detail) from None
        logger.warning("request failed", extra={"remote": self.service, "endpoint": sending.endpoint, "error": detail})
        if sending.attempt >= self.retry.max_attempts:
            raise ServiceUnavailable(
                self.service, f"{sending.method} {sending.endpoint}: {detail}", host=sending.host, unreachable=True
            ) from None
        return self._backoff(sending.attempt), f"backoff after {detail}"

    def _after_rate_limit(self, sending: _Sending, response: requests.Response) -> tuple[float, str]:
        # Rejected before processing, so even a write is safe to repeat after the wait.
        retry_after = _retry_after(response)
        if retry_after is None and is_cloudflare_page(response):
            retry_after = CLOUDFLARE_RETRY_AFTER
        if retry_after is not None and (
            retry_after > self.limits.max_retry_wait or not self.deadline.allows_wait(retry_after)
        ):
            self._resume_after = self.clock.now() + timedelta(seconds=retry_after)
            logger.warning(
                "rate limited for longer than this run may wait; no more requests to this service",
                extra={
                    "remote": self.service,
                    "endpoint": sending.endpoint,
                    "retry_after": round(retry_after, 1),
                    "resume_after": self._resume_after.isoformat(),
                },
            )
            raise RateLimited(self.service, self._resume_after)
        delay = (retry_after if retry_after is not None else self._backoff(sending.attempt)) + self._rng.uniform(0, 1)
        logger.warning(
            "rate limited",
            extra={"remote": self.service, "endpoint": sending.endpoint, "retry_after": round(delay, 1)},
        )
        if sending.attempt >= self.retry.max_attempts:
            raise ServiceUnavailable(
                self.service, f"{sending.method} {sending.endpoint}: still 429 after retries", host=sending.host
            )
        return delay, "Retry-After"

    def _after_server_error(self, sending: _Sending, status: int, response: requests.Response) -> tuple[float, str]:
        if not sending.safe:
            raise OutcomeUnknown(self.service, sending.method, sending.endpoint, f"HTTP {status}")
        logger.warning("server error", extra={"remote": self.service, "endpoint": sending.endpoint, "status": status})
        if sending.attempt >= self.retry.max_attempts:
            raise ServiceUnavailable(
                self.service, f"{sending.method} {sending.endpoint}: HTTP {status}", host=sending.host
            )
        retry_after = _retry_after(response)
        delay = self._backoff(sending.attempt) if retry_after is None else min(retry_after, self.limits.max_retry_wait)
        return delay, f"backoff after HTTP {status}"

    def _exchange(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        json_body: Any,
        form: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> requests.Response:
        """One request and its whole answer, within the total time limit (and the deadline, if sooner)."""
        left = max(0.0, self.deadline.remaining())
        with _TimeBox(min(self.limits.total_seconds, left), deadline=left < self.limits.total_seconds) as box:
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=form,
                    headers=headers,
                    timeout=self.limits.read_timeout,
                    allow_redirects=False,
                    stream=True,
                )
                self._read_body(response, box)
            except Exception:
                # Whatever a cut connection raised, the cause is the time limit.
                if box.expired:
                    raise box.broken() from None
                raise
            return response

    def _read_body(self, response: requests.Response, box: _TimeBox) -> None:
        """Read the (decompressed) body into the response, or raise _Broken; the connection is closed on
        any failure, so a half-read answer never goes back to the pool."""
        if response.raw is None:  # an adapter that built the response in memory (tests)
            return
        try:
            declared = _int_header(response, "Content-Length")
            encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            if declared is not None and declared > self.limits.max_body_bytes and not encoded:
                raise _Broken(_too_large(self.limits.max_body_bytes), retryable=False)
            chunks: list[bytes] = []
            size = 0
            # Time running out is acted on only when more of the answer follows: an answer that arrived whole
            # is used, above all a write's or a refresh's, whose outcome would otherwise be unknown for nothing.
            late: _Broken | None = None
            try:
                for chunk in response.iter_content(_READ_CHUNK_BYTES):
                    if late is not None:
                        raise late
                    size += len(chunk)
                    if size > self.limits.max_body_bytes:
                        raise _Broken(_too_large(self.limits.max_body_bytes), retryable=False)
                    chunks.append(chunk)
                    if box.expired:
                        late = box.broken()
                    elif self.deadline.expired():
                        late = _Broken("the deadline came while reading the answer", retryable=False, out_of_time=True)
            except requests.exceptions.ContentDecodingError:
                raise _Broken("answered a body that could not be decompressed", retryable=True) from None
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, OSError):
                if box.expired:
                    raise box.broken() from None
                raise _Broken("the answer was cut off", retryable=True) from None
        except BaseException:
            response.close()
            raise
        # requests' own slot for a body that has been read: ``.content``, ``.json()`` and ``.text`` use it.
        response._content = b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"answered more than {limit // (1024 * 1024)} MiB; refused"


class _TimeBox:
    """Cuts the connection of the request running in this thread when its time is up.

    requests' ``timeout`` bounds each socket read, not the exchange: a server that sends a header line or a
    body byte every few seconds keeps a request alive for as long as it likes. At the limit the watchdog
    shuts the socket down, which wakes the blocked read with an error that :meth:`Transport._exchange` turns
    into :class:`_Broken`. The connection classes of :func:`time_boxed_session` hand the socket over."""

    _current = threading.local()

    def __init__(self, seconds: float, *, deadline: bool) -> None:
        self.seconds = seconds
        self.deadline = deadline  # the run's deadline comes before the per-request limit
        self.expired = False
        self.done = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None

    def __enter__(self) -> Self:
        _TimeBox._current.box = self
        _watchdog.add(self, time.monotonic() + self.seconds)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:  # from here on, the watchdog leaves this socket alone: it may serve another request
            self.done = True
        _TimeBox._current.box = None

    @classmethod
    def watch(cls, sock: socket.socket | None) -> None:
        """The socket the current request talks over (called on connect and on reuse of a kept-alive one)."""
        box: _TimeBox | None = getattr(cls._current, "box", None)
        if box is None or sock is None:
            return
        with box._lock:
            box._socket = sock
            if box.expired:
                _cut(sock)

    def broken(self) -> _Broken:
        if self.deadline:
            return _Broken("the deadline came while waiting for the answer", retryable=False, out_of_time=True)
        return _Broken(f"the answer took longer than {self.seconds:g} s", retryable=False)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            if self._socket is not None:
                _cut(self._socket)


class _Watchdog:
    """One daemon thread that expires every time box of the process: a timer thread per request would cost
    a thread start (a quarter of a millisecond) on each of a backfill's thousands of calls."""

    def __init__(self) -> None:
        self._wakeup = threading.Condition()
        self._due: list[tuple[float, int, _TimeBox]] = []  # a heap by expiry; finished boxes leave lazily
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, box: _TimeBox, at: float) -> None:
        with self._wakeup:
            heapq.heappush(self._due, (at, next(self._order), box))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kinotrakt-http-watchdog", daemon=True)
                self._thread.start()
            elif self._due[0][2] is box:
                self._wakeup.notify()  # due before everything else: sleep less

    def _run(self) -> None:
        with self._wakeup:
            while True:
                while self._due and self._due[0][2].done:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wakeup.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._wakeup.wait(left)
                    continue
                heapq.heappop(self._due)[2].expire()


_watchdog = _Watchdog()


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would unwrap it under the reading thread's
    # feet (ValueError instead of a connection error).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# The socket is taken when it is connected and when a kept-alive one is reused: http.client lets go of
# ``connection.sock`` as soon as the headers say ``Connection: close``, while the body is still being read.
class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _TimeBox.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _TimeBox.watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _TimeBox.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _TimeBox.watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _TimeBoxedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _HeadersOnly(AuthBase):
    """Credentials are the headers each client sets; nothing else adds any."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _Session(requests.Session):
    """requests reads the proxy and CA-bundle variables of the whole environment again for every request; a
    Lambda container's environment does not change while it runs, so the answer is kept per host (a backfill
    sends thousands of requests to two hosts)."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], _Settings] = {}
        # Without a session auth, requests looks for ~/.netrc on every request (two stats and a URL parse) and
        # would let a matching entry replace the Authorization header we set: neither is wanted.
        self.auth = _HeadersOnly()

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: MutableMapping[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        if proxies or verify is not None or cert is not None or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(url, {}, None, None, None)
        settings = self._environment[key].copy()
        settings["stream"] = self.stream if stream is None else stream
        return settings


def time_boxed_session() -> requests.Session:
    """A requests session whose connections the transport's total time limit can cut."""
    session = _Session()
    adapter = _TimeBoxedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _path_of(url: str) -> str:
    return urlsplit(url).path


def _never_sent(exc: Exception) -> bool:
    """True when the connection was never established, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: object = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ in {"NewConnectionError", "NameResolutionError"}


def _int_header(response: requests.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    seconds: float | None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = _retry_after_date(raw, response.headers.get("Date"))
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), _LONGEST_RETRY_AFTER)


def _retry_after_date(raw: str, date_header: str | None) -> float | None:
    try:
        when = parsedate_to_datetime(raw)
        now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return (when - now).total_seconds()


def is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "")
    head = response.content[:200].lstrip().lower()
    return "html" in content_type or head.startswith((b"<!doctype", b"<html"))


def is_cloudflare_page(response: requests.Response) -> bool:
    """An answer of Cloudflare's edge, not of the API behind it: an HTML page from ``Server: cloudflare``
    without the API's own ``X-Ratelimit`` header (docs/trakt.md#limits-and-errors, 2026)."""
    return (
        response.headers.get("Server", "").strip().lower() == "cloudflare"
        and "X-Ratelimit" not in response.headers
        and is_html(response)
    )


def decode_json(response: requests.Response, service: str) -> Any:
    """The body as JSON, or a BadResponse that names the path (never the query string, never the body)."""
    path = urlsplit(response.url).path
    if is_html(response):
        raise BadResponse(service, path, "answered an HTML page instead of JSON", response.status_code)
    try:
        # pydantic-core's parser (already here for the models): a third less CPU than the json module on a
        # backfill's 27 MB of answers. It stops at 200 levels of nesting, which no answer of ours comes near.
        return pydantic_core.from_json(response.content.removeprefix(_UTF8_BOM))
    except ValueError as exc:
        if str(exc).startswith("recursion limit exceeded"):
            raise BadResponse(service, path, "answered JSON nested too deeply", response.status_code) from None
        raise BadResponse(service, path, "answered invalid JSON", response.status_code) from None
