"""Scheduled sync: parse the event, wire the AWS stores, run one sync, log and return the report."""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError

from kinotrakt.clock import Clock
from kinotrakt.config import Settings
from kinotrakt.observability import emit_failure_without_report, emit_run_metrics, logger, metrics
from kinotrakt.service import execute_sync
from kinotrakt.storage.ports import SyncStores
from kinotrakt.sync.report import fit_report

settings = Settings()
# CloudWatch Logs takes at most 256 KB per line; a longer summary line would be cut, and its JSON with it.
MAX_LOGGED_REPORT_BYTES = 100 * 1024


class SyncEvent(BaseModel):
    """The EventBridge Scheduler ``Input`` (``{"scheduled_time", "execution_id"}``, the runtime contract), ``{}``
    for a manual invoke, or ``{"dry_run": true}``."""

    model_config = ConfigDict(extra="ignore")

    scheduled_time: str | None = None
    execution_id: str | None = None
    dry_run: StrictBool | None = None


_stores: SyncStores | None = None


def _aws_stores() -> SyncStores:
    global _stores  # noqa: PLW0603 - built once per container, after the first event (cold start stays small)
    if _stores is None:
        from kinotrakt.storage.aws import aws_sync_stores

        _stores = aws_sync_stores(settings)
        # Everything imported and built so far (the libraries, botocore's service models) lives as long as the
        # container: the garbage collector's full passes need not walk it again (they cost a backfill ~0.3 s).
        gc.freeze()
    return _stores


def handle(
    event: Any, context: LambdaContext | None, *, stores: SyncStores | None = None, clock: Clock | None = None
) -> dict[str, Any]:
    try:
        parsed = SyncEvent.model_validate(event if event is not None else {})
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        emit_failure_without_report()
        raise ValueError(f"unexpected sync event (fields: {fields}); send {{}} or the scheduler Input") from None
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    try:
        report = execute_sync(
            settings,
            stores or _aws_stores(),
            clock=clock,
            remaining_seconds=remaining,
            dry_run=parsed.dry_run,
            run_id=parsed.execution_id,
        )
    except Exception:
        logger.exception("sync run crashed")
        emit_failure_without_report()
        raise
    emit_run_metrics(report)
    contract = report.to_dict()
    logger.info("sync run finished", extra=fit_report(contract, MAX_LOGGED_REPORT_BYTES))
    return contract


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
