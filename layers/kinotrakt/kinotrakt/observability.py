"""One Logger and one Metrics for the whole package (Powertools); everything imports these."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "kinotrakt"
NAMESPACE = "Kinotrakt"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
