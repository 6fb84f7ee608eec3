"""Trakt OAuth against the fake Trakt: device flow outcomes, authorization code + PKCE, single-use refresh
tokens, revoke. Polling runs on a VirtualClock shared with the fake."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.fake_trakt import CLOUDFLARE_403, FakeTrakt
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Deadline
from kinotrakt.errors import OutcomeUnknown, RelinkRequired, TraktAppRejected, TraktCloudflareBlocked
from kinotrakt.http import CallCounter
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.trakt.client import trakt_transport
from kinotrakt.trakt.models import DeviceCode
from kinotrakt.trakt.oauth import (
    OOB_REDIRECT_URI,
    DeviceAccessDenied,
    DeviceCodeAlreadyUsed,
    DeviceCodeExpired,
    DeviceCodeInvalid,
    DeviceFlowFailed,
    DeviceFlowRefused,
    TraktAuthorizationRefused,
    TraktOAuth,
    make_token_keeper,
)

REDIRECT_URI = "https://kinotrakt.example/trakt/callback"


@dataclass
class Auth:
    fake: FakeTrakt
    clock: VirtualClock
    oauth: TraktOAuth

    def polls(self) -> list[float]:
        return [request.at for request in self.fake.calls("POST", "/oauth/device/token")]


def build(fake: FakeTrakt, clock: VirtualClock) -> Auth:
    transport = trakt_transport(
        post_interval_seconds=1.0, clock=clock, deadline=Deadline(clock, None, margin=0), counter=CallCounter()
    )
    return Auth(fake, clock, TraktOAuth(transport, fake.base_url, fake.client_id, fake.client_secret))


@pytest.fixture
def auth() -> Iterator[Auth]:
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time, device_interval=5, device_expires_in=600) as fake:
        yield build(fake, clock)


# --- device flow ---------------------------------------------------------------------------------------------


def test_the_device_flow_polls_at_the_interval_until_the_user_approves(auth: Auth) -> None:
    # Given a device code shown to the user
    device = auth.oauth.request_device_code()
    issued_at = auth.clock.time()
    ticks: list[float] = []

    def user_approves_on_the_third_tick(seconds_left: float) -> None:
        ticks.append(seconds_left)
        if len(ticks) == 3:
            auth.fake.approve_device(device.user_code)

    # When the CLI polls for the token
    grant = auth.oauth.poll_device_token(device, auth.clock, on_tick=user_approves_on_the_third_tick)

    # Then it polled every 5 s from the code's issue (pending answers are not JSON), and got a live token
    polls = auth.polls()
    assert [round(at - issued_at) for at in polls] == [5, 10, 15, 20]
    assert ticks == [595, 590, 585]
    assert auth.fake.token_is_valid(grant.access_token)
    assert device.verification_url == auth.fake.verification_url


def test_slow_down_makes_every_later_poll_5_seconds_slower(auth: Auth) -> None:
    # Given Trakt answers the first poll with 429 (slow down)
    device = auth.oauth.request_device_code()
    auth.fake.add_fault("POST", r"/oauth/device/token", status=429)
    ticks = 0

    def approve_later(seconds_left: float) -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 3:
            auth.fake.approve_device(device.user_code)

    # When the CLI polls
    auth.oauth.poll_device_token(device, auth.clock, on_tick=approve_later)

    # Then every poll after the 429 came 10 s after the previous one, and none was refused again
    gaps = [round(later - earlier) for earlier, later in itertools.pairwise(auth.polls())]
    assert gaps == [10, 10, 10]
    assert [r.status for r in auth.fake.calls("POST", "/oauth/device/token")] == [429, 400, 400, 200]


def test_a_denied_request_is_its_own_outcome(auth: Auth) -> None:
    # Given the user presses Deny on trakt.tv
    device = auth.oauth.request_device_code()
    auth.fake.deny_device(device.user_code)

    # When the CLI polls, Then it stops with "denied" and tells the user how to start again
    with pytest.raises(DeviceAccessDenied, match="link trakt") as caught:
        auth.oauth.poll_device_token(device, auth.clock)
    assert caught.value.outcome == "denied"
    assert len(auth.polls()) == 1


def test_a_code_trakt_says_expired_is_its_own_outcome(auth: Auth) -> None:
    # Given Trakt considers the code expired (HTTP 410)
    device = auth.oauth.request_device_code()
    auth.fake.expire_device(device.user_code)

    # When the CLI polls, Then it stops with "expired"
    with pytest.raises(DeviceCodeExpired) as caught:
        auth.oauth.poll_device_token(device, auth.clock)
    assert caught.value.outcome == "expired"


def test_polling_stops_by_itself_when_the_code_expires() -> None:
    # Given a code valid for 30 s that nobody approves
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time, device_interval=5, device_expires_in=30) as fake:
        auth = build(fake, clock)
        device = auth.oauth.request_device_code()
        issued_at = clock.time()

        # When the CLI polls, Then it gives up at the code's expiry without a poll past it
        with pytest.raises(DeviceCodeExpired):
            auth.oauth.poll_device_token(device, clock)
        assert all(at - issued_at <= 30 for at in auth.polls())
        assert {r.status for r in fake.calls("POST", "/oauth/device/token")} == {400}
        assert clock.time() - issued_at == pytest.approx(30, abs=0.01)


def test_an_unknown_device_code_is_its_own_outcome(auth: Auth) -> None:
    # Given a device code Trakt never issued
    device = DeviceCode(
        device_code=SecretStr("0" * 64), user_code="ABCD1234", verification_url="x", expires_in=600, interval=5
    )

    # When the CLI polls, Then it stops with "invalid code" (HTTP 404)
    with pytest.raises(DeviceCodeInvalid) as caught:
        auth.oauth.poll_device_token(device, auth.clock)
    assert caught.value.outcome == "invalid_code"


def test_a_device_code_already_exchanged_is_its_own_outcome(auth: Auth) -> None:
    # Given a code the user approved and that was already exchanged for tokens
    device = auth.oauth.request_device_code()
    auth.fake.approve_device(device.user_code)
    auth.oauth.poll_device_token(device, auth.clock)

    # When it is polled again, Then the outcome is "already used" (HTTP 409)
    with pytest.raises(DeviceCodeAlreadyUsed) as caught:
        auth.oauth.poll_device_token(device, auth.clock)
    assert caught.value.outcome == "already_used"


def test_a_wrong_client_secret_stops_polling_at_once_with_trakts_error() -> None:
    # Given a CLI set up with a client secret that is not the app's
    clock = VirtualClock()
    with FakeTrakt(clock=clock.time, device_interval=5, device_expires_in=600) as fake:
        transport = trakt_transport(
            post_interval_seconds=1.0, clock=clock, deadline=Deadline(clock, None, margin=0), counter=CallCounter()
        )
        oauth = TraktOAuth(transport, fake.base_url, fake.client_id, "not-the-app-secret")
        device = oauth.request_device_code()

        # When it polls, Then the first answer (400 with a JSON invalid_client) ends the flow, saying why
        with pytest.raises(DeviceFlowRefused) as caught:
            oauth.poll_device_token(device, clock)
        polls = fake.calls("POST", "/oauth/device/token")

    assert caught.value.error == "invalid_client"
    assert caught.value.outcome == "refused"
    assert "invalid_client" in str(caught.value)
    assert "client secret" in str(caught.value)
    assert "expired" not in str(caught.value)
    # and it did not keep polling for the code's 10 minutes
    assert len(polls) == 1
    assert clock.slept == pytest.approx(5)


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ('{"error":"invalid_grant","error_description":"x"}', "refused"),
        ('{"error":"unauthorized_client"}', "refused"),
        ('{"error":"Client Failed: secret=abc"}', "refused"),
        ('{"error":"expired_token"}', "expired"),
        ('{"error":"access_denied"}', "denied"),
    ],
)
def test_a_400_with_a_json_error_other_than_pending_ends_polling(auth: Auth, body: str, outcome: str) -> None:
    # Given Trakt answers a poll with a 400 whose JSON names an error
    device = auth.oauth.request_device_code()
    auth.fake.add_fault("POST", r"/oauth/device/token", status=400, body=body)

    # When the CLI polls, Then it stops at that answer with the matching outcome
    with pytest.raises(DeviceFlowFailed) as caught:
        auth.oauth.poll_device_token(device, auth.clock)
    assert caught.value.outcome == outcome
    assert len(auth.polls()) == 1
    # and a value that is not shaped like an error code is never repeated
    assert "secret=abc" not in str(caught.value)


def test_a_json_pending_or_slow_down_keeps_polling(auth: Auth) -> None:
    # Given Trakt answers in RFC 8628's JSON: pending once, then slow down
    device = auth.oauth.request_device_code()
    auth.fake.add_fault("POST", r"/oauth/device/token", status=400, body='{"error":"authorization_pending"}')
    auth.fake.add_fault("POST", r"/oauth/device/token", status=400, body='{"error":"slow_down"}')
    ticks = 0

    def approve_later(seconds_left: float) -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 3:
            auth.fake.approve_device(device.user_code)

    # When the CLI polls, Then it goes on (10 s apart after the slow down) until the user approves
    grant = auth.oauth.poll_device_token(device, auth.clock, on_tick=approve_later)
    assert auth.fake.token_is_valid(grant.access_token)
    gaps = [round(later - earlier) for earlier, later in itertools.pairwise(auth.polls())]
    assert gaps == [5, 10, 10]


def test_the_device_code_never_shows_in_a_repr(auth: Auth) -> None:
    # When a device code is requested
    device = auth.oauth.request_device_code()

    # Then what the user needs is readable, and the code we poll with is hidden
    assert device.user_code in repr(device)
    assert device.device_code.get_secret_value() not in repr(device)


# --- authorization code + PKCE -------------------------------------------------------------------------------


def authorize(fake: FakeTrakt, verifier: str) -> str:
    """The browser's round trip through Trakt's authorize page (auto-approved): the code it brings back."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    fake.auto_approve = True
    page = requests.get(
        f"{fake.base_url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": fake.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=5,
    )
    return parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]


