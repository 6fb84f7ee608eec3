"""The shared transport's policy (docs/ARCHITECTURE.md#time-http-and-failures), on a virtual clock and a scripted
connection: no real sleeping, no network. Every answer is scripted; every request records the virtual time it was
sent at."""

from __future__ import annotations

import io
import itertools
import random
from collections import deque
from collections.abc import Mapping
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.adapters import BaseAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from devkit.clock import VirtualClock
from kinotrakt.clock import Deadline
from kinotrakt.errors import BadResponse, OutcomeUnknown, OutOfTime, RateLimited, ServiceUnavailable
from kinotrakt.http import CallCounter, Limits, Pacing, RetryPolicy, Transport, decode_json, time_boxed_session

BASE = "http://service.test"

Answer = int | tuple[int, Mapping[str, str]] | tuple[int, Mapping[str, str], bytes] | Exception


class ScriptedAdapter(BaseAdapter):
    """Answers requests from a script (status, status + headers [+ body], or an exception to raise), then 200."""

    def __init__(self, clock: VirtualClock, script: list[Answer] | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.script: deque[Answer] = deque(script or [])
        self.sent: list[tuple[str, float]] = []  # (method, virtual time sent)
        self.headers: list[Mapping[str, str]] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append((request.method or "", self.clock.monotonic()))
        self.headers.append(dict(request.headers))
        answer: Answer = self.script.popleft() if self.script else 200
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = _parts(answer)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""


def _parts(answer: Answer) -> tuple[int, Mapping[str, str], bytes]:
    if isinstance(answer, int):
        return answer, {}, b"{}"
    if isinstance(answer, tuple) and len(answer) == 2:
        return answer[0], answer[1], b"{}"
    assert isinstance(answer, tuple)
    assert len(answer) == 3
    return answer


def build(
    script: list[Answer] | None = None,
    *,
    remaining: float | None = None,
    pacing: Pacing | None = None,
    max_attempts: int = 5,
    limits: Limits | None = None,
) -> tuple[Transport, ScriptedAdapter, VirtualClock]:
    clock = VirtualClock()
    adapter = ScriptedAdapter(clock, script)
    session = requests.Session()
    session.mount("http://", adapter)
    transport = Transport(
        "trakt",
        clock=clock,
        deadline=Deadline(clock, remaining, margin=0),
        counter=CallCounter(),
        user_agent="kinotrakt/test",
        retry=RetryPolicy(max_attempts=max_attempts, base_delay=1.0, max_delay=60.0),
        limits=limits,
        pacing=pacing,
        session=session,
        rng=random.Random(7),
    )
    return transport, adapter, clock


def connection_refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the request never left this machine."""
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, BASE, reason))  # type: ignore[arg-type]


def connection_reset() -> requests.ConnectionError:
    """The server hung up after the request was sent: it may have been applied."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


# --- headers -------------------------------------------------------------------------------------------


def test_every_request_carries_the_user_agent_the_transport_was_built_with() -> None:
    # Given a transport built with a User-Agent
    transport, adapter, _ = build()

    # When it sends a GET and a POST
    transport.request("GET", f"{BASE}/a")
    transport.request("POST", f"{BASE}/b", json_body={})

    # Then both carry it (Cloudflare answers 403 HTML to requests without one)
    assert [h["User-Agent"] for h in adapter.headers] == ["kinotrakt/test", "kinotrakt/test"]


# --- pacing --------------------------------------------------------------------------------------------


def test_writes_are_spaced_start_to_start_by_the_interval() -> None:
    # Given a write interval of 1.5 s
    transport, adapter, clock = build(pacing=Pacing(min_write_interval=1.5))

    # When five writes are sent back to back, with a GET in between
    for index in range(5):
        transport.request("POST", f"{BASE}/sync/history", json_body={})
        if index == 2:
            transport.request("GET", f"{BASE}/sync/last_activities")

    # Then no two writes started closer than 1.5 s, and the run only waited what the spacing needs
    writes = [at for method, at in adapter.sent if method == "POST"]
    assert all(later - earlier >= 1.5 for earlier, later in itertools.pairwise(writes))
    assert clock.slept == pytest.approx(4 * 1.5)


def test_a_write_after_a_long_pause_is_not_delayed() -> None:
    # Given a write, then 10 s of other work
    transport, _adapter, clock = build(pacing=Pacing(min_write_interval=1.0))
    transport.request("POST", f"{BASE}/sync/history", json_body={})
    clock.advance(10)

    # When the next write is sent
    transport.request("POST", f"{BASE}/sync/history", json_body={})

    # Then it goes at once
    assert clock.slept == 0


def test_the_get_budget_holds_over_a_long_run() -> None:
    # Given Trakt's budget of 1000 GETs per 5 minutes
    transport, adapter, clock = build(pacing=Pacing(get_limit=1000, get_window=300))

    # When 2,500 GETs are sent as fast as the transport allows
    for _ in range(2500):
        transport.request("GET", f"{BASE}/search/imdb/tt1")

    # Then no 5-minute window ever held more than 1000 of them
    times = [at for _, at in adapter.sent]
    assert max(_in_window(times, start, 300) for start in times) == 1000
    # and the transport waited only for the budget: 2 full windows
    assert clock.slept == pytest.approx(600)


def _in_window(times: list[float], start: float, window: float) -> int:
    return sum(1 for at in times if start <= at < start + window)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["GET", "POST"]), st.floats(min_value=0, max_value=4, allow_nan=False)),
        min_size=1,
        max_size=80,
    )
)
def test_pacing_holds_for_any_mix_of_requests_and_pauses(steps: list[tuple[str, float]]) -> None:
    # Given a small budget (5 GETs per 10 s) and a 1 s write interval
    transport, adapter, clock = build(pacing=Pacing(min_write_interval=1.0, get_limit=5, get_window=10))

    # When any mix of GETs and POSTs is sent, with any pauses of work in between
    for method, pause in steps:
        clock.advance(pause)
        transport.request(method, f"{BASE}/x", json_body={} if method == "POST" else None)

    # Then writes are spaced by the interval and no 10 s window holds more than 5 GETs
    writes = [at for method, at in adapter.sent if method == "POST"]
    gets = [at for method, at in adapter.sent if method == "GET"]
    assert all(later - earlier >= 1.0 - 1e-9 for earlier, later in itertools.pairwise(writes))
    assert all(_in_window(gets, start, 10) <= 5 for start in gets)


