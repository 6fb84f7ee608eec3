"""Linking Trakt in a real browser: headless Chromium → the local API Gateway adapter → the real auth handler
(moto's table and secret) → the fake Trakt's authorize page → Approve → back to the callback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from devkit.apigw import ApiGatewayAdapter
from devkit.fakes.fake_trakt import FakeTrakt
from functions.auth.app import handle
from kinotrakt.clock import SystemClock
from kinotrakt.web.login import STATE_COOKIE
from tests.browser.auth_world import SETUP_KEY, AuthWorld, build_world
from tests.browser.cdp import Chromium, Page

pytestmark = pytest.mark.browser


@dataclass
class Deployment:
    api: ApiGatewayAdapter
    world: AuthWorld

    @property
    def login_url(self) -> str:
        return f"{self.api.base_url}/trakt/login?key={SETUP_KEY}"

    def last_status(self, path: str) -> int:
        for event, response in zip(reversed(self.api.events), reversed(self.api.responses), strict=False):
            if event["rawPath"] == path:
                return int(response["statusCode"])
        raise AssertionError(f"no request to {path}")


@pytest.fixture
def deployment(aws: boto3.Session, state_table: str, secrets: tuple[str, str]) -> Iterator[Deployment]:
    with ApiGatewayAdapter() as api, FakeTrakt() as fake:
        world = build_world(
            aws,
            fake,
            kinopub_secret=secrets[0],
            trakt_secret=secrets[1],
            table=state_table,
            redirect_uri=f"{api.base_url}/trakt/callback",
            clock=SystemClock(),
        )
        api.handler = lambda event, context: handle(event, context, deps=world.deps)
        yield Deployment(api, world)


@pytest.fixture
def page(chromium_path: str) -> Iterator[Page]:
    with Chromium(chromium_path) as browser:
        yield browser.new_page()


def state_cookies(page: Page) -> list[dict[str, object]]:
    return [cookie for cookie in page.browser.cookies() if cookie["name"] == STATE_COOKIE]


def test_linking_trakt_in_a_real_browser(deployment: Deployment, page: Page) -> None:
    # Given a deployment with a setup key, and the owner's browser
    world = deployment.world

    # When the owner opens the login link
    page.navigate(deployment.login_url)

    # Then the browser lands on Trakt's authorize page, holding the __Host- state cookie
    page.wait_for_page("/oauth/authorize")
    assert "Authorize kinotrakt" in page.text
    (cookie,) = state_cookies(page)
    assert cookie["domain"] == "127.0.0.1"
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"

    # When they approve kinotrakt on Trakt
    page.evaluate("document.getElementById('approve').click(), true")

    # Then the callback page says which Trakt account is linked
    page.wait_for_page("/trakt/callback")
    page.wait_until(lambda p: "Trakt account linked" in p.text, "the success page")
    assert "kinotrakt-demo" in page.text
    assert deployment.last_status("/trakt/callback") == 200
    # And the browser really sent the cookie back (Chromium keeps Secure cookies on http://127.0.0.1)
    callback_event = next(e for e in reversed(deployment.api.events) if e["rawPath"] == "/trakt/callback")
    assert any(entry.startswith(f"{STATE_COOKIE}=") and len(entry) > 40 for entry in callback_event["cookies"])
    # And the cookie is gone once used
    assert state_cookies(page) == []
    # And the page's inline style applies under its Content-Security-Policy
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(26, 127, 55)"
    # And the tokens landed in the (moto) Trakt secret, and they work on Trakt
    secret = world.trakt_secret()
    assert secret.access_token is not None
    assert secret.refresh_token is not None
    assert world.fake.token_is_valid(secret.access_token.get_secret_value())
    assert world.token_exchanges() == 1
    assert secret.access_token.get_secret_value() not in page.evaluate("document.documentElement.outerHTML")

    # When the same callback URL is opened again (back button, reload, a copied link)
    callback_url = page.url
    page.navigate(callback_url)

    # Then it is refused with a page that says what to do, and no second exchange happens
    page.wait_until(lambda p: "already used" in p.text, "the refusal page")
    assert "Start again from the login link" in page.text
    assert deployment.last_status("/trakt/callback") == 403
    assert world.token_exchanges() == 1
    assert world.trakt_secret().access_token == secret.access_token


def test_denying_on_trakt_shows_why_nothing_was_linked(deployment: Deployment, page: Page) -> None:
    page.navigate(deployment.login_url)
    page.wait_for_page("/oauth/authorize")
    page.evaluate("document.getElementById('deny').click(), true")
    page.wait_for_page("/trakt/callback")
    page.wait_until(lambda p: "did not authorize kinotrakt" in p.text, "the denial page")
    assert "only one community app" in page.text
    assert deployment.last_status("/trakt/callback") == 403
    assert deployment.world.token_exchanges() == 0
    assert deployment.world.trakt_secret().access_token is None


def test_a_login_link_with_a_wrong_key_goes_nowhere(deployment: Deployment, page: Page) -> None:
    page.navigate(f"{deployment.api.base_url}/trakt/login?key=guessed")
    page.wait_until(lambda p: "This login link is not valid" in p.text, "the refusal page")
    assert page.evaluate("location.pathname") == "/trakt/login"
    assert state_cookies(page) == []
    assert deployment.world.fake.requests == []