VERIFIER = "v" * 64


def test_an_authorization_code_is_exchanged_with_its_pkce_verifier(auth: Auth) -> None:
    # Given a code from the browser flow
    code = authorize(auth.fake, VERIFIER)

    # When the callback exchanges it
    grant = auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)

    # Then Trakt got the verifier, the redirect URI and the grant type, and the tokens work
    sent = auth.fake.calls("POST", "/oauth/token")[0].json
    assert sent is not None
    assert (sent["grant_type"], sent["code_verifier"], sent["redirect_uri"]) == (
        "authorization_code",
        VERIFIER,
        REDIRECT_URI,
    )
    assert auth.fake.token_is_valid(grant.access_token)
    assert grant.created_at is not None
    assert grant.access_token not in repr(grant)


@pytest.mark.parametrize("reuse", [False, True], ids=["wrong verifier", "code used twice"])
def test_a_rejected_code_says_to_start_the_login_again(auth: Auth, reuse: bool) -> None:
    # Given a code, exchanged once already or presented with the wrong verifier
    code = authorize(auth.fake, VERIFIER)
    if reuse:
        auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)

    # When it is exchanged, Then the refusal says what to do, and carries neither the code nor the secret
    with pytest.raises(TraktAuthorizationRefused, match="/trakt/login") as caught:
        auth.oauth.exchange_code(code, VERIFIER if reuse else "w" * 64, REDIRECT_URI)
    assert code not in str(caught.value)
    assert auth.fake.client_secret not in str(caught.value)