# --- 429 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_429_waits_its_retry_after_plus_a_little_jitter_then_sends_again(method: str) -> None:
    # Given a server that answers 429 with Retry-After: 30 once
    transport, adapter, clock = build([(429, {"Retry-After": "30"})])

    # When a request is sent
    response = transport.request(method, f"{BASE}/sync/history", json_body={})

    # Then it was sent again (a 429 is a refusal, so even a write is safe) after 30-31 s
    assert response.status_code == 200
    (_, first), (_, second) = adapter.sent
    assert 30 <= second - first <= 31
    assert 30 <= clock.slept <= 31


def test_a_retry_after_given_as_an_http_date_is_honoured() -> None:
    # Given a 429 whose Retry-After is a date 25 s after the server's Date header
    clock_now = VirtualClock().now()
    headers = {
        "Date": format_datetime(clock_now, usegmt=True),
        "Retry-After": format_datetime(clock_now.replace(second=25), usegmt=True),
    }
    transport, _adapter, clock = build([(429, headers)])

    # When a GET is sent
    transport.request("GET", f"{BASE}/a")

    # Then the transport waited those 25 s (plus jitter)
    assert 25 <= clock.slept <= 26


def test_429s_are_retried_a_bounded_number_of_times() -> None:
    # Given a server that keeps answering 429
    transport, adapter, _ = build([(429, {"Retry-After": "1"})] * 10, max_attempts=3)

    # When a GET is sent, Then the transport gives up with a "try next run" error after 3 attempts
    with pytest.raises(ServiceUnavailable, match="429"):
        transport.request("GET", f"{BASE}/a")
    assert len(adapter.sent) == 3


