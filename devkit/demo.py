"""``make demo``: the real sync handler, offline, on the built-in sandbox (README.md#the-two-commands).

Runs the sync twice against a small realistic library and prints what happened in words: what was added,
skipped as already on Trakt, left unmatched and why, and what became of the cases Kinopub's real data holds
(extras, multi-part films, specials, merged episodes) — read from the fake Trakt's own plays after both runs and
checked against the outcome the demo library documents for each. Between the runs one part of a film already
synced is opened again on Kinopub; the second run must add nothing. Then other tools leave a few duplicate plays
on the account, and an audit finds them, ``fix: ["duplicates"]`` removes them (the oldest play of each stays), and
a last audit shows the history clean. Any difference fails the demo (exit 1), each named under ``demo: FAILED``.
The handler's JSON log lines and metrics go to ``build/demo-logs.jsonl``."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from devkit.fakes.library import (
    REAL_DATA,
    DemoLibrary,
    DemoView,
    LeftByOtherTools,
    seed_demo_library,
    seed_other_tools_plays,
)
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
    if report.get("kept_plays"):
        lines.append("  times moved on Kinopub, but not a rewatch (the play already sent stands):")
        lines += [f"    = {k['title']}: {k['detail']}" for k in report["kept_plays"] if isinstance(k, dict)]
    if report.get("error"):
        lines.append(f"  error: {report['error']['message']}")
    return "\n".join(lines)


def describe_audit(title: str, report: dict[str, Any]) -> str:
    lines = [
        f"== {title}: {report['status'].upper()} ==",
        f"  plays read on Trakt        : {report['plays_read']}",
        f"  finished views checked     : {report['views_checked']}",
        f"  duplicate plays            : {report['duplicates_found']} found, {report['duplicates_removed']} removed",
        f"  missing on Trakt           : {report['missing_on_trakt']}",
        f"  unexpected plays           : {report['unexpected_plays']}",
    ]
    for entry in report.get("duplicates") or []:
        if isinstance(entry, dict):
            removed = f", removed {entry['removed']}" if entry["removed"] else ""
            kept = f"kept play {entry['kept']}, extra {entry['extra']}{removed}"
            lines.append(f"    = {entry['title']} @ {entry['watched_at']}: {kept}")
    if report.get("error"):
        lines.append(f"  error: {report['error']['message']}")
    return "\n".join(lines)


def run_demo(out: Any = sys.stdout) -> int:
    LOG_FILE.parent.mkdir(exist_ok=True)
    library: list[DemoLibrary] = []

    def seed(kinopub: Any, trakt: Any) -> None:
        library.append(seed_demo_library(kinopub, trakt))

    with LOG_FILE.open("w") as log, sandbox(seed=seed) as box:
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        original = handler.setStream(log)
        try:
            first, second = _two_runs(box, log, library[0])
            cases = real_data_cases(library[0], first, box.trakt.plays())
            left = seed_other_tools_plays(box.trakt)
            audits = _audits(box, log)
        finally:
            handler.setStream(original)
        print(
            "kinotrakt demo - offline: moto (DynamoDB, Secrets Manager from template.yaml), fake Kinopub, fake Trakt\n",
            file=out,
        )
        print(describe("Run 1 (first sync)", first), file=out)
        print(file=out)
        reopened = ", ".join(f"{r.view.title} part {r.video}" for r in library[0].reopened)
        print(describe(f"Run 2 (again; meanwhile re-opened on Kinopub: {reopened})", second), file=out)
        print(file=out)
        print(cases.text, file=out)
        print(
            f"\nMeanwhile other tools left {len(left.extra)} duplicate plays on the account (a double scrobble, "
            "re-imports, a movie marked watched twice with no date) and one real rewatch.\n",
            file=out,
        )
        found, fixed, clean = audits
        print(describe_audit("Audit (report only)", found), file=out)
        print(file=out)
        print(describe_audit('Audit with fix ["duplicates"]', fixed), file=out)
        print(file=out)
        print(describe_audit("Audit again", clean), file=out)
        plays = box.trakt.plays()
        duplicates = box.trakt.duplicate_keys()
        print(
            f"\nTrakt now holds {len(plays)} plays; duplicate plays: {len(duplicates)}. Logs: {LOG_FILE}",
            file=out,
        )
        added_again = second["added_movies"] + second["added_episodes"]
        kept = len(second.get("kept_plays") or []) == len(library[0].reopened)
        synced = first["status"] == "ok" and second["status"] == "ok" and added_again == 0 and kept
        audited = _audited(left, found, fixed, clean, {play["id"] for play in plays})
        failures = [f"Kinopub's real data: {difference}" for difference in cases.differences]
        if not synced:
            failures.append("the two runs did not end ok with nothing added again and the re-opened part kept")
        if not audited:
            failures.append("the audits did not find and remove exactly the other tools' duplicate plays")
        if duplicates:
            failures.append(f"Trakt holds duplicate plays: {', '.join(duplicates)}")
        if failures:
            print("demo: FAILED", *(f"  - {failure}" for failure in failures), sep="\n", file=out)
            return 1
        print("demo: OK - the second run added nothing, and the audit left the history clean", file=out)
        return 0


@dataclass(frozen=True)
class RealDataCases:
    text: str  # the section as the demo prints it
    differences: tuple[str, ...]  # each case whose outcome is not the one the demo library documents


def real_data_cases(library: DemoLibrary, report: dict[str, Any], plays: list[dict[str, Any]]) -> RealDataCases:
    """What each case of Kinopub's real data became, and why: its plays as the fake Trakt holds them after both
    runs (``plays``), else run 1's unmatched item for it. A case whose outcome differs from the documented one
    (``library.to_add``: one play at its minute; ``library.unmatched``: no play, unmatched with its reason;
    otherwise nothing at all) is listed in ``differences``, and the demo fails on it."""
    unmatched = {
        (item["kinopub_id"], item.get("season"), item.get("episode")): item
        for item in report.get("unmatched_items") or []
        if isinstance(item, dict)
    }
    lines = [
        "Kinopub's real data (docs/kinopub.md#what-the-user-watched): what each case became on Trakt after both "
        "runs, and why"
    ]
    differences = []
    for view in library.real_data_cases():
        label, why = _label(view), view.exercises.removeprefix(REAL_DATA)
        minutes = sorted(play["watched_at"][:16] + "Z" for play in plays if _is_play_of(view, play))
        found = unmatched.get((view.kinopub_id, view.season, view.episode))
        if minutes:
            count = "one play" if len(minutes) == 1 else f"{len(minutes)} plays"
            outcome = f"{count} at {', '.join(minutes)}"
            lines.append(f"  + {label}: {outcome} - {why}")
        elif found is not None:
            outcome = f"unmatched {found['reason']}"
            lines.append(f"  ? {label}: {outcome} - {why}")
            lines.append(f"      {found['detail']}")
        else:
            outcome = "no play on Trakt, not unmatched"
            lines.append(f"  - {label}: {outcome} - {why}")
        documented = _documented(library, view)
        if outcome != documented:
            differences.append(f"{label}: documented {documented}, but {outcome}")
    return RealDataCases("\n".join(lines), tuple(differences))


def _is_play_of(view: DemoView, play: dict[str, Any]) -> bool:
    """``play`` (as ``GET /sync/history`` renders it) is of this view's title: the same movie, or the Trakt
    episode with the view's show and Kinopub numbers (where a sync that trusted the numbers would post it)."""
    if view.kind == "movie":
        ids = play.get("movie", {}).get("ids", {})
        return (view.trakt_id is not None and ids.get("trakt") == view.trakt_id) or (
            view.imdb is not None and ids.get("imdb") == view.imdb
        )
    episode = play.get("episode", {})
    return play.get("show", {}).get("ids", {}).get("imdb") == view.imdb and (
        episode.get("season"),
        episode.get("number"),
    ) == (view.season, view.episode)


