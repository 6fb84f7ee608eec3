"""Removing extra plays: ``POST /sync/history/remove {"ids": [...]}``, at most 100 ids a request, paced as a
write (the transport keeps Trakt's 1 write per second), only ids of :class:`~kinotrakt.audit.history.DuplicateGroup`
extras — never a group's kept play.

A removal whose answer was lost may or may not have been applied. Before anything else is removed, the minutes of
that request's groups are read again, and each group is judged afresh on what is there now: the lowest id still
there is kept, and only its extra plays that are still there are removed (``history.regroup``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from kinotrakt.audit.history import TO_MINUTE_END, DuplicateGroup, minute_of, play_of, regroup
from kinotrakt.clock import Deadline
from kinotrakt.errors import OutcomeUnknown, OutOfTime
from kinotrakt.observability import logger
from kinotrakt.trakt.models import HistoryItem, HistoryKind, RemoveResult

# Trakt documents no maximum; the sync's own writes use 100 per request, and so does the audit.
REMOVE_BATCH = 100
# How often one request's groups are read again after lost answers before the run stops (partial).
MAX_RECHECKS = 2
# Groups within this time of the first of them are read again with one history read: a window's groups (a page of
# plays, days or years of a history) in a few reads, groups years apart one read each, and never a history read
# of more than a few pages for anyone's viewing habits.
SPAN = timedelta(days=90)


class HistoryEditor(Protocol):
    def remove_from_history(self, history_ids: Sequence[int]) -> RemoveResult: ...

    def history(self, kind: HistoryKind, start_at: datetime, end_at: datetime) -> list[HistoryItem]: ...


@dataclass
class Removals:
    """What was removed so far, by group identity (filled as it goes, so a stop keeps it)."""

    by_identity: dict[str, list[int]] = field(default_factory=dict)

    def add(self, identity: str, ids: Sequence[int]) -> None:
        if ids:
            self.by_identity.setdefault(identity, []).extend(ids)

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.by_identity.values())


def remove_extras(trakt: HistoryEditor, groups: Sequence[DuplicateGroup], deadline: Deadline, done: Removals) -> None:
    """Remove every extra play of ``groups``, recording each in ``done``. Raises what stops it (the deadline, a
    rate limit, an answer still unknown after rechecks); ``done`` then holds what was removed before."""
    pending = [group for group in groups if group.extra]
    rechecks = 0
    while pending:
        batch, pending = _take(pending)
        if deadline.expired():
            raise OutOfTime("the Lambda deadline is near; the remaining duplicate plays go in the next audit")
        ids = [history_id for group in batch for history_id in group.extra]
        try:
            answer = trakt.remove_from_history(ids)
        except OutcomeUnknown:
            if rechecks == MAX_RECHECKS:
                raise
            rechecks += 1
            logger.warning(
                "history removal outcome unknown; re-reading before removing anything else", extra={"plays": len(ids)}
            )
            again, gone = reread(trakt, batch)
            for group in batch:  # gone since the request that may have been applied: removed by it
                done.add(group.identity, [i for i in group.extra if i in gone])
            pending = again + pending
            continue
        rechecks = 0
        missing = set(answer.not_found.ids)
        for group in batch:
            done.add(group.identity, [i for i in group.extra if i not in missing])
        removed = len(ids) - len(missing & set(ids))
        logger.info(
            "duplicate plays removed",
            extra={
                "requested": len(ids),
                "removed": removed,
                "deleted": answer.deleted.total,
                "not_found": len(missing),
            },
        )
        if answer.deleted.total != removed:
            logger.warning(
                "Trakt's count of removed plays differs from the ids it did not find",
                extra={"deleted": answer.deleted.total, "removed": removed},
            )


def _take(groups: list[DuplicateGroup]) -> tuple[list[DuplicateGroup], list[DuplicateGroup]]:
    """The next request's groups (at most REMOVE_BATCH extra ids; a larger group is split) and the rest."""
    batch: list[DuplicateGroup] = []
    room = REMOVE_BATCH
    rest = list(groups)
    while rest and room > 0:
        group = rest.pop(0)
        if len(group.extra) > room:
            head = _with_extra(group, group.extra[:room])
            rest.insert(0, _with_extra(group, group.extra[room:]))
            group = head
        batch.append(group)
        room -= len(group.extra)
    return batch, rest


def _with_extra(group: DuplicateGroup, extra: tuple[int, ...]) -> DuplicateGroup:
    return DuplicateGroup(group.identity, group.kind, group.label, group.watched_at, group.kept, extra)


def reread(trakt: HistoryEditor, groups: Sequence[DuplicateGroup]) -> tuple[list[DuplicateGroup], set[int]]:
    """Read the groups' minutes again and judge each group on what is there now (``history.regroup``). Returns the
    groups with something still extra, and the ids of extra plays that are gone. Groups within SPAN of each other
    are read together (a lost answer's groups come from one window; a stored audit's may be years apart)."""
    again: list[DuplicateGroup] = []
    gone: set[int] = set()
    for span in spans(groups):
        kind: HistoryKind = "movies" if span[0].kind == "movie" else "episodes"
        start, end = minute_of(span[0].watched_at), minute_of(span[-1].watched_at) + TO_MINUTE_END
        present = [play_of(item) for item in trakt.history(kind, start, end)]
        there = {play.history_id for play in present}
        for group in span:
            gone.update(i for i in group.extra if i not in there)
            fresh = regroup(group, present)
            if fresh is not None:
                again.append(fresh)
    return again, gone


def spans(groups: Sequence[DuplicateGroup]) -> list[list[DuplicateGroup]]:
    """The groups of each kind in time order, cut into runs that one history read covers (SPAN)."""
    cut: list[list[DuplicateGroup]] = []
    for kind in ("movie", "episode"):
        for group in sorted((g for g in groups if g.kind == kind), key=lambda g: g.watched_at):
            if cut and cut[-1][0].kind == kind and group.watched_at - cut[-1][0].watched_at <= SPAN:
                cut[-1].append(group)
            else:
                cut.append([group])
    return cut
