"""Strict reading of what a browser sends to the auth routes: the query string and the state cookie.

Anything odd is refused with :class:`BadRequest` (a 400 page) rather than guessed at: the routes are on the
public internet, and the only legitimate callers are our own redirect and Trakt's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus, urlencode

MAX_VALUE_LENGTH = 512
MAX_QUERY_LENGTH = 4096
MAX_PARAMETERS = 16

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Setup keys, states, authorization codes and cookie nonces are all URL-safe tokens.
TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,512}")
# OAuth error codes (RFC 6749 §4.1.2.1): `access_denied`, `invalid_request`, ...
ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


class BadRequest(Exception):
    """The request is malformed. ``reason`` is a fixed phrase that is safe to log: never a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_query(raw: str) -> dict[str, str]:
    """Decode a raw query string: no duplicated names, printable ASCII only, bounded lengths."""
    if len(raw) > MAX_QUERY_LENGTH:
        raise BadRequest("query string too long")
    params: dict[str, str] = {}
    for part in raw.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name = _decode(raw_name)
        value = _decode(raw_value)
        if _NAME.fullmatch(name) is None:
            raise BadRequest("malformed parameter name")
        if len(value) > MAX_VALUE_LENGTH:
            raise BadRequest("parameter too long")
        if name in params:
            # A second `state` or `code` is how parameter-pollution attacks pick which one a server reads.
            raise BadRequest("duplicated parameter")
        params[name] = value
        if len(params) > MAX_PARAMETERS:
            raise BadRequest("too many parameters")
    return params


def _decode(raw: str) -> str:
    try:
        value = unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("parameter is not valid UTF-8") from None
    if _PRINTABLE_ASCII.fullmatch(value) is None:
        raise BadRequest("parameter has non-ASCII or control characters")
    return value


def query_from_parameters(parameters: Mapping[str, str] | None) -> str:
    """Rebuild a raw query string when an event carries only the decoded parameters (older test events)."""
    return urlencode(dict(parameters or {}))


def token_param(params: Mapping[str, str], name: str) -> str | None:
    """A token-shaped parameter, or None when absent (an empty value counts as absent)."""
    value = params.get(name)
    if not value:
        return None
    if TOKEN.fullmatch(value) is None:
        raise BadRequest(f"malformed {name}")
    return value


def cookie_values(cookies: Iterable[str], name: str) -> list[str]:
    """Every value of cookie ``name`` in an API Gateway v2 ``cookies`` list (or ``Cookie`` header parts)."""
    values: list[str] = []
    for entry in cookies:
        for pair in entry.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                values.append(value.strip())
    return values