def _documented(library: DemoLibrary, view: DemoView) -> str:
    if view in library.to_add:
        return f"one play at {view.minute}"
    if view in library.unmatched:
        return f"unmatched {view.reason}"
    return "no play on Trakt, not unmatched"


def _label(view: DemoView) -> str:
    return view.label if view.kind == "episode" else view.title.split(" / ")[-1]


def _two_runs(box: Sandbox, log: Any, library: DemoLibrary) -> tuple[dict[str, Any], dict[str, Any]]:
    with contextlib.redirect_stdout(log):  # Powertools prints metrics (EMF) to stdout
        first = box.invoke()
        for reopening in library.reopened:
            reopening.apply(box.kinopub, int(time.time()))
        second = box.invoke()
    return first, second


def _audits(box: Sandbox, log: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    with contextlib.redirect_stdout(log):
        found = box.invoke({"action": "audit"})
        fixed = box.invoke({"action": "audit", "fix": ["duplicates"]})
        clean = box.invoke({"action": "audit"})
    return found, fixed, clean


def _audited(
    left: LeftByOtherTools, found: dict[str, Any], fixed: dict[str, Any], clean: dict[str, Any], plays: set[int]
) -> bool:
    """The audit found exactly the other tools' extra plays, removed exactly those, and then found none."""
    extras = len(left.extra)
    return (
        found["status"] == fixed["status"] == clean["status"] == "ok"
        and (found["duplicates_found"], found["duplicates_removed"]) == (extras, 0)
        and (fixed["duplicates_found"], fixed["duplicates_removed"]) == (extras, extras)
        and clean["duplicates_found"] == 0
        and not plays & set(left.extra)
        and set(left.kept) <= plays
    )


def main() -> int:
    return run_demo()


if __name__ == "__main__":
    raise SystemExit(main())
