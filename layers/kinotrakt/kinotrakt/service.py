"""One sync run, or one audit run, from :class:`Settings`: the options, the deadline, the clients (``wiring.py``),
then the pipeline (or the audit). The Lambda handler, the CLI and the sandbox all call :func:`execute_sync` and
:func:`execute_audit`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TYPE_CHECKING

from kinotrakt.clock import Clock, Deadline, SystemClock
from kinotrakt.config import Settings
from kinotrakt.errors import KinotraktError
from kinotrakt.http import CallCounter
from kinotrakt.observability import logger
from kinotrakt.storage.ports import DEFAULT_LEASE, SyncStores
from kinotrakt.sync.pipeline import SyncDeps, SyncOptions, run_sync
from kinotrakt.sync.report import RunError, SyncReport
from kinotrakt.wiring import sync_clients

if TYPE_CHECKING:
    from kinotrakt.audit.report import AuditReport
    from kinotrakt.audit.run import Fix


def run_lease(remaining_seconds: float | None) -> timedelta:
    """How long a run holds the lease: its time left plus a minute, or DEFAULT_LEASE when that is unknown."""
    return DEFAULT_LEASE if remaining_seconds is None else timedelta(seconds=remaining_seconds + 60)


def execute_sync(
    settings: Settings,
    stores: SyncStores,
    *,
    clock: Clock | None = None,
    remaining_seconds: float | None = None,
    dry_run: bool | None = None,
    run_id: str | None = None,
    counter: CallCounter | None = None,
) -> SyncReport:
    """One sync run with production collaborators built from ``settings``; returns the report."""
    clock = clock or SystemClock()
    counter = counter or CallCounter()
    run_id = run_id or uuid.uuid4().hex
    deadline = Deadline(clock, remaining_seconds, settings.deadline_margin_seconds)
    dry = settings.dry_run if dry_run is None else dry_run
    lease = run_lease(remaining_seconds)
    options = SyncOptions(
        batch_size=settings.sync_batch_size,
        overlap=timedelta(hours=settings.sync_overlap_hours),
        full_rescan_every=timedelta(hours=settings.full_rescan_hours),
        dry_run=dry,
        lease=lease,
        rewatches=settings.rewatches,
    )
    try:
        clients = sync_clients(
            settings,
            kinopub_tokens=stores.kinopub_tokens,
            trakt_tokens=stores.trakt_tokens,
            clock=clock,
            deadline=deadline,
            counter=counter,
        )
    except KinotraktError as exc:
        # Not set up (no Trakt client id): nothing was read or written, so there is no lease to take.
        report = SyncReport(run_id=run_id, started_at=clock.now(), dry_run=dry, status="failed")
        report.error = RunError(exc.code, str(exc))
        report.finished_at = clock.now()
        report.watermark = stores.sync_state.load().watermark
        logger.error("sync run stopped", extra={"error_code": exc.code, "error": str(exc)})
        return report

    deps = SyncDeps(
        kinopub=clients.kinopub,
        trakt=clients.trakt,
        stores=stores,
        clock=clock,
        deadline=deadline,
        counter=counter,
        trakt_reads=clients.trakt_transport,
    )
    return run_sync(deps, options, run_id)


def execute_audit(
    settings: Settings,
    stores: SyncStores,
    *,
    fixes: Collection[Fix] = (),
    clock: Clock | None = None,
    remaining_seconds: float | None = None,
    run_id: str | None = None,
    counter: CallCounter | None = None,
    on_step: Callable[[str], None] | None = None,
) -> AuditReport:
    """One run of the audit (``kinotrakt audit``, the handler's ``{"action": "audit"}``); ``fixes`` are what it may
    repair. With DRY_RUN set it only reports."""
    # Imported here: the scheduled sync's cold start does not load the audit.
    from kinotrakt.audit.report import AuditReport
    from kinotrakt.audit.run import AuditDeps, AuditOptions, run_audit

    clock = clock or SystemClock()
    counter = counter or CallCounter()
    run_id = run_id or uuid.uuid4().hex
    deadline = Deadline(clock, remaining_seconds, settings.deadline_margin_seconds)
    options = AuditOptions(
        fixes=frozenset(fixes),
        batch_size=settings.sync_batch_size,
        rewatches=settings.rewatches,
        lease=run_lease(remaining_seconds),
        dry_run=settings.dry_run,
    )
    if options.dry_run and options.fixes:
        logger.warning("DRY_RUN is set: the audit reports and fixes nothing", extra={"fix": sorted(options.fixes)})
    try:
        clients = sync_clients(
            settings,
            kinopub_tokens=stores.kinopub_tokens,
            trakt_tokens=stores.trakt_tokens,
            clock=clock,
            deadline=deadline,
            counter=counter,
        )
    except KinotraktError as exc:
        report = AuditReport(run_id=run_id, started_at=clock.now(), status="failed", fix=sorted(options.fixes))
        report.error = RunError(exc.code, str(exc))
        report.finished_at = clock.now()
        logger.error("audit run stopped", extra={"error_code": exc.code, "error": str(exc)})
        return report
    deps = AuditDeps(
        clients.kinopub, clients.trakt, stores, clock, deadline, counter, on_step, trakt_reads=clients.trakt_transport
    )
    return run_audit(deps, options, run_id)
