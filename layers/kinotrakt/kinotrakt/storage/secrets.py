"""``TokenStore`` on one Secrets Manager secret holding the service's secret JSON (:class:`ServiceSecret`).

Secrets Manager has no conditional write, so ``save`` reads the ``AWSCURRENT`` version id first and
refuses to write when it is not the version the caller loaded: a re-link (CLI or /trakt/callback) that
landed during a run holds the live refresh token, and overwriting it would lose the account link. The
window between the check and the write is one round trip; the sync's refresher is the only writer during
a run, so that is the race left. Each write carries a fresh ``ClientRequestToken``, which makes botocore's
own retry of a timed-out PutSecretValue idempotent instead of creating a second version.

Nothing here puts a secret's value into an exception or a log line: parse errors name fields and error
types only, and the parser's own error (which may quote the input) is not chained onto them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pydantic import ValidationError

from kinotrakt.errors import ConcurrentTokenWrite, MalformedSecret
from kinotrakt.storage.ports import ServiceSecret, StoredSecret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT = "AWSCURRENT"


class SecretsManagerTokenStore:
    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id

    def __repr__(self) -> str:
        return f"SecretsManagerTokenStore(secret_id={self.secret_id!r})"

    def load(self) -> StoredSecret:
        response = self._client.get_secret_value(SecretId=self.secret_id)
        raw = response.get("SecretString")
        version = response.get("VersionId")
        if raw is None and "SecretBinary" in response:
            raise MalformedSecret(self.secret_id, "stored as binary, not as a JSON string", version)
        return StoredSecret(self._parse(raw, version), version)

    def save(self, secret: ServiceSecret, *, expected_version: str | None) -> StoredSecret:
        current = self.current_version()
        if current != expected_version:
            raise ConcurrentTokenWrite(
                f"the secret {self.secret_id} was written by someone else since it was read "
                f"(expected version {expected_version}, found {current}); their version was kept"
            )
        response = self._client.put_secret_value(
            SecretId=self.secret_id,
            SecretString=secret.to_json(),
            ClientRequestToken=str(uuid.uuid4()),
        )
        return StoredSecret(secret, response["VersionId"])

    def current_version(self) -> str | None:
        """The id of the version labelled ``AWSCURRENT`` (None for a secret that has no value yet)."""
        stages = self._client.describe_secret(SecretId=self.secret_id).get("VersionIdsToStages", {})
        return next((version for version, labels in stages.items() if CURRENT in labels), None)

    def _parse(self, raw: str | None, version: str | None) -> ServiceSecret:
        try:
            return ServiceSecret.from_json(raw)
        except ValidationError as error:
            details = error.errors(include_input=False, include_context=False, include_url=False)
        # Raised outside the except block, so the ValidationError (which quotes the input) is not even
        # attached as the new error's __context__.
        if any(detail["type"] == "json_invalid" for detail in details):
            reason = "not valid JSON"
        else:
            reason = "; ".join(
                f"{'.'.join(str(part) for part in detail['loc']) or 'value'}: {detail['type']}" for detail in details
            )
        raise MalformedSecret(self.secret_id, reason, version)