def test_an_account_that_may_not_connect_the_app_is_told_why(auth: Auth) -> None:
    # Given Trakt refuses the exchange with 426 (VIP only: the 2026 app rules, free accounts one community app)
    code = authorize(auth.fake, VERIFIER)
    auth.fake.add_fault("POST", r"/oauth/token", status=426, body='{"error":"vip only"}')

    # When the callback exchanges the code, Then the error names the rule and the way out
    with pytest.raises(TraktAuthorizationRefused) as caught:
        auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)
    message = str(caught.value)
    assert "HTTP 426" in message
    assert "one community app" in message
    assert "VIP" in message


def test_a_json_403_while_linking_says_what_a_run_says_of_a_rejected_app(auth: Auth) -> None:
    # Given Trakt answers the exchange with its own JSON 403 (the API app unknown, unapproved or deleted)
    code = authorize(auth.fake, VERIFIER)
    auth.fake.add_fault("POST", r"/oauth/token", status=403, body='{"error":"forbidden"}')

    # When the callback exchanges the code, Then the error is word for word the run's trakt_app_rejected
    with pytest.raises(TraktAuthorizationRefused) as caught:
        auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)
    assert str(caught.value) == TraktAppRejected.message
    assert caught.value.status == 403


def test_cloudflare_during_linking_is_not_mistaken_for_the_app_rule(auth: Auth) -> None:
    # Given Cloudflare blocks the token exchange with its HTML page
    code = authorize(auth.fake, VERIFIER)
    auth.fake.add_fault("POST", r"/oauth/token", status=403, body=CLOUDFLARE_403, content_type="text/html")

    # When the code is exchanged, Then the error is Cloudflare's
    with pytest.raises(TraktCloudflareBlocked):
        auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)


def test_a_lost_answer_to_the_exchange_is_never_sent_twice(auth: Auth) -> None:
    # Given Trakt issues the tokens and the connection drops before the answer
    code = authorize(auth.fake, VERIFIER)
    auth.fake.add_fault("POST", r"/oauth/token", action="apply_then_drop")

    # When the code is exchanged, Then the outcome is unknown and the single-use code was sent once
    with pytest.raises(OutcomeUnknown):
        auth.oauth.exchange_code(code, VERIFIER, REDIRECT_URI)
    assert len(auth.fake.calls("POST", "/oauth/token")) == 1


