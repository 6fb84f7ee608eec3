"""The shape of a JSON answer (which keys, which value types, recursively) and how two shapes differ.

A recorded answer and the fake's answer to the same request never hold the same values; what must match is
their shape: the same keys at every level, and values of types the recording has there. An array's shape is
the merge of its items' shapes, so ten search hits with ``tmdb`` a number in nine and null in one read as
"``tmdb``: number or null".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fields the fake may answer although the recordings (2017) lack them: the 2026 contract (trakt/trakt-api,
# `episodeResponseSchema.ts`, "available if requesting extended full") added them to episodes.
ADDED_IN_2026 = frozenset({"comment_count", "episode_type", "original_title"})


@dataclass
class Shape:
    types: set[str] = field(default_factory=set)  # "null", "boolean", "number", "string", "array", "object"
    fields: dict[str, Shape] = field(default_factory=dict)  # of objects, merged over every occurrence
    items: Shape | None = None  # of arrays, merged over every item; None when every array was empty


def shape_of(value: Any, into: Shape | None = None) -> Shape:
    """The shape of a decoded JSON value, merged into ``into`` when given."""
    shape = into if into is not None else Shape()
    if value is None:
        shape.types.add("null")
    elif isinstance(value, bool):
        shape.types.add("boolean")
    elif isinstance(value, int | float):
        shape.types.add("number")  # JSON has one number type: 8 and 8.0 are the same shape
    elif isinstance(value, str):
        shape.types.add("string")
    elif isinstance(value, list):
        shape.types.add("array")
        for item in value:
            shape.items = shape_of(item, shape.items)
    elif isinstance(value, dict):
        shape.types.add("object")
        for key, item in value.items():
            shape.fields[key] = shape_of(item, shape.fields.get(key))
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")
    return shape


def differences(recorded: Shape, fake: Shape, *, added: frozenset[str] = ADDED_IN_2026, path: str = "$") -> list[str]:
    """Where ``fake`` does not have ``recorded``'s shape: a missing key, a value of a type the recording never
    has there, a key neither recorded nor added by the 2026 contract, arrays the fake always leaves empty."""
    problems: list[str] = []
    unexpected = fake.types - recorded.types
    if unexpected:
        problems.append(f"{path}: the fake answers {sorted(fake.types)}, the recording {sorted(recorded.types)}")
    for key in sorted(recorded.fields.keys() - fake.fields.keys()):
        problems.append(f"{path}.{key}: recorded, missing in the fake")
    for key in sorted(fake.fields.keys() - recorded.fields.keys() - added):
        problems.append(f"{path}.{key}: in the fake, neither recorded nor added by the 2026 contract")
    for key in sorted(recorded.fields.keys() & fake.fields.keys()):
        problems += differences(recorded.fields[key], fake.fields[key], added=added, path=f"{path}.{key}")
    if recorded.items is not None:
        if fake.items is None:
            problems.append(f"{path}[]: recorded with items, always empty in the fake")
        else:
            problems += differences(recorded.items, fake.items, added=added, path=f"{path}[]")
    return problems
