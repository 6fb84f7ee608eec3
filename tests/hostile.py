"""Hypothesis strategies for hostile input: arbitrary JSON, and real bodies damaged the ways APIs damage them
(fields missing, wrong types, huge numbers, numbers as strings, nested nulls, HTML, cut short).

A canary string hides among the hostile values: whatever the product says about a bad body (a reason, a
log line, a page) must never repeat it, since a body can carry a token.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

CANARY = "tok_canary_5f0c2e9a71d34b68"
# "1" in other scripts: Arabic-Indic, Extended Arabic-Indic, Devanagari, full-width, mathematical bold.
OTHER_DIGITS = ("\u0661", "\u06f1", "\u0967", "\uff11", "\U0001d7cf")

numbers_as_strings = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["1", "-1", "0", " 1 ", "1.0", "1.5", "1e3", "0x10", "1_000", "+1", "\u00b2", *OTHER_DIGITS]),
)
html = st.sampled_from(
    [
        "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        "<html><head><title>Attention Required! | Cloudflare</title></head></html>",
        "<script>alert(1)</script>",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 10**12, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    numbers_as_strings,
    html,
    st.text(max_size=20),
    st.just(CANARY),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def damaged(draw: st.DrawFn, body: Any, *, max_changes: int = 4) -> Any:
    """``body`` with 1..max_changes damages: a field or list entry dropped, or a value replaced by a hostile
    value, a nested null, or arbitrary JSON."""
    damaged_body = copy.deepcopy(body)
    for _ in range(draw(st.integers(min_value=1, max_value=max_changes))):
        paths = _paths(damaged_body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = damaged_body
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(st.one_of(st.none(), scalars, json_values))
    return damaged_body


@st.composite
def hostile_body(draw: st.DrawFn, body: Any) -> bytes:
    """What a server might answer instead of ``body``: damaged JSON, other JSON, HTML, or JSON cut short."""
    choice = draw(st.sampled_from(["damaged", "damaged", "arbitrary", "html", "truncated", "empty"]))
    if choice == "damaged":
        return json.dumps(draw(damaged(body)), ensure_ascii=False).encode()
    if choice == "arbitrary":
        return json.dumps(draw(json_values), ensure_ascii=False).encode()
    if choice == "html":
        return draw(html).encode()
    if choice == "empty":
        return b""
    text = json.dumps(body, ensure_ascii=False).encode()
    return text[: draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))]