# --- temporary failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 521, 522])
def test_a_get_that_meets_a_server_error_is_retried_with_growing_backoff(status: int) -> None:
    # Given a server that fails three times
    transport, adapter, _ = build([status, status, status])

    # When a GET is sent
    response = transport.request("GET", f"{BASE}/a")

    # Then it succeeds on the fourth attempt, after waits that grow (jittered within [ceiling/2, ceiling])
    assert response.status_code == 200
    times = [at for _, at in adapter.sent]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for attempt, gap in enumerate(gaps, start=1):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= gap <= ceiling


@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("read timed out"), requests.ConnectTimeout("connect timed out"), connection_reset()],
)
def test_a_get_whose_connection_fails_is_retried(failure: Exception) -> None:
    # Given a connection that fails once
    transport, adapter, clock = build([failure])

    # When a GET is sent, Then the second attempt answers
    assert transport.request("GET", f"{BASE}/a").status_code == 200
    assert len(adapter.sent) == 2
    assert clock.slept > 0


def test_server_errors_on_a_get_are_retried_a_bounded_number_of_times() -> None:
    # Given a server that is down for good
    transport, adapter, _ = build([503] * 10, max_attempts=4)

    # When a GET is sent, Then it stops after 4 attempts with a "the next run will try again" error
    with pytest.raises(ServiceUnavailable, match="next run"):
        transport.request("GET", f"{BASE}/a")
    assert len(adapter.sent) == 4


# --- never a blind resend --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("read timed out"), connection_reset(), 500, 502, 503, 504, 520, 521, 522],
    ids=lambda f: str(f) if isinstance(f, int) else type(f).__name__,
)
def test_a_write_whose_outcome_is_unknown_is_never_sent_again(failure: Answer) -> None:
    # Given a write that may have reached the server before the failure
    transport, adapter, clock = build([failure])

    # When it is sent, Then the caller learns the outcome is unknown, and it was sent exactly once
    with pytest.raises(OutcomeUnknown) as caught:
        transport.request("POST", f"{BASE}/sync/history", json_body={"movies": []})
    assert len(adapter.sent) == 1
    assert caught.value.path == "/sync/history"
    assert clock.slept == 0


@pytest.mark.parametrize("failure", [requests.ConnectTimeout("connect timed out"), connection_refused()])
def test_a_write_that_never_left_the_machine_is_retried(failure: Exception) -> None:
    # Given a connection that could not even be opened
    transport, adapter, _ = build([failure])

    # When a write is sent, Then it is retried: the server cannot have seen it
    assert transport.request("POST", f"{BASE}/sync/history", json_body={}).status_code == 200
    assert len(adapter.sent) == 2


def test_a_request_marked_idempotent_is_retried_even_as_a_post() -> None:
    # Given a POST the caller says is safe to repeat (e.g. asking for a new device code)
    transport, adapter, _ = build([502])

    # When it meets a 502, Then it is retried
    assert transport.request("POST", f"{BASE}/oauth/device/code", json_body={}, idempotent=True).status_code == 200
    assert len(adapter.sent) == 2


def test_pass_through_statuses_reach_the_caller_untouched() -> None:
    # Given a device poll whose 429 means "poll slower", not "retry now"
    transport, adapter, clock = build([429])

    # When the caller asks for 429 to be passed through
    response = transport.request("POST", f"{BASE}/oauth/device/token", json_body={}, pass_through=(429,))

    # Then it gets the 429 itself: no retry, no wait
    assert response.status_code == 429
    assert len(adapter.sent) == 1
    assert clock.slept == 0


# --- the deadline ----------------------------------------------------------------------------------------


def test_a_backoff_that_would_cross_the_deadline_raises_instead_of_sleeping() -> None:
    # Given 0.4 s left before the deadline and a 503 (its first backoff is at least 0.5 s)
    transport, adapter, clock = build([503], remaining=0.4)

    # When a GET is sent, Then the transport stops with OutOfTime and never slept
    with pytest.raises(OutOfTime):
        transport.request("GET", f"{BASE}/a")
    assert clock.slept == 0
    assert len(adapter.sent) == 1


