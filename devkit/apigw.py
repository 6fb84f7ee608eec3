"""A local stand-in for API Gateway's HTTP API: real HTTP in, a payload v2 event to the real auth handler,
its answer back out as HTTP. Standard library only (``ThreadingHTTPServer``, on 127.0.0.1 unless told otherwise).

It also builds the events the integration tests send straight to the handler, so both suites speak the
same event shape (``api_gateway_v2_event``).
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class FakeLambdaContext(LambdaContext):
    """Lambda's context object with the auth function's names; every invocation has its full 30 s."""

    def __init__(self) -> None:
        self._function_name = "kinotrakt-auth"
        self._function_version = "$LATEST"
        self._invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:kinotrakt-auth"
        self._memory_limit_in_mb = 256
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = "/aws/lambda/kinotrakt-auth"
        self._log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def api_gateway_v2_event(
    path: str,
    raw_query: str = "",
    *,
    method: str = "GET",
    cookies: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An HTTP API payload v2 event as API Gateway builds it: ``rawQueryString`` verbatim, decoded
    ``queryStringParameters`` with duplicates joined by commas, cookies in their own list."""
    lower = {name.lower(): value for name, value in (headers or {}).items()}
    lower.setdefault("host", "abc123.execute-api.eu-west-1.amazonaws.com")
    lower.setdefault("user-agent", "Mozilla/5.0 (test)")
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lower,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": lower["host"],
            "domainPrefix": lower["host"].split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower["user-agent"],
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if params:
        event["queryStringParameters"] = params
    if cookies:
        event["cookies"] = list(cookies)
    return event


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, adapter: ApiGatewayAdapter, host: str, port: int) -> None:
        self.adapter = adapter
        super().__init__((host, port), _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the query string carries the setup key and the authorization code."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        adapter = self.server.adapter
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items() if name.lower() != "cookie"}
        # API Gateway moves the Cookie header into the event's `cookies` list, one entry per cookie.
        cookies = [
            part.strip() for value in self.headers.get_all("Cookie") or [] for part in value.split(";") if part.strip()
        ]
        event = api_gateway_v2_event(
            parts.path, parts.query, method=method, cookies=cookies, headers=headers, source_ip="127.0.0.1"
        )
        adapter.events.append(event)
        if adapter.handler is None:
            raise RuntimeError("ApiGatewayAdapter.handler is not set")
        # One Lambda container handles one request at a time (and Powertools' resolver relies on it).
        with adapter.lock:
            result = adapter.handler(event, FakeLambdaContext())
        adapter.responses.append(result)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        self.send_response(int(result.get("statusCode", 200)))
        for name, value in (result.get("headers") or {}).items():
            self.send_header(name, value)
        for cookie in result.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(raw)


class ApiGatewayAdapter:
    """``with ApiGatewayAdapter() as api: api.handler = ...; api.base_url`` - records events and answers."""

    def __init__(self, handler: Handler | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.events: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._server = _Server(self, host, port)
        bound = self._server.server_address[1]
        self.base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}"  # noqa: S104
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
