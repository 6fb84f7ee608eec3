"""The auth Lambda end to end: API Gateway v2 events → the real handler → moto's table and secret + a fake
Trakt. Given / When / Then; every refusal must leave Trakt's token endpoint untouched."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
import requests

from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import FakeTrakt
from functions.auth import app as auth_app
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import update_secret
from kinotrakt.web.login import STATE_COOKIE
from kinotrakt.web.pkce import s256_challenge
from tests.browser.auth_world import SETUP_KEY, AuthWorld, LogCapture, build_world, capture_kinotrakt_logs

REDIRECT_URI = "https://abc123.execute-api.eu-west-1.amazonaws.com/trakt/callback"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def world(aws: boto3.Session, state_table: str, secrets: tuple[str, str], clock: VirtualClock) -> Iterator[AuthWorld]:
    with FakeTrakt(clock=clock.time) as fake:
        yield build_world(
            aws,
            fake,
            kinopub_secret=secrets[0],
            trakt_secret=secrets[1],
            table=state_table,
            redirect_uri=REDIRECT_URI,
            clock=clock,
        )


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_kinotrakt_logs()


# --- helpers ------------------------------------------------------------------------------------------


def cookie_value(response: dict[str, Any]) -> str:
    (cookie,) = response["cookies"]
    name, _, rest = str(cookie).partition("=")
    assert name == STATE_COOKIE
    return rest.split(";")[0]


def start_login(world: AuthWorld) -> tuple[dict[str, str], str]:
    """``/trakt/login`` → (the authorize URL's parameters, the state cookie's value)."""
    response = world.call("/trakt/login", f"key={SETUP_KEY}")
    assert response["statusCode"] == 302
    query = parse_qs(urlsplit(response["headers"]["Location"]).query)
    return {name: values[0] for name, values in query.items()}, cookie_value(response)


def approve_on_trakt(world: AuthWorld, authorize: dict[str, str], *, choice: str = "approve") -> str:
    """The user clicks Approve (or Deny) on Trakt's page; returns the callback's raw query string."""
    page = requests.get(f"{world.fake.base_url}/oauth/authorize", params=authorize, timeout=5)
    assert page.status_code == 200
    match = re.search(rf'id="{choice}"[^>]*href="([^"]+)"', page.text)
    assert match is not None
    target = urlsplit(html.unescape(match.group(1)))
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT_URI
    return target.query


def assert_page(response: dict[str, Any], status: int, *phrases: str) -> str:
    assert response["statusCode"] == status
    headers = response["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    body: str = response["body"]
    assert body.startswith("<!doctype html>")
    assert '<meta name="viewport"' in body
    assert "<script" not in body
    assert "http://" not in body.replace(REDIRECT_URI, "")
    for phrase in phrases:
        assert phrase in body
    return body


# --- the happy path -----------------------------------------------------------------------------------


def test_login_redirects_to_trakt_with_pkce_and_binds_the_browser(world: AuthWorld) -> None:
    # Given a deployment with a setup key
    # When the owner opens the login link
    response = world.call("/trakt/login", f"key={SETUP_KEY}")

    # Then the browser goes to Trakt's authorize page with a PKCE challenge and a fresh state
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{world.fake.base_url}/oauth/authorize"
    params = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == world.fake.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"])
    assert len(params["state"]) >= 32
    assert response["headers"]["Cache-Control"] == "no-store"
    # And the browser is bound to that state by a __Host- cookie
    (cookie,) = response["cookies"]
    assert re.fullmatch(
        rf"{STATE_COOKIE}=[A-Za-z0-9_-]{{32,}}; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax", cookie
    )
    # And nothing secret travels to the browser
    exposed = str(response)
    assert world.fake.client_secret not in exposed
    assert SETUP_KEY not in exposed


def test_each_login_gets_its_own_state_and_cookie(world: AuthWorld) -> None:
    first, first_cookie = start_login(world)
    second, second_cookie = start_login(world)
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]
    assert first_cookie != second_cookie


def test_linking_end_to_end_stores_the_tokens_and_names_the_user(world: AuthWorld, logs: LogCapture) -> None:
    # Given the owner started a login and approved kinotrakt on Trakt
    authorize, cookie = start_login(world)
    callback_query = approve_on_trakt(world, authorize)

    # When Trakt sends the browser back
    response = world.call("/trakt/callback", callback_query, cookies=(f"{STATE_COOKIE}={cookie}",))

    # Then the page says which Trakt account is linked
    body = assert_page(response, 200, "Trakt account linked", "kinotrakt-demo")
    # And the tokens are in the Trakt secret, usable, next to the credentials and the setup key
    secret = world.trakt_secret()
    assert secret.access_token is not None
    assert secret.refresh_token is not None
    assert world.fake.token_is_valid(secret.access_token.get_secret_value())
    assert secret.expires_at is not None
    assert secret.issued_at is not None
    assert secret.expires_at - secret.issued_at == 7 * 24 * 3600
    assert secret.client_id == world.fake.client_id
    assert secret.client_secret is not None
    assert secret.client_secret.get_secret_value() == world.fake.client_secret
    # And the setup key is used up, in the same write, and the secret remembers who is linked
    assert (secret.setup_key, secret.setup_key_expires_at) == (None, None)
    assert secret.linked_user == "kinotrakt-demo"
    # And refreshes will send the redirect URI the tokens were issued for
    assert (secret.model_extra or {}).get("redirect_uri") == REDIRECT_URI
    # And the code was exchanged once, with the PKCE verifier that matches the challenge (the fake checks it)
    (exchange,) = world.fake.calls("POST", "/oauth/token")
    sent = exchange.params()
    assert sent["grant_type"] == "authorization_code"
    assert sent["redirect_uri"] == REDIRECT_URI
    assert s256_challenge(sent["code_verifier"]) == authorize["code_challenge"]
    # And the state cookie is cleared
    assert response["cookies"] == [f"{STATE_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    # And no secret value is in the page or in any log line
    code = parse_qs(callback_query)["code"][0]
    secrets_seen = [
        secret.access_token.get_secret_value(),
        secret.refresh_token.get_secret_value(),
        world.fake.client_secret,
        SETUP_KEY,
        code,
        cookie,
        authorize["state"],
        sent["code_verifier"],
    ]
    for value in secrets_seen:
        assert value not in body
        assert value not in str(response["headers"])
        assert value not in logs.text
    assert "trakt account linked" in logs.text


def test_a_callback_works_only_once(world: AuthWorld) -> None:
    # Given a completed link
    authorize, cookie = start_login(world)
    callback_query = approve_on_trakt(world, authorize)
    first = world.call("/trakt/callback", callback_query, cookies=(f"{STATE_COOKIE}={cookie}",))
    assert first["statusCode"] == 200
    linked_token = world.trakt_secret().access_token

    # When the same callback arrives again (a replay, a reload, a leaked URL)
    replay = world.call("/trakt/callback", callback_query, cookies=(f"{STATE_COOKIE}={cookie}",))

    # Then it is refused without a second exchange, and the stored link is untouched
    assert_page(replay, 403, "expired or was already used")
    assert world.token_exchanges() == 1
    assert world.trakt_secret().access_token == linked_token


# --- refusals at the login ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "key=", "key=not-the-key", f"key={SETUP_KEY[:-1]}", f"key={SETUP_KEY}x", "other=1"],
    ids=["no-query", "empty-key", "wrong-key", "prefix-of-key", "key-plus-one", "no-key-param"],
)
def test_login_without_the_right_key_is_refused(world: AuthWorld, query: str) -> None:
    response = world.call("/trakt/login", query)
    assert_page(response, 403, "This login link is not valid")
    assert "Location" not in response["headers"]
    assert response.get("cookies", []) == []
    assert world.fake.requests == []


def test_login_before_setup_says_to_run_setup(world: AuthWorld) -> None:
    # Given a deployment whose Trakt secret is as the deploy created it (setup never ran)
    update_secret(world.deps.trakt_tokens, lambda secret: ServiceSecret())
    # When anyone opens a login link, whatever key (of the right shape) it carries
    response = world.call("/trakt/login", f"key={'k' * 43}")
    # Then nobody can start a login, and the page says what to run
    assert_page(response, 403, "not set up yet", "kinotrakt setup")
    assert "Location" not in response["headers"]


# --- refusals at the callback -------------------------------------------------------------------------


CALLBACK_REFUSALS = {
    # name: (expected status, phrase on the page)
    "missing_state": (403, "expired or was already used"),
    "foreign_state": (403, "expired or was already used"),
    "expired_state": (403, "expired or was already used"),
    "missing_cookie": (403, "started in another browser"),
    "cookie_mismatch": (403, "started in another browser"),
    "cookie_of_another_login": (403, "started in another browser"),
    "two_cookies": (403, "started in another browser"),
    "access_denied": (403, "only one community app"),
    "other_trakt_error": (400, "Trakt reported a problem"),
}


@pytest.mark.parametrize("case", sorted(CALLBACK_REFUSALS))
def test_callback_refusals_never_exchange_a_code(
    world: AuthWorld, clock: VirtualClock, logs: LogCapture, case: str
) -> None:
    # Given a login that was started and approved on Trakt
    authorize, cookie = start_login(world)
    query = approve_on_trakt(world, authorize)
    params = {name: values[0] for name, values in parse_qs(query).items()}
    good_cookie = f"{STATE_COOKIE}={cookie}"
    cookies: tuple[str, ...] = (good_cookie,)

    # When the callback arrives in one of the wrong ways
    if case == "missing_state":
        query = urlencode({"code": params["code"]})
    elif case == "foreign_state":
        query = urlencode({"code": params["code"], "state": "a" * 43})
    elif case == "expired_state":
        clock.advance(11 * 60)
    elif case == "missing_cookie":
        cookies = ()
    elif case == "cookie_mismatch":
        cookies = (f"{STATE_COOKIE}={'b' * 43}",)
    elif case == "cookie_of_another_login":
        _, other_cookie = start_login(world)
        cookies = (f"{STATE_COOKIE}={other_cookie}",)
    elif case == "two_cookies":
        cookies = (good_cookie, f"{STATE_COOKIE}={'c' * 43}")
    elif case == "access_denied":
        query = approve_on_trakt(world, authorize, choice="deny")
    elif case == "other_trakt_error":
        query = urlencode({"error": "server_error", "error_description": "<b>Injected</b> text", "state": "x"})
    response = world.call("/trakt/callback", query, cookies=cookies)

    # Then a page explains it, no code is exchanged and no token is stored
    status, phrase = CALLBACK_REFUSALS[case]
    body = assert_page(response, status, phrase)
    assert "Injected" not in body
    assert world.token_exchanges() == 0
    assert world.trakt_secret().access_token is None
    assert params["code"] not in logs.text
    assert params["state"] not in logs.text


def test_a_refused_callback_burns_its_state(world: AuthWorld) -> None:
    # Given a callback that came back to the wrong browser (its state is consumed by the attempt)
    authorize, cookie = start_login(world)
    query = approve_on_trakt(world, authorize)
    wrong = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={'d' * 43}",))
    assert wrong["statusCode"] == 403
    # When the right browser then presents the same state
    late = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",))
    # Then it is refused too: a state is single-use, whoever uses it
    assert_page(late, 403, "expired or was already used")
    assert world.token_exchanges() == 0


def test_a_callback_without_a_code_links_nothing(world: AuthWorld) -> None:
    authorize, cookie = start_login(world)
    response = world.call(
        "/trakt/callback", urlencode({"state": authorize["state"]}), cookies=(f"{STATE_COOKIE}={cookie}",)
    )
    assert_page(response, 400, "did not send an authorization code")
    assert world.token_exchanges() == 0


# Values as they arrive, still percent-encoded; each goes into the route's own token parameter.
HOSTILE_VALUES = {
    "oversized": "k" * 513,
    "non_ascii": "%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
    "raw_non_ascii": "\u0416",
    "invalid_utf8": "%FF%FE",
    "nul_byte": "abc%00def",
    "header_injection": "abc%0D%0ASet-Cookie:%20x=y",
    "markup": "%3Cscript%3Ealert(1)%3C/script%3E",
    "quote": "abc%22%27",
    "space": "abc+def",
}
HOSTILE_SHAPES = {
    "duplicated": "{name}=one&{name}=two",
    "too_many_parameters": "&".join(f"p{n}=1" for n in range(40)),
    "huge_query": "x=" + "y" * 5000,
    "odd_parameter_name": "%3Cb%3E=1",
}
ROUTES = {"/trakt/login": "key", "/trakt/callback": "state"}


def hostile_query(path: str, case: str) -> str:
    name = ROUTES[path]
    if case in HOSTILE_VALUES:
        value = HOSTILE_VALUES[case]
        return f"{name}={value}" if path == "/trakt/login" else f"code=abc&state={value}"
    return HOSTILE_SHAPES[case].format(name=name)


@pytest.mark.parametrize("case", sorted(HOSTILE_VALUES) + sorted(HOSTILE_SHAPES))
@pytest.mark.parametrize("path", sorted(ROUTES))
def test_hostile_parameters_get_a_400_page(world: AuthWorld, path: str, case: str) -> None:
    response = world.call(path, hostile_query(path, case))
    assert_page(response, 400, "This link looks damaged")
    assert "<script>" not in response["body"]
    assert "Location" not in response["headers"]
    assert world.fake.requests == []


@pytest.mark.parametrize("case", ["code", "error"])
def test_hostile_callback_values_other_than_the_state_get_a_400_page(world: AuthWorld, case: str) -> None:
    query = "code=%3Cscript%3E&state=abc" if case == "code" else "error=%3Cimg%20src%3Dx%3E"
    assert_page(world.call("/trakt/callback", query), 400, "This link looks damaged")
    assert world.fake.requests == []


# --- Trakt's side going wrong -------------------------------------------------------------------------


def test_a_code_trakt_refuses_links_nothing(world: AuthWorld) -> None:
    # Given a real login whose callback carries a code Trakt never issued
    authorize, cookie = start_login(world)
    query = urlencode({"code": "f" * 32, "state": authorize["state"]})
    # When the callback arrives
    response = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",))
    # Then Trakt's refusal is explained and nothing is stored
    assert_page(response, 400, "did not accept the authorization")
    assert world.token_exchanges() == 1
    assert world.trakt_secret().access_token is None


def test_trakt_failing_during_the_exchange_is_a_try_again_page(world: AuthWorld) -> None:
    authorize, cookie = start_login(world)
    query = approve_on_trakt(world, authorize)
    world.fake.add_fault("POST", "/oauth/token", status=503, times=-1)
    response = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",))
    assert_page(response, 502, "Trakt did not answer")
    # The code is single-use: a lost answer is never followed by a second exchange
    assert world.token_exchanges() == 1
    assert world.trakt_secret().access_token is None


def test_the_link_stands_when_the_username_cannot_be_read(world: AuthWorld) -> None:
    authorize, cookie = start_login(world)
    query = approve_on_trakt(world, authorize)
    world.fake.add_fault("GET", "/users/settings", status=404, times=-1)
    response = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",))
    assert_page(response, 200, "Trakt account is now linked")
    assert world.trakt_secret().access_token is not None


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        pytest.param(426, "only one community app", id="426 VIP only: the account's app rule"),
        pytest.param(403, "may have been deleted or not approved", id="JSON 403: the API app refused"),
    ],
)
def test_the_app_refusal_is_explained(world: AuthWorld, status: int, phrase: str) -> None:
    authorize, cookie = start_login(world)
    query = approve_on_trakt(world, authorize)
    world.fake.add_fault("POST", "/oauth/token", status=status, body='{"error":"forbidden"}', times=-1)
    response = world.call("/trakt/callback", query, cookies=(f"{STATE_COOKIE}={cookie}",))
    assert_page(response, 403, phrase)
    assert world.trakt_secret().access_token is None


# --- everything else ----------------------------------------------------------------------------------


def test_unknown_paths_get_a_404_page(world: AuthWorld) -> None:
    assert_page(world.call("/admin"), 404, "only answers /trakt/login and /trakt/callback")


class ExplodingLoginStateStore:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def put(self, *args: Any) -> None:
        raise RuntimeError(f"boom with a secret inside: {SETUP_KEY}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_an_unexpected_error_is_a_plain_500_page(world: AuthWorld, logs: LogCapture) -> None:
    # Given storage that fails in a way nobody planned for
    world.deps.login_states = ExplodingLoginStateStore(world.deps.login_states)
    # When the owner opens the login link
    response = world.call("/trakt/login", f"key={SETUP_KEY}")
    # Then the page is a plain 500 without details, and the log names only the error's type
    body = assert_page(response, 500, "Something went wrong")
    assert "boom" not in body
    assert "RuntimeError" in logs.text
    assert "boom" not in logs.text
    assert SETUP_KEY not in logs.text


def test_the_lambda_entry_point_wires_itself_from_the_environment(
    world: AuthWorld, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    # Given the function's environment as the template sets it
    settings = world.settings
    env = {
        "KINOPUB_SECRET_ID": settings.kinopub_secret_id,
        "TRAKT_SECRET_ID": settings.trakt_secret_id,
        "STATE_TABLE_NAME": settings.state_table_name,
        "TRAKT_AUTHORIZE_URL": str(settings.trakt_authorize_url),
        "TRAKT_AUTH_URL": str(settings.trakt_auth_url),
        "TRAKT_API_URL": str(settings.trakt_api_url),
        "TRAKT_REDIRECT_URI": REDIRECT_URI,
        "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        "ALLOW_INSECURE_ENDPOINTS": "true",  # the fake Trakt listens on http://127.0.0.1
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(auth_app, "_production", None)
    # (the production wiring keeps real time: the key must be valid by the system clock)
    valid_for_an_hour = {"setup_key_expires_at": int(time.time()) + 3600}
    update_secret(world.deps.trakt_tokens, lambda secret: secret.model_copy(update=valid_for_an_hour))

    # When API Gateway invokes lambda_handler with a wrong key and then with the right one
    context = FakeLambdaContext()
    refused = auth_app.lambda_handler(api_gateway_v2_event("/trakt/login", "key=nope"), context)
    accepted = auth_app.lambda_handler(api_gateway_v2_event("/trakt/login", f"key={SETUP_KEY}"), context)

    # Then it answers from the deployment's own secret and table
    assert refused["statusCode"] == 403
    assert accepted["statusCode"] == 302
    assert accepted["headers"]["Location"].startswith(str(settings.trakt_authorize_url))
    # And the raw event is never logged, even when the environment asks for it
    assert SETUP_KEY not in logs.text
    assert "rawQueryString" not in logs.text


@pytest.mark.parametrize("name", ["auth_login.json", "auth_callback.json"])
def test_the_sample_events_are_answered_with_a_refusal_page(world: AuthWorld, name: str) -> None:
    # Given the repository's sample events (for `sam local invoke`), whose key and state are not this deployment's
    event = json.loads((Path(__file__).parents[2] / "events" / name).read_text())
    # When they reach the handler
    response = auth_app.handle(event, FakeLambdaContext(), deps=world.deps)
    # Then they are refused with a page, and Trakt is never asked for tokens
    assert_page(response, 403)
    assert world.token_exchanges() == 0