def test_write_pacing_past_the_deadline_raises_before_sending() -> None:
    # Given a write just sent, a 5 s interval, and 3 s left
    transport, adapter, clock = build(pacing=Pacing(min_write_interval=5.0), remaining=3.0)
    transport.request("POST", f"{BASE}/sync/history", json_body={})

    # When the next write is due, Then it is not sent and nothing slept
    with pytest.raises(OutOfTime, match="write pacing"):
        transport.request("POST", f"{BASE}/sync/history", json_body={})
    assert len(adapter.sent) == 1
    assert clock.slept == 0


def test_no_request_starts_once_the_deadline_has_passed() -> None:
    # Given a deadline already reached
    transport, adapter, clock = build(remaining=5.0)
    clock.advance(5.0)

    # When a request is attempted, Then it is not sent
    with pytest.raises(OutOfTime):
        transport.request("GET", f"{BASE}/a")
    assert adapter.sent == []


def test_every_attempt_is_counted_for_the_report() -> None:
    # Given a GET that needs a retry
    transport, _, _ = build([502])

    # When it is sent
    transport.request("GET", f"{BASE}/shows/1/seasons")

    # Then both attempts count towards http_calls
    assert transport.counter.total("trakt") == 2


# --- every failure of requests is a typed error ------------------------------------------------------------

REQUESTS_FAILURES = sorted(
    (
        cls
        for cls in vars(requests.exceptions).values()
        if isinstance(cls, type) and issubclass(cls, requests.RequestException)
    ),
    key=lambda cls: cls.__name__,
)
# The request never left this machine: even a write may be sent again.
NEVER_SENT = (requests.ConnectTimeout,)


def failure(cls: type[requests.RequestException]) -> requests.RequestException:
    """An instance with a token-like text in its message: InvalidHeader quotes the header it refused."""
    text = "Invalid header value 'Bearer tok-SECRET-0123456789abcdef'"
    try:
        return cls(text)
    except TypeError:  # requests' JSONDecodeError is also json's: (msg, doc, pos)
        return cls(text, "doc", 0)


@pytest.mark.parametrize("cls", REQUESTS_FAILURES, ids=lambda cls: cls.__name__)
def test_every_requests_failure_on_a_get_is_retried_then_ends_in_a_typed_error(
    cls: type[requests.RequestException], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a service whose every answer fails with this requests exception
    transport, adapter, _ = build([failure(cls)] * 5, max_attempts=3)

    # When a GET is sent, Then it is retried with backoff and ends in a "next run" error of kinotrakt's own,
    # whose message (and the log) never repeats the exception's text
    with pytest.raises(ServiceUnavailable) as caught:
        transport.request("GET", f"{BASE}/sync/history/movies")
    assert len(adapter.sent) == 3
    assert caught.value.run_status == "partial"
    assert "SECRET" not in str(caught.value)
    assert caught.value.__suppress_context__
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize("cls", REQUESTS_FAILURES, ids=lambda cls: cls.__name__)
def test_every_requests_failure_after_a_write_was_sent_is_outcome_unknown(cls: type[requests.RequestException]) -> None:
    # Given a write whose exchange fails with this requests exception
    transport, adapter, clock = build([failure(cls)])

    # When it is sent
    if issubclass(cls, NEVER_SENT):
        # Then a request that never left the machine is simply sent again
        assert transport.request("POST", f"{BASE}/sync/history", json_body={}).status_code == 200
        assert len(adapter.sent) == 2
        return
    # Then anything else may have reached the server: outcome unknown, sent exactly once, never slept on
    with pytest.raises(OutcomeUnknown) as caught:
        transport.request("POST", f"{BASE}/sync/history", json_body={})
    assert len(adapter.sent) == 1
    assert clock.slept == 0
    assert "SECRET" not in str(caught.value)


# --- rate limits that cannot be waited out -----------------------------------------------------------------

CLOUDFLARE_429_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access denied | api.trakt.tv used Cloudflare to restrict access</title>"
    b"</head><body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>"
)
CLOUDFLARE_HEADERS = {"Server": "cloudflare", "Content-Type": "text/html; charset=UTF-8", "CF-RAY": "8f1c0-AMS"}