# --- refresh and revoke --------------------------------------------------------------------------------------


def linked_secret(fake: FakeTrakt, **extra: str) -> ServiceSecret:
    tokens = fake.issue_tokens()
    return ServiceSecret(
        client_id=fake.client_id,
        client_secret=SecretStr(fake.client_secret),
        access_token=SecretStr(tokens["access_token"]),
        refresh_token=SecretStr(tokens["refresh_token"]),
        issued_at=tokens["created_at"],
        expires_at=tokens["created_at"] + tokens["expires_in"],
        **extra,
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, OOB_REDIRECT_URI), ({"redirect_uri": REDIRECT_URI}, REDIRECT_URI)],
    ids=["device-flow link", "browser link"],
)
def test_a_refresh_rotates_the_pair_and_uses_the_links_redirect_uri(
    auth: Auth, extra: dict[str, str], expected: str
) -> None:
    # Given a linked secret (a browser link records its redirect URI)
    secret = linked_secret(auth.fake, **extra)
    assert secret.refresh_token is not None
    old_refresh = secret.refresh_token.get_secret_value()

    # When it is refreshed
    grant = auth.oauth.refresh(secret)

    # Then Trakt got a refresh_token grant with that redirect URI, the new pair works, the old one is dead
    sent = auth.fake.calls("POST", "/oauth/token")[0].json
    assert sent is not None
    assert (sent["grant_type"], sent["redirect_uri"]) == ("refresh_token", expected)
    assert auth.fake.token_is_valid(grant.access_token)
    assert grant.refresh_token != old_refresh
    with pytest.raises(RelinkRequired):
        auth.oauth.refresh(secret)


def test_a_dead_refresh_token_asks_for_a_relink_and_keeps_the_stored_secret(auth: Auth) -> None:
    # Given a stored pair whose refresh token Trakt has revoked, and an access token about to expire
    secret = linked_secret(auth.fake)
    assert secret.refresh_token is not None
    auth.fake.revoke(secret.refresh_token.get_secret_value())
    now = int(auth.clock.time())
    store = InMemoryTokenStore(secret.model_copy(update={"issued_at": now - 7 * 24 * 3600, "expires_at": now + 60}))
    keeper = make_token_keeper(store, auth.oauth, auth.clock)

    # When a token is needed, Then the user is told to link again, and nothing was written over the secret
    with pytest.raises(RelinkRequired, match="kinotrakt link trakt") as caught:
        keeper.access_token()
    assert "invalid_grant" in str(caught.value)
    assert secret.refresh_token.get_secret_value() not in str(caught.value)
    assert store.writes == []


def test_a_refresh_whose_answer_is_lost_is_not_repeated(auth: Auth) -> None:
    # Given Trakt rotates the pair and the connection drops before the answer
    store = InMemoryTokenStore(linked_secret(auth.fake).model_copy(update={"expires_at": 0}))
    keeper = make_token_keeper(store, auth.oauth, auth.clock)
    auth.fake.add_fault("POST", r"/oauth/token", action="apply_then_drop")

    # When a token is needed, Then the outcome is unknown, the single-use token was sent once, nothing stored
    with pytest.raises(OutcomeUnknown):
        keeper.access_token()
    assert len(auth.fake.calls("POST", "/oauth/token")) == 1
    assert store.writes == []


def test_a_refreshed_pair_is_stored_before_the_token_is_handed_out(auth: Auth) -> None:
    # Given a stored access token that expires within Trakt's margin
    store = InMemoryTokenStore(linked_secret(auth.fake).model_copy(update={"expires_at": int(auth.clock.time())}))
    keeper = make_token_keeper(store, auth.oauth, auth.clock)

    # When a token is needed
    token = keeper.access_token()

    # Then the token handed out is the new one, already in the store with its lifetime
    stored = store.load().secret
    assert stored.access_token is not None
    assert stored.access_token.get_secret_value() == token
    assert auth.fake.token_is_valid(token)
    assert stored.issued_at is not None
    assert stored.expires_at == stored.issued_at + 7 * 24 * 3600


def test_a_revoked_token_stops_working(auth: Auth) -> None:
    # Given a live access token
    secret = linked_secret(auth.fake)
    assert secret.access_token is not None
    token = secret.access_token.get_secret_value()

    # When it is revoked, Then Trakt no longer accepts it
    auth.oauth.revoke(token)
    assert not auth.fake.token_is_valid(token)
