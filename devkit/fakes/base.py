"""A loopback HTTP server that records every request and injects faults; the base of both fakes.

Standard library only: ``ThreadingHTTPServer`` on 127.0.0.1, an ephemeral port, daemon threads, HTTP/1.1
keep-alive (a ``requests.Session`` reuses its connection, which keeps a benchmark of thousands of calls fast).
Every route handler runs under ``self.lock``; nothing sleeps while holding it.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

# Every credential a fake hands out (tokens, codes, client secrets), so the suite can prove that none of them
# ever reaches a log line (tests/conftest.py checks after every test).
ISSUED_SECRETS: set[str] = set()


def issued(value: str) -> str:
    ISSUED_SECRETS.add(value)
    return value


FaultAction = Literal["respond", "drop", "apply_then_drop", "apply_then_respond", "apply_then_truncate"]
Clock = Callable[[], float]


@dataclass
class RecordedRequest:
    """One request as the server received it (``at`` comes from the server's clock)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any | None
    at: float
    fault: str | None = None  # name of the fault that fired, if any
    status: int | None = None  # status answered; None while in flight or when the connection was dropped
    answered: dict[str, str] = field(default_factory=dict)  # the answer's own headers (``Retry-After``, ...)

    @property
    def form(self) -> dict[str, str]:
        """The body as an urlencoded form (empty when it is not one)."""
        if "application/x-www-form-urlencoded" not in self.headers.get("content-type", ""):
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def params(self) -> dict[str, Any]:
        """Query string, form body and JSON object body merged (later ones win): how OAuth endpoints read."""
        merged: dict[str, Any] = dict(self.query)
        merged.update(self.form)
        if isinstance(self.json, dict):
            merged.update(self.json)
        return merged


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def dumps(payload: Any) -> bytes:
    return jsonlib.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(payload), dict(headers or {}))


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, html.encode("utf-8"), dict(headers or {}), "text/html; charset=utf-8")


@dataclass
class Fault:
    """A scripted misbehaviour. ``times`` counts down on every firing; -1 fires forever."""

    method: str  # "GET", "POST", … or "*" for any
    path_regex: str  # re.fullmatch against the path, without the query string
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0
    action: FaultAction = "respond"
    content_type: str = "application/json"
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    @property
    def active(self) -> bool:
        return self.times != 0

    @property
    def name(self) -> str:
        if self.action != "respond":
            return self.action
        if self.status is not None:
            return f"respond:{self.status}"
        return f"delay:{self.delay:g}"

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self._pattern.fullmatch(path) is not None


Handler = Callable[[RecordedRequest, re.Match[str]], Response]


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts, drops) are normal here; handler bugs are caught in ``dispatch``."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One buffered write per answer and no Nagle: otherwise headers and body leave as two small segments
    # and delayed ACKs cost ~40 ms per keep-alive request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark makes thousands of requests."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            json=_parse_json(body),
            at=fake.clock(),
        )
        fault = fake.take_fault(record)
        response: Response | None = None
        if fault is None or (fault.action == "respond" and fault.status is None):
            response = fake.dispatch(record)
        elif fault.action == "apply_then_drop":
            fake.dispatch(record)
        elif fault.action == "apply_then_respond":
            fake.dispatch(record)
            response = Response(fault.status or 500, fault.body, dict(fault.headers), fault.content_type)
        elif fault.action == "apply_then_truncate":
            response = fake.dispatch(record)
            if fault.delay > 0:
                time.sleep(fault.delay)
            record.status = response.status
            self._write(response, cut_after=len(response.body) // 2)
            self.close_connection = True
            return
        elif fault.action == "respond":
            response = Response(fault.status or 500, fault.body, dict(fault.headers), fault.content_type)
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)  # state already changed at receipt: only the answer is late
        if response is None:
            self.close_connection = True  # hang up without a byte of response
            return
        record.status = response.status
        record.answered = dict(response.headers)
        self._write(response)

    def _write(self, response: Response, *, cut_after: int | None = None) -> None:
        """Send the answer; ``cut_after`` sends that many bytes of the body (its full length announced) and
        stops, as a connection lost mid-answer would."""
        head_only = self.command == "HEAD"
        try:
            self.send_response_only(response.status)
            names = {name.lower() for name in response.headers}
            if "server" not in names:
                self.send_header("Server", self.server.fake.server_name)
            self.send_header("Date", formatdate(usegmt=True))
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head_only:
                self.wfile.write(response.body if cut_after is None else response.body[:cut_after])
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (its timeout fired)


def _parse_json(body: bytes) -> Any | None:
    if not body:
        return None
    try:
        return jsonlib.loads(body)
    except ValueError:
        return None


class FakeServer:
    """Routing by method + regex path, request recording, fault injection, start/stop."""

    server_name = "fake"

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.errors: list[str] = []  # tracebacks of handler bugs (answered as 500)
        self.base_url = ""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host`` (loopback by default; ``make sandbox`` may listen wider so that Lambda containers
        reach it) at ``port`` (0: an ephemeral one, the same one again after a ``stop``) and return the base URL,
        on loopback when listening on every interface."""
        if self._server is not None:
            return self.base_url
        self._port = port or self._port
        server = _HttpServer((host, self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        self.base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self._port}"  # noqa: S104
        return self.base_url

    def stop(self) -> None:
        """Stop listening and cut every open connection (kept-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # routing

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` and a path matching ``pattern`` (re.fullmatch)."""
        self._routes.append((method, re.compile(pattern), handler))

    def precheck(self, request: RecordedRequest) -> Response | None:
        """Runs before routing (header rules); a response here answers the request."""
        return None

    def not_found(self, request: RecordedRequest) -> Response:
        return json_response(404, {"error": "not found"})

    def dispatch(self, request: RecordedRequest) -> Response:
        with self.lock:
            try:
                early = self.precheck(request)
                if early is not None:
                    return early
                for method, pattern, handler in self._routes:
                    if method != request.method and not (method == "GET" and request.method == "HEAD"):
                        continue
                    match = pattern.fullmatch(request.path)
                    if match is not None:
                        return handler(request, match)
                return self.not_found(request)
            except Exception:
                trace = traceback.format_exc()
                self.errors.append(trace)
                return Response(500, trace.encode(), content_type="text/plain; charset=utf-8")

    # recording

    def take_fault(self, request: RecordedRequest) -> Fault | None:
        """Record the request and consume the first active fault that matches it."""
        with self.lock:
            self.requests.append(request)
            for fault in self.faults:
                if fault.active and fault.matches(request.method, request.path):
                    if fault.times > 0:
                        fault.times -= 1
                    fault.fired += 1
                    request.fault = fault.name
                    return fault
            return None

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # faults

    def add_fault(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = None,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
        action: FaultAction = "respond",
        content_type: str = "application/json",
    ) -> Fault:
        """Script a fault. ``respond`` with a ``status`` answers it instead of the real handler; ``respond``
        without a status only delays the real answer; ``drop`` hangs up before handling; ``apply_then_drop``
        handles the request (state changes) and hangs up without answering; ``apply_then_respond`` handles it
        and answers the fault's status and body instead of the real answer (a proxy's page after the service
        acted); ``apply_then_truncate`` handles it and sends half of the real answer's body under its full
        ``Content-Length``, then hangs up. ``delay`` (real seconds) is slept after handling and before
        answering/hanging up."""
        raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        fault = Fault(
            method=method.upper(),
            path_regex=path_regex,
            status=status,
            body=raw,
            headers=dict(headers or {}),
            times=times,
            delay=delay,
            action=action,
            content_type=content_type,
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
