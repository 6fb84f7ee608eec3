"""What an audit keeps between its runs, and what it has found so far.

An audit of a large library or history may not fit in one run (the Lambda's deadline, Trakt's GET budget), so
everything it needs to go on is one JSON document in the audit progress store: the Kinopub views it has still to
look for on Trakt (with what it takes to send one again), where the history read stands per kind, and the
findings. Views already judged are dropped from it, so it shrinks as the audit goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from kinotrakt.audit.history import PlayKind
from kinotrakt.clock import iso_z, parse_iso
from kinotrakt.sync.keys import UNKNOWN, parse_key
from kinotrakt.sync.mapping import MappedView
from kinotrakt.sync.model import CompletedView, ViewKind
from kinotrakt.sync.report import ItemNote
from kinotrakt.trakt.models import HistoryKind

# Bumped when the document's form changes: a stored document of another version is dropped (a new audit starts).
PROGRESS_VERSION = 1
# An unfinished audit is continued by the next audit within this time (a monthly schedule's next run included);
# an older one is stale and a new audit starts.
PROGRESS_TTL = timedelta(days=35)

MissingReason = Literal["never_sent", "removed_on_trakt"]
# After --fix missing / --fix removed: sent again, found on Trakt after all (another app, or the sync, put it
# there since), Trakt answered not_found, or (a view of unknown time) Trakt refused to list the item's plays, so
# whether one is there could not be told and nothing was sent.
FixOutcome = Literal["resent", "on_trakt", "trakt_not_found", "trakt_refused"]


@dataclass(frozen=True)
class ViewRecord:
    """A completed, matched Kinopub view: enough to name it, to find its play, and to send it again through the
    sync's own dedupe and push (its dedupe key carries the Trakt ids the play needs)."""

    kind: ViewKind
    kinopub_id: int
    title: str
    year: int | None
    season: int | None
    episode: int | None
    pin_part: int
    watched_at: datetime | None
    key: str
    # A film of several parts: the earliest of its parts' times (a play from there to ``watched_at`` may be this
    # viewing's: ``sync/dedupe.py:played_between_parts``). None for anything else.
    earliest_part: datetime | None = None

    @classmethod
    def of(cls, mapped: MappedView) -> ViewRecord:
        view = mapped.view
        return cls(
            view.kind,
            view.kinopub_id,
            view.title,
            view.year,
            view.season,
            view.episode,
            view.pin_part,
            view.watched_at,
            mapped.key,
            view.earliest_part,
        )

    def view(self) -> CompletedView:
        parts = parse_key(self.key)
        return CompletedView(
            kind=self.kind,
            kinopub_id=self.kinopub_id,
            item_type="",
            title=self.title,
            original_title="",
            year=self.year,
            imdb=parts.imdb,
            watched_at=self.watched_at,
            watched_at_source="ledger",  # the value is settled: it is what the audit looked for
            part_updates=() if self.earliest_part is None else (self.earliest_part, self.watched_at),
            season=self.season,
            episode=self.episode,
            pin_part=self.pin_part,
        )

    def mapped(self) -> MappedView:
        parts = parse_key(self.key)
        if parts.kind == "episode":
            return MappedView(self.view(), self.key, episode_trakt_id=parts.trakt_id)
        return MappedView(self.view(), self.key, movie_imdb=parts.imdb, movie_trakt_id=parts.trakt_id)

    @property
    def label(self) -> str:
        return self.view().label

    @property
    def view_ref(self) -> str:
        return self.view().view_ref

    @property
    def minute(self) -> str:
        return parse_key(self.key).minute


@dataclass(frozen=True)
class Suspect:
    """A play the ledger says kinotrakt sent (or found on Trakt) for a view Kinopub no longer shows finished."""

    key: str
    view_ref: str
    reason: str

    @property
    def minute(self) -> str:
        return parse_key(self.key).minute


@dataclass(frozen=True)
class DuplicateNote:
    """One viewing with extra plays: which play is kept, which are extra, which of those were removed."""

    title: str
    kind: PlayKind
    identity: str
    watched_at: datetime  # as Trakt answered (1970-01-01 for an unknown date)
    minute: str
    kept: int
    extra: tuple[int, ...]
    removed: tuple[int, ...] = ()
    gone: tuple[int, ...] = ()  # found gone when read again before removing (removed by someone else)

    @property
    def left(self) -> tuple[int, ...]:
        """The extra plays still to remove."""
        return tuple(i for i in self.extra if i not in self.removed and i not in self.gone)


@dataclass(frozen=True)
class MissingNote:
    view: ViewRecord
    reason: MissingReason
    outcome: FixOutcome | None = None


@dataclass(frozen=True)
class UnexpectedNote:
    title: str  # as Trakt names the play
    minute: str
    view_ref: str
    reason: str


@dataclass
class KindProgress:
    """Where the history read of one kind stands."""

    end_at: datetime | None = None  # where the next window ends (None: the first window, no bound)
    done: bool = False


