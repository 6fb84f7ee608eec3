"""``make bench`` end to end on a tiny library: the real handler in a worker process, the fakes and moto in
theirs, and ``build/bench.json`` shaped as issues 8 and 17 ask. No timing is asserted, only shapes and the rules
a user relies on (nothing duplicated, a re-run with nothing new asks Trakt nothing); and how the targets and
ratios are computed, on small synthetic rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import _best_cpu
from bench.footprint import ImportRatio
from bench.messages import ReplayCall
from bench.report import document, table
from bench.worker import bare_http_cpu, calls_by_service
from devkit.fakes.base import FakeServer, Response

REPO = Path(__file__).resolve().parents[2]
ISSUE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "library": str,
    "scenario": str,
    "calls": dict,
    "lower_bound": dict,
    "calls_ratio": float,
    "simulated_seconds": float,
    "min_seconds": float,
    "time_ratio": float,
    "cpu_seconds": float,
    "peak_rss_mb": float,
    "invocations": int,
    "duplicates": int,
}
BACKFILL_FIELDS: dict[str, type] = {"cpu_ratio": float, "baseline_cpu_seconds": float}


TINY = "tiny:5:10:40"


def run_worker(out: Path, *args: str) -> list[dict[str, Any]]:
    """``python -m bench.worker`` on the tiny library, as ``make bench`` starts it; its result rows."""
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.worker", "--library", TINY, "--out", str(out), *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "kinotrakt"), str(REPO)])},
        check=True,
        capture_output=True,
        timeout=240,
    )
    results: list[dict[str, Any]] = json.loads(out.read_text())
    return results


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_worker(tmp_path_factory.mktemp("bench") / "tiny.json")


def test_a_quiet_day_is_24_runs_one_rescan_and_costs_its_bound(tmp_path: Path) -> None:
    # When the worker runs its quiet mode on the tiny library: the backfill, then a day with nothing new
    backfill, quiet = run_worker(tmp_path / "quiet.json", "--mode", "quiet")

    # Then the backfill carries its CPU ratio, and the quiet day is its own row
    assert backfill["scenario"] == "backfill"
    assert backfill["cpu_ratio"] == pytest.approx(backfill["cpu_seconds"] / backfill["baseline_cpu_seconds"], rel=0.1)
    assert quiet["scenario"] == "quiet day"
    # 24 hourly runs, every one ok, the last of them the daily full rescan and no other
    assert quiet["invocations"] == 24
    assert quiet["statuses"] == ["ok"] * 24
    assert quiet["full_scans"] == 1
    assert [run["full_scan"] for run in quiet["runs"]] == [False] * 23 + [True]
    # each hour with nothing new asks Kinopub its history once and Trakt nothing
    assert [(run["kinopub"], run["trakt"]) for run in quiet["runs"][:23]] == [(1, 0)] * 23
    # the rescan reads only what can still change: fewer items than the backfill read
    assert quiet["runs"][-1]["kinopub"] < backfill["calls"]["kinopub"]
    # the day's calls are within 5% of its bound (24 history calls + the items that can still change)
    calls, bound = quiet["calls"], quiet["lower_bound"]
    assert bound["kinopub"] >= 24
    assert sum(calls.values()) <= 1.05 * sum(bound.values())
    assert quiet["calls_ratio"] <= 1.05
    assert quiet["duplicates"] == 0
    assert quiet["added"] == 0
    # And the quiet day meets its target in the document
    assert met(document(results=[backfill, quiet]), "a quiet day") is True


def test_a_split_backfill_carries_its_cpu_ratio_too(tmp_path: Path) -> None:
    # When the worker runs its budget mode with runs short enough (2 s a request, 90 s a run, of which the
    # deadline margin keeps 60) that the tiny backfill needs several
    (split,) = run_worker(
        tmp_path / "budget.json", "--mode", "budget", "--latency-ms", "2000", "--timeout-seconds", "90"
    )

    # Then it finishes over several runs without a duplicate, and carries its CPU against the bare-HTTP baseline
    assert split["scenario"] == "backfill, 1.5-min runs"
    assert split["status"] == "ok"
    assert split["invocations"] > 1
    assert split["duplicates"] == 0
    for name, kind in BACKFILL_FIELDS.items():
        assert isinstance(split[name], kind), name
    assert split["baseline_cpu_seconds"] > 0
    assert split["cpu_ratio"] == pytest.approx(split["cpu_seconds"] / split["baseline_cpu_seconds"], rel=0.1)


def test_every_scenario_reports_the_fields_issue_8_names(tiny_results: list[dict[str, Any]]) -> None:
    # When the bench runs the standard scenarios on a tiny library and builds the document
    doc = json.loads(
        json.dumps(
            document(
                import_ms=123.4,
                layer_mb=12.5,
                import_ratio=1.3,
                handler_rss_mb=50.0,
                load_average=[1.0, 2.0, 3.0],
                results=tiny_results,
            )
        )
    )
    # Then the top level is the issues' shape
    assert isinstance(doc["machine"], str)
    assert doc["machine"]
    assert (doc["import_ms"], doc["layer_mb"]) == (123.4, 12.5)
    assert (doc["import_ratio"], doc["handler_rss_mb"], doc["load_average"]) == (1.3, 50.0, [1.0, 2.0, 3.0])
    # And every result carries every field, with the issue's types
    scenarios = [r["scenario"] for r in doc["results"]]
    assert scenarios == ["backfill", "rerun, nothing new", "1 new episode", "50 new in 10 shows"]
    for result in doc["results"]:
        for name, kind in ISSUE_FIELDS.items():
            assert isinstance(result[name], kind), (result["scenario"], name)
        for name in ("calls", "lower_bound"):
            assert set(result[name]) == {"kinopub", "trakt"}
            assert all(isinstance(v, int) for v in result[name].values())
        # each figure with its target and whether it is met
        assert {"calls_ratio", "time_ratio", "duplicates"} <= set(result["checks"])
        assert all(isinstance(check["met"], bool) for check in result["checks"].values())
    # And the backfill also carries its CPU against the bare-HTTP baseline, measured in the same run
    backfill = doc["results"][0]
    for name, kind in BACKFILL_FIELDS.items():
        assert isinstance(backfill[name], kind), name
    # (both figures are rounded to the millisecond: on a tiny library that is a few percent)
    assert backfill["cpu_ratio"] == pytest.approx(backfill["cpu_seconds"] / backfill["baseline_cpu_seconds"], rel=0.1)
    # and that baseline sent every request the backfill made: each Kinopub and Trakt call, and its AWS calls too
    # (its state, tokens and ledger), each answered as the pipeline was (the worker checks every status)
    replayed = backfill["baseline_calls"]
    assert (replayed["kinopub"], replayed["trakt"]) == (backfill["calls"]["kinopub"], backfill["calls"]["trakt"])
    assert replayed["aws"] >= 3
    # And the targets are listed, each met or not
    assert all(isinstance(t["met"], bool) for t in doc["targets"])


def test_the_tiny_library_syncs_without_duplicates_and_a_rerun_asks_trakt_nothing(
    tiny_results: list[dict[str, Any]],
) -> None:
    by_name = {r["scenario"]: r for r in tiny_results}
    assert all(r["status"] == "ok" for r in tiny_results)
    assert all(r["duplicates"] == 0 for r in tiny_results)
    assert by_name["rerun, nothing new"]["calls"] == {"kinopub": 1, "trakt": 0}
    # The new views became plays: the one new episode, and the fifty across ten shows
    assert by_name["1 new episode"]["added"] == 1
    assert by_name["50 new in 10 shows"]["added"] == 50


def test_the_table_names_every_scenario_and_target(tiny_results: list[dict[str, Any]]) -> None:
    doc = document(import_ms=None, layer_mb=None, results=tiny_results)
    text = table(doc)
    for result in tiny_results:
        assert result["scenario"] in text
    assert "built layer <= 20 MB unzipped: not measured" in text


# --- the targets and ratios, on synthetic rows ---------------------------------------------------------------


def row(library: str, scenario: str, calls: tuple[int, int], bound: tuple[int, int], **more: Any) -> dict[str, Any]:
    total = sum(calls)
    floor = sum(bound)
    return {
        "library": library,
        "scenario": scenario,
        "status": "ok",
        "calls": {"kinopub": calls[0], "trakt": calls[1]},
        "lower_bound": {"kinopub": bound[0], "trakt": bound[1]},
        "calls_ratio": total / floor if floor else 1.0,
        "simulated_seconds": 10.0,
        "min_seconds": 10.0,
        "time_ratio": 1.0,
        "cpu_seconds": 1.0,
        "peak_rss_mb": 100.0,
        "invocations": 1,
        "duplicates": 0,
        "calls_by_endpoint": {},
        "runs": [],
        **more,
    }


def met(doc: dict[str, Any], name: str) -> bool:
    """Whether the one target whose name starts with ``name`` is met."""
    (found,) = [target for target in doc["targets"] if target["target"].startswith(name)]
    return bool(found["met"])


def test_a_quiet_day_over_its_bound_or_without_its_rescan_misses_the_target() -> None:
    quiet = row("large", "quiet day", (660, 0), (660, 0), full_scans=1, invocations=24)
    assert met(document(results=[quiet]), "a quiet day") is True
    # 5% over: 693 calls for a bound of 660 is the limit; 694 is over
    assert met(document(results=[{**quiet, "calls_ratio": 693 / 660}]), "a quiet day") is True
    assert met(document(results=[{**quiet, "calls_ratio": 694 / 660}]), "a quiet day") is False
    # A day that never ran its rescan did not measure what it must
    assert met(document(results=[{**quiet, "full_scans": 0}]), "a quiet day") is False


def test_the_cpu_ratio_is_the_pipelines_cpu_over_the_bare_http_baselines() -> None:
    # Given three backfills of the large library, each with its baseline replayed three times
    first = row("large", "backfill", (3000, 785), (3000, 785), cpu_seconds=5.0, baseline_cpu_seconds_runs=[2.6, 2.5])
    repeats = [
        {"cpu_seconds": 4.6, "baseline_cpu_seconds_runs": [2.4, 2.7], "load_average": [3.0, 3.0, 3.0]},
        {"cpu_seconds": 6.1, "baseline_cpu_seconds_runs": [3.1], "load_average": [9.0, 8.0, 7.0]},
    ]
    # When the runs are combined
    _best_cpu(first, repeats)
    # Then each side's least disturbed run is the figure, and the ratio is theirs
    assert (first["cpu_seconds"], first["baseline_cpu_seconds"]) == (4.6, 2.4)
    assert first["cpu_ratio"] == pytest.approx(4.6 / 2.4, abs=1e-3)
    assert first["cpu_seconds_runs"] == [5.0, 4.6, 6.1]
    # And the target (<= 2.0) is checked on it
    doc = document(results=[first])
    assert doc["results"][0]["checks"]["cpu_ratio"] == {"value": first["cpu_ratio"], "target": 2.0, "met": True}
    slow = document(results=[{**first, "cpu_ratio": 2.01}])
    assert met(slow, "large backfill: CPU") is False


def test_the_import_ratio_is_the_handlers_import_over_its_dependencies_alone() -> None:
    ratio = ImportRatio(handler_ms=300.0, dependencies_ms=240.0, handler_rss_mb=50.0, dependencies=("boto3",), runs=5)
    assert ratio.ratio == 1.25
    assert met(document(results=[], import_ratio=ratio.ratio), "cold import") is True
    assert met(document(results=[], import_ratio=1.51), "cold import") is False


def test_a_split_backfill_is_held_to_both_bounds() -> None:
    split = row("large", "backfill, 10-min runs", (3000, 842), (3000, 785), time_ratio=1.03, invocations=2)
    name = "large backfill, 10-min runs"
    assert met(document(results=[split]), name) is True
    assert met(document(results=[{**split, "time_ratio": 1.11}]), name) is False
    assert met(document(results=[{**split, "status": "partial"}]), name) is False


def test_a_baseline_answered_otherwise_than_the_pipeline_is_refused() -> None:
    # Given a server that answers 200 to everything, and a recorded run whose second request got a 404
    with FakeServer() as server:
        server.route("GET", "/.*", lambda request, match: Response(200, b"{}"))
        calls = [
            ReplayCall("GET", f"{server.base_url}/v1/history", {"page": "1"}, {}, b"", 200),
            ReplayCall("GET", f"{server.base_url}/v1/items/7", {}, {}, b"", 404),
        ]
        # When the baseline replays it, then it stops: its CPU would not be that of the same exchanges
        with pytest.raises(RuntimeError, match="1 of 2 answers other than the pipeline's"):
            bare_http_cpu(calls)
        # And a replay that gets every answer back is measured
        assert bare_http_cpu(calls[:1]) >= 0


def test_every_replayed_call_is_counted_for_its_service() -> None:
    env = {"KINOPUB_API_URL": "http://k:1", "TRAKT_API_URL": "http://t:2/", "AWS_ENDPOINT_URL": "http://a:3"}
    calls = [ReplayCall("GET", url, {}, {}, b"") for url in ("http://k:1/v1/history", "http://t:2/sync", "http://a:3/")]
    assert calls_by_service([*calls, calls[0]], env) == {"kinopub": 2, "trakt": 1, "aws": 1}
    with pytest.raises(RuntimeError, match="none of the services"):
        calls_by_service([ReplayCall("GET", "http://k:10/v1/history", {}, {}, b"")], env)
