"""What the CLI shows: the rich consoles, the tables, the run and audit reports, and the live displays (the
device-code wait of ``link``, the progress of a long ``sync`` or ``audit``).

Live displays and colours appear only on a terminal: piped or captured output (tests, ``| tee``, cron) gets
plain lines, and ``--debug`` turns the live displays off so log lines stay readable.

Titles, details, reasons and error messages come from Kinopub, Trakt or stored state, so none of it may drive
the owner's terminal: everything :class:`Output` prints passes through :class:`_ControlFree`, which removes
C0 and C1 control characters from the text (an ``ESC``, a one-byte CSI, a ``BEL``: the sequences that move
the cursor, clear the screen or set the clipboard, OSC 52) while keeping rich's own styles and live-display
controls; and nothing of it is read as rich markup (``[bold]`` in a title prints as it is).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.traceback import Traceback

from kinotrakt.sync.report import LIST_LIMIT, SyncReport, UnmatchedNote, watermark_text

if TYPE_CHECKING:
    from datetime import datetime

    from kinotrakt.audit.report import AuditReport
    from kinotrakt.clock import Clock
    from kinotrakt.http import CallCounter
    from kinotrakt.storage.ports import NumberingPins, Pin, UnmatchedItem

# How the CLI names a command it suggests (Cli.command: the program as started, the user's options, the words),
# and how it repeats the `kinotrakt ...` commands a message names (Cli.with_commands).
Commands = Callable[[str], str]

STATUS_STYLES = {"ok": "green", "skipped": "cyan", "partial": "yellow", "failed": "bold red"}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout or stderr. No automatic highlighting, emoji codes or markup: titles come from Kinopub
    and are shown as they are."""
    return Console(stderr=stderr, highlight=False, emoji=False, markup=False)


# Every C0 control but the line feed, DEL, and every C1 control (U+0080-U+009F, among them the one-character
# CSI U+009B and OSC U+009D that some terminals obey like ESC [ and ESC ]).
_CONTROLS: dict[int, None] = dict.fromkeys([*range(0x0A), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)])


def without_controls(text: str) -> str:
    return text.translate(_CONTROLS)


class _ControlFree:
    """Renders ``renderable`` with the control characters of its text removed. Rich's own styles are applied
    after this (they are not in the text), and its live-display controls are segments of their own, kept."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.renderable, options):
            if segment.control:
                yield segment
            else:
                yield Segment(without_controls(segment.text), segment.style)


def plain(value: object) -> Text:
    """A table cell that is shown as it is, never read as markup."""
    return value if isinstance(value, Text) else Text(str(value))


class Output:
    """Where a command writes: ``out`` for results, ``err`` for warnings and errors."""

    def __init__(self, out: Console, err: Console, *, debug: bool) -> None:
        self.out = out
        self.err = err
        # Live displays redraw lines in place: only on a terminal, and not among --debug's log lines.
        self.live = out.is_terminal and not debug

    def say(self, text: str | Text = "") -> None:
        """One line, never wrapped by us (a terminal wraps it; a pipe gets it whole), never read as markup."""
        self.out.print(_ControlFree(plain(text)), soft_wrap=True)

    def show(self, *renderables: RenderableType) -> None:
        """Tables fit the terminal's width; lines of text are printed as :meth:`say` prints them."""
        for renderable in renderables:
            if isinstance(renderable, Text):
                self.say(renderable)
            else:
                self.out.print(_ControlFree(renderable))

    def warn(self, text: str) -> None:
        self.err.print(_ControlFree(Text.assemble(("warning:", "yellow"), f" {text}")), soft_wrap=True)

    def error(self, text: str) -> None:
        self.err.print(_ControlFree(Text.assemble(("error:", "bold red"), f" {text}")), soft_wrap=True)

    def traceback(self) -> None:
        """The current exception's stack, for ``--debug``; never the local variables, which may hold tokens."""
        self.err.print(_ControlFree(Traceback(show_locals=False)))


