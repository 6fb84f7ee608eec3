"""The auth endpoints fed whatever the internet sends: any query string, any headers, any cookies, any method
and path, through the real handler with API Gateway v2 events. No 5xx, every refusal is a page and a log line
that says why, no token exchange for anything short of a complete, valid callback, and nothing a visitor sent
is echoed into a page or a log line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from chaos.runner import captured_logs
from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.clock import VirtualClock
from devkit.memory import InMemoryLoginStateStore, InMemoryTokenStore
from functions.auth.app import AuthDeps, handle
from kinotrakt.config import Settings
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenGrant
from kinotrakt.web.login import STATE_COOKIE
from tests.hostile import CANARY

SETUP_KEY = "owner-setup-key_0123456789abcdefghijklmnopq"
CLIENT_SECRET = "client-secret-9f8e7d6c5b4a"
REDIRECT_URI = "https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/callback"
HOSTILE = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
# The log lines that explain a refusal (web/login.py and the handler's own BadRequest/500 handlers).
REFUSAL_LINE = re.compile(r'"message":"(login refused|callback refused|callback failed|request refused)"')


class CountingTrakt:
    """Trakt's side of the callback: every code exchange is counted (and would be a POST /oauth/token)."""

    def __init__(self) -> None:
        self.exchanges: list[str] = []

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        self.exchanges.append(code)
        return TokenGrant("access-" + code, "refresh-" + code, 7 * 24 * 3600, created_at=1_790_000_000)

    def username(self, client: ServiceSecret, access_token: str) -> str | None:
        return "owner"


class World:
    def __init__(self) -> None:
        self.trakt = CountingTrakt()
        clock = VirtualClock()
        self.store = InMemoryTokenStore(
            ServiceSecret(
                client_id="cid",
                client_secret=SecretStr(CLIENT_SECRET),
                setup_key=SecretStr(SETUP_KEY),
                setup_key_expires_at=int(clock.now().timestamp()) + 3600,
            )
        )
        settings = Settings(
            trakt_redirect_uri=REDIRECT_URI,
            trakt_authorize_url="https://auth.example.test/oauth/authorize",
            kinopub_secret_id="kp",
            trakt_secret_id="tr",
            state_table_name="table",
        )
        self.deps = AuthDeps(
            settings=settings,
            login_states=InMemoryLoginStateStore(),
            trakt_tokens=self.store,
            clock=clock,
            trakt=lambda deadline: self.trakt,
        )

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        return handle(event, FakeLambdaContext(), deps=self.deps)

    def login(self) -> tuple[str, str]:
        """A genuine login: (state, the cookie's value)."""
        answer = self.call(api_gateway_v2_event("/trakt/login", f"key={SETUP_KEY}"))
        assert answer["statusCode"] == 302
        state = parse_qs(urlsplit(answer["headers"]["Location"]).query)["state"][0]
        return state, answer["cookies"][0].split(";")[0].split("=", 1)[1]


@pytest.fixture
def logs() -> Iterator[list[str]]:
    with captured_logs() as lines:
        yield lines


# --- what a visitor can send ------------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            CANARY,
            SETUP_KEY,
            SETUP_KEY + "x",
            "%",
            "%%",
            "%ZZ",
            "%FF%FE",
            "%00",
            "%0d%0aSet-Cookie:%20x=y",
            "<script>alert(1)</script>",
            "\u202e",
            "a" * 600,
            "=",
            "&",
            ";",
            "access_denied",
        ]
    ),
)
names = st.one_of(st.sampled_from(["key", "state", "code", "error", "error_description", "x", ""]), st.text(max_size=8))
raw_queries = st.one_of(
    st.text(max_size=120),
    st.lists(st.tuples(names, hostile_text), max_size=6).map(lambda pairs: "&".join(f"{n}={v}" for n, v in pairs)),
    st.lists(st.tuples(names, hostile_text), max_size=6).map(
        lambda pairs: "&".join(f"{quote(n)}={quote(v)}" for n, v in pairs)
    ),
    st.just("x=" + "y" * 5000),
)
header_names = st.one_of(
    st.sampled_from(["cookie", "host", "user-agent", "x-forwarded-for", "content-type", "authorization", "origin"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12).map(str.lower),
)
headers = st.dictionaries(header_names, hostile_text, max_size=5)
cookies = st.lists(
    st.one_of(hostile_text, hostile_text.map(lambda value: f"{STATE_COOKIE}={value}")),
    max_size=4,
)
paths = st.one_of(
    st.sampled_from(["/trakt/login", "/trakt/callback", "/trakt/callback/", "/", "/trakt", "/TRAKT/LOGIN"]),
    st.text(max_size=20).map(lambda text: "/" + text),
)
methods = st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "DELETE"])


