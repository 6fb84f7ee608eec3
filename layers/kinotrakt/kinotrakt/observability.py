"""One Logger and one Metrics for the whole package (Powertools); everything imports these."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = "kinotrakt"
NAMESPACE = "Kinotrakt"

# RFC 3339 timestamps: with the JSON log format, Lambda filters by each line's own `level` only when its `timestamp`
# is RFC 3339; otherwise it files the line as INFO (AWS Lambda docs, "Log-level filtering"), so `LogLevel=WARN`
# would drop the ERROR lines the alarms and saved queries read. Extras never use the key `service` (it would
# overwrite Powertools' own): the remote service a line is about goes under `remote`.
logger = Logger(service=SERVICE, use_rfc3339=True)

# At DEBUG, botocore logs whole request bodies (a PutSecretValue carries the tokens) and urllib3 logs URLs
# with their query strings. The no-secret rule covers every level (DESIGN §6), so these libraries never
# log below WARNING, whatever LOG_LEVEL says.
for _noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


# Errors only the user can fix by setting up or linking again: the AuthRequired alarm fires on them.
AUTH_ERROR_CODES = frozenset({"relink_required", "not_configured", "trakt_unauthorized", "trakt_app_rejected"})


def emit_run_metrics(report: Mapping[str, Any]) -> None:
    """The DESIGN §5 metrics of one run. Zeros are emitted too, so the dashboard shows every run."""
    from aws_lambda_powertools.metrics import MetricUnit

    counts = {
        "Candidates": "candidates",
        "AddedMovies": "added_movies",
        "AddedEpisodes": "added_episodes",
        "SkippedDuplicates": "skipped_duplicates",
        "NotFound": "not_found",
        "Unmatched": "unmatched",
    }
    for metric, field in counts.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=int(report.get(field, 0)))
    status = report.get("status")
    error = report.get("error") or {}
    metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1 if status == "failed" else 0)
    metrics.add_metric(name="RunPartial", unit=MetricUnit.Count, value=1 if status == "partial" else 0)
    auth = 1 if error.get("code") in AUTH_ERROR_CODES else 0
    metrics.add_metric(name="AuthRequired", unit=MetricUnit.Count, value=auth)
    calls = report.get("http_calls") or {}
    metrics.add_metric(name="HttpCalls", unit=MetricUnit.Count, value=sum(int(v) for v in calls.values()))