def status_text(status: str, suffix: str = "") -> Text:
    return Text(f"{status.upper()}{suffix}", style=STATUS_STYLES.get(status, ""))


def when(moment: datetime, now: datetime) -> str:
    """``2026-11-01 11:00Z (5 days ago)``: the moment, and how far from now in the largest sensible unit."""
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 2 * 86400:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    relative = f"in {amount}" if delta.total_seconds() >= 0 else f"{amount} ago"
    return f"{moment:%Y-%m-%d %H:%M}Z ({relative})"


# --- the run report (sync) -----------------------------------------------------------------------------------


def report_view(report: SyncReport, command: Commands, with_commands: Commands) -> list[RenderableType]:
    """The report of the run that just ended: the counts as a table, then what was added (a dry run: would be
    added), what stayed unmatched, and the error or why the run was skipped."""
    calls = report.http_calls
    dry = report.dry_run
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", status_text(report.status, " (dry run: nothing sent to Trakt)" if dry else ""))
    for name, value in (
        ("completed views on Kinopub", report.candidates),
        ("would add movies" if dry else "added movies", report.added_movies),
        ("would add episodes" if dry else "added episodes", report.added_episodes),
        ("skipped, already on Trakt", report.skipped_duplicates),
        ("not found on Trakt", report.not_found),
        ("would be unmatched — not stored" if dry else "unmatched", report.unmatched),
        ("watermark (last success)", watermark_text(report.watermark) or "-"),
        ("HTTP calls", f"Kinopub {calls.kinopub}, Trakt {calls.trakt}"),
    ):
        table.add_row(name, Text(str(value)))
    parts: list[RenderableType] = [table]
    if report.added:
        parts.append(Text("would add:" if dry else "added:", style="bold"))
        parts += _listed([Text(f"  + {entry}", style="green") for entry in report.added])
    if report.unmatched_items:
        if dry:
            heading = f"would be unmatched — not stored (a real run keeps them for {command('unmatched')}):"
        else:
            heading = f"unmatched ({command('unmatched')}; fix with {command('map')}):"
        parts.append(Text(heading, style="bold"))
        parts += _listed([Text(f"  ? {_unmatched_label(item)}: {item.reason}") for item in report.unmatched_items])
    if report.status == "skipped":
        parts.append(Text(f"skipped: {_lease_held(report)}"))
    if report.error is not None:
        parts.append(Text.assemble(("error:", "bold red"), f" {with_commands(report.error.message)}"))
    return parts


def _lease_held(report: SyncReport) -> str:
    """Why a run was skipped: since when another run holds the lease, and when it is free at the latest."""
    now = report.started_at
    since = f" since {_moment(report.lease_held_since, now)}" if report.lease_held_since else ""
    until = report.lease_held_until
    free = f"; it is free by {_moment(until, now)} at the latest" if until else ""
    return f"another run holds the lease{since}{free}. Nothing was done."


def _moment(moment: datetime, now: datetime) -> str:
    """``2026-11-01 12:00:05Z (3 min ago)``."""
    seconds = round((moment - now).total_seconds())
    amount = f"{abs(seconds) // 60} min" if abs(seconds) >= 60 else f"{abs(seconds)} s"
    relative = f"in {amount}" if seconds > 0 else f"{amount} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({relative})"


def _listed(lines: Sequence[Text]) -> list[Text]:
    """At most LIST_LIMIT lines (the report's own limit for a log line), then how many more there are."""
    if len(lines) <= LIST_LIMIT:
        return list(lines)
    return [*lines[:LIST_LIMIT], Text(f"  ... and {len(lines) - LIST_LIMIT} more")]


def _unmatched_label(item: UnmatchedNote) -> str:
    title = item.title or f"Kinopub item {item.kinopub_id}"
    if item.season is not None and item.episode is not None:
        return f"{title} S{item.season:02d}E{item.episode:02d}"
    return title


