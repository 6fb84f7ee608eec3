"""The promises, checked against the fakes' own state (never against what the product says it did).

- no duplicate: none of *our* plays (``action: watch``; other apps' plays are scrobbles) repeats a play that
  was already on Trakt under the same DESIGN §3.6 key — for an ``unknown``-time play, any earlier play of
  the same movie or episode — and no view is sent twice;
- nothing lost: every completed view Trakt knows is on Trakt; and after every run, the watermark is never
  past a view that is not on Trakt yet (once its history is older than watermark - overlap, incremental
  runs would never look at it again);
- nothing wrong: every play we made is the key of a completed view (no in-progress or unwatched media);
- nothing removed wrongly: a play that leaves Trakt during a run (only an audit's ``fix: duplicates`` removes
  any) had an exact duplicate — the same movie or episode in the same minute (``unknown`` dates per item) —
  with a lower history id, which is still there after the run;
- no leak: no token or client secret the fakes ever issued appears in any captured output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chaos.library import UNKNOWN, Library, ViewSpec
from chaos.world import World

OWN_ACTION = "watch"  # POST /sync/history; other apps' plays are seeded as scrobbles


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
    # A view of unknown time is skipped when Trakt has any play of the item (DESIGN §3.6).
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
    excluded: DESIGN §4 lets them stop holding the watermark back, and the next full rescan picks them up."""
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
