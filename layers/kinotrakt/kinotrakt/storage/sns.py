"""Link notices on the alarm topic (SNS): the owner's e-mail subscription hears of every Trakt link, made through
the browser login (the auth function) or from a terminal (``kinotrakt link trakt``), so a link made with a leaked
login link or someone else's AWS credentials does not go unnoticed."""

from __future__ import annotations

from typing import Any, Protocol

from kinotrakt.web.login import LinkNotice


class SnsPublisher(Protocol):
    """The one call of boto3's SNS client used here."""

    def publish(self, *, TopicArn: str, Subject: str, Message: str) -> Any: ...


class SnsLinkNotices:
    def __init__(self, client: SnsPublisher, topic_arn: str) -> None:
        self._client = client
        self.topic_arn = topic_arn

    def __repr__(self) -> str:
        return f"SnsLinkNotices(topic_arn={self.topic_arn!r})"

    def linked(self, notice: LinkNotice) -> None:
        self._client.publish(TopicArn=self.topic_arn, Subject=notice.subject, Message=notice.text())