# --- the audit report ----------------------------------------------------------------------------------------

# What is left to fix (the report's found and fixed counts), what fixing it does, and the audit that fixes it.
FIX_HINTS = (
    ("duplicates_found", "duplicates_removed", "remove the extra plays", "audit --fix duplicates"),
    ("missing_never_sent", None, "send the views never sent", "audit --fix missing"),
    ("missing_removed_on_trakt", None, "send again the views removed on Trakt", "audit --fix removed"),
)


def audit_view(report: AuditReport, command: Commands, with_commands: Commands) -> list[RenderableType]:
    """The audit's summary table (what it found and fixed, across its runs), then each finding, and what to run
    to fix what is left (as :meth:`Cli.command` names it)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    notes = []
    if report.dry_run:
        notes.append("dry run: nothing was written")
    if report.runs > 1:
        notes.append(f"{report.runs} runs")
    table.add_row("status", status_text(report.status, f" ({', '.join(notes)})" if notes else ""))
    missing = f"{report.missing_on_trakt}"
    if report.missing_on_trakt:
        missing += f" ({report.missing_never_sent} never sent, {report.missing_removed_on_trakt} removed on Trakt)"
    if report.missing_resent:
        missing += f", {report.missing_resent} sent"
    checked = f"{report.plays_read} plays on Trakt, {report.views_checked} finished views on Kinopub"
    if report.unmatched:
        checked += f" ({report.unmatched} unmatched, not checked)"
    calls = report.http_calls
    for name, value in (
        ("duplicate plays", f"{report.duplicates_found} found, {report.duplicates_removed} removed"),
        ("missing on Trakt", missing),
        ("unexpected plays", str(report.unexpected_plays)),
        ("checked", checked),
        ("HTTP calls", f"Kinopub {calls.kinopub}, Trakt {calls.trakt}"),
    ):
        table.add_row(name, Text(value))
    parts: list[RenderableType] = [table]
    if report.duplicates:
        parts.append(Text("duplicate plays (the same item in the same minute; the oldest play stays):", style="bold"))
        parts += _listed(
            [
                Text(
                    f"  = {d.title} @ {d.watched_at}: {len(d.extra) + 1} plays, "
                    + (f"{len(d.removed)} removed" if d.removed else f"{len(d.extra)} extra")
                )
                for d in report.duplicates
            ]
        )
    if report.missing:
        parts.append(Text("missing on Trakt:", style="bold"))
        parts += _listed(
            [
                Text(
                    f"  - {m.title} @ {m.watched_at}: {m.reason.replace('_', ' ')}"
                    + (f" ({m.fixed})" if m.fixed else "")
                )
                for m in report.missing
            ]
        )
    if report.unexpected:
        parts.append(
            Text("unexpected plays (never removed by kinotrakt; remove them on trakt.tv if wrong):", style="bold")
        )
        parts += _listed([Text(f"  ! {u.title} @ {u.watched_at}: {u.reason}") for u in report.unexpected])
    if report.unreadable_items:
        parts.append(Text("Kinopub items that could not be read (their views were not checked):", style="bold"))
        parts += _listed([Text(f"  ? {i.title or i.kinopub_id}: {i.reason}") for i in report.unreadable_items])
    if report.status == "ok" and not report.dry_run:
        parts += [
            Text(f"To {what}: {command(words)}")
            for found, fixed, what, words in FIX_HINTS
            if _left(report, found, fixed)
        ]
    if report.error is not None:
        parts.append(Text.assemble(("error:", "bold red"), f" {with_commands(report.error.message)}"))
    return parts


def _left(report: AuditReport, found: str, fixed: str | None) -> bool:
    """Something of this kind is left to fix (a view sent again no longer counts)."""
    if fixed is not None:
        return bool(getattr(report, found) - getattr(report, fixed))
    reason = found.removeprefix("missing_")
    return any(m.reason == reason and m.fixed is None for m in report.missing)


# --- tables (status, unmatched) ------------------------------------------------------------------------------


def _table(*headers: str) -> Table:
    """Columns two spaces apart, bold headers, no box: plain columns in a pipe, as ``sort`` and ``awk`` like."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header in headers:
        table.add_column(header, no_wrap=True)
    return table


