"""Scheduled sync (or audit): parse the event, wire the AWS stores, run one sync or one audit run, log and return
the report."""

from __future__ import annotations

import gc
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, model_validator

from kinotrakt.clock import Clock
from kinotrakt.config import Settings
from kinotrakt.observability import (
    emit_audit_metrics,
    emit_failure_without_report,
    emit_run_metrics,
    logger,
    metrics,
)
from kinotrakt.service import execute_audit, execute_sync
from kinotrakt.storage.ports import SyncStores
from kinotrakt.sync.report import fit_report

settings = Settings()
# CloudWatch Logs takes at most 256 KB per line; a longer summary line would be cut, and its JSON with it.
MAX_LOGGED_REPORT_BYTES = 100 * 1024

AUDIT_FIELDS = frozenset({"action", "fix", "scheduled_time", "execution_id"})
USAGE = (
    'a sync takes {} or the scheduler Input; an audit {"action": "audit"}, or {"action": "audit", "fix": [...]} '
    'with any of "duplicates", "missing", "removed"'
)


class SyncEvent(BaseModel):
    """The EventBridge Scheduler ``Input`` (``{"scheduled_time", "execution_id"}``, the runtime contract), ``{}``
    for a manual invoke, or ``{"dry_run": true}``; or an audit: ``{"action": "audit"}`` (report only) and
    ``{"action": "audit", "fix": [...]}``, alone or with the scheduler's fields. A sync event's unknown fields are
    ignored, as they always were; an audit event's are refused (a misspelt ``fix`` must not pass for a report)."""

    model_config = ConfigDict(extra="ignore")

    scheduled_time: str | None = None
    execution_id: str | None = None
    dry_run: StrictBool | None = None
    action: Literal["sync", "audit"] | None = None
    fix: list[Literal["duplicates", "missing", "removed"]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _audit_fields_only(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("action") == "audit":
            unknown = sorted(str(name)[:40] for name in set(data) - AUDIT_FIELDS)
            if unknown:
                raise ValueError(f"an audit event does not take {', '.join(unknown[:5])}")
        return data

    @model_validator(mode="after")
    def _fix_only_for_an_audit(self) -> SyncEvent:
        if self.fix is not None and self.action != "audit":
            raise ValueError('"fix" is for an audit: add "action": "audit"')
        return self


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
        emit_failure_without_report()
        raise ValueError(f"unexpected sync event ({_what_is_wrong(exc)}); {USAGE}") from None
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    if parsed.action == "audit":
        return _audit(parsed, remaining, stores=stores, clock=clock)
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


def _audit(
    parsed: SyncEvent, remaining: float | None, *, stores: SyncStores | None, clock: Clock | None
) -> dict[str, Any]:
    try:
        report = execute_audit(
            settings,
            stores or _aws_stores(),
            fixes=parsed.fix or (),
            clock=clock,
            remaining_seconds=remaining,
            run_id=parsed.execution_id,
        )
    except Exception:
        logger.exception("audit run crashed")
        emit_failure_without_report()
        raise
    emit_audit_metrics(report)
    contract = report.to_dict()
    logger.info("audit run finished", extra=fit_report(contract, MAX_LOGGED_REPORT_BYTES))
    return contract


def _what_is_wrong(exc: ValidationError) -> str:
    """Which fields are wrong, or the rule broken; never the values (an event may carry anything)."""
    parts = []
    for error in exc.errors(include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"fields: {where}" if where else str(error["msg"]).removeprefix("Value error, "))
    return "; ".join(parts)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
