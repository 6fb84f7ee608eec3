"""One Logger and one Metrics for the whole package (Powertools); everything imports these."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from kinotrakt.audit.report import AuditReport
    from kinotrakt.sync.report import SyncReport

SERVICE = "kinotrakt"
NAMESPACE = "Kinotrakt"

# RFC 3339 timestamps: with the JSON log format, Lambda filters by each line's own `level` only when its `timestamp`
# is RFC 3339; otherwise it files the line as INFO (AWS Lambda docs, "Log-level filtering"), so `LogLevel=WARN`
# would drop the ERROR lines the alarms and saved queries read. Extras never use the key `service` (it would
# overwrite Powertools' own): the remote service a line is about goes under `remote`.
logger = Logger(service=SERVICE, use_rfc3339=True)

# At DEBUG, botocore logs whole request bodies (a PutSecretValue carries the tokens) and urllib3 logs URLs
# with their query strings. No token may reach a log line at any level, so these libraries never log below
# WARNING, whatever LOG_LEVEL says.
for _noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


# Errors only the user can fix by setting up or linking again: the AuthRequired alarm fires on them.
AUTH_ERROR_CODES = frozenset({"relink_required", "not_configured", "trakt_unauthorized", "trakt_app_rejected"})


def emit_run_metrics(report: SyncReport) -> None:
    """One run's metrics (the template's dashboard and alarms read these names). Zeros are emitted too, so
    the dashboard shows every run."""
    auth = report.error is not None and report.error.code in AUTH_ERROR_CODES
    _emit(
        {
            "Candidates": report.candidates,
            "AddedMovies": report.added_movies,
            "AddedEpisodes": report.added_episodes,
            "SkippedDuplicates": report.skipped_duplicates,
            "NotFound": report.not_found,
            "Unmatched": report.unmatched,
            "RunFailed": 1 if report.status == "failed" else 0,
            "RunPartial": 1 if report.status == "partial" else 0,
            "AuthRequired": 1 if auth else 0,
            "HttpCalls": report.http_calls.kinopub + report.http_calls.trakt,
        }
    )


def emit_audit_metrics(report: AuditReport) -> None:
    """One audit run's metrics: what it found and fixed so far, and the run's outcome under the sync's names, so
    the failure and AuthRequired alarms watch audits too."""
    auth = report.error is not None and report.error.code in AUTH_ERROR_CODES
    _emit(
        {
            "AuditDuplicatesFound": report.duplicates_found,
            "AuditDuplicatesRemoved": report.duplicates_removed,
            "AuditMissingOnTrakt": report.missing_on_trakt,
            "AuditUnexpectedPlays": report.unexpected_plays,
            "RunFailed": 1 if report.status == "failed" else 0,
            "RunPartial": 1 if report.status == "partial" else 0,
            "AuthRequired": 1 if auth else 0,
            "HttpCalls": report.http_calls.kinopub + report.http_calls.trakt,
        }
    )


def emit_failure_without_report() -> None:
    """The metrics of an invocation that ended without a report (a refused event, a crash): a failed run,
    so the failure alarm fires, and zeros for the rest."""
    _emit(
        {
            "Candidates": 0,
            "AddedMovies": 0,
            "AddedEpisodes": 0,
            "SkippedDuplicates": 0,
            "NotFound": 0,
            "Unmatched": 0,
            "RunFailed": 1,
            "RunPartial": 0,
            "AuthRequired": 0,
            "HttpCalls": 0,
        }
    )


def emit_event(name: str, **dimensions: str) -> None:
    """One count of ``name``, written now as its own EMF line (the auth function has no end-of-run flush, and
    the shared ``metrics`` set belongs to the sync run). With ``dimensions`` it is recorded twice: under
    ``service`` alone (what an alarm watches) and under ``service`` plus the dimensions (what a graph splits)."""
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    line = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)
    line.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if dimensions:
        line.add_dimensions(service=SERVICE, **dimensions)
    line.flush_metrics()


def _emit(values: dict[str, int]) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