def runs_view(reports: Sequence[SyncReport | AuditReport | None], with_commands: Commands) -> list[RenderableType]:
    """The stored reports of the last runs, newest first (``None``: a stored report this version cannot read):
    a table of the counts, then a line for each run with something to say (a dry run, an error with its code, an
    audit's findings)."""
    from kinotrakt.audit.report import AuditReport

    table = _table("STARTED", "STATUS", "VIEWS", "MOVIES", "EPISODES", "SKIPPED", "UNMATCHED")
    for column in table.columns[2:]:
        column.justify = "right"
    notes: list[RenderableType] = []
    for report in reports:
        if report is None:
            table.add_row("?", Text("?"), "", "", "", "", "")
            notes.append(Text("  ?: a stored report this version cannot read"))
            continue
        if isinstance(report, AuditReport):
            started = f"{report.started_at:%Y-%m-%d %H:%M}Z"
            table.add_row(started, Text(report.status, style=STATUS_STYLES.get(report.status, "")), "audit", *[""] * 4)
            notes.append(Text(f"  {started}: audit - {_audit_summary(report, with_commands)}"))
            continue
        started = f"{report.started_at:%Y-%m-%d %H:%M}Z"
        counts = (
            report.candidates,
            report.added_movies,
            report.added_episodes,
            report.skipped_duplicates,
            report.unmatched,
        )
        table.add_row(
            started, Text(report.status, style=STATUS_STYLES.get(report.status, "")), *(str(n) for n in counts)
        )
        said = ["dry run"] if report.dry_run else []
        if report.error is not None and (report.error.code or report.error.message):
            message = with_commands(report.error.message) if report.error.message else ""
            said.append(": ".join(part for part in (report.error.code, message) if part))
        if said:
            notes.append(Text(f"  {started}: {'; '.join(said)}"))
    return [table, *notes]


def _audit_summary(report: AuditReport, with_commands: Commands) -> str:
    said = [
        f"{report.duplicates_found} duplicate plays ({report.duplicates_removed} removed)",
        f"{report.missing_on_trakt} missing on Trakt ({report.missing_resent} sent)",
        f"{report.unexpected_plays} unexpected plays",
    ]
    if report.error is not None and report.error.message:
        said.append(with_commands(report.error.message))
    return "; ".join(said)


def unmatched_table(
    items: Sequence[UnmatchedItem],
    pins: Mapping[int, Pin] | None = None,
    numbering: NumberingPins | None = None,
    *,
    with_commands: Commands,
) -> Table:
    """The unmatched items; one the user has pinned since says so instead of its old detail. A stored detail
    names commands as `kinotrakt map ...` (the sync does not know how the CLI was started): ``with_commands``
    repeats them as this CLI would print them."""
    from kinotrakt.storage.ports import NumberingPins

    table = _table("KINOPUB ID", "TITLE", "REASON", "DETAIL")
    table.columns[1].max_width = 48
    table.columns[1].no_wrap = table.columns[3].no_wrap = False  # long titles and details wrap in their cells
    for item in items:
        where = f" S{item.season:02d}E{item.episode:02d}" if item.season is not None and item.episode else ""
        pinned = _pinned(item, pins or {}, numbering or NumberingPins())
        detail = f"{pinned}; the next sync uses it" if pinned else with_commands(item.detail)
        table.add_row(str(item.kinopub_id), Text(f"{item.title}{where}"), plain(item.reason), Text(detail))
    return table


