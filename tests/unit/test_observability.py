"""Log lines as Lambda reads them: JSON whose ``timestamp`` is RFC 3339 (so Lambda's log-level filtering reads
each line's own ``level``), and whose ``service`` is always this application's name."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Deadline
from kinotrakt.http import CallCounter, RetryPolicy, Transport
from kinotrakt.observability import SERVICE, logger
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenGrant, TokenKeeper, kinopub_margin
from tests.unit.test_transport import BASE, ScriptedAdapter

# RFC 3339 §5.6 date-time, as Lambda requires it to filter JSON logs by their own level (AWS Lambda docs,
# "Log-level filtering").
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


class _Lines(logging.Handler):
    """Each record as the Lambda would print it (Powertools' JSON formatter)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(logger.registered_formatter.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, object]]]:
    handler = _Lines()
    logging.getLogger(logger.name).addHandler(handler)
    try:
        yield handler.lines
    finally:
        logging.getLogger(logger.name).removeHandler(handler)


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_every_line_has_an_rfc3339_timestamp_and_its_own_level(lines: list[dict[str, object]], level: str) -> None:
    # When a line is logged at any level
    getattr(logger, level)("something happened")

    # Then its timestamp is RFC 3339 (Lambda files a line with any other timestamp as INFO) and its level is its own
    (line,) = lines
    assert RFC3339.fullmatch(str(line["timestamp"])), line["timestamp"]
    assert line["level"] == level.upper()


def test_transport_lines_name_the_remote_service_without_overwriting_ours(lines: list[dict[str, object]]) -> None:
    # Given the Trakt transport meeting a 503 once
    clock = VirtualClock()
    adapter = ScriptedAdapter(clock, [503])
    transport = Transport(
        "trakt",
        clock=clock,
        deadline=Deadline(clock, None, margin=0),
        counter=CallCounter(),
        user_agent="kinotrakt/test",
        retry=RetryPolicy(max_attempts=2),
    )
    transport.session.mount("http://", adapter)

    # When a GET is sent (and retried)
    transport.request("GET", f"{BASE}/sync/history/movies")

    # Then its warning keeps service=kinotrakt (what the metrics' dimension and the saved queries use) and says
    # which remote service it is about under `remote`
    (warning,) = [line for line in lines if line["message"] == "server error"]
    assert warning["service"] == SERVICE
    assert warning["remote"] == "trakt"


def test_token_lines_name_the_remote_service_without_overwriting_ours(lines: list[dict[str, object]]) -> None:
    # Given a Kinopub token that expires in a minute
    clock = VirtualClock()
    now = int(clock.now().timestamp())
    secret = ServiceSecret(
        client_id="id",
        client_secret=SecretStr("client-secret-value"),
        access_token=SecretStr("old-access"),
        refresh_token=SecretStr("old-refresh"),
        expires_at=now + 60,
    )
    grant = TokenGrant(
        access_token="new-access", refresh_token="new-refresh", expires_in=int(timedelta(days=1).total_seconds())
    )
    keeper = TokenKeeper("kinopub", InMemoryTokenStore(secret), lambda _secret: grant, clock, kinopub_margin)

    # When a token is asked for (and refreshed first)
    assert keeper.access_token() == "new-access"

    # Then the refresh line says which service under `remote`, and `service` stays ours
    (refreshing,) = [line for line in lines if line["message"] == "refreshing access token"]
    assert refreshing["service"] == SERVICE
    assert refreshing["remote"] == "kinopub"
