"""A malicious HTTP server on loopback: it answers every request with one scripted misbehaviour, byte by byte.

The fakes speak correct HTTP; this one does not. Each :data:`Answer` writes raw bytes to the socket, so a test
can serve a truncated body, a broken gzip stream, a gzip bomb, JSON nested 50,000 deep, a reply that drips
one byte at a time, or a redirect to another host, and check what the real clients make of it. Every request
is recorded (request line and headers) so a test can also check what was *not* sent.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

Answer = Callable[[socket.socket], None]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    """A well-formed answer (the baseline the others break)."""
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}

    def answer(sock: socket.socket) -> None:
        sock.sendall(_head(status, all_headers) + body)

    return answer


def truncated(body: bytes, sent: int, status: str = "200 OK") -> Answer:
    """Promises the whole ``body`` (Content-Length) and hangs up after ``sent`` bytes of it."""

    def answer(sock: socket.socket) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        sock.sendall(_head(status, headers) + body[:sent])

    return answer


def broken_gzip(status: str = "200 OK") -> Answer:
    """``Content-Encoding: gzip`` on bytes that are not gzip."""
    garbage = b"\x1f\x8b\x08\x00this is not a deflate stream at all" * 4
    return respond(status, garbage, {"Content-Encoding": "gzip"})


def gzip_bomb(inflated_bytes: int, status: str = "200 OK") -> Answer:
    """A small gzip body (a JSON string of zeros) that inflates to ``inflated_bytes``."""
    return respond(status, _gzipped_zeros(inflated_bytes), {"Content-Encoding": "gzip"})


@functools.cache
def _gzipped_zeros(inflated_bytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b"0" * (1024 * 1024)
    parts = [packer.compress(b'"')]
    parts.extend(packer.compress(block) for _ in range(inflated_bytes // len(block)))
    parts.append(packer.compress(b'"'))
    parts.append(packer.flush())
    return b"".join(parts)


def deep_json(depth: int, status: str = "200 OK") -> Answer:
    """Valid JSON nested ``depth`` lists deep (a few hundred KB)."""
    return respond(status, b"[" * depth + b"]" * depth)


def drip(data: bytes, interval: float, *, head: bool = False, status: str = "200 OK") -> Answer:
    """Sends one byte every ``interval`` seconds: the body (after a normal head), or with ``head`` the status
    line and headers too. Each byte arrives well inside any per-read timeout."""

    def answer(sock: socket.socket) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        start = _head(status, headers)
        if not head:
            sock.sendall(start)
        for byte in (start + data) if head else data:
            sock.sendall(bytes([byte]))
            time.sleep(interval)

    return answer


def redirect(location: str, status: str = "302 Found") -> Answer:
    return respond(status, b"", {"Location": location})


class HostileServer:
    """Serves ``answer`` to every request on 127.0.0.1 (an ephemeral port), one thread per connection."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or respond("200 OK", b"{}")
        self.requests: list[ReceivedRequest] = []
        self.base_url = ""
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def received(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hostile = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    hostile: HostileServer

    def __init__(self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """The client hanging up mid-answer is the point of most answers here."""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        with self.server.connections_lock:
            self.server.connections.add(self.connection)
        try:
            request = self._read_request()
            if request is None:
                return
            self.server.hostile.received(request)
            with contextlib.suppress(OSError):
                self.server.hostile.answer(self.connection)
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def _read_request(self) -> ReceivedRequest | None:
        line = self.rfile.readline(65536).decode("latin-1").strip()
        if not line:
            return None
        method, path, _version = line.split(" ", 2)
        headers: dict[str, str] = {}
        while (header := self.rfile.readline(65536).decode("latin-1").strip()) != "":
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        return ReceivedRequest(method, path, headers, body)