def test_a_retry_after_longer_than_the_longest_wait_is_not_slept_but_rate_limited() -> None:
    # Given a 429 asking for 31 s, one more than MAX_RETRY_WAIT_SECONDS' default of 30
    transport, adapter, clock = build([(429, {"Retry-After": "31"})])
    asked_at = clock.now()

    # When a GET is sent
    with pytest.raises(RateLimited) as caught:
        transport.request("GET", f"{BASE}/sync/history/movies")

    # Then nothing slept, and the error says which service, and when it may be asked again (aware UTC)
    error = caught.value
    assert clock.slept == 0
    assert len(adapter.sent) == 1
    assert (error.run_status, error.code, error.service) == ("partial", "rate_limited", "trakt")
    assert error.resume_after == asked_at + timedelta(seconds=31)
    assert error.resume_after.utcoffset() == timedelta(0)
    assert "Trakt" in str(error)
    assert "2026-11-01T12:00:31Z" in str(error)


def test_after_a_rate_limit_not_one_more_request_goes_to_that_service() -> None:
    # Given a service that said "come back in 5 minutes"
    transport, adapter, clock = build([(429, {"Retry-After": "300"})])
    with pytest.raises(RateLimited) as first:
        transport.request("GET", f"{BASE}/sync/history/movies")

    # When the run asks for anything else from it, reads or writes, even later in the run
    clock.advance(60)
    for method in ("GET", "POST", "GET"):
        with pytest.raises(RateLimited) as again:
            transport.request(method, f"{BASE}/search/imdb/tt1", json_body={} if method == "POST" else None)
        # Then each is refused at once with the same resume time, before any I/O and uncounted
        assert again.value.resume_after == first.value.resume_after
    assert len(adapter.sent) == 1
    assert transport.counter.total("trakt") == 1
    assert clock.slept == 0


def test_a_short_retry_after_that_would_cross_the_deadline_is_rate_limited_too() -> None:
    # Given 10 s left and a 429 asking for 20 s (under the longest wait, over what is left)
    transport, adapter, clock = build([(429, {"Retry-After": "20"})], remaining=10)

    # When a write is sent, Then it stops with RateLimited (resume in 20 s) without sleeping
    with pytest.raises(RateLimited) as caught:
        transport.request("POST", f"{BASE}/sync/history", json_body={})
    assert caught.value.resume_after == clock.now() + timedelta(seconds=20)
    assert clock.slept == 0
    assert len(adapter.sent) == 1


def test_the_longest_wait_is_a_setting() -> None:
    # Given MAX_RETRY_WAIT_SECONDS=60 and a 429 asking for 45 s
    transport, adapter, clock = build([(429, {"Retry-After": "45"})], limits=Limits(max_retry_wait=60))

    # When a GET is sent, Then the wait is honoured and the GET sent again
    assert transport.request("GET", f"{BASE}/a").status_code == 200
    assert 45 <= clock.slept <= 46
    assert len(adapter.sent) == 2


def test_a_cloudflare_html_429_is_a_rate_limit_not_a_bad_response() -> None:
    # Given Trakt's GET limit answered by Cloudflare: HTML, Retry-After: 300, no X-Ratelimit (trakt/trakt-api#922)
    transport, adapter, clock = build([(429, {**CLOUDFLARE_HEADERS, "Retry-After": "300"}, CLOUDFLARE_429_PAGE)])

    # When a GET meets it, Then the run learns it is rate limited for 5 minutes
    with pytest.raises(RateLimited) as caught:
        transport.request("GET", f"{BASE}/shows/tt0903747/seasons")
    assert caught.value.resume_after == clock.now() + timedelta(seconds=300)
    assert len(adapter.sent) == 1


def test_a_cloudflare_429_without_retry_after_still_pauses_for_its_window() -> None:
    # Given Cloudflare's 429 page without a Retry-After header
    transport, adapter, clock = build([(429, CLOUDFLARE_HEADERS, CLOUDFLARE_429_PAGE)] * 3)

    # When a GET meets it, Then it is not hammered with quick retries: 5 minutes, as Cloudflare's window
    with pytest.raises(RateLimited) as caught:
        transport.request("GET", f"{BASE}/a")
    assert caught.value.resume_after == clock.now() + timedelta(seconds=300)
    assert len(adapter.sent) == 1


