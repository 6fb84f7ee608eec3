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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.bounds import Bound, lower_bound, min_limits_only_seconds, min_seconds, min_sequential_seconds, ratio
from bench.clock import SharedClock, shared_micros
from bench.messages import StateSnapshot
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
        results = [self.scenario(BACKFILL)]
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
        return [self.scenario(BACKFILL)]

    def budget(self) -> list[dict[str, Any]]:
        latency = self.options.latency
        self.services.set_latency(latency["kinopub"], latency["trakt"])
        timeout = self.options.budget_timeout_seconds
        return [self.scenario(budget_scenario(timeout), timeout=timeout, latency=latency)]

    # --- one scenario ---------------------------------------------------------------------------------------

    def scenario(
        self, name: str, *, timeout: float | None = None, latency: dict[str, float] | None = None
    ) -> dict[str, Any]:
        timeout = timeout or self.options.timeout_seconds
        self._next_slot()
        if self.clock.now() - T0 >= timedelta(hours=24):
            raise RuntimeError("scenarios assume the mapping cache is fresh (< 24 h after the backfill)")
        bound = self._bound(self.services.state())
        self.services.traffic()  # forget requests made while setting up
        first = self.clock.now()
        reports: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        simulated = cpu = wall = waited = 0.0
        peak_traced = 0
        rss_reset = reset_peak_rss()
        for attempt in range(self.options.max_invocations):
            self.clock.advance_to(first + attempt * SCHEDULE)
            module = load_handler()
            event = {"scheduled_time": self.clock.now().isoformat(), "execution_id": self._execution_id()}
            context = LambdaContext(self.clock, timeout)
            if self.options.tracemalloc:
                tracemalloc.start()
            sim0, slept0 = self.clock.monotonic(), self.clock.slept
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report: dict[str, Any] = module.handle(event, context, clock=self.clock)
            cpu_used = time.process_time() - cpu0
            cpu += cpu_used
            wall += time.perf_counter() - wall0
            simulated += self.clock.monotonic() - sim0
            waited += self.clock.slept - slept0
            if self.options.tracemalloc:
                peak_traced = max(peak_traced, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            reports.append(report)
            runs.append(
                {
                    "status": report["status"],
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
            if report["status"] != "partial":
                break
        rss = peak_rss_mb(rss_reset)
        traffic = self.services.traffic()
        duplicates = self.services.duplicates()
        last = reports[-1]
        if last["status"] == "ok":
            self.cached_lookups.update(bound.lookups)
        calls = {service: sum(int(r["http_calls"][service]) for r in reports) for service in ("kinopub", "trakt")}
        floor = min_seconds(bound, latency=latency)
        result: dict[str, Any] = {
            "library": self.spec.name,
            "scenario": name,
            "status": last["status"],
            "calls": calls,
            "lower_bound": {"kinopub": bound.kinopub, "trakt": bound.trakt},
            "calls_ratio": round(ratio(sum(calls.values()), bound.kinopub + bound.trakt, unit=1), 4),
            "simulated_seconds": round(simulated, 3),
            "min_seconds": round(floor, 3),
            "time_ratio": round(ratio(simulated, floor, unit=1.0), 4),
            "cpu_seconds": round(cpu, 3),
            "peak_rss_mb": round(rss, 1),
            "invocations": len(reports),
            "duplicates": duplicates,
            # more than the issue asks
            "calls_ratio_by_service": {
                "kinopub": round(ratio(calls["kinopub"], bound.kinopub, unit=1), 4),
                "trakt": round(ratio(calls["trakt"], bound.trakt, unit=1), 4),
            },
            "calls_by_endpoint": dict(sorted(traffic.by_endpoint.items())),
            "lower_bound_detail": bound.as_dict(),
            "min_limits_only_seconds": round(min_limits_only_seconds(bound), 3),
            "min_sequential_seconds": round(min_sequential_seconds(bound, latency=latency), 3),
            "waited_seconds": round(waited, 3),
            "throttled_429": traffic.throttled,
            "server_errors": traffic.server_errors,
            "wall_seconds": round(wall, 3),
            "pipeline_peak_mb": round(peak_traced / MB, 1) if self.options.tracemalloc else None,
            "timeout_seconds": timeout,
            # a run may use its timeout less the deadline margin; the floor above says how many runs that takes
            "min_invocations": max(1, math.ceil(floor / (timeout - self.settings.deadline_margin_seconds))),
            "runs": runs,
            "latency_ms": {k: round(v * 1000) for k, v in (latency or {}).items()} or None,
            "added": sum(int(r["added_movies"]) + int(r["added_episodes"]) for r in reports),
            "skipped_duplicates": int(last["skipped_duplicates"]),
            "candidates": int(last["candidates"]),
            "statuses": [r["status"] for r in reports],
            "library_size": {**asdict(self.spec), **self.summary},
        }
        _progress(result)
        return result

    def _bound(self, state: StateSnapshot) -> Bound:
        """DESIGN §3.3's window: every row on a full scan (first run, or the last full scan is a day old),
        else the rows since ``watermark - overlap``."""
        settings = self.settings
        now = self.clock.now()
        full = (
            state.watermark is None
            or state.last_full_scan is None
            or now - state.last_full_scan >= timedelta(hours=settings.full_rescan_hours)
        )
        since = None
        if not full and state.watermark is not None:
            since = (state.watermark - timedelta(hours=settings.sync_overlap_hours)).timestamp()
        return lower_bound(
            self.services.dataset(),
            since=since,
            ledger_keys=state.ledger_keys,
            cached_lookups=self.cached_lookups,
            batch_size=settings.sync_batch_size,
            refresh=state.refresh_due,
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


def run(spec: LibrarySpec, mode: str, options: Options) -> list[dict[str, Any]]:
    """A fresh world for ``spec`` and the scenarios of ``mode`` (``standard`` or ``budget``)."""
    micros = shared_micros(multiprocessing.get_context("spawn"))
    clock = SharedClock(micros, T0)
    with Services(micros, T0.timestamp()) as services:
        os.environ.update(services.env)
        lab = Lab(spec, services, clock, options)
        scenarios = {"standard": lab.standard, "budget": lab.budget, "backfill": lab.backfill}
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
    parser.add_argument("--mode", choices=("standard", "budget", "backfill"), default="standard")
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
