"""The fault catalogue: what can go wrong in (or between) runs, each with its own probability.

A schedule draws a :class:`Profile` from its seed (which faults are in play, how likely each is per run);
before every run :func:`arm_run` rolls the dice and arms the chosen faults on the fakes, the storage
clients and the clock. Everything fired is counted by name, for the suite's per-fault table.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.world import StorageFault, World
from devkit.fakes.base import Fault
from devkit.fakes.fake_trakt import CLOUDFLARE_429, CLOUDFLARE_RETRY_AFTER
from kinotrakt.storage.ports import ServiceSecret

RETRYABLE = (500, 502, 503, 504, 520, 521, 522)
# Timeouts are real (a fake sleeps before answering), so only some schedules have them, with a short client
# timeout; the others keep a timeout no loaded machine stalls past, because a timeout nobody scripted on a
# refresh would be the one fault no sync survives: a spent single-use refresh token whose answer was lost.
HTTP_TIMEOUT_SECONDS = 5.0
SHORT_HTTP_TIMEOUT_SECONDS = 1.0
TIMEOUT_DELAY = 1.2
TIMEOUT_SCHEDULES = 0.25
TIMEOUT_FAULTS = frozenset(
    {
        "trakt timeout on GET",
        "trakt timeout on POST, applied",
        "trakt timeout on POST, not applied",
        "kinopub timeout",
    }
)
LONG_RETRY_AFTER = 3600  # far beyond any Lambda's remaining budget

TRAKT_GET = r"/sync/history/(?:movies|episodes)(?:/\d+)?|/search/.+|/shows/[^/]+/seasons"
TRAKT_PROTECTED_GET = r"/sync/history/(?:movies|episodes)(?:/\d+)?"
TRAKT_POST = r"/sync/history(?:/remove)?"  # the sync's writes and the audit's removals
KINOPUB_GET = r"/v1/history|/v1/watching"
HTML_PAGE = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
TRUNCATED_JSON = '{"status": 200, "item": {"id": 1, "title": "Нача'


@dataclass
class Armed:
    """Faults armed for one run; ``fired()`` reads how many times each actually happened."""

    http: list[tuple[str, Fault]] = field(default_factory=list)
    storage: list[StorageFault] = field(default_factory=list)
    probes: list[tuple[str, Callable[[], int]]] = field(default_factory=list)
    runner: dict[str, int] = field(default_factory=dict)  # faults the runner performs itself → times fired

    def fired(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, fault in self.http:
            counts[name] = counts.get(name, 0) + fault.fired
        for storage in self.storage:
            counts[storage.name] = counts.get(storage.name, 0) + storage.fired
        for name, probe in self.probes:
            counts[name] = counts.get(name, 0) + probe()
        for name, fired in self.runner.items():
            counts[name] = counts.get(name, 0) + fired
        return counts

    def names(self) -> list[str]:
        return [
            *(name for name, _ in self.http),
            *(storage.name for storage in self.storage),
            *(name for name, _ in self.probes),
            *self.runner,
        ]


# name → base probability that the fault is armed before a run (a profile scales these per schedule)
CATALOGUE: dict[str, float] = {
    "trakt 429, short Retry-After": 0.15,
    "trakt 429, Retry-After beyond the budget": 0.05,
    "trakt Cloudflare HTML 429, Retry-After 300": 0.08,
    "trakt 5xx on GET": 0.15,
    "trakt 5xx on POST, not applied": 0.1,
    "trakt 5xx on POST, applied": 0.1,
    "trakt connection reset on GET": 0.1,
    "trakt connection reset on POST, not applied": 0.08,
    "trakt POST applied, then connection dropped": 0.12,
    "trakt POST applied, answer cut mid-body": 0.1,
    "trakt removal applied, then its answer lost": 0.35,  # armed for every run; only audits that remove meet it
    "trakt timeout on GET": 0.1,
    "trakt timeout on POST, applied": 0.15,
    "trakt timeout on POST, not applied": 0.1,
    "trakt 401 on a request": 0.08,
    "trakt access token revoked mid-run": 0.08,
    "trakt 5xx on token refresh": 0.05,
    "trakt token refresh applied, answer cut mid-body": 0.04,
    "trakt HTML page instead of JSON": 0.04,
    "trakt 403 Cloudflare block": 0.02,
    "kinopub 429": 0.1,
    "kinopub 5xx": 0.12,
    "kinopub HTML page": 0.08,
    "kinopub invalid JSON": 0.08,
    "kinopub connection reset": 0.06,
    "kinopub timeout": 0.1,
    "kinopub 401 on a request": 0.05,
    "kinopub access token revoked mid-run": 0.05,
    "kinopub 5xx on token refresh": 0.04,
    "kinopub token refresh applied, answer cut mid-body": 0.04,
    "dynamodb throttled, not applied": 0.08,
    "dynamodb throttled, applied": 0.06,
    "dynamodb conditional-check race": 0.06,
    "secrets manager throttled on read": 0.05,
    "secrets manager throttled on write, applied": 0.03,
    "secrets manager throttled on write, not applied": 0.03,
    "secrets manager concurrent writer": 0.04,
    "second invocation during a run": 0.1,
    "lease held by another invocation": 0.04,
    "lambda deadline at a random step": 0.15,
    # A full scan (the first run, the daily rescan, a scan going on from what it kept) stopped mid-way: the
    # next run must go on from the book of known items without losing or repeating a view.
    "lambda deadline during a full scan": 0.25,
}

# Between runs: the world moves on (probability per gap between two runs).
EVENTS: dict[str, float] = {
    "kinopub views finished between runs": 0.5,
    "kinopub episode marked watched by hand": 0.15,
    "kinopub clock ahead of ours": 0.05,
    "kinopub film part opened again": 0.2,
    "kinopub trailer opened": 0.15,
    "kinopub new episode of a finished series marked watched by hand": 0.1,
    "kinopub episode marked watched by hand, nothing played": 0.3,
    "kinopub finished series opened again": 0.3,
    "other app's play on trakt": 0.3,
    "other app's play in the minute of a view not yet synced": 0.15,
    "other app's duplicate of a synced play": 0.1,
    "another tool re-imported plays on trakt": 0.25,
    "a movie or episode marked watched twice with no date on trakt": 0.08,
    "the user removed a synced play on trakt": 0.12,
    "trakt access token expired between runs": 0.08,
    "kinopub access token expired between runs": 0.08,
}

# What the owner does when a run asks for it: a refresh applied whose answer was cut off spends the stored
# refresh token (single-use on both services), so the next run ends `failed` with `relink_required`, the
# AuthRequired alarm fires, and the owner links again (README, "Known limits"). The runner does that only
# after such a fault fired for that service: any other `relink_required` stays a failure of the schedule.
REFRESH_ANSWER_CUT = {
    "trakt": "trakt token refresh applied, answer cut mid-body",
    "kinopub": "kinopub token refresh applied, answer cut mid-body",
}
RELINKED = "owner linked again after a refresh answer was cut off"


@dataclass(frozen=True)
class Profile:
    """Per-schedule probabilities: some schedules are calm, some are storms, most are in between."""

    faults: dict[str, float]
    events: dict[str, float]
    http_timeout: float

    @classmethod
    def draw(cls, rng: random.Random) -> Profile:
        storm = rng.choice((0.0, 0.5, 1.0, 1.0, 1.5, 2.5))
        timeouts = rng.random() < TIMEOUT_SCHEDULES
        faults = {
            name: min(0.9, p * storm * rng.uniform(0.5, 1.5))
            for name, p in CATALOGUE.items()
            if timeouts or name not in TIMEOUT_FAULTS
        }
        events = {name: min(0.9, p * rng.uniform(0.5, 1.5)) for name, p in EVENTS.items()}
        return cls(faults, events, SHORT_HTTP_TIMEOUT_SECONDS if timeouts else HTTP_TIMEOUT_SECONDS)


def arm_run(rng: random.Random, world: World, profile: Profile, *, intensity: float = 1.0) -> Armed:
    """Roll each fault of the profile and arm the ones that come up for the next run."""
    armed = Armed()
    for name, probability in profile.faults.items():
        if rng.random() < probability * intensity:
            _ARM[name](rng, world, armed, name)
    return armed


def _http(world: World, armed: Armed, name: str, service: str, method: str, path: str, **kwargs: Any) -> None:
    fake = world.trakt if service == "trakt" else world.kinopub
    armed.http.append((name, fake.add_fault(method, path, **kwargs)))


def _storage(world: World, armed: Armed, where: str, fault: StorageFault) -> None:
    getattr(world.storage_faults, where).append(fault)
    armed.storage.append(fault)


Armer = Callable[[random.Random, World, Armed, str], None]


def _trakt_429(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    method, path = rng.choice((("GET", TRAKT_GET), ("POST", TRAKT_POST)))
    wait = str(rng.randint(1, 20))
    _http(world, armed, name, "trakt", method, path, status=429, headers={"Retry-After": wait}, times=rng.randint(1, 3))


def _trakt_429_long(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    method, path = rng.choice((("GET", TRAKT_GET), ("POST", TRAKT_POST)))
    _http(world, armed, name, "trakt", method, path, status=429, headers={"Retry-After": str(LONG_RETRY_AFTER)})


def _trakt_cloudflare_429(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    """(2026) Past Trakt's GET budget Cloudflare answers, not the API: an HTML page, Retry-After: 300, no
    X-Ratelimit header (trakt/trakt-api#922); GETs only, and it may repeat."""
    headers = {"Retry-After": str(CLOUDFLARE_RETRY_AFTER), "server": "cloudflare"}
    _http(
        world,
        armed,
        name,
        "trakt",
        "GET",
        TRAKT_GET,
        status=429,
        body=CLOUDFLARE_429,
        headers=headers,
        content_type="text/html; charset=utf-8",
        times=rng.randint(1, 3),
    )


def _trakt_5xx_get(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "GET", TRAKT_GET, status=rng.choice(RETRYABLE), times=rng.randint(1, 6))


def _trakt_5xx_post(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, status=rng.choice(RETRYABLE), times=rng.randint(1, 3))


def _trakt_5xx_post_applied(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    trakt = world.trakt
    before = trakt.applied_then_failed
    trakt.apply_then_status.extend(rng.choice(RETRYABLE) for _ in range(rng.randint(1, 3)))
    armed.probes.append((name, lambda: trakt.applied_then_failed - before))


def _trakt_reset_get(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "GET", TRAKT_GET, action="drop", times=rng.randint(1, 3))


def _trakt_reset_post(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, action="drop", times=rng.randint(1, 2))


def _trakt_apply_then_drop(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, action="apply_then_drop", times=rng.randint(1, 3))


def _trakt_truncated_post(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    """Trakt adds the plays, and the connection breaks halfway through its answer."""
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, action="apply_then_truncate", times=rng.randint(1, 2))


def _trakt_removal_lost(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    """An audit's removal applied by Trakt and its answer lost: the connection dropped, or cut halfway through
    the answer (the other POST faults, which reach removals too, cover answers lost before Trakt applied them)."""
    action = rng.choice(("apply_then_drop", "apply_then_truncate"))
    _http(world, armed, name, "trakt", "POST", r"/sync/history/remove", action=action, times=rng.randint(1, 3))


def _trakt_timeout_get(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "GET", TRAKT_GET, delay=TIMEOUT_DELAY)


def _trakt_timeout_post_applied(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, delay=TIMEOUT_DELAY)


def _trakt_timeout_post(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", TRAKT_POST, action="drop", delay=TIMEOUT_DELAY)


def _trakt_401(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    method, path = rng.choice((("GET", TRAKT_PROTECTED_GET), ("POST", TRAKT_POST)))
    body = '{"error":"invalid_token","error_description":"The access token is invalid"}'
    _http(world, armed, name, "trakt", method, path, status=401, body=body)


def _trakt_revoked(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    trakt = world.trakt
    before = trakt.expired_mid_run
    trakt.expire_after = rng.randint(1, 6)
    armed.probes.append((name, lambda: trakt.expired_mid_run - before))


def _trakt_refresh_5xx(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "POST", r"/oauth/token", status=rng.choice(RETRYABLE))


def _refresh_answer_cut(service: str, path: str) -> Armer:
    """The refresh is applied (the old pair dies) and its answer, with the new pair, is cut halfway. The access
    token in the secret is expired on the service too, so this run refreshes and the fault can fire."""

    def arm(rng: random.Random, world: World, armed: Armed, name: str) -> None:
        fake = world.trakt if service == "trakt" else world.kinopub
        token = world.token_store(service).load().secret.access_token
        if token is not None and fake.token_is_valid(token.get_secret_value()):
            fake.expire_access_token(token.get_secret_value())
        _http(world, armed, name, service, "POST", path, action="apply_then_truncate")

    return arm


def _trakt_html(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "trakt", "GET", TRAKT_GET, status=200, body=HTML_PAGE, content_type="text/html")


def _trakt_cloudflare(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    page = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head></html>"
    method, path = rng.choice((("GET", TRAKT_GET), ("POST", TRAKT_POST)))
    _http(world, armed, name, "trakt", method, path, status=403, body=page, content_type="text/html")


def _kinopub_429(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    headers = {"Retry-After": str(rng.randint(1, 10))}
    _http(world, armed, name, "kinopub", "GET", KINOPUB_GET, status=429, headers=headers, times=rng.randint(1, 3))


def _kinopub_5xx(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "kinopub", "GET", KINOPUB_GET, status=rng.choice(RETRYABLE), times=rng.randint(1, 6))


def _kinopub_html(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(
        world,
        armed,
        name,
        "kinopub",
        "GET",
        rng.choice((KINOPUB_GET, r"/v1/watching")),
        status=200,
        body=HTML_PAGE,
        content_type="text/html",
        times=rng.randint(1, 3),
    )


def _kinopub_invalid_json(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    path = rng.choice((KINOPUB_GET, r"/v1/watching"))
    _http(world, armed, name, "kinopub", "GET", path, status=200, body=TRUNCATED_JSON, times=rng.randint(1, 3))


def _kinopub_reset(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "kinopub", "GET", KINOPUB_GET, action="drop", times=rng.randint(1, 3))


def _kinopub_timeout(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "kinopub", "GET", KINOPUB_GET, action="drop", delay=TIMEOUT_DELAY)


def _kinopub_401(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "kinopub", "GET", KINOPUB_GET, status=401, body='{"status":401,"error":"unauthorized"}')


def _kinopub_revoked(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    kinopub = world.kinopub
    before = kinopub.expired_mid_run
    kinopub.expire_after = rng.randint(1, 8)
    armed.probes.append((name, lambda: kinopub.expired_mid_run - before))


def _kinopub_refresh_5xx(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    _http(world, armed, name, "kinopub", "POST", r"/oauth2/token", status=rng.choice(RETRYABLE))


DYNAMODB_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "batch_write_item", "query", "*")
THROTTLING = ("ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError")


def _dynamodb_throttled(after: bool) -> Armer:
    def arm(rng: random.Random, world: World, armed: Armed, name: str) -> None:
        operation = rng.choice(DYNAMODB_OPERATIONS)
        skip = rng.randint(0, 12 if operation in ("*", "get_item", "query") else 2)
        fault = StorageFault(name, operation, rng.choice(THROTTLING), after=after, skip=skip)
        _storage(world, armed, "dynamodb", fault)

    return arm


def _dynamodb_race(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    fault = StorageFault(
        name,
        rng.choice(("put_item", "update_item", "delete_item")),
        "ConditionalCheckFailedException",
        after=rng.random() < 0.5,
        conditional_only=True,
    )
    _storage(world, armed, "dynamodb", fault)


def _secrets(operations: tuple[str, ...], after: bool) -> Armer:
    def arm(rng: random.Random, world: World, armed: Armed, name: str) -> None:
        where = rng.choice(("kinopub_secret", "trakt_secret"))
        code = rng.choice(("ThrottlingException", "InternalServiceError"))
        _storage(world, armed, where, StorageFault(name, rng.choice(operations), code, after=after))

    return arm


def _secrets_concurrent_writer(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    """Someone re-links the account (a fresh valid pair) just before the sync writes its refreshed pair."""
    service = rng.choice(("kinopub", "trakt"))

    def relink() -> None:
        fake = world.kinopub if service == "kinopub" else world.trakt
        store = world.token_store(service)
        grant = fake.issue_tokens()
        stored = store.load()
        issued = int(world.clock.now().timestamp())
        secret = ServiceSecret.model_validate(
            {
                **json.loads(stored.secret.to_json()),
                "access_token": grant["access_token"],
                "refresh_token": grant["refresh_token"],
                "issued_at": issued,
                "expires_at": issued + int(grant["expires_in"]),
            }
        )
        store.save(secret, expected_version=stored.version)

    fault = StorageFault(name, "describe_secret", race=relink)
    _storage(world, armed, f"{service}_secret", fault)


def _by_runner(rng: random.Random, world: World, armed: Armed, name: str) -> None:
    """Performed by the runner itself (it owns the invocation, the lease and the clock)."""
    armed.runner[name] = 0


_ARM: dict[str, Armer] = {
    "trakt 429, short Retry-After": _trakt_429,
    "trakt 429, Retry-After beyond the budget": _trakt_429_long,
    "trakt Cloudflare HTML 429, Retry-After 300": _trakt_cloudflare_429,
    "trakt 5xx on GET": _trakt_5xx_get,
    "trakt 5xx on POST, not applied": _trakt_5xx_post,
    "trakt 5xx on POST, applied": _trakt_5xx_post_applied,
    "trakt connection reset on GET": _trakt_reset_get,
    "trakt connection reset on POST, not applied": _trakt_reset_post,
    "trakt POST applied, then connection dropped": _trakt_apply_then_drop,
    "trakt POST applied, answer cut mid-body": _trakt_truncated_post,
    "trakt removal applied, then its answer lost": _trakt_removal_lost,
    "trakt timeout on GET": _trakt_timeout_get,
    "trakt timeout on POST, applied": _trakt_timeout_post_applied,
    "trakt timeout on POST, not applied": _trakt_timeout_post,
    "trakt 401 on a request": _trakt_401,
    "trakt access token revoked mid-run": _trakt_revoked,
    "trakt 5xx on token refresh": _trakt_refresh_5xx,
    "trakt token refresh applied, answer cut mid-body": _refresh_answer_cut("trakt", r"/oauth/token"),
    "trakt HTML page instead of JSON": _trakt_html,
    "trakt 403 Cloudflare block": _trakt_cloudflare,
    "kinopub 429": _kinopub_429,
    "kinopub 5xx": _kinopub_5xx,
    "kinopub HTML page": _kinopub_html,
    "kinopub invalid JSON": _kinopub_invalid_json,
    "kinopub connection reset": _kinopub_reset,
    "kinopub timeout": _kinopub_timeout,
    "kinopub 401 on a request": _kinopub_401,
    "kinopub access token revoked mid-run": _kinopub_revoked,
    "kinopub 5xx on token refresh": _kinopub_refresh_5xx,
    "kinopub token refresh applied, answer cut mid-body": _refresh_answer_cut("kinopub", r"/oauth2/token"),
    "dynamodb throttled, not applied": _dynamodb_throttled(after=False),
    "dynamodb throttled, applied": _dynamodb_throttled(after=True),
    "dynamodb conditional-check race": _dynamodb_race,
    "secrets manager throttled on read": _secrets(("get_secret_value", "describe_secret"), after=False),
    "secrets manager throttled on write, applied": _secrets(("put_secret_value",), after=True),
    "secrets manager throttled on write, not applied": _secrets(("put_secret_value", "describe_secret"), after=False),
    "secrets manager concurrent writer": _secrets_concurrent_writer,
    "second invocation during a run": _by_runner,
    "lease held by another invocation": _by_runner,
    "lambda deadline at a random step": _by_runner,
    "lambda deadline during a full scan": _by_runner,
}
assert set(_ARM) == set(CATALOGUE)
