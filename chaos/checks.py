"""The promises, checked against the fakes' own state (never against what the product says it did).

- no duplicate: none of *our* plays (``action: watch``; other apps' plays are scrobbles) repeats a play that
  was already on Trakt under the same dedupe key (docs/ARCHITECTURE.md#dedupe-keys) — for an
  ``unknown``-time play, any earlier play of the same movie or episode — and no view is sent twice;
- nothing lost: every completed view Trakt knows is on Trakt; and after every run, the watermark is never
  past a view that is not on Trakt yet (once its history is older than watermark - overlap, incremental
  runs would never look at it again);
- nothing wrong: every play we made is the key of a completed view (no in-progress or unwatched media);
- nothing removed wrongly: a play that leaves Trakt during a run (only an audit's ``fix: duplicates`` removes
  any) had an exact duplicate — the same movie or episode in the same minute (``unknown`` dates per item) —
  with a lower history id, which is still there after the run;
- no leak: no token or client secret the fakes ever issued appears in any captured output;
- no long sleep, no knocking again: after a 429 that asks for a longer pause than the run may wait, not one
  more request goes to that service in the run, and the run says so (``rate_limited``, ``resume_after``),
  leaving the watermark where it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chaos.library import UNKNOWN, Library, ViewSpec
from chaos.world import World
from devkit.fakes.base import RecordedRequest

OWN_ACTION = "watch"  # POST /sync/history; other apps' plays are seeded as scrobbles
MAX_RETRY_WAIT = 30.0  # MAX_RETRY_WAIT_SECONDS' default (the schedules keep it): longer pauses are not waited out


@dataclass(frozen=True)
class PlayRecord:
    id: int
    key: str
    ours: bool
    item: tuple[str, int]


def trakt_plays(world: World) -> list[PlayRecord]:
    """Every play on the fake Trakt, oldest first, with its dedupe key."""
    rows = sorted(world.trakt.plays(), key=lambda row: int(row["id"]))
    keys = world.trakt.play_keys()  # ordered by play id as well
    records = []
    for row, key in zip(rows, keys, strict=True):
        kind = str(row["type"])
        trakt_id = int(row[kind]["ids"]["trakt"])
        records.append(PlayRecord(int(row["id"]), key, row["action"] == OWN_ACTION, (kind, trakt_id)))
    return records


def present(world: World, library: Library, view: ViewSpec, plays: Iterable[PlayRecord]) -> bool:
    keys = library.acceptable_keys(world.kinopub, view)
    plays = list(plays)
    if any(play.key in keys for play in plays):
        return True
    # A multi-part film with a play between its parts' times: the sync takes that play for the viewing's.
    span = library.part_span(view)
    prefix = f"{view.key_base}:"
    minutes = [play.key.removeprefix(prefix) for play in plays if play.key.startswith(prefix)]
    if span is not None and any(span[0] <= minute <= span[1] for minute in minutes if minute != UNKNOWN):
        return True
    # A view of unknown time is skipped when Trakt has any play of the item (docs/ARCHITECTURE.md#dedupe-keys).
    unknown = f"{view.key_base}:{UNKNOWN}"
    return unknown in keys and any(play.item == view.trakt_item for play in plays)


def expected_views(world: World, library: Library) -> list[ViewSpec]:
    """Completed views that must end up on Trakt: Trakt knows them and their item is examined at all."""
    return [
        view
        for view in library.views
        if view.on_trakt
        and library.completed(world.kinopub, view)
        and library.discovery(world.kinopub, view) is not None
    ]


def duplicate_plays(world: World, library: Library, plays: list[PlayRecord]) -> list[PlayRecord]:
    flagged: dict[int, PlayRecord] = {}
    for play in plays:
        if not play.ours:
            continue
        if play.key.endswith(f":{UNKNOWN}"):
            earlier = any(other.id < play.id and other.item == play.item for other in plays)
        else:
            earlier = any(other.id < play.id and other.key == play.key for other in plays)
        if earlier:
            flagged[play.id] = play
    for view in library.views:
        keys = library.acceptable_keys(world.kinopub, view)
        ours = [play for play in plays if play.ours and play.key in keys]
        for extra in ours[1:]:  # the same view sent under two of its acceptable keys
            flagged[extra.id] = extra
    return sorted(flagged.values(), key=lambda play: play.id)


def wrong_plays(world: World, library: Library, plays: list[PlayRecord]) -> list[PlayRecord]:
    """Our plays that are no completed view's key: something in progress, unwatched, or at a wrong time."""
    allowed: set[str] = set()
    for view in library.views:
        if library.completed(world.kinopub, view):
            allowed |= library.acceptable_keys(world.kinopub, view)
    return [play for play in plays if play.ours and play.key not in allowed]


