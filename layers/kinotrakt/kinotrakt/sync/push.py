"""Step 7: push plays in batches, record each accepted key at once, never re-send blindly.

A POST whose answer was lost may have been applied. Re-sending it would create permanent duplicate plays
(Trakt does not dedupe), so the batch's window is re-read from Trakt and only what is still missing is sent
again.

A 4xx about the request (``ItemRefused``: 400, 404, 414, 422, …) means Trakt applied nothing. When the pipeline
asks for it, such a batch is split in halves and each half sent again, down to the one play Trakt refuses, which
is handed back (unmatched, ``trakt_refused``) while the others go in: one bad item never holds back the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from kinotrakt.clock import Clock, Deadline
from kinotrakt.errors import ItemRefused, OutOfTime
from kinotrakt.observability import logger
from kinotrakt.storage.ports import LedgerEntry, LedgerStore
from kinotrakt.sync.dedupe import TraktHistory, has_any_play, read_history_around
from kinotrakt.sync.keys import minute_or_unknown
from kinotrakt.sync.mapping import MappedView
from kinotrakt.trakt.client import TraktWriteOutcomeUnknown
from kinotrakt.trakt.models import HistoryResult

# How often one batch is re-read and its missing part re-sent after lost answers, before the run stops.
MAX_RECONCILES = 2
REREAD_MARGIN = timedelta(minutes=2)


class TraktWriter(TraktHistory, Protocol):
    def add_to_history(self, movies: list[dict[str, object]], episodes: list[dict[str, object]]) -> HistoryResult: ...


@dataclass
class PushResult:
    added: list[MappedView] = field(default_factory=list)
    not_found: list[MappedView] = field(default_factory=list)
    updated: int = 0  # the answers' `updated` counts (2026 contract, meaning undocumented)


class Pusher:
    def __init__(
        self,
        trakt: TraktWriter,
        ledger: LedgerStore,
        clock: Clock,
        deadline: Deadline,
        batch_size: int,
        on_not_found: Callable[[MappedView], None],
        on_refused: Callable[[MappedView, ItemRefused], None] | None = None,
    ) -> None:
        self._trakt = trakt
        self._ledger = ledger
        self._clock = clock
        self._deadline = deadline
        self._batch_size = batch_size
        self._on_not_found = on_not_found
        self._on_refused = on_refused  # None: a refused write stops the run like a bad response

    def push(self, to_send: Sequence[MappedView], result: PushResult) -> None:
        """Send everything, batch by batch, filling ``result`` as it goes (so a stop keeps what was done)."""
        for start in range(0, len(to_send), self._batch_size):
            if self._deadline.expired():
                raise OutOfTime("the Lambda deadline is near; the remaining batches go in the next run")
            self._send_batch(list(to_send[start : start + self._batch_size]), result)

    def _send_batch(self, batch: list[MappedView], result: PushResult) -> None:
        pending = batch
        for attempt in range(MAX_RECONCILES + 1):
            movies = [c.payload(c.watched_at_value()) for c in pending if c.kind == "movie"]
            episodes = [c.payload(c.watched_at_value()) for c in pending if c.kind == "episode"]
            try:
                answer = self._trakt.add_to_history(movies, episodes)
            except ItemRefused as refused:
                if self._on_refused is None:
                    raise
                self._split_refused(pending, refused, result)
                return
            except TraktWriteOutcomeUnknown:
                if attempt == MAX_RECONCILES:
                    raise
                logger.warning(
                    "history write outcome unknown; re-reading Trakt before sending again",
                    extra={"batch_items": len(pending)},
                )
                present = self._present_on_trakt(pending)
                applied = [c for c in pending if c.key in present]
                self._accept(applied, result)
                pending = [c for c in pending if c.key not in present]
                if not pending:
                    return
                continue
            missing = _not_found(pending, answer)
            result.updated += answer.updated.total
            logger.info(
                "history batch written",
                extra={
                    "batch_items": len(pending),
                    "added_movies": answer.added.movies,
                    "added_episodes": answer.added.episodes,
                    "updated_movies": answer.updated.movies,
                    "updated_episodes": answer.updated.episodes,
                    "not_found": len(missing),
                },
            )
            # The ledger first: what Trakt accepted must be remembered even if looking into the rest fails.
            self._accept([c for c in pending if c not in missing], result)
            result.not_found.extend(missing)
            for candidate in missing:
                self._on_not_found(candidate)
            return

    def _split_refused(self, batch: list[MappedView], refused: ItemRefused, result: PushResult) -> None:
        """Trakt refused the whole write and applied nothing: send each half again, down to the refused play."""
        assert self._on_refused is not None  # noqa: S101 - only called when set
        if len(batch) == 1:
            logger.warning(
                "trakt refused a play",
                extra={"view": batch[0].view.label, "status": refused.status, "path": refused.path},
            )
            self._on_refused(batch[0], refused)
            return
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            if self._deadline.expired():
                raise OutOfTime("the Lambda deadline is near; the remaining batches go in the next run")
            self._send_batch(part, result)

    def _accept(self, accepted: list[MappedView], result: PushResult) -> None:
        if not accepted:
            return
        now = self._clock.now()
        self._ledger.add(
            [LedgerEntry(c.key, c.view.view_ref, minute_or_unknown(c.view.watched_at), now) for c in accepted]
        )
        result.added.extend(accepted)

    def _present_on_trakt(self, batch: Sequence[MappedView]) -> set[str]:
        index = read_history_around(self._trakt, [c.view for c in batch], lead=REREAD_MARGIN, trail=REREAD_MARGIN)
        present = set(index.keys)
        present.update(c.key for c in batch if c.view.watched_at is None and has_any_play(self._trakt, c))
        return present


def _not_found(batch: Sequence[MappedView], answer: HistoryResult) -> list[MappedView]:
    movie_imdb = {item.ids.imdb for item in answer.not_found.movies if item.ids.imdb}
    movie_trakt = {item.ids.trakt for item in answer.not_found.movies if item.ids.trakt is not None}
    episodes = {item.ids.trakt for item in answer.not_found.episodes if item.ids.trakt is not None}
    missing: list[MappedView] = []
    for c in batch:
        if c.kind == "episode":
            hit = c.episode_trakt_id in episodes
        elif c.movie_imdb:
            hit = c.movie_imdb in movie_imdb
        else:
            hit = c.movie_trakt_id in movie_trakt
        if hit:
            missing.append(c)
    return missing
