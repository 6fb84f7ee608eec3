"""One library's scenarios, in a process that holds only what a Lambda would: the real sync handler, boto3,
requests. The fakes and moto live in the services process (bench/world.py); time is the shared virtual clock.

Run by ``python -m bench`` once per library (a fresh process each, so memory figures do not leak between
libraries); ``python -m bench.worker --help`` runs one by hand.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import multiprocessing
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.bounds import (
    Bound,
    lower_bound,
    min_limits_only_seconds,
    min_seconds,
    min_sequential_seconds,
    ratio,
    sum_bounds,
)
from bench.clock import SharedClock, shared_micros
from bench.messages import ReplayCall, StateSnapshot
from bench.services import Services

REPO = Path(__file__).resolve().parents[1]
# The first run happens after every generated view (devkit/fakes/library.py: 2025-01-01 plus 330 days).
T0 = datetime(2025, 12, 15, 12, 0, tzinfo=UTC)
SCHEDULE = timedelta(hours=1)  # template.yaml's default rate: the next invocation comes an hour later
TEMPLATE_TIMEOUT = 600.0  # SyncFunction's Timeout in template.yaml
LAMBDA_MAX_TIMEOUT = 900.0
MB = 1024 * 1024
# What only the services process may hold (the fakes, moto and its web server): found in this process, they
# would be counted in its peak RSS as if the pipeline used them.
SERVICES_ONLY = frozenset({"devkit", "moto", "werkzeug"})

BACKFILL = "backfill"
RERUN = "rerun, nothing new"
ONE_NEW = "1 new episode"
FIFTY_NEW = "50 new in 10 shows"
QUIET_DAY = "quiet day"
QUIET_DAY_RUNS = 24  # hourly, the last one the daily full rescan
BASELINE_REPEATS = 3


def budget_scenario(timeout_seconds: float) -> str:
    """``backfill, 15-min runs``: the whole backfill, one invocation per scheduled run of that timeout."""
    return f"backfill, {timeout_seconds / 60:g}-min runs"


@dataclass(frozen=True)
class LibrarySpec:
    name: str
    movies: int
    shows: int
    episodes: int
    already_on_trakt: float = 0.1

    @property
    def views(self) -> int:
        return self.movies + self.episodes


LIBRARIES = {
    "small": LibrarySpec("small", movies=40, shows=10, episodes=160),
    "medium": LibrarySpec("medium", movies=500, shows=150, episodes=4500),
    "large": LibrarySpec("large", movies=2000, shows=600, episodes=18000),
}


def parse_library(text: str) -> LibrarySpec:
    """A named library, or ``name:movies:shows:episodes`` for another size."""
    if text in LIBRARIES:
        return LIBRARIES[text]
    name, movies, shows, episodes = text.split(":")
    return LibrarySpec(name, int(movies), int(shows), int(episodes))


@dataclass(frozen=True)
class Options:
    seed: int = 7
    timeout_seconds: float = TEMPLATE_TIMEOUT
    budget_timeout_seconds: float = LAMBDA_MAX_TIMEOUT
    latency: dict[str, float] = field(default_factory=lambda: {"kinopub": 0.2, "trakt": 0.2})
    max_invocations: int = 8
    tracemalloc: bool = False


@dataclass
class _Invocations:
    """What one scenario's invocations did, added up."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    floor: float = 0.0
    simulated: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0
    waited: float = 0.0
    peak_traced: int = 0


class LambdaContext:
    """What the handler reads from a Lambda context, on the virtual clock."""

    function_name = "kinotrakt-SyncFunction"
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:kinotrakt-SyncFunction"

    def __init__(self, clock: SharedClock, timeout_seconds: float) -> None:
        self._clock = clock
        self._ends = clock.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._ends - self._clock.monotonic()) * 1000)


