"""The one way titles are compared: a Kinopub title against a Trakt title, for a text search or an episode.

Kinopub writes ``"Русское / Original"`` (sometimes reversed, three-part or Russian only;
docs/kinopub.md#types-and-ids), Trakt one title. Two titles agree when, after normalisation (case, punctuation,
the Cyrillic letter yo read as ye, spacing), the Trakt title equals the whole Kinopub title or one of its
``/``-separated parts.
A generic title ("Episode 5", "Серия 5") never agrees: it says nothing about which episode it is.
"""

from __future__ import annotations

import re

_GENERIC = re.compile(r"(episode|ep|эпизод|серия|series|part|часть|chapter|глава)\s*\d+")


def normalize_title(text: str) -> str:
    folded = text.casefold().replace("ё", "е")  # noqa: RUF001 - Cyrillic yo as Cyrillic ie
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def title_parts(kinopub_title: str) -> list[str]:
    """The whole title and each ``/``-separated part, normalised, without empty or repeated ones."""
    parts = [normalize_title(kinopub_title), *(normalize_title(part) for part in kinopub_title.split("/"))]
    return [part for part in dict.fromkeys(parts) if part]


def is_generic(title: str) -> bool:
    return _GENERIC.fullmatch(normalize_title(title)) is not None


def titles_agree(kinopub_title: str, trakt_title: str | None) -> bool:
    if not trakt_title or is_generic(trakt_title):
        return False
    wanted = normalize_title(trakt_title)
    return any(part == wanted and not is_generic(part) for part in title_parts(kinopub_title))
