"""``make demo``: the real sync handler, offline, on the built-in sandbox (DESIGN §7).

Runs the sync twice against a small realistic library and prints what happened in words: what was added,
skipped as already on Trakt, left unmatched and why. The second run must add nothing. The handler's JSON
log lines and metrics go to ``build/demo-logs.jsonl``."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from devkit.fakes.library import seed_demo_library
from devkit.sandbox import REPO, Sandbox, sandbox
from kinotrakt.observability import logger

LOG_FILE = REPO / "build" / "demo-logs.jsonl"


def describe(title: str, report: dict[str, Any]) -> str:
    calls = report["http_calls"]
    lines = [
        f"== {title}: {report['status'].upper()} ==",
        f"  completed views on Kinopub : {report['candidates']}",
        f"  added to Trakt             : {report['added_movies']} movies, {report['added_episodes']} episodes",
        f"  skipped (already on Trakt) : {report['skipped_duplicates']}",
        f"  Trakt answered not found   : {report['not_found']}",
        f"  unmatched                  : {report['unmatched']}",
        f"  watermark (last success)   : {report['watermark']}",
        f"  HTTP calls                 : Kinopub {calls['kinopub']}, Trakt {calls['trakt']}",
    ]
    if report.get("added"):
        lines.append("  added:")
        lines += [f"    + {entry}" for entry in report["added"]]
    if report.get("unmatched_items"):
        lines.append("  unmatched (see `kinotrakt unmatched`; pin with `kinotrakt map`):")
        for item in report["unmatched_items"]:
            if isinstance(item, dict):
                where = f" S{item['season']:02d}E{item['episode']:02d}" if item.get("season") is not None else ""
                lines.append(f"    ? {item['title']}{where}: {item['reason']} - {item['detail']}")
    if report.get("failed_items"):
        lines.append("  Kinopub items that could not be read (the watermark waits for them):")
        lines += [f"    ! {i['title']}: {i['reason']}" for i in report["failed_items"] if isinstance(i, dict)]
    if report.get("skipped_items"):
        lines.append("  not synced on purpose:")
        lines += [f"    - {i['title']}: {i['reason']}" for i in report["skipped_items"] if isinstance(i, dict)]
    if report.get("error"):
        lines.append(f"  error: {report['error']['message']}")
    return "\n".join(lines)


def run_demo(out: Any = sys.stdout) -> int:
    LOG_FILE.parent.mkdir(exist_ok=True)
    with LOG_FILE.open("w") as log, sandbox(seed=seed_demo_library) as box:
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        original = handler.setStream(log)
        try:
            first, second = _two_runs(box, log)
        finally:
            handler.setStream(original)
        print(
            "kinotrakt demo - offline: moto (DynamoDB, Secrets Manager from template.yaml), fake Kinopub, fake Trakt\n",
            file=out,
        )
        print(describe("Run 1 (first sync)", first), file=out)
        print(file=out)
        print(describe("Run 2 (immediately again)", second), file=out)
        plays = box.trakt.plays()
        duplicates = box.trakt.duplicate_keys()
        print(
            f"\nTrakt now holds {len(plays)} plays; duplicate plays: {len(duplicates)}. Logs: {LOG_FILE}",
            file=out,
        )
        added_again = second["added_movies"] + second["added_episodes"]
        ok = first["status"] == "ok" and second["status"] == "ok" and added_again == 0 and not duplicates
        print("demo: OK - the second run added nothing" if ok else "demo: FAILED", file=out)
        return 0 if ok else 1


def _two_runs(box: Sandbox, log: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    with contextlib.redirect_stdout(log):  # Powertools prints metrics (EMF) to stdout
        first = box.invoke()
        second = box.invoke()
    return first, second


def main() -> int:
    return run_demo()


if __name__ == "__main__":
    raise SystemExit(main())
