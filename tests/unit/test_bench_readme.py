"""The README's Performance table is written from ``build/bench.json`` (bench/readme.py), never by hand: what is
between its markers is replaced, everything around them is kept, and every scenario and target shows up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.readme import END, START, main, render, replace_block
from bench.report import document


def results() -> list[dict[str, Any]]:
    base = {
        "status": "ok",
        "simulated_seconds": 351.0,
        "min_seconds": 325.0,
        "time_ratio": 1.08,
        "peak_rss_mb": 110.0,
        "invocations": 1,
        "duplicates": 0,
    }
    return [
        {
            **base,
            "library": "large",
            "scenario": "backfill",
            "calls": {"kinopub": 3000, "trakt": 785},
            "lower_bound": {"kinopub": 3000, "trakt": 785},
            "calls_ratio": 1.0,
            "cpu_seconds": 4.6,
            "baseline_cpu_seconds": 2.4,
            "baseline_calls": {"kinopub": 3000, "trakt": 785, "aws": 219},
            "cpu_ratio": 1.917,
        },
        {
            **base,
            "library": "large",
            "scenario": "backfill, 15-min runs",
            "calls": {"kinopub": 3000, "trakt": 790},
            "lower_bound": {"kinopub": 3000, "trakt": 785},
            "calls_ratio": 1.001,
            "cpu_seconds": 5.3,
            "baseline_cpu_seconds": 2.5,
            "cpu_ratio": 2.12,
            "invocations": 2,
        },
        {
            **base,
            "library": "large",
            "scenario": "quiet day",
            "calls": {"kinopub": 660, "trakt": 0},
            "lower_bound": {"kinopub": 660, "trakt": 0},
            "calls_ratio": 1.0,
            "simulated_seconds": 132.0,
            "min_seconds": 132.0,
            "time_ratio": 1.0,
            "cpu_seconds": 4.1,
            "invocations": 24,
            "full_scans": 1,
        },
    ]


def doc() -> dict[str, Any]:
    return document(
        results=results(),
        import_ratio=1.38,
        handler_rss_mb=53.0,
        load_average=[2.0, 2.5, 3.0],
        layer_mb=13.0,
        extra={"footprint": {"handler_import_ms": 330.0, "dependencies_import_ms": 240.0, "import_runs": 5}},
    )


def test_the_block_holds_a_row_per_scenario_the_quiet_day_costs_and_every_target() -> None:
    text = render(doc())
    assert "| large | backfill | 1 | 3000+785 | 3000+785 | 1.00 | 351 | 325 | 1.08 | 4.60 | 1.92 | 110 |" in text
    split = "| large | backfill, 15-min runs | 2 | 3000+790 | 3000+785 | 1.00 | 351 | 325 | 1.08 | 5.30 | 2.12 | 110 |"
    assert split in text
    assert "| large | quiet day | 24 | 660+0 | 660+0 | 1.00 | 132 | 132 | 1.00 | 4.10 |  | 110 |" in text
    # every backfill's CPU against its own baseline, a split one named as such
    # (with how many calls its baseline replayed: every one the run made, AWS's too)
    assert "large 4.60 s / 2.40 s (4004 calls); large backfill, 15-min runs 5.30 s / 2.50 s." in text
    assert "large 660 Kinopub calls, 0 Trakt calls, 2.2 minutes of runs" in text
    assert "Cold import: 1.38 x its third-party dependencies' alone (330 ms / 240 ms, best of 5 each)" in text
    assert "load average (1/5/15 min) 2.00 / 2.50 / 3.00 at the end" in text
    for target in doc()["targets"]:
        assert target["target"] in text


def test_only_the_marked_block_is_replaced() -> None:
    readme = f"# kinotrakt\n\n## Performance\n\nHow it is measured.\n\n{START}\nold figures\n{END}\n\nAfter.\n"
    updated = replace_block(readme, "new figures")
    assert updated == f"# kinotrakt\n\n## Performance\n\nHow it is measured.\n\n{START}\nnew figures\n{END}\n\nAfter.\n"
    # Written again, it is the same (the command can run after every bench)
    assert replace_block(updated, "new figures") == updated


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="no"):
        replace_block("# kinotrakt\n", "figures")


def test_the_command_writes_the_readme_from_the_bench_json(tmp_path: Path) -> None:
    bench_json = tmp_path / "bench.json"
    bench_json.write_text(json.dumps(doc()))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\n{END}\n")
    assert main(["--bench-json", str(bench_json), "--readme", str(readme)]) == 0
    assert render(doc()) in readme.read_text()


def test_the_project_readme_has_the_markers() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme.count(START) == 1
    assert readme.count(END) == 1
