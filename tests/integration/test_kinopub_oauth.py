"""Kinopub device-flow linking and token refresh against the fake Kinopub, on a virtual clock."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from devkit.clock import VirtualClock
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.memory import InMemoryTokenStore
from kinotrakt.clock import Deadline
from kinotrakt.config import DEFAULT_KINOPUB_USER_AGENT
from kinotrakt.errors import BadResponse, NotConfigured, OutcomeUnknown, RelinkRequired
from kinotrakt.http import CallCounter, Limits, Transport
from kinotrakt.kinopub.client import KinopubClient
from kinotrakt.kinopub.oauth import KinopubOAuth, LinkFailed, make_token_keeper
from kinotrakt.storage.ports import ServiceSecret


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> Iterator[FakeKinopub]:
    with FakeKinopub(clock=clock.time) as server:
        yield server


def kinopub_transport(clock: VirtualClock) -> Transport:
    # A deadline without a limit on a virtual clock: waits are simulated, never slept.
    return Transport(
        "kinopub",
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        user_agent=DEFAULT_KINOPUB_USER_AGENT,
        limits=Limits(read_timeout=5),
        rng=random.Random(3),
    )


def oauth_for(
    fake: FakeKinopub, clock: VirtualClock, client_secret: str | None = None, transport: Transport | None = None
) -> KinopubOAuth:
    transport = transport or kinopub_transport(clock)
    return KinopubOAuth(transport, fake.base_url, fake.client_id, client_secret or fake.client_secret)


def stored_pair(
    fake: FakeKinopub, clock: VirtualClock, *, expires_in: int = 60, on_store: Callable[[str], None] | None = None
) -> InMemoryTokenStore:
    """Tokens as ``link`` stores them; ``on_store`` sees every store operation by name."""
    pair = fake.issue_tokens()
    now = int(clock.time())
    secret = ServiceSecret(
        client_id=fake.client_id,
        client_secret=SecretStr(fake.client_secret),
        access_token=SecretStr(pair["access_token"]),
        refresh_token=SecretStr(pair["refresh_token"]),
        issued_at=now,
        expires_at=now + expires_in,
    )
    return InMemoryTokenStore(secret, faults=on_store)


# --- linking --------------------------------------------------------------------------------------------------


def test_device_flow_polls_while_pending_and_returns_the_tokens_once_approved(
    fake: FakeKinopub, clock: VirtualClock
) -> None:
    # Given a device code (Kinopub sends the interval as a string, "5")
    oauth = oauth_for(fake, clock)
    device = oauth.request_device_code()
    assert device.interval == 5
    assert device.user_code in fake.pending_user_codes

    # When the user approves it on kino.pub while kinotrakt waits two intervals
    ticks: list[float] = []

    def on_tick(seconds_left: float) -> None:
        ticks.append(seconds_left)
        if len(ticks) == 2:
            fake.approve_device(device.user_code)

    grant = oauth.poll_device_token(device, clock, on_tick)

    # Then it polled every interval on the clock and got a working token pair
    polls = [r for r in fake.calls("POST", "/oauth2/device") if r.params()["grant_type"] == "device_token"]
    assert len(polls) == 3
    assert [r.params()["code"] for r in polls] == [device.code.get_secret_value()] * 3
    assert clock.slept == 10
    assert ticks == [device.expires_in - 5, device.expires_in - 10]
    assert fake.token_is_valid(grant.access_token)
    assert grant.refresh_token
    assert grant.expires_in > 0


def test_an_expired_device_code_ends_linking_with_a_clear_error(fake: FakeKinopub, clock: VirtualClock) -> None:
    oauth = oauth_for(fake, clock)
    device = oauth.request_device_code()
    fake.expire_device(device.user_code)

    with pytest.raises(LinkFailed, match=r"expired.*kinotrakt link kinopub"):
        oauth.poll_device_token(device, clock)


def test_polling_stops_when_the_device_code_runs_out_of_time(clock: VirtualClock) -> None:
    # Given a code that lives 12 s and is never approved
    with FakeKinopub(clock=clock.time, device_expires_in=12) as fake:
        oauth = oauth_for(fake, clock)
        device = oauth.request_device_code()

        # When kinotrakt polls
        with pytest.raises(LinkFailed, match="expired"):
            oauth.poll_device_token(device, clock)

        # Then it gave up at the code's expiry, polling at 0, 5, 10 and 12 s
        polls = [r for r in fake.calls("POST", "/oauth2/device") if r.params()["grant_type"] == "device_token"]
        assert len(polls) == 4
        assert clock.slept == 12


def test_wrong_client_credentials_say_how_to_fix_them(fake: FakeKinopub, clock: VirtualClock) -> None:
    with pytest.raises(NotConfigured, match="kinotrakt setup"):
        oauth_for(fake, clock, client_secret="wrong").request_device_code()


def test_the_device_is_named_once_after_linking(fake: FakeKinopub, clock: VirtualClock) -> None:
    oauth = oauth_for(fake, clock)
    token = fake.issue_tokens()["access_token"]

    oauth.notify_device(token, hardware="AWS Lambda arm64", software="kinotrakt 0.1.0")

    assert fake.device_info == {"title": "kinotrakt", "hardware": "AWS Lambda arm64", "software": "kinotrakt 0.1.0"}
    (notify,) = fake.calls("POST", "/v1/device/notify")
    assert notify.headers["authorization"] == f"Bearer {token}"


# --- refresh --------------------------------------------------------------------------------------------------


def test_refresh_rotates_the_pair_and_persists_it_before_the_next_request(
    fake: FakeKinopub, clock: VirtualClock
) -> None:
    # Given stored tokens about to expire, and a store that notes how many requests Kinopub had seen at each write
    requests_at_save: list[int] = []

    def on_store(operation: str) -> None:
        if operation == "save":
            requests_at_save.append(len(fake.requests))

    store = stored_pair(fake, clock, on_store=on_store)
    old_refresh = store.load().secret.refresh_token
    assert old_refresh is not None
    transport = kinopub_transport(clock)
    oauth = oauth_for(fake, clock, transport=transport)
    client = KinopubClient(transport, fake.base_url, make_token_keeper(store, oauth, clock))

    # When the client reads
    client.history_page(1)

    # Then the refresh went to /oauth2/token with the old refresh token as a form body,
    refresh, read = fake.requests
    assert (refresh.method, refresh.path, read.path) == ("POST", "/oauth2/token", "/v1/history")
    assert refresh.form["grant_type"] == "refresh_token"
    assert refresh.form["refresh_token"] == old_refresh.get_secret_value()
    # the new pair was stored between the refresh and the read, and the read used it
    assert requests_at_save == [1]
    secret = store.load().secret
    assert secret.access_token is not None
    assert secret.refresh_token is not None
    assert read.headers["authorization"] == f"Bearer {secret.access_token.get_secret_value()}"
    assert secret.refresh_token != old_refresh
    assert secret.expires_at == int(clock.time()) + fake.access_token_ttl
    # and the old refresh token is dead, as on the real service
    with pytest.raises(RelinkRequired):
        oauth.refresh(secret.model_copy(update={"refresh_token": old_refresh}))


def test_refresh_falls_back_to_the_device_endpoint(clock: VirtualClock) -> None:
    # Given a Kinopub that only refreshes on /oauth2/device, as older clients used it
    with FakeKinopub(clock=clock.time, refresh_on_device_endpoint_only=True) as fake:
        store = stored_pair(fake, clock)
        oauth = oauth_for(fake, clock)

        # When the token is refreshed
        grant = oauth.refresh(store.load().secret)

        # Then /oauth2/token answered its HTML 404 and the device endpoint issued the pair
        assert [(r.method, r.path, r.status) for r in fake.requests] == [
            ("POST", "/oauth2/token", 404),
            ("POST", "/oauth2/device", 200),
        ]
        assert fake.requests[1].form["grant_type"] == "refresh_token"
        assert fake.token_is_valid(grant.access_token)


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "text/html", "<!DOCTYPE html><html><body>Welcome</body></html>"),
        (400, "text/html", "<html><body>Bad Request</body></html>"),
        (403, "text/html", "<html><body>Forbidden</body></html>"),
    ],
    ids=["200 html", "400 html", "403 html"],
)
def test_a_refresh_applied_before_an_html_answer_is_never_sent_again(
    fake: FakeKinopub, clock: VirtualClock, status: int, content_type: str, body: str
) -> None:
    # Given a refresh that Kinopub applies (the old refresh token dies) while a proxy answers an HTML page
    store = stored_pair(fake, clock)
    secret = store.load().secret
    assert secret.refresh_token is not None
    fake.add_fault(
        "POST", r"/oauth2/token", action="apply_then_respond", status=status, body=body, content_type=content_type
    )

    # When the token is refreshed
    with pytest.raises((OutcomeUnknown, BadResponse)) as caught:
        oauth_for(fake, clock).refresh(secret)

    # Then the single-use token went out once: no fallback to the device endpoint spent it a second time
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/oauth2/token")]
    assert not isinstance(caught.value, RelinkRequired)
    # (a 2xx whose body cannot be read is a lost answer: the keeper reads the secret back before going on)
    assert isinstance(caught.value, OutcomeUnknown) == (status == 200)


def test_a_json_404_from_the_token_endpoint_is_its_own_answer_not_a_missing_route(
    fake: FakeKinopub, clock: VirtualClock
) -> None:
    # Given a token endpoint that refuses the refresh token with a JSON error under a 404
    store = stored_pair(fake, clock)
    fake.add_fault("POST", r"/oauth2/token", status=404, body='{"error": "invalid_refresh_token"}')

    # When the token is refreshed
    with pytest.raises(RelinkRequired):
        oauth_for(fake, clock).refresh(store.load().secret)

    # Then that answer decided it: the device endpoint was not asked
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/oauth2/token")]


def test_a_dead_refresh_token_asks_to_link_again_without_leaking_it(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given stored tokens whose refresh token Kinopub has revoked
    store = stored_pair(fake, clock)
    secret = store.load().secret
    assert secret.refresh_token is not None
    dead = secret.refresh_token.get_secret_value()
    fake.revoke(dead)
    keeper = make_token_keeper(store, oauth_for(fake, clock), clock)

    # When the keeper needs a fresh token
    with pytest.raises(RelinkRequired) as caught:
        keeper.access_token()

    # Then the error names the command to run, never the token, and nothing was stored
    message = str(caught.value)
    assert "kinotrakt link kinopub" in message
    assert "invalid_refresh_token" in message
    assert dead not in message
    assert store.writes == []


def test_a_refresh_whose_answer_is_lost_is_never_sent_again(fake: FakeKinopub, clock: VirtualClock) -> None:
    # Given a refresh that Kinopub answers with a 502 (the single-use token may be spent already)
    store = stored_pair(fake, clock)
    fake.add_fault("POST", r"/oauth2/token", status=502, body="<html>Bad Gateway</html>", content_type="text/html")

    # When the token is refreshed
    with pytest.raises(OutcomeUnknown):
        oauth_for(fake, clock).refresh(store.load().secret)

    # Then it was sent exactly once: no retry, and no fallback to the device endpoint
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/oauth2/token")]