@dataclass
class AuditProgress:
    audit_id: str
    started_at: datetime
    runs: int = 0
    plays_read: int = 0
    # Kinopub: the items read so far, those that could not be read, and the views not mapped (not audited).
    kinopub_done: bool = False
    examined: set[int] = field(default_factory=set)
    unreadable: list[ItemNote] = field(default_factory=list)
    unmatched: int = 0
    unmatched_refs: set[str] = field(default_factory=set)  # completed views that could not be mapped
    views_checked: int = 0
    views: list[ViewRecord] = field(default_factory=list)  # not judged yet
    suspects: list[Suspect] | None = None  # set once every Kinopub item is read
    history: dict[HistoryKind, KindProgress] = field(
        default_factory=lambda: {"movies": KindProgress(), "episodes": KindProgress()}
    )
    # Movies and episodes with any play (only those of unknown-time views and suspects), with a play's title.
    items_with_plays: dict[str, str] = field(default_factory=dict)
    duplicates: list[DuplicateNote] = field(default_factory=list)
    missing: list[MissingNote] = field(default_factory=list)
    unexpected: list[UnexpectedNote] = field(default_factory=list)

    @property
    def history_done(self) -> bool:
        return all(kind.done for kind in self.history.values())

    def to_json(self) -> dict[str, Any]:
        titles: dict[str, list[Any]] = {}
        for record in [*self.views, *(note.view for note in self.missing)]:
            titles[str(record.kinopub_id)] = [record.title, record.year]
        return {
            "version": PROGRESS_VERSION,
            "audit_id": self.audit_id,
            "started_at": iso_z(self.started_at),
            "runs": self.runs,
            "plays_read": self.plays_read,
            "kinopub_done": self.kinopub_done,
            "examined": sorted(self.examined),
            "unreadable": [[n.kinopub_id, n.title, n.reason] for n in self.unreadable],
            "unmatched": self.unmatched,
            "unmatched_refs": sorted(self.unmatched_refs),
            "views_checked": self.views_checked,
            "titles": titles,
            "views": [_record_row(record) for record in self.views],
            "suspects": None if self.suspects is None else [[s.key, s.view_ref, s.reason] for s in self.suspects],
            "history": {
                kind: [None if p.end_at is None else iso_z(p.end_at), p.done] for kind, p in self.history.items()
            },
            "items_with_plays": self.items_with_plays,
            "duplicates": [
                [
                    n.title,
                    n.kind,
                    n.identity,
                    iso_z(n.watched_at),
                    n.minute,
                    n.kept,
                    list(n.extra),
                    list(n.removed),
                    list(n.gone),
                ]
                for n in self.duplicates
            ],
            "missing": [[_record_row(n.view), n.reason, n.outcome] for n in self.missing],
            "unexpected": [[n.title, n.minute, n.view_ref, n.reason] for n in self.unexpected],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditProgress | None:
        """The stored document, or None when it is of another version or unreadable (a new audit starts)."""
        if data.get("version") != PROGRESS_VERSION:
            return None
        try:
            return cls._read(data)
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    @classmethod
    def _read(cls, data: dict[str, Any]) -> AuditProgress:
        titles = {int(key): (str(value[0]), value[1]) for key, value in data["titles"].items()}
        suspects = data["suspects"]
        return cls(
            audit_id=str(data["audit_id"]),
            started_at=parse_iso(data["started_at"]),
            runs=int(data["runs"]),
            plays_read=int(data["plays_read"]),
            kinopub_done=bool(data["kinopub_done"]),
            examined={int(i) for i in data["examined"]},
            unreadable=[ItemNote(int(i), str(t), str(r)) for i, t, r in data["unreadable"]],
            unmatched=int(data["unmatched"]),
            unmatched_refs={str(ref) for ref in data["unmatched_refs"]},
            views_checked=int(data["views_checked"]),
            views=[_record(row, titles) for row in data["views"]],
            suspects=None if suspects is None else [Suspect(str(k), str(v), str(r)) for k, v, r in suspects],
            history={
                cast("HistoryKind", kind): KindProgress(None if end is None else parse_iso(end), bool(done))
                for kind, (end, done) in data["history"].items()
            },
            items_with_plays={str(item): str(title) for item, title in data["items_with_plays"].items()},
            duplicates=[
                DuplicateNote(
                    str(title),
                    cast("PlayKind", kind),
                    str(identity),
                    parse_iso(when),
                    str(minute),
                    int(kept),
                    tuple(int(i) for i in extra),
                    tuple(int(i) for i in removed),
                    tuple(int(i) for i in gone),
                )
                for title, kind, identity, when, minute, kept, extra, removed, gone in data["duplicates"]
            ],
            missing=[MissingNote(_record(row, titles), reason, outcome) for row, reason, outcome in data["missing"]],
            unexpected=[UnexpectedNote(str(t), str(m), str(v), str(r)) for t, m, v, r in data["unexpected"]],
        )


def _record_row(record: ViewRecord) -> list[Any]:
    when = None if record.watched_at is None else iso_z(record.watched_at)
    row = [record.kind, record.kinopub_id, record.season, record.episode, record.pin_part, when, record.key]
    return row if record.earliest_part is None else [*row, iso_z(record.earliest_part)]


def _record(row: list[Any], titles: dict[int, tuple[str, Any]]) -> ViewRecord:
    kind, kinopub_id, season, episode, pin_part, when, key, *rest = row
    earliest = rest[0] if rest else None  # only a multi-part film's row has it
    if kind not in ("movie", "episode"):
        raise ValueError("a view record's kind")
    parse_key(key)  # a stored key that no longer reads is a document to drop, not a crash later
    title, year = titles[int(kinopub_id)]
    return ViewRecord(
        kind,
        int(kinopub_id),
        title,
        year if isinstance(year, int) else None,
        season,
        episode,
        int(pin_part),
        None if when is None else parse_iso(when),
        str(key),
        None if earliest is None else parse_iso(str(earliest)),
    )


def minute_time(minute: str) -> datetime | None:
    """A key's minute as a time (None for ``unknown``)."""
    return None if minute == UNKNOWN else parse_iso(minute.replace("Z", ":00Z"))