def test_a_429_without_retry_after_keeps_the_bounded_backoff() -> None:
    # Given the API's own 429 (JSON, X-Ratelimit) without a Retry-After, twice
    headers = {"X-Ratelimit": '{"name":"UNAUTHED_API_GET_LIMIT","period":300,"limit":1000,"remaining":0}'}
    transport, adapter, clock = build([(429, headers), (429, headers)])

    # When a GET is sent, Then it is retried after short growing waits and succeeds
    assert transport.request("GET", f"{BASE}/a").status_code == 200
    assert len(adapter.sent) == 3
    assert 0 < clock.slept < 5


@pytest.mark.parametrize("raw", ["nan", "-inf", "-5", "soon", ""])
def test_a_retry_after_that_is_no_wait_at_all_gets_the_usual_backoff(raw: str) -> None:
    # Given a 429 whose Retry-After is not a sane number of seconds
    transport, _adapter, clock = build([(429, {"Retry-After": raw})])

    # When a GET is sent, Then it waits a short while and is sent again
    assert transport.request("GET", f"{BASE}/a").status_code == 200
    assert clock.slept < 5


@pytest.mark.parametrize("raw", ["inf", "1e400", "99999999999999999999"])
def test_an_endless_retry_after_is_read_as_a_week(raw: str) -> None:
    # Given a 429 asking to wait forever
    transport, _adapter, clock = build([(429, {"Retry-After": raw})])

    # When a GET is sent, Then the run is rate limited until a date a week away (never an overflow)
    with pytest.raises(RateLimited) as caught:
        transport.request("GET", f"{BASE}/a")
    assert caught.value.resume_after == clock.now() + timedelta(days=7)


def test_a_server_errors_retry_after_is_capped_at_the_longest_wait() -> None:
    # Given a 503 asking for an hour
    transport, adapter, clock = build([(503, {"Retry-After": "3600"})])

    # When a GET is sent, Then it waits the longest wait (30 s), not an hour, and tries again
    assert transport.request("GET", f"{BASE}/a").status_code == 200
    assert clock.slept == pytest.approx(30)
    assert len(adapter.sent) == 2


# --- the GET budget across runs (TRAKT_GET_LIMIT) ----------------------------------------------------------


def test_gets_an_earlier_run_sent_count_against_this_runs_budget() -> None:
    # Given a budget of 5 GETs per 300 s, and 5 GETs an earlier run sent 100 s ago
    transport, adapter, clock = build(pacing=Pacing(get_limit=5, get_window=300))
    transport.seed_get_times([clock.now() - timedelta(seconds=100)] * 5)

    # When this run sends its first GET
    transport.request("GET", f"{BASE}/a")

    # Then it waited until the earlier GETs left the window
    assert clock.slept == pytest.approx(200)
    assert len(adapter.sent) == 1


def test_gets_older_than_the_window_do_not_count() -> None:
    transport, _adapter, clock = build(pacing=Pacing(get_limit=2, get_window=300))
    transport.seed_get_times([clock.now() - timedelta(seconds=301)] * 10)

    transport.request("GET", f"{BASE}/a")
    transport.request("GET", f"{BASE}/a")

    assert clock.slept == 0


def test_the_gets_in_the_window_can_be_handed_to_the_next_run() -> None:
    # Given a run that sent 3 GETs, 10 s before it ended
    first, _adapter, clock = build(pacing=Pacing(get_limit=4, get_window=300))
    for _ in range(3):
        first.request("GET", f"{BASE}/a")
    clock.advance(10)
    sent = first.get_times()
    assert sent == [clock.now() - timedelta(seconds=10)] * 3

    # When the next run's transport starts from them
    second, _adapter2, clock2 = build(pacing=Pacing(get_limit=4, get_window=300))
    second.seed_get_times([clock2.now() - (clock.now() - at) for at in sent])
    second.request("GET", f"{BASE}/a")
    assert clock2.slept == 0
    second.request("GET", f"{BASE}/a")

    # Then its second GET is the fifth in the window: it waited for the first run's to age out
    assert clock2.slept == pytest.approx(290)


# --- time running out while an answer is read ----------------------------------------------------------------


