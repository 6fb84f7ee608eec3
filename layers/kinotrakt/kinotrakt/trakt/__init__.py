"""Everything that talks to Trakt: the API client, OAuth, and the models of what Trakt answers."""

from kinotrakt.trakt.client import (
    TraktClient,
    TraktWriteOutcomeUnknown,
    escape_query,
    raise_for_status,
    trakt_headers,
    trakt_transport,
    trakt_user_agent,
)
from kinotrakt.trakt.oauth import (
    DeviceAccessDenied,
    DeviceCodeAlreadyUsed,
    DeviceCodeExpired,
    DeviceCodeInvalid,
    DeviceFlowFailed,
    DeviceFlowRefused,
    TraktAuthorizationRefused,
    TraktOAuth,
    make_token_keeper,
)

__all__ = [
    "DeviceAccessDenied",
    "DeviceCodeAlreadyUsed",
    "DeviceCodeExpired",
    "DeviceCodeInvalid",
    "DeviceFlowFailed",
    "DeviceFlowRefused",
    "TraktAuthorizationRefused",
    "TraktClient",
    "TraktOAuth",
    "TraktWriteOutcomeUnknown",
    "escape_query",
    "make_token_keeper",
    "raise_for_status",
    "trakt_headers",
    "trakt_transport",
    "trakt_user_agent",
]