def load_handler() -> ModuleType:
    """``functions/sync/app.py`` as a fresh module, the way a new Lambda container imports it."""
    path = REPO / "functions" / "sync" / "app.py"
    name = f"bench_sync_app_{time.monotonic_ns()}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the handler's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _discard(module: ModuleType) -> None:
    """Let a used handler module (and the AWS clients it built) go, as a recycled container would."""
    sys.modules.pop(module.__name__, None)
    gc.collect()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux ``clear_refs``); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb(since_reset: bool) -> float:
    if since_reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Lab:
    """A generated library in the fakes, a linked deployment on moto, and the scenarios run against it."""

    def __init__(self, spec: LibrarySpec, services: Services, clock: SharedClock, options: Options) -> None:
        from kinotrakt.config import Settings

        self.spec = spec
        self.services = services
        self.clock = clock
        self.options = options
        self.settings = Settings()
        self.summary = services.generate(
            seed=options.seed,
            movies=spec.movies,
            shows=spec.shows,
            episodes=spec.episodes,
            already_on_trakt=spec.already_on_trakt,
        )
        services.link()
        self.cached_lookups: set[str] = set()
        self._invocations = 0
        # Module imports (pydantic, powertools; boto3 on the first event) are the cold start's, measured on
        # their own (bench/footprint.py); every run below still builds its settings and AWS clients afresh.
        _discard(load_handler())
        import kinotrakt.storage.aws  # noqa: F401

    # --- the scenarios -------------------------------------------------------------------------------------

    def standard(self) -> list[dict[str, Any]]:
        results = [self.scenario(BACKFILL, baseline=True)]
        results.append(self.scenario(RERUN))
        now = int(self.clock.now().timestamp())
        self.services.watch_new(views=1, shows=1, times=[now - 600], seed=self.options.seed)
        results.append(self.scenario(ONE_NEW))
        now = int(self.clock.now().timestamp())
        # 50 episodes finished over the last two days (inside the 72 h overlap), in ten shows.
        times = [now - 48 * 3600 + i * (47 * 3600 // 50) for i in range(50)]
        self.services.watch_new(views=50, shows=10, times=times, seed=self.options.seed + 1)
        results.append(self.scenario(FIFTY_NEW))
        return results

    def backfill(self) -> list[dict[str, Any]]:
        """The backfill alone: repeated on fresh worlds for a steadier CPU figure, or traced for memory."""
        return [self.scenario(BACKFILL, baseline=not self.options.tracemalloc)]

    def quiet(self) -> list[dict[str, Any]]:
        """The backfill (a CPU figure too), then a day with nothing new: 24 hourly runs, the last of them the
        daily full rescan, with each request's latency modelled (what a day costs in Lambda time)."""
        results = self.backfill()
        latency = self.options.latency
        self.services.set_latency(latency["kinopub"], latency["trakt"])
        results.append(self.scenario(QUIET_DAY, latency=latency, scheduled_runs=QUIET_DAY_RUNS))
        return results

    def budget(self) -> list[dict[str, Any]]:
        """The backfill split over runs of the budget's timeout, with its CPU ratio too (issue 17 asks it of
        every backfill): the split's per-run costs (a fresh handler, settings and AWS clients, the state read
        again) are the pipeline's, the bare-HTTP baseline sends the same requests once."""
        latency = self.options.latency
        self.services.set_latency(latency["kinopub"], latency["trakt"])
        timeout = self.options.budget_timeout_seconds
        return [self.scenario(budget_scenario(timeout), timeout=timeout, latency=latency, baseline=True)]

    # --- one scenario ---------------------------------------------------------------------------------------

    def scenario(
        self,
        name: str,
        *,
        timeout: float | None = None,
        latency: dict[str, float] | None = None,
        scheduled_runs: int | None = None,
        baseline: bool = False,
    ) -> dict[str, Any]:
        """One scenario: invocations an hour apart until one is not ``partial`` (a backfill split over runs), or
        ``scheduled_runs`` invocations whatever they end (a day of hourly runs). The lower bound is the data's
        for the whole scenario, or the sum of each scheduled run's. ``baseline``: replay the scenario's requests
        with bare ``requests`` calls afterwards, for the CPU ratio."""
        timeout = timeout or self.options.timeout_seconds
        first = self._first_run(scheduled_runs)
        self.services.traffic()  # forget requests made while setting up
        if baseline:
            self.services.record()
        load = load_average()
        rss_reset = reset_peak_rss()
        done = self._invoke(first, timeout, latency, scheduled_runs)
        rss = peak_rss_mb(rss_reset)
        baseline_runs, baseline_calls = self._baseline() if baseline else ([], {})
        traffic = self.services.traffic()
        last = done.reports[-1]
        if last["status"] == "ok":
            for bound in done.bounds:
                self.cached_lookups.update(bound.lookups)
        bound = sum_bounds(done.bounds)
        calls = {service: sum(int(r["http_calls"][service]) for r in done.reports) for service in ("kinopub", "trakt")}
        result: dict[str, Any] = {
            "library": self.spec.name,
            "scenario": name,
            "status": last["status"] if scheduled_runs is None else _worst([r["status"] for r in done.reports]),
            "calls": calls,
            "lower_bound": {"kinopub": bound.kinopub, "trakt": bound.trakt},
            "calls_ratio": round(ratio(sum(calls.values()), bound.kinopub + bound.trakt, unit=1), 4),
            "simulated_seconds": round(done.simulated, 3),
            "min_seconds": round(done.floor, 3),
            "time_ratio": round(ratio(done.simulated, done.floor, unit=1.0), 4),
            "cpu_seconds": round(done.cpu, 3),
            "peak_rss_mb": round(rss, 1),
            "invocations": len(done.reports),
            "duplicates": self.services.duplicates(),
            # more than the issue asks
            "calls_ratio_by_service": {
                "kinopub": round(ratio(calls["kinopub"], bound.kinopub, unit=1), 4),
                "trakt": round(ratio(calls["trakt"], bound.trakt, unit=1), 4),
            },
            "calls_by_endpoint": dict(sorted(traffic.by_endpoint.items())),
            "lower_bound_detail": bound.as_dict(),
            "min_limits_only_seconds": round(sum(min_limits_only_seconds(b) for b in done.bounds), 3),
            "min_sequential_seconds": round(sum(min_sequential_seconds(b, latency=latency) for b in done.bounds), 3),
            "waited_seconds": round(done.waited, 3),
            "throttled_429": traffic.throttled,
            "server_errors": traffic.server_errors,
            "wall_seconds": round(done.wall, 3),
            "pipeline_peak_mb": round(done.peak_traced / MB, 1) if self.options.tracemalloc else None,
            "timeout_seconds": timeout,
            # a run may use its timeout less the deadline margin; the floor above says how many runs that takes
            "min_invocations": len(done.bounds)
            if scheduled_runs is not None
            else max(1, math.ceil(done.floor / (timeout - self.settings.deadline_margin_seconds))),
            "runs": done.runs,
            "latency_ms": {k: round(v * 1000) for k, v in (latency or {}).items()} or None,
            "added": sum(int(r["added_movies"]) + int(r["added_episodes"]) for r in done.reports),
            "skipped_duplicates": int(last["skipped_duplicates"]),
            "candidates": int(last["candidates"]),
            "statuses": [r["status"] for r in done.reports],
            "load_average": load,
            "library_size": {**asdict(self.spec), **self.summary},
        }
        if baseline_runs:
            result["baseline_cpu_seconds"] = round(min(baseline_runs), 3)
            result["baseline_cpu_seconds_runs"] = [round(spent, 3) for spent in baseline_runs]
            result["cpu_ratio"] = round(done.cpu / min(baseline_runs), 3)
            result["baseline_calls"] = baseline_calls
        if scheduled_runs is not None:
            result["full_scans"] = sum(1 for run in done.runs if run["full_scan"])
        _progress(result)
        return result

    def _first_run(self, scheduled_runs: int | None) -> datetime:
        """When the scenario's first invocation comes: the next scheduled slot; for a day of runs, late enough
        that its last run comes a full-rescan interval after the last full scan (it is the daily rescan)."""
        self._next_slot()
        first = self.clock.now()
        if scheduled_runs is None:
            if first - T0 >= timedelta(hours=24):
                raise RuntimeError("scenarios assume the mapping cache is fresh (< 24 h after the backfill)")
            return first
        last_full_scan = self.services.state().last_full_scan
        if last_full_scan is None:
            return first
        rescan_due = last_full_scan + timedelta(hours=self.settings.full_rescan_hours)
        return max(first, rescan_due - (scheduled_runs - 1) * SCHEDULE)

    def _invoke(
        self, first: datetime, timeout: float, latency: dict[str, float] | None, scheduled_runs: int | None
    ) -> _Invocations:
        done = _Invocations()
        for attempt in range(scheduled_runs or self.options.max_invocations):
            self.clock.advance_to(first + attempt * SCHEDULE)
            if scheduled_runs is not None or attempt == 0:
                done.bounds.append(self._bound(self.services.state()))
                done.floor += min_seconds(done.bounds[-1], latency=latency)
            module = load_handler()
            event = {"scheduled_time": self.clock.now().isoformat(), "execution_id": self._execution_id()}
            context = LambdaContext(self.clock, timeout)
            if self.options.tracemalloc:
                tracemalloc.start()
            sim0, slept0 = self.clock.monotonic(), self.clock.slept
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report: dict[str, Any] = module.handle(event, context, clock=self.clock)
            cpu_used = time.process_time() - cpu0
            done.cpu += cpu_used
            done.wall += time.perf_counter() - wall0
            done.simulated += self.clock.monotonic() - sim0
            done.waited += self.clock.slept - slept0
            if self.options.tracemalloc:
                done.peak_traced = max(done.peak_traced, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            done.reports.append(report)
            done.runs.append(
                {
                    "status": report["status"],
                    "full_scan": bool(report.get("full_scan")),
                    "kinopub": int(report["http_calls"]["kinopub"]),
                    "trakt": int(report["http_calls"]["trakt"]),
                    "simulated_seconds": round(self.clock.monotonic() - sim0, 3),
                    "cpu_seconds": round(cpu_used, 3),
                    "items_examined": int(report.get("items_examined", 0)),
                    "added": int(report["added_movies"]) + int(report["added_episodes"]),
                    "stopped": (report.get("error") or {}).get("message"),
                }
            )
            _discard(module)
            if scheduled_runs is None and report["status"] != "partial":
                break
        return done

    def _baseline(self) -> tuple[list[float], dict[str, int]]:
        """The CPU of the same requests sent again with bare ``requests`` calls, from this process, answered with
        the very answers the pipeline got (the fakes play them back): what the HTTP alone costs. Every request
        the run made is in it, Kinopub's, Trakt's and AWS's (DynamoDB, Secrets Manager): the same number of calls
        to the same endpoints. Sent ``BASELINE_REPEATS`` times: on a shared machine the least disturbed one is the
        figure. Also returns how many calls went to each service."""
        calls = self.services.recorded()
        spent: list[float] = []
        for _ in range(BASELINE_REPEATS):
            self.services.playback(True)
            try:
                spent.append(bare_http_cpu(calls))
            finally:
                self.services.playback(False)
        return spent, calls_by_service(calls, self.services.env)

    def _bound(self, state: StateSnapshot) -> Bound:
        """The scan's window (docs/ARCHITECTURE.md#the-scan-and-the-watermark): every row on the first scan;
        else the rows since ``watermark - overlap``, and on the daily rescan (the last full scan is a day old)
        every item that can still change as well."""
        settings = self.settings
        now = self.clock.now()
        since = rescan = None
        if state.watermark is not None and state.last_full_scan is not None:
            since = (state.watermark - timedelta(hours=settings.sync_overlap_hours)).timestamp()
            rescan = now - state.last_full_scan >= timedelta(hours=settings.full_rescan_hours)
        return lower_bound(
            self.services.dataset(),
            since=since,
            ledger_keys=state.ledger_keys,
            cached_lookups=self.cached_lookups,
            batch_size=settings.sync_batch_size,
            refresh=state.refresh_due,
            rescan=bool(rescan),
        )

    def _next_slot(self) -> None:
        """The next scheduled run: T0 for the first, else the first whole hour after the last run started."""
        if self._invocations:
            elapsed = (self.clock.now() - T0).total_seconds()
            self.clock.advance_to(T0 + (math.floor(elapsed / SCHEDULE.total_seconds()) + 1) * SCHEDULE)

    def _execution_id(self) -> str:
        self._invocations += 1
        return f"bench-{self.spec.name}-{self._invocations:03d}"


def _progress(result: dict[str, Any]) -> None:
    calls, bound = result["calls"], result["lower_bound"]
    print(
        f"  {result['library']:>6} | {result['scenario']:<24} {result['status']:<7} x{result['invocations']}"
        f"  calls {calls['kinopub']}+{calls['trakt']} (bound {bound['kinopub']}+{bound['trakt']})"
        f"  sim {result['simulated_seconds']:.0f}s  cpu {result['cpu_seconds']:.2f}s"
        f"  wall {result['wall_seconds']:.1f}s"
        + (f"  (traced: peak {result['pipeline_peak_mb']} MB)" if result["pipeline_peak_mb"] is not None else ""),
        file=sys.stderr,
        flush=True,
    )


def load_average() -> list[float] | None:
    """The machine's 1-, 5- and 15-minute load averages (``/proc/loadavg``), or None where there is none."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def calls_by_service(calls: Sequence[ReplayCall], env: dict[str, str]) -> dict[str, int]:
    """How many of ``calls`` went to Kinopub, Trakt and AWS (the endpoints of the handler's environment)."""
    bases = {"kinopub": env["KINOPUB_API_URL"], "trakt": env["TRAKT_API_URL"], "aws": env["AWS_ENDPOINT_URL"]}
    counts = dict.fromkeys(bases, 0)
    for call in calls:
        for service, base in bases.items():
            if call.url.startswith(base.rstrip("/") + "/"):
                counts[service] += 1
                break
        else:
            raise RuntimeError(f"the run called {call.url.split('?')[0]}, which is none of the services")
    return counts


def bare_http_cpu(calls: Sequence[ReplayCall]) -> float:
    """CPU seconds of sending ``calls`` with a plain ``requests.Session`` and reading each answer whole."""
    import requests

    session = requests.Session()
    statuses: list[int] = []
    gc.collect()
    cpu0 = time.process_time()
    for call in calls:
        response = session.request(
            call.method, call.url, params=call.params, headers=call.headers, data=call.body or None, timeout=60
        )
        response.content  # noqa: B018 - reading the body is part of the call
        statuses.append(response.status_code)
    spent = time.process_time() - cpu0
    session.close()
    wrong = sum(1 for call, status in zip(calls, statuses, strict=True) if status != call.status)
    if wrong:
        raise RuntimeError(f"the baseline got {wrong} of {len(calls)} answers other than the pipeline's")
    return spent


def _worst(statuses: Sequence[str]) -> str:
    for status in ("failed", "partial", "skipped"):
        if status in statuses:
            return status
    return "ok"


def run(spec: LibrarySpec, mode: str, options: Options) -> list[dict[str, Any]]:
    """A fresh world for ``spec`` and the scenarios of ``mode`` (``standard`` or ``budget``)."""
    micros = shared_micros(multiprocessing.get_context("spawn"))
    clock = SharedClock(micros, T0)
    with Services(micros, T0.timestamp()) as services:
        os.environ.update(services.env)
        lab = Lab(spec, services, clock, options)
        scenarios = {"standard": lab.standard, "budget": lab.budget, "backfill": lab.backfill, "quiet": lab.quiet}
        results = scenarios[mode]()
    loaded = services_only_modules()
    if loaded:
        raise RuntimeError(f"the measured process imported {', '.join(loaded)}: its memory figures would count them")
    return results


def services_only_modules() -> list[str]:
    """The services-only packages this process has imported (none, or its figures are not the pipeline's)."""
    return sorted({name.split(".")[0] for name in sys.modules} & SERVICES_ONLY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("--library", required=True, help="small | medium | large | name:movies:shows:episodes")
    parser.add_argument("--mode", choices=("standard", "budget", "backfill", "quiet"), default="standard")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the pipeline's allocations (slower)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results (JSON list)")
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--latency-ms", type=float, default=200.0, help="per request, budget mode only")
    parser.add_argument(
        "--timeout-seconds", type=float, default=LAMBDA_MAX_TIMEOUT, help="per invocation, budget mode only"
    )
    args = parser.parse_args(argv)
    seconds = args.latency_ms / 1000
    options = Options(
        seed=args.seed,
        latency={"kinopub": seconds, "trakt": seconds},
        budget_timeout_seconds=args.timeout_seconds,
        tracemalloc=args.tracemalloc,
    )
    results = run(parse_library(args.library), args.mode, options)
    args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["LIBRARIES", "LibrarySpec", "Options", "main", "run"]
