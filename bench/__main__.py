"""``make bench``: calls, simulated time under Trakt's limits, CPU and memory of the real sync handler against
generated libraries, compared with the lower bound the data allows and with a bare-HTTP baseline measured in the
same run (issues 8 and 17). Writes ``build/bench.json``; ``python -m bench.readme`` puts its table in the README.

Each library runs in a fresh worker process (bench/worker.py), which starts its own services process (the fakes
and moto, bench/world.py). Timings are reported, never enforced; the exit status is 1 only when a run left a
duplicate play on Trakt or did not run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.footprint import measure_import_ratio, measure_layer
from bench.report import document, table
from bench.worker import LAMBDA_MAX_TIMEOUT, LIBRARIES, REPO, TEMPLATE_TIMEOUT, load_average

OUT = REPO / "build" / "bench.json"
LOGS = REPO / "build" / "bench-logs"


def run_worker(
    library: str,
    mode: str,
    args: argparse.Namespace,
    *,
    timeout: float = LAMBDA_MAX_TIMEOUT,
    traced: bool = False,
) -> list[dict[str, Any]]:
    """One worker process; its stdout (the handler's JSON log lines and metrics) goes to build/bench-logs."""
    LOGS.mkdir(parents=True, exist_ok=True)
    name = library.split(":", maxsplit=1)[0]
    log_name = f"{name}-{mode}{f'-{timeout:.0f}s' if mode == 'budget' else ''}{'-traced' if traced else ''}.jsonl"
    with tempfile.TemporaryDirectory() as tmp, (LOGS / log_name).open("w") as log:
        out = Path(tmp) / "results.json"
        command = [
            sys.executable,
            "-m",
            "bench.worker",
            "--library",
            library,
            "--mode",
            mode,
            "--out",
            str(out),
            "--seed",
            str(args.seed),
            "--latency-ms",
            str(args.latency_ms),
            "--timeout-seconds",
            str(timeout),
            *(["--tracemalloc"] if traced else []),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "kinotrakt"), str(REPO)])}
        subprocess.run(command, stdout=log, check=True, cwd=REPO, env=env)  # noqa: S603 - our interpreter, our module
        results: list[dict[str, Any]] = json.loads(out.read_text())
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="comma-separated: small, medium, large, or name:movies:shows:episodes (default: all three)",
    )
    parser.add_argument(
        "--no-budget", action="store_true", help="skip the large backfill split over 15- and 10-minute runs"
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="per request in the split backfills")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the backfills' allocation-tracing pass")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="backfills per library for the CPU figures (the quiet day's counts as one; the least disturbed wins)",
    )
    parser.add_argument("--skip-footprint", action="store_true", help="skip the import-time and layer measurements")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_at_start = load_average()

    footprint: dict[str, Any] = {}
    imports = layer = None
    if not args.skip_footprint:
        print("measuring the handler's cold import and the layer size ...", file=sys.stderr, flush=True)
        imports = measure_import_ratio()
        layer = measure_layer()
        footprint = {
            "handler_import_ms": imports.handler_ms,
            "dependencies_import_ms": imports.dependencies_ms,
            "dependencies": list(imports.dependencies),
            "import_runs": imports.runs,
            "layer_zipped_mb": layer.zipped_mb,
            "layer_source": layer.source,
        }

    results: list[dict[str, Any]] = []
    quiet_days: list[dict[str, Any]] = []
    for library in args.libraries.split(","):
        print(f"library {library}:", file=sys.stderr, flush=True)
        rows = run_worker(library, "standard", args)
        backfill = rows[0]
        # CPU on a shared machine wanders with its load: the backfill runs again on fresh worlds (one of them
        # followed by the quiet day), each with its bare-HTTP baseline, and the least disturbed of each is the
        # figure (every run is kept).
        quiet_backfill, quiet_day = run_worker(library, "quiet", args)
        quiet_days.append(quiet_day)
        repeats = [quiet_backfill, *(run_worker(library, "backfill", args)[0] for _ in range(args.repeat - 2))]
        _best_cpu(backfill, repeats)
        if not args.no_tracemalloc:
            # Once more with tracemalloc on (slower, so not timed): the pipeline's own peak allocations.
            backfill["pipeline_peak_mb"] = run_worker(library, "backfill", args, traced=True)[0]["pipeline_peak_mb"]
        results += rows
    results += quiet_days
    if not args.no_budget:
        # Lambda's maximum (the budget), then the template's own SyncFunction timeout.
        for timeout in (LAMBDA_MAX_TIMEOUT, TEMPLATE_TIMEOUT):
            print(f"large backfill in {timeout / 60:g}-minute runs:", file=sys.stderr, flush=True)
            results += run_worker("large", "budget", args, timeout=timeout)

    doc = document(
        results=results,
        import_ratio=None if imports is None else imports.ratio,
        handler_rss_mb=None if imports is None else imports.handler_rss_mb,
        load_average=load_average(),
        import_ms=None if imports is None else imports.handler_ms,
        layer_mb=None if layer is None else layer.unzipped_mb,
        extra={
            "footprint": footprint,
            "load_average_at_start": load_at_start,
            "bench_wall_seconds": round(time.perf_counter() - started, 1),
        },
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))
    print(f"\nwritten to {args.out} in {doc['bench_wall_seconds']:.0f} s")
    return 1 if any(r["duplicates"] for r in results) else 0


def _best_cpu(backfill: dict[str, Any], repeats: list[dict[str, Any]]) -> None:
    """The backfill's CPU figures from all its runs: the least pipeline CPU and the least baseline CPU (each
    the least disturbed by the machine's other work), their ratio, and every run."""
    runs = [backfill, *repeats]
    backfill["cpu_seconds_runs"] = [run["cpu_seconds"] for run in runs]
    backfill["cpu_seconds"] = min(backfill["cpu_seconds_runs"])
    baselines = [spent for run in runs for spent in run.get("baseline_cpu_seconds_runs", [])]
    if baselines:
        backfill["baseline_cpu_seconds_runs"] = baselines
        backfill["baseline_cpu_seconds"] = min(baselines)
        backfill["cpu_ratio"] = round(backfill["cpu_seconds"] / backfill["baseline_cpu_seconds"], 3)
    backfill["load_average_runs"] = [run.get("load_average") for run in runs]


if __name__ == "__main__":
    sys.exit(main())