def behind_watermark(
    world: World,
    library: Library,
    plays: list[PlayRecord],
    watermark: datetime | None,
    overlap: timedelta,
    given_up: set[int],
) -> list[ViewSpec]:
    """Completed views that incremental runs will no longer examine, yet are not on Trakt: lost.

    Items the sync gave up on after repeated Kinopub errors (recorded as unmatched ``kinopub_error``) are
    excluded: they stop holding the watermark back (docs/ARCHITECTURE.md#the-scan-and-the-watermark), and the
    next full rescan picks them up."""
    if watermark is None:
        return []
    line = (watermark - overlap).timestamp()
    lost = []
    for view in expected_views(world, library):
        discovered = library.discovery(world.kinopub, view)
        if view.kp_item in given_up or discovered is None or discovered >= line:
            continue
        if not present(world, library, view, plays):
            lost.append(view)
    return lost


def missing(world: World, library: Library, plays: list[PlayRecord]) -> list[ViewSpec]:
    return [view for view in expected_views(world, library) if not present(world, library, view, plays)]


def marked_quietly(world: World, library: Library, plays: list[PlayRecord]) -> list[ViewSpec]:
    """Episodes marked watched by hand with nothing played, on a series with episodes still to watch: the daily
    rescan reads such a series, so after it they must be on Trakt (when Trakt has them)."""
    return [
        view
        for view in library.views
        if view.label in library.marked_quietly
        and view.on_trakt
        and library.completed(world.kinopub, view)
        and not present(world, library, view, plays)
    ]


def removed_wrongly(before: list[PlayRecord], after: list[PlayRecord]) -> list[PlayRecord]:
    """The plays gone since ``before`` that were not an exact duplicate of an older play still on Trakt."""
    still = {play.id: play for play in after}
    wrong = []
    for play in before:
        if play.id in still:
            continue
        kept = [other for other in after if other.key == play.key and other.id < play.id]
        if not kept:
            wrong.append(play)
    return wrong


def issued_secrets(world: World) -> set[str]:
    """Every token either fake ever issued (they keep them privately) and both client secrets."""
    values = {world.trakt.client_secret, world.kinopub.client_secret}
    for fake in (world.trakt, world.kinopub):
        values |= set(fake._grants_by_access) | set(fake._grants_by_refresh)
    return {value for value in values if value}


def leaks(texts: Iterable[str], secrets: set[str]) -> list[str]:
    """The captured texts that contain a secret (each cut short, without the secret, for the report)."""
    found = []
    for text in texts:
        hits = [secret for secret in secrets if secret in text]
        if hits:
            redacted = text
            for secret in hits:
                redacted = redacted.replace(secret, "<SECRET>")
            found.append(redacted[:300])
    return found


def _pause(request: RecordedRequest) -> float | None:
    """The pause a 429 answer asked for, in seconds (None: not a 429, or no readable Retry-After)."""
    if request.status != 429:
        return None
    try:
        return float(request.answered.get("Retry-After", ""))
    except ValueError:
        return None


def rate_limit_problems(
    report: Mapping[str, Any] | None,
    run_requests: Mapping[str, Sequence[RecordedRequest]],
    watermark_before: datetime | None,
    watermark_after: datetime | None,
) -> list[str]:
    """What one run did wrong around a rate limit it could not wait out (``run_requests``: what each fake,
    ``"kinopub"`` or ``"trakt"``, received during the run, in order)."""
    problems: list[str] = []
    error = (report or {}).get("error") or {}
    limited = error.get("code") == "rate_limited"
    named = {name.lower() for name in re.findall(r"(Kinopub|Trakt) rate limit:", str(error.get("message", "")))}
    for service, requests in run_requests.items():
        long = [
            (i, pause) for i, r in enumerate(requests) if (pause := _pause(r)) is not None and pause > MAX_RETRY_WAIT
        ]
        if long:
            first, pause = long[0]
            after = len(requests) - 1 - first
            if after:
                problems.append(f"{service}: {after} more request(s) after a 429 asking for a {pause:g} s pause")
            if report is not None and report.get("status") == "partial" and service not in named:
                problems.append(f"{service} asked for a {pause:g} s pause, the run did not report it rate_limited")
        if service in named and (not requests or requests[-1].status != 429):
            problems.append(f"the run reported {service} rate_limited, but its last request there was not a 429")
    if limited and report is not None:
        if not report.get("resume_after"):
            problems.append("a rate_limited run without resume_after")
        if not named:
            problems.append(f"a rate_limited run whose message names no service: {error.get('message')!r}")
        if watermark_after != watermark_before:
            problems.append(f"a rate_limited run moved the watermark from {watermark_before} to {watermark_after}")
    return problems
