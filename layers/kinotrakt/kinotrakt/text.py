"""Free text from Kinopub and Trakt, bounded when it is parsed.

A title travels far: into a Trakt search (a request line), log lines, DynamoDB items (400 KB at most, UTF-8
only), the run report and the owner's terminal. A damaged or hostile one must not break any of them, so every
text field of the services' models goes through :func:`clean_text` with a length that fits its purpose.
"""

from __future__ import annotations

import re

from pydantic import AfterValidator

# Longer than any real title (Kinopub's "Русское / Original" pairs run to ~150 characters).
TITLE_LIMIT = 300
# Short words from a fixed vocabulary (types, actions, OAuth error codes): anything longer is damage.
WORD_LIMIT = 40
# URLs and explanatory sentences the services send (verification URLs, OAuth error descriptions).
LINE_LIMIT = 1000

# C0 and C1 control characters: line breaks and escape sequences have no place in a title.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What an OAuth token may be to go into an Authorization header (RFC 6750 b64token, widened to visible ASCII).
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")


def clean_text(value: str, limit: int) -> str:
    """``value`` with lone surrogates (JSON allows them, UTF-8 does not) replaced, control characters turned
    into spaces, and cut to ``limit`` characters."""
    if value.isprintable():
        # Neither a control character nor a surrogate is printable: nothing to replace (almost every title).
        return value[:limit]
    text = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub(" ", text)[:limit]


def bounded(limit: int) -> AfterValidator:
    """The pydantic step that applies :func:`clean_text` to a ``str`` field."""

    def clean(value: str) -> str:
        return clean_text(value, limit)

    return AfterValidator(clean)


def token_text(value: object) -> object:
    """An OAuth token fit for a header: a service that answers with line breaks in a token would otherwise
    have every later request refused before it is sent. The error never repeats the value."""
    if isinstance(value, str) and not _TOKEN.fullmatch(value):
        raise ValueError("not a token: expected 1-4096 visible ASCII characters")
    return value