class LateBody(io.BytesIO):
    """A body whose reader sees the run's deadline pass once ``late_at`` bytes have been handed over."""

    def __init__(self, data: bytes, clock: VirtualClock, late_at: int) -> None:
        super().__init__(data)
        self.clock = clock
        self.late_at = late_at
        self.passed = False

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not self.passed and self.tell() >= self.late_at:
            self.passed = True
            self.clock.advance(3600)
        return chunk


class StreamingAdapter(BaseAdapter):
    def __init__(self, body: LateBody) -> None:
        super().__init__()
        self.body = body

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.raw = self.body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""


def streaming_post(body: bytes, late_at: int) -> requests.Response:
    clock = VirtualClock()
    session = requests.Session()
    session.mount(BASE, StreamingAdapter(LateBody(body, clock, late_at)))
    transport = Transport(
        "trakt", clock=clock, deadline=Deadline(clock, 600, 60), counter=CallCounter(), user_agent="t", session=session
    )
    return transport.request("POST", f"{BASE}/sync/history", json_body={})


def test_an_answer_that_arrived_whole_as_the_deadline_passed_is_used() -> None:
    # Given a write whose whole answer is read just as the run's deadline passes
    answer = streaming_post(b'{"added": {"movies": 1}}', late_at=24)
    # Then the answer is the write's outcome (not an unknown one that would need a re-read, or a spent refresh)
    assert answer.json() == {"added": {"movies": 1}}


def test_an_answer_still_coming_when_the_deadline_passes_is_an_unknown_outcome() -> None:
    # Given a write whose answer goes on past its first 64 KiB when the deadline passes
    body = b"[" + b"0," * 60_000 + b"0]"
    # Then the write's outcome is unknown, as for any answer cut short
    with pytest.raises(OutcomeUnknown, match="deadline"):
        streaming_post(body, late_at=64 * 1024)


# --- credentials and bodies ---------------------------------------------------------------------------------


def test_a_netrc_entry_for_the_host_never_replaces_the_clients_authorization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ~/.netrc naming the service's host (requests would read it for every request, and its Basic
    # credentials would replace the header a client set)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine service.test login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    clock = VirtualClock()
    adapter = ScriptedAdapter(clock)
    session = time_boxed_session()
    session.mount("http://", adapter)
    transport = Transport(
        "kinopub",
        clock=clock,
        deadline=Deadline(clock, None, 0),
        counter=CallCounter(),
        user_agent="t",
        session=session,
    )

    # When a client sends its bearer token, and another request goes without one
    transport.request("GET", f"{BASE}/v1/history", headers={"Authorization": "Bearer the-token"})
    transport.request("GET", f"{BASE}/v1/user")

    # Then the first carries the bearer token, the second no credentials at all
    assert adapter.headers[0]["Authorization"] == "Bearer the-token"
    assert "Authorization" not in adapter.headers[1]


def answered(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.url = f"{BASE}/v1/history?access_token=never-shown"
    response.headers["Content-Type"] = "application/json"
    return response


def test_a_json_answer_is_read_whole_with_or_without_a_byte_order_mark() -> None:
    body = '{"history": [{"title": "Чернобыль / Chernobyl", "n": 1.5, "big": 12345678901234567890}]}'.encode()
    expected = {"history": [{"title": "Чернобыль / Chernobyl", "n": 1.5, "big": 12345678901234567890}]}
    assert decode_json(answered(body), "kinopub") == expected
    assert decode_json(answered(b"\xef\xbb\xbf" + body), "kinopub") == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 300 + b"]" * 300, "answered JSON nested too deeply"),
        (b'{"title": "\\ud800"}', "answered invalid JSON"),  # a lone surrogate: no text Python could print
        (b'{"history": [', "answered invalid JSON"),
        (b"", "answered invalid JSON"),
    ],
)
def test_an_unreadable_json_answer_is_a_bad_response_naming_the_path_only(body: bytes, reason: str) -> None:
    with pytest.raises(BadResponse) as caught:
        decode_json(answered(body), "kinopub")
    assert reason in str(caught.value)
    assert "/v1/history" in str(caught.value)
    assert "never-shown" not in str(caught.value)
