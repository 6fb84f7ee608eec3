"""``build/bench.json`` and the table on stdout, every figure with its target and whether it is met
(issues 8 and 17). ``bench/readme.py`` writes the README's table from the same document."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CALLS_RATIO_TARGET = 1.05
TIME_RATIO_TARGET = 1.10
CPU_RATIO_TARGET = 2.0  # pipeline CPU / the bare-HTTP baseline's, large backfill
IMPORT_RATIO_TARGET = 1.5  # handler import / its third-party dependencies' import
LARGE_RSS_TARGET = 256.0
LAYER_TARGET_MB = 20.0
BACKFILL = "backfill"
QUIET_DAY = "quiet day"
SPLIT_BACKFILLS = ("backfill, 15-min runs", "backfill, 10-min runs")


def machine() -> str:
    """``x86_64, 2 CPUs (model), Linux 6.x, CPython 3.13.0``."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs{model}, {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


@dataclass(frozen=True)
class Target:
    name: str
    met: bool
    detail: str
    limit: float | None = None
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.name, "limit": self.limit, "value": self.value, "met": self.met, "detail": self.detail}


def row_checks(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each figure of one scenario with its target: calls and time against the bound, no duplicate, and for
    the large backfill the CPU ratio and the peak RSS."""
    checks = {
        "calls_ratio": _check(row["calls_ratio"], CALLS_RATIO_TARGET),
        "time_ratio": _check(row["time_ratio"], TIME_RATIO_TARGET),
        "duplicates": _check(row["duplicates"], 0),
    }
    if row["scenario"] == BACKFILL and row["library"] == "large":
        if row.get("cpu_ratio") is not None:
            checks["cpu_ratio"] = _check(row["cpu_ratio"], CPU_RATIO_TARGET)
        checks["peak_rss_mb"] = _check(row["peak_rss_mb"], LARGE_RSS_TARGET)
    return checks


def _check(value: float, limit: float) -> dict[str, Any]:
    return {"value": value, "target": limit, "met": value <= limit}


def targets(
    results: Sequence[Mapping[str, Any]], *, import_ratio: float | None, layer_mb: float | None
) -> list[Target]:
    found: list[Target] = []
    if results:
        found.append(_every(results, "calls_ratio", CALLS_RATIO_TARGET, "calls <= {} x the lower bound"))
        found.append(_every(results, "time_ratio", TIME_RATIO_TARGET, "simulated time <= {} x the minimum"))
        reruns = [r for r in results if r["scenario"].startswith("rerun")]
        bad = [r for r in reruns if r["calls"] != {"kinopub": 1, "trakt": 0}]
        found.append(
            Target(
                "re-run with nothing new: 1 Kinopub call, 0 Trakt calls",
                bool(reruns) and not bad,
                ", ".join(f"{r['library']}: {r['calls']['kinopub']}+{r['calls']['trakt']}" for r in reruns),
            )
        )
        for name in SPLIT_BACKFILLS:
            split = _first(r for r in results if r["library"] == "large" and r["scenario"] == name)
            if split is not None:
                found.append(
                    Target(
                        f"large {name}: completes, calls <= {CALLS_RATIO_TARGET} x bound, "
                        f"time <= {TIME_RATIO_TARGET} x minimum",
                        split["status"] == "ok"
                        and split["calls_ratio"] <= CALLS_RATIO_TARGET
                        and split["time_ratio"] <= TIME_RATIO_TARGET,
                        f"{split['status']} in {split['invocations']} run(s), calls {split['calls_ratio']:.3f}, "
                        f"time {split['time_ratio']:.3f}",
                    )
                )
        quiet = [r for r in results if r["scenario"] == QUIET_DAY]
        if quiet:
            found.append(
                Target(
                    f"a quiet day: calls <= {CALLS_RATIO_TARGET} x the bound (24 history calls + the items that "
                    "can still change), with one daily rescan",
                    all(r["calls_ratio"] <= CALLS_RATIO_TARGET and r.get("full_scans") == 1 for r in quiet),
                    ", ".join(f"{r['library']}: {r['calls']['kinopub']} Kinopub calls a day" for r in quiet),
                )
            )
        large = _first(r for r in results if r["library"] == "large" and r["scenario"] == BACKFILL)
        if large is not None and large.get("cpu_ratio") is not None:
            found.append(
                Target(
                    f"large backfill: CPU <= {CPU_RATIO_TARGET:g} x the bare-HTTP baseline",
                    large["cpu_ratio"] <= CPU_RATIO_TARGET,
                    f"{large['cpu_ratio']:.2f} ({large['cpu_seconds']:.2f} s / {large['baseline_cpu_seconds']:.2f} s)",
                    CPU_RATIO_TARGET,
                    large["cpu_ratio"],
                )
            )
        if large is not None:
            found.append(
                Target(
                    f"large backfill: peak RSS <= {LARGE_RSS_TARGET:g} MB",
                    large["peak_rss_mb"] <= LARGE_RSS_TARGET,
                    f"{large['peak_rss_mb']:.0f} MB",
                    LARGE_RSS_TARGET,
                    large["peak_rss_mb"],
                )
            )
        dupes = sum(int(r["duplicates"]) for r in results)
        found.append(Target("no duplicate play on Trakt, ever", dupes == 0, f"{dupes} duplicate keys", 0, dupes))
    if import_ratio is not None:
        found.append(
            Target(
                f"cold import <= {IMPORT_RATIO_TARGET:g} x its third-party dependencies' alone",
                import_ratio <= IMPORT_RATIO_TARGET,
                f"{import_ratio:.2f}",
                IMPORT_RATIO_TARGET,
                import_ratio,
            )
        )
    found.append(
        Target(
            f"built layer <= {LAYER_TARGET_MB:g} MB unzipped",
            layer_mb is not None and layer_mb <= LAYER_TARGET_MB,
            "not measured" if layer_mb is None else f"{layer_mb:.1f} MB",
            LAYER_TARGET_MB,
            layer_mb,
        )
    )
    return found


def _every(results: Sequence[Mapping[str, Any]], field: str, limit: float, name: str) -> Target:
    title = f"{name.format(limit)} on every scenario"
    over = [r for r in results if r[field] > limit]
    worst = max(results, key=lambda r: r[field])
    if not over:
        return Target(title, True, f"worst {worst[field]:.3f} ({worst['library']} / {worst['scenario']})", limit)
    detail = "; ".join(f"{r['library']} / {r['scenario']}: {r[field]:.3f}" for r in over)
    return Target(title, False, f"{len(over)} over: {detail}", limit, worst[field])


def _latency(row: Mapping[str, Any]) -> str:
    latency = row.get("latency_ms") or {}
    if not latency:
        return ""
    values = sorted(set(latency.values()))
    if len(values) == 1:
        return f"; {values[0]} ms per request"
    return "; " + ", ".join(f"{service} {ms} ms" for service, ms in latency.items()) + " per request"


def _first(rows: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next(iter(rows), None)


def document(
    *,
    results: Sequence[Mapping[str, Any]],
    import_ratio: float | None = None,
    handler_rss_mb: float | None = None,
    load_average: Sequence[float] | None = None,
    import_ms: float | None = None,
    layer_mb: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The issues' shape first (``machine``, ``load_average``, ``import_ratio``, ``handler_rss_mb``,
    ``results`` with each row's ``checks``, ``targets``), then the rest."""
    rows = [{**row, "checks": row_checks(row)} for row in results]
    return {
        "machine": machine(),
        "load_average": list(load_average) if load_average is not None else None,
        "import_ratio": import_ratio,
        "handler_rss_mb": handler_rss_mb,
        "import_ms": import_ms,
        "layer_mb": layer_mb,
        "results": rows,
        "targets": [t.as_dict() for t in targets(results, import_ratio=import_ratio, layer_mb=layer_mb)],
        **dict(extra or {}),
    }


def _cpu(row: Mapping[str, Any]) -> str:
    return "-" if row.get("cpu_ratio") is None else f"{row['cpu_ratio']:.2f}"


COLUMNS = (
    ("library", 7, lambda r: r["library"]),
    ("scenario", 24, lambda r: r["scenario"]),
    ("status", 7, lambda r: r["status"]),
    ("inv", 3, lambda r: str(r["invocations"])),
    ("calls kp+tr", 11, lambda r: f"{r['calls']['kinopub']}+{r['calls']['trakt']}"),
    ("bound kp+tr", 11, lambda r: f"{r['lower_bound']['kinopub']}+{r['lower_bound']['trakt']}"),
    ("ratio", 5, lambda r: f"{r['calls_ratio']:.2f}"),
    ("sim s", 7, lambda r: f"{r['simulated_seconds']:.0f}"),
    ("min s", 7, lambda r: f"{r['min_seconds']:.0f}"),
    ("t-ratio", 7, lambda r: f"{r['time_ratio']:.2f}"),
    ("cpu s", 6, lambda r: f"{r['cpu_seconds']:.2f}"),
    ("cpu-r", 5, _cpu),
    ("rss MB", 6, lambda r: f"{r['peak_rss_mb']:.0f}"),
    ("py MB", 5, lambda r: "-" if r.get("pipeline_peak_mb") is None else f"{r['pipeline_peak_mb']:.0f}"),
    ("dups", 4, lambda r: str(r["duplicates"])),
)


def table(doc: Mapping[str, Any]) -> str:
    results: Sequence[Mapping[str, Any]] = doc["results"]
    header = "  ".join(
        f"{name:<{width}}" if i < 3 else f"{name:>{width}}" for i, (name, width, _) in enumerate(COLUMNS)
    )
    load = doc.get("load_average")
    lines = [
        f"machine: {doc['machine']}" + (f"; load average {' / '.join(f'{x:.2f}' for x in load)}" if load else ""),
        header,
        "-" * len(header),
    ]
    for row in results:
        cells = [fmt(row) for _, _, fmt in COLUMNS]
        lines.append(
            "  ".join(
                f"{cell:<{width}}" if i < 3 else f"{cell:>{width}}"
                for i, (cell, (_, width, _)) in enumerate(zip(cells, COLUMNS, strict=True))
            )
        )
    lines.append("")
    lines.append("calls per endpoint (every request the fakes received, retries included):")
    for row in results:
        endpoints = ", ".join(f"{name.split(' ', 1)[1]} {count}" for name, count in row["calls_by_endpoint"].items())
        lines.append(f"  {row['library']:<7} {row['scenario']:<24} {endpoints or '(none)'}")
    split = [row for row in results if row["invocations"] > 1 and row["scenario"] != QUIET_DAY]
    if split:
        lines.append("")
        lines.append("scenarios that took more than one invocation:")
    for row in split:
        lines.append(
            f"  {row['library']} {row['scenario']} (timeout {row['timeout_seconds']:.0f} s{_latency(row)}; "
            f"at least {row['min_invocations']} needed by the bound):"
        )
        for number, run in enumerate(row["runs"], start=1):
            stopped = f" - {run['stopped']}" if run.get("stopped") else ""
            lines.append(
                f"    #{number} {run['status']:<7} kinopub {run['kinopub']:>5}  trakt {run['trakt']:>5}  "
                f"items read {run['items_examined']:>5}  added {run['added']:>6}  "
                f"{run['simulated_seconds']:>6.0f} s{stopped}"
            )
    lines.append("")
    ratio = doc.get("import_ratio")
    footprint = doc.get("footprint", {})
    lines.append(
        "cold import of functions/sync/app.py (+ its first event's): "
        + ("n/a" if ratio is None else f"{ratio:.2f} x its third-party dependencies' alone")
        + (
            f" ({footprint['handler_import_ms']:.0f} ms / {footprint['dependencies_import_ms']:.0f} ms, best of "
            f"{footprint['import_runs']})"
            if footprint.get("handler_import_ms")
            else ""
        )
    )
    rss = doc.get("handler_rss_mb")
    lines.append(f"handler RSS after import alone: {'n/a' if rss is None else f'{rss:.0f} MB'}")
    layer_mb = doc.get("layer_mb")
    lines.append(
        f"layer: {'n/a' if layer_mb is None else f'{layer_mb:.1f} MB unzipped'}"
        + (f", {footprint['layer_zipped_mb']:.1f} MB zipped" if footprint.get("layer_zipped_mb") else "")
        + (f" — {footprint['layer_source']}" if footprint.get("layer_source") else "")
    )
    lines.append("")
    lines.append("targets:")
    for target in doc["targets"]:
        mark = "met    " if target["met"] else "NOT MET"
        lines.append(f"  [{mark}] {target['target']}: {target['detail']}")
    return "\n".join(lines)
