"""The login broker's pure rules: PKCE, strict parameter reading, pages, and the flow on in-memory stores."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.clock import VirtualClock
from devkit.memory import InMemoryLoginStateStore, InMemoryTokenStore
from functions.auth.app import AuthDeps, handle
from kinotrakt.config import Settings
from kinotrakt.errors import ServiceUnavailable
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import TokenGrant
from kinotrakt.web import pages
from kinotrakt.web.login import STATE_COOKIE, TraktLoginFlow
from kinotrakt.web.pkce import new_verifier, s256_challenge
from kinotrakt.web.request import BadRequest, cookie_values, parse_query

SETUP_KEY = "unit-setup-key_abcdefghijklmnopqrstuvwxyz01"
REDIRECT_URI = "https://example.test/trakt/callback"


# --- PKCE -----------------------------------------------------------------------------------------------


def test_s256_matches_the_rfc_7636_example() -> None:
    # RFC 7636 appendix B
    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_verifiers_are_long_random_and_in_the_rfc_alphabet() -> None:
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier)


# --- parameters -----------------------------------------------------------------------------------------


def test_a_plain_query_is_decoded() -> None:
    assert parse_query("code=abc&state=x-y_z.~1&empty=") == {"code": "abc", "state": "x-y_z.~1", "empty": ""}


@pytest.mark.parametrize(
    "raw",
    [
        "state=a&state=b",
        "k=" + "x" * 513,
        "k=%FF",
        "k=%C3%A9",
        "k=\u00e9",
        "k=a%0Ab",
        "k=a%00",
        "%3C=1",
        "&".join(f"p{n}=1" for n in range(17)),
        "x=" + "y" * 4097,
    ],
)
def test_malformed_queries_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_query(raw)


@given(st.text(max_size=300))
def test_reading_any_query_either_works_or_is_a_bad_request(raw: str) -> None:
    try:
        params = parse_query(raw)
    except BadRequest:
        return
    for name, value in params.items():
        assert len(value) <= 512
        assert all(32 <= ord(char) < 127 for char in name + value)


def test_cookie_values_finds_every_copy_of_the_cookie() -> None:
    sent = [f"{STATE_COOKIE}=one", "other=two", f"a=b; {STATE_COOKIE}=three"]
    assert cookie_values(sent, STATE_COOKIE) == ["one", "three"]


# --- pages ----------------------------------------------------------------------------------------------


def test_pages_escape_what_they_show() -> None:
    html = pages.linked("<img src=x onerror=alert(1)>").render()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_pages_are_self_contained() -> None:
    for page in (pages.linked("someone"), pages.bad_request(), pages.access_denied(), pages.internal_error()):
        html = page.render()
        assert "<script" not in html
        assert "src=" not in html
        assert "<link" not in html
        assert 'name="viewport"' in html


# --- the flow on in-memory stores ------------------------------------------------------------------------


class StubTrakt:
    """Trakt's side as the flow sees it: counts exchanges, can fail."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.exchanges: list[tuple[str, str, str]] = []
        self.fail = fail

    def exchange_code(self, client: ServiceSecret, code: str, code_verifier: str, redirect_uri: str) -> TokenGrant:
        self.exchanges.append((code, code_verifier, redirect_uri))
        if self.fail is not None:
            raise self.fail
        return TokenGrant("access-" + code, "refresh-" + code, 7 * 24 * 3600, created_at=1_790_000_000)

    def username(self, client: ServiceSecret, access_token: str) -> str | None:
        return "someone"


def make_deps(trakt: StubTrakt) -> AuthDeps:
    clock = VirtualClock()
    store = InMemoryTokenStore(
        ServiceSecret(
            client_id="cid",
            client_secret=SecretStr("csecret"),
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
    return AuthDeps(
        settings=settings,
        login_states=InMemoryLoginStateStore(),
        trakt_tokens=store,
        clock=clock,
        trakt=lambda deadline: trakt,
    )


def call(deps: AuthDeps, path: str, query: str, cookies: tuple[str, ...] = ()) -> dict[str, Any]:
    return handle(api_gateway_v2_event(path, query, cookies=cookies), FakeLambdaContext(), deps=deps)


def test_the_flow_keeps_the_verifier_server_side_and_links_once() -> None:
    trakt = StubTrakt()
    deps = make_deps(trakt)
    login = call(deps, "/trakt/login", f"key={SETUP_KEY}")
    location = login["headers"]["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    cookie = login["cookies"][0].split(";")[0]

    done = call(deps, "/trakt/callback", f"code=c0de&state={params['state']}", (cookie,))

    assert done["statusCode"] == 200
    ((code, verifier, redirect_uri),) = trakt.exchanges
    assert (code, redirect_uri) == ("c0de", REDIRECT_URI)
    assert verifier not in location
    assert s256_challenge(verifier) == params["code_challenge"]
    secret = deps.trakt_tokens.load().secret
    assert secret.access_token == SecretStr("access-c0de")
    assert secret.expires_at == 1_790_000_000 + 7 * 24 * 3600


def test_trakt_being_down_is_a_page_not_a_crash() -> None:
    trakt = StubTrakt(fail=ServiceUnavailable("trakt", "POST /oauth/token: HTTP 503"))
    deps = make_deps(trakt)
    login = call(deps, "/trakt/login", f"key={SETUP_KEY}")
    state = parse_qs(urlsplit(login["headers"]["Location"]).query)["state"][0]
    done = call(deps, "/trakt/callback", f"code=c0de&state={state}", (login["cookies"][0].split(";")[0],))
    assert done["statusCode"] == 502
    assert deps.trakt_tokens.load().secret.access_token is None


def test_an_authorize_url_with_its_own_query_keeps_it() -> None:
    flow = TraktLoginFlow(
        login_states=InMemoryLoginStateStore(),
        trakt_tokens=InMemoryTokenStore(
            ServiceSecret(client_id="cid", setup_key=SecretStr(SETUP_KEY), setup_key_expires_at=2**40)
        ),
        trakt=StubTrakt(),
        clock=VirtualClock(),
        authorize_url="https://auth.example.test/oauth/authorize?prompt=login",
        redirect_uri=REDIRECT_URI,
    )
    location = flow.login({"key": SETUP_KEY}).headers["Location"]
    assert location.startswith("https://auth.example.test/oauth/authorize?prompt=login&response_type=code&")


@settings(max_examples=150, deadline=None)
@given(
    path=st.sampled_from(["/trakt/login", "/trakt/callback"]),
    pairs=st.lists(
        st.tuples(st.sampled_from(["key", "state", "code", "error", "x"]), st.text(max_size=600)), max_size=5
    ),
    cookie=st.one_of(st.none(), st.text(max_size=80)),
)
def test_no_input_gets_a_5xx_or_an_exchange(path: str, pairs: list[tuple[str, str]], cookie: str | None) -> None:
    # Given any query a visitor can type, and any cookie
    trakt = StubTrakt()
    deps = make_deps(trakt)
    query = "&".join(f"{quote(name)}={quote(value)}" for name, value in pairs)
    cookies = () if cookie is None else (f"{STATE_COOKIE}={cookie}",)
    # When it reaches the handler
    response = call(deps, path, query, cookies)
    # Then it is answered with a page, never a server error, never a token exchange
    assert response["statusCode"] in {302, 400, 403}
    assert trakt.exchanges == []
    assert SETUP_KEY not in response["body"]
