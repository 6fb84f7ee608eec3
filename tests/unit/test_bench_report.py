"""``make bench`` end to end on a tiny library: the real handler in a worker process, the fakes and moto in
theirs, and ``build/bench.json`` shaped as issue 8 asks. No timing is asserted, only shapes and the rules a
user relies on (nothing duplicated, a re-run with nothing new asks Trakt nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.report import document, table

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


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "tiny.json"
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.worker", "--library", "tiny:5:10:40", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "kinotrakt"), str(REPO)])},
        check=True,
        capture_output=True,
        timeout=240,
    )
    results: list[dict[str, Any]] = json.loads(out.read_text())
    return results


def test_every_scenario_reports_the_fields_issue_8_names(tiny_results: list[dict[str, Any]]) -> None:
    # When the bench runs the standard scenarios on a tiny library and builds the document
    doc = json.loads(json.dumps(document(import_ms=123.4, layer_mb=12.5, results=tiny_results)))
    # Then the top level is the issue's shape
    assert isinstance(doc["machine"], str)
    assert doc["machine"]
    assert (doc["import_ms"], doc["layer_mb"]) == (123.4, 12.5)
    # And every result carries every field, with the issue's types
    scenarios = [r["scenario"] for r in doc["results"]]
    assert scenarios == ["backfill", "rerun, nothing new", "1 new episode", "50 new in 10 shows"]
    for result in doc["results"]:
        for name, kind in ISSUE_FIELDS.items():
            assert isinstance(result[name], kind), (result["scenario"], name)
        for name in ("calls", "lower_bound"):
            assert set(result[name]) == {"kinopub", "trakt"}
            assert all(isinstance(v, int) for v in result[name].values())
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
