"""``build/bench.json`` and the table on stdout, with each target of issue 8 marked met or not."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CALLS_RATIO_TARGET = 1.05
TIME_RATIO_TARGET = 1.10
LARGE_CPU_TARGET = 5.0
LARGE_RSS_TARGET = 256.0
IMPORT_TARGET_MS = 500.0
LAYER_TARGET_MB = 20.0


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

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.name, "met": self.met, "detail": self.detail}


def targets(import_ms: float | None, layer_mb: float | None, results: Sequence[Mapping[str, Any]]) -> list[Target]:
    found: list[Target] = []
    if results:
        found.append(_every(results, "calls_ratio", CALLS_RATIO_TARGET, f"calls / lower bound <= {CALLS_RATIO_TARGET}"))
        reruns = [r for r in results if r["scenario"].startswith("rerun")]
        bad = [r for r in reruns if r["calls"] != {"kinopub": 1, "trakt": 0}]
        found.append(
            Target(
                "re-run with nothing new: 1 Kinopub call, 0 Trakt calls",
                bool(reruns) and not bad,
                ", ".join(f"{r['library']}: {r['calls']['kinopub']}+{r['calls']['trakt']}" for r in reruns),
            )
        )
        found.append(
            _every(results, "time_ratio", TIME_RATIO_TARGET, f"simulated time <= {TIME_RATIO_TARGET} x the minimum")
        )
        large = _first(r for r in results if r["library"] == "large" and r["scenario"] == "backfill")
        if large is not None:
            found.append(
                Target(
                    f"large backfill: pipeline CPU <= {LARGE_CPU_TARGET:g} s",
                    large["cpu_seconds"] <= LARGE_CPU_TARGET,
                    f"{large['cpu_seconds']:.2f} s",
                )
            )
            found.append(
                Target(
                    f"large backfill: peak RSS <= {LARGE_RSS_TARGET:g} MB",
                    large["peak_rss_mb"] <= LARGE_RSS_TARGET,
                    f"{large['peak_rss_mb']:.0f} MB",
                )
            )
        budget = _first(r for r in results if r["library"] == "large" and r["scenario"] == "backfill, 15-min runs")
        if budget is not None:
            found.append(
                Target(
                    "large backfill completes across 15-minute invocations",
                    budget["status"] == "ok",
                    f"{budget['status']} after {budget['invocations']} invocation(s) "
                    f"(at least {budget['min_invocations']} needed{_latency(budget)})",
                )
            )
        dupes = sum(int(r["duplicates"]) for r in results)
        found.append(Target("no duplicate play on Trakt, ever", dupes == 0, f"{dupes} duplicate keys"))
    if import_ms is not None:
        found.append(
            Target(f"cold import <= {IMPORT_TARGET_MS:g} ms", import_ms <= IMPORT_TARGET_MS, f"{import_ms:.0f} ms")
        )
    found.append(
        Target(
            f"built layer <= {LAYER_TARGET_MB:g} MB unzipped",
            layer_mb is not None and layer_mb <= LAYER_TARGET_MB,
            "not measured" if layer_mb is None else f"{layer_mb:.1f} MB",
        )
    )
    return found


def _every(results: Sequence[Mapping[str, Any]], field: str, limit: float, name: str) -> Target:
    over = [r for r in results if r[field] > limit]
    if not over:
        worst = max(results, key=lambda r: r[field])
        return Target(f"{name} on every scenario", True, f"worst {worst[field]:.2f}")
    detail = "; ".join(f"{r['library']} / {r['scenario']}: {r[field]:.2f}" for r in over)
    return Target(f"{name} on every scenario", False, f"{len(over)} over: {detail}")


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
    import_ms: float | None,
    layer_mb: float | None,
    results: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The issue's shape first (``machine``, ``import_ms``, ``layer_mb``, ``results``), then the rest."""
    return {
        "machine": machine(),
        "import_ms": import_ms,
        "layer_mb": layer_mb,
        "results": [dict(r) for r in results],
        "targets": [t.as_dict() for t in targets(import_ms, layer_mb, results)],
        **dict(extra or {}),
    }


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
    ("rss MB", 6, lambda r: f"{r['peak_rss_mb']:.0f}"),
    ("py MB", 5, lambda r: "-" if r.get("pipeline_peak_mb") is None else f"{r['pipeline_peak_mb']:.0f}"),
    ("dups", 4, lambda r: str(r["duplicates"])),
)


def table(doc: Mapping[str, Any]) -> str:
    results: Sequence[Mapping[str, Any]] = doc["results"]
    header = "  ".join(
        f"{name:<{width}}" if i < 3 else f"{name:>{width}}" for i, (name, width, _) in enumerate(COLUMNS)
    )
    lines = [f"machine: {doc['machine']}", header, "-" * len(header)]
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
    split = [row for row in results if row["invocations"] > 1]
    if split:
        lines.append("")
        lines.append("scenarios that took more than one invocation:")
    for row in split:
        latency = _latency(row)
        lines.append(
            f"  {row['library']} {row['scenario']} (timeout {row['timeout_seconds']:.0f} s{latency}; "
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
    import_ms = doc.get("import_ms")
    layer_mb = doc.get("layer_mb")
    footprint = doc.get("footprint", {})
    lines.append(
        f"cold import of functions/sync/app.py: {'n/a' if import_ms is None else f'{import_ms:.0f} ms'}"
        + (
            f" (best of {footprint['import_runs']}, median {footprint['import_median_ms']:.0f} ms, "
            f"CPU {footprint['import_cpu_ms']:.0f} ms; +{footprint['first_event_import_ms']:.0f} ms for boto3 "
            "on the first event)"
            if footprint
            else ""
        )
    )
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