def _pinned(item: UnmatchedItem, pins: Mapping[int, Pin], numbering: NumberingPins) -> str | None:
    if item.season is not None and item.episode is not None:
        episode = numbering.episode(item.kinopub_id, item.season, item.episode)
        if episode is not None:
            return "pinned to " + " + ".join(f"S{s:02d}E{n:02d}" for s, n in episode.trakt_episodes)
        season = numbering.season(item.kinopub_id, item.season, item.episode)
        if season is not None:
            return f"pinned to S{season.trakt_season:02d}E{item.episode + season.episode_offset:02d}"
    pin = pins.get(item.kinopub_id)
    return None if pin is None else f"pinned to Trakt {pin.trakt_type} {pin.trakt_id}"


# --- live displays -------------------------------------------------------------------------------------------


def _minutes_seconds(seconds: float) -> str:
    left = max(0, math.ceil(seconds))
    return f"{left // 60}:{left % 60:02d}"


class _TimeLeftColumn(ProgressColumn):
    """The seconds left before the device code expires: the task's total is the code's lifetime."""

    def render(self, task: Task) -> Text:
        left = (task.total or 0.0) - (task.elapsed or 0.0)
        return Text(f"{_minutes_seconds(left)} left", style="cyan")


@contextmanager
def device_code_wait(
    output: Output, service: str, url: str, user_code: str, expires_in: int, clock: Clock
) -> Iterator[Callable[[float], None]]:
    """Show the code and where to enter it, then the time left while the OAuth client polls; yields the
    ``on_tick`` callback the client calls after each poll with the seconds left.

    On a terminal the wait is a live line (spinner, bar, time left) that disappears once the poll ends; elsewhere
    a line a minute says the command is still waiting."""
    output.say(Text.assemble(f"Link {service}: open ", (url, f"link {url}"), " and enter the code"))
    output.say()
    output.say(Text.assemble("    ", (user_code, "bold")))
    output.say()
    output.say(f"The code is valid for {expires_in // 60} min {expires_in % 60:02d} s. Ctrl+C cancels.")
    if not output.live:
        yield _a_line_a_minute(output)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("waiting for approval..."),
        BarColumn(),
        _TimeLeftColumn(),
        console=output.out,
        transient=True,
        get_time=clock.monotonic,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = progress.add_task("link", total=expires_in)
    with progress:
        yield lambda seconds_left: progress.update(task, completed=expires_in - seconds_left)


def _a_line_a_minute(output: Output) -> Callable[[float], None]:
    shown: set[int] = set()

    def tick(seconds_left: float) -> None:
        minute = max(0, math.ceil(seconds_left)) // 60
        if minute not in shown:
            shown.add(minute)
            output.say(f"  waiting for approval... {_minutes_seconds(seconds_left)} left")

    return tick


class _HttpCallsColumn(ProgressColumn):
    """The requests the run has sent so far, read from its call counter at every refresh."""

    def __init__(self, counter: CallCounter) -> None:
        super().__init__()
        self._counter = counter

    def render(self, task: Task) -> Text:
        kinopub, trakt = self._counter.total("kinopub"), self._counter.total("trakt")
        return Text(f"HTTP calls: Kinopub {kinopub}, Trakt {trakt}", style="cyan")


@contextmanager
def sync_progress(
    output: Output, counter: CallCounter, *, after_seconds: float, doing: str = "syncing"
) -> Iterator[Callable[[str], None]]:
    """A transient progress line (spinner, what it is ``doing``, elapsed time, HTTP calls so far) for a sync or an
    audit still running ``after_seconds`` after it started; a quicker one shows nothing but its report. Yields a
    callback that says what it is doing now."""
    if not output.live:
        yield lambda _: None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        _HttpCallsColumn(counter),
        console=output.out,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = progress.add_task(doing, total=None)  # started now: the elapsed time counts from the run's start
    timer = threading.Timer(after_seconds, progress.start)
    timer.daemon = True
    timer.start()
    try:
        yield lambda step: progress.update(task, description=f"{doing}: {step}")
    finally:
        timer.cancel()
        timer.join()  # a display being started right now is up before it is stopped
        progress.stop()
