"""``python -m bench.readme``: write the README's Performance table from ``build/bench.json``, so the figures the
README shows are the ones ``make bench`` measured (never typed in by hand). Replaces what lies between the two
markers of the README's Performance section."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BENCH_JSON = REPO / "build" / "bench.json"
START = "<!-- bench:start (python -m bench.readme writes this part from build/bench.json) -->"
END = "<!-- bench:end -->"
SCENARIO_NAMES = {"rerun, nothing new": "re-run, nothing new"}


def _cpu_ratio(row: Mapping[str, Any]) -> str:
    return "" if row.get("cpu_ratio") is None else f"{row['cpu_ratio']:.2f}"


def render(doc: Mapping[str, Any]) -> str:
    """The markdown block: the machine, the table, the quiet-day costs, the cold start, the targets."""
    results: Sequence[Mapping[str, Any]] = doc["results"]
    load = doc.get("load_average")
    start = doc.get("load_average_at_start")
    lines = [
        f"Machine: {doc['machine']}; load average (1/5/15 min) "
        + (f"{_load(start)} at the start, " if start else "")
        + (f"{_load(load)} at the end" if load else "not known")
        + ".",
        "",
        "| library | scenario | runs | calls Kinopub+Trakt | lower bound | ratio | simulated s | min s | time ratio "
        "| CPU s | CPU ratio | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        calls, bound = row["calls"], row["lower_bound"]
        lines.append(
            f"| {row['library']} | {SCENARIO_NAMES.get(row['scenario'], row['scenario'])} | {row['invocations']} "
            f"| {calls['kinopub']}+{calls['trakt']} | {bound['kinopub']}+{bound['trakt']} | {row['calls_ratio']:.2f} "
            f"| {row['simulated_seconds']:.0f} | {row['min_seconds']:.0f} | {row['time_ratio']:.2f} "
            f"| {row['cpu_seconds']:.2f} | {_cpu_ratio(row)} | {row['peak_rss_mb']:.0f} |"
        )
    lines.append("")
    quiet = [row for row in results if row["scenario"] == "quiet day"]
    if quiet:
        lines.append(
            "A quiet day (24 hourly runs with nothing new, one of them the daily rescan, 200 ms per request): "
            + "; ".join(
                f"{row['library']} {row['calls']['kinopub']} Kinopub calls, {row['calls']['trakt']} Trakt calls, "
                f"{row['simulated_seconds'] / 60:.1f} minutes of runs"
                for row in quiet
            )
            + "."
        )
    backfills = [row for row in results if row.get("baseline_cpu_seconds")]
    if backfills:
        lines.append(
            "CPU ratio = the pipeline's CPU / a bare-HTTP baseline's (every request the run made, to Kinopub, "
            "Trakt and AWS, sent again with plain `requests` calls from the same process in the same run, each "
            "answered with the same body after as long as the fake took the first time; the least disturbed of the "
            "runs of each; a split backfill runs once, its baseline three times): "
            + "; ".join(
                f"{_backfill_name(row)} {row['cpu_seconds']:.2f} s / {row['baseline_cpu_seconds']:.2f} s"
                + (f" ({sum(row['baseline_calls'].values())} calls)" if row.get("baseline_calls") else "")
                for row in backfills
            )
            + "."
        )
    footprint = doc.get("footprint") or {}
    if doc.get("import_ratio") is not None:
        lines.append(
            f"Cold import: {doc['import_ratio']:.2f} x its third-party dependencies' alone "
            f"({footprint.get('handler_import_ms', 0):.0f} ms / {footprint.get('dependencies_import_ms', 0):.0f} ms, "
            f"best of {footprint.get('import_runs', '?')} each); the handler's RSS after import alone "
            f"{doc['handler_rss_mb']:.0f} MB."
        )
    if doc.get("layer_mb") is not None:
        zipped = footprint.get("layer_zipped_mb")
        lines.append(
            f"Layer: {doc['layer_mb']:.1f} MB unzipped" + (f", {zipped:.1f} MB zipped" if zipped else "") + "."
        )
    duplicates = sum(int(row["duplicates"]) for row in results)
    lines.append(
        f"Duplicates on Trakt: {duplicates} in every scenario." if not duplicates else f"Duplicates: {duplicates}."
    )
    lines += ["", "Targets:"]
    for target in doc["targets"]:
        lines.append(f"- {'met' if target['met'] else '**not met**'}: {target['target']} ({target['detail']})")
    return "\n".join(lines)


def _backfill_name(row: Mapping[str, Any]) -> str:
    """``large``, or ``large backfill, 15-min runs`` for a split one."""
    return row["library"] if row["scenario"] == "backfill" else f"{row['library']} {row['scenario']}"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``; a README without them is an error."""
    try:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"README.md has no {START} ... {END} block") from None
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__)
    parser.add_argument("--bench-json", type=Path, default=BENCH_JSON)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    doc = json.loads(args.bench_json.read_text())
    args.readme.write_text(replace_block(args.readme.read_text(), render(doc)))
    print(f"{args.readme}: Performance table written from {args.bench_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