def assert_answered_safely(world: World, answer: dict[str, Any], logs: list[str], *, sent: str) -> None:
    status = answer["statusCode"]
    # No server error, whatever came in
    assert status < 500, (status, answer.get("body"))
    body = answer.get("body") or ""
    # Nothing the visitor sent comes back: no markup, no canary, no secret
    assert "<script" not in body
    for secret in (CANARY, SETUP_KEY, CLIENT_SECRET):
        assert secret not in body
        assert secret not in json.dumps(answer.get("headers") or {})
        assert all(secret not in line for line in logs), secret
    if status >= 400:
        # A refusal is a readable page, and the log says why (an outcome or a reason, never a value)
        assert "<h1>" in body
        if status != 404:
            assert any(REFUSAL_LINE.search(line) for line in logs), (sent, logs)


@HOSTILE
@given(path=paths, method=methods, query=raw_queries, sent_headers=headers, sent_cookies=cookies)
def test_anything_a_visitor_sends_gets_a_page_never_a_5xx_or_an_exchange(
    logs: list[str], path: str, method: str, query: str, sent_headers: dict[str, str], sent_cookies: list[str]
) -> None:
    world = World()
    logs.clear()
    event = api_gateway_v2_event(path, query, method=method, cookies=sent_cookies, headers=sent_headers)
    answer = world.call(event)
    assert_answered_safely(world, answer, logs, sent=f"{method} {path}?{query}")
    # and no code was exchanged, no secret written
    assert world.trakt.exchanges == []
    assert world.store.writes == []


@HOSTILE
@given(
    code=hostile_text,
    extra=st.lists(st.tuples(names, hostile_text), max_size=3),
    cookie_mode=st.sampled_from(["right", "missing", "twice", "other", "wrong", "header"]),
    sent_headers=headers,
)
def test_a_callback_is_exchanged_only_when_every_part_is_right(
    logs: list[str],
    code: str,
    extra: list[tuple[str, str]],
    cookie_mode: str,
    sent_headers: dict[str, str],
) -> None:
    # Given a genuine login in progress (a real state, the browser's cookie)
    world = World()
    state, nonce = world.login()
    logs.clear()
    # When the callback comes back with any code, any extra parameters, and the cookie right or not
    query = "&".join([f"state={state}", f"code={quote(code)}", *(f"{quote(n)}={quote(v)}" for n, v in extra)])
    jar = {
        "right": [f"{STATE_COOKIE}={nonce}"],
        "missing": [],
        "twice": [f"{STATE_COOKIE}={nonce}", f"{STATE_COOKIE}={nonce}"],
        "other": [f"{STATE_COOKIE}={nonce[::-1]}"],
        "wrong": ["theme=dark", f"{STATE_COOKIE.lower()}={nonce}"],
        "header": [],
    }[cookie_mode]
    if cookie_mode == "header":
        sent_headers = {**sent_headers, "cookie": f"{STATE_COOKIE}={nonce}"}
    answer = world.call(api_gateway_v2_event("/trakt/callback", query, cookies=jar, headers=sent_headers))
    # Then it is never a 5xx, and a code is exchanged only for a well-formed callback from the same browser
    assert_answered_safely(world, answer, logs, sent=query)
    same_browser = cookie_mode in ("right", "header")
    token_shaped = re.fullmatch(r"[A-Za-z0-9._~-]{1,512}", code) is not None
    if world.trakt.exchanges:
        assert world.trakt.exchanges == [code]
        assert answer["statusCode"] == 200
        assert same_browser
        assert token_shaped
        assert all(name != "error" for name, _ in extra)
    else:
        assert answer["statusCode"] >= 400
        assert world.store.writes == []
        # (headers never stop a genuine callback)
        assert not (same_browser and token_shaped and not extra)
    # and the state is spent either way: the same callback never works twice
    again = world.call(api_gateway_v2_event("/trakt/callback", query, cookies=jar, headers=sent_headers))
    assert again["statusCode"] in (400, 403)
    assert len(world.trakt.exchanges) <= 1
