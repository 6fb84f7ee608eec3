"""The part of CloudWatch Logs Insights' query language the template's saved queries and dashboard widgets use,
enough to hold each query against log lines the code really emits.

A query is split into its commands (``SOURCE``, ``fields``, ``display``, ``filter``, ``stats … by``, ``sort``,
``limit``); a filter is ``name = value``, ``name != value`` or ``name in [values]``, joined by ``and``/``or``.
A command or an operator outside that subset raises :class:`Unsupported`, so a new query that uses more of the
language makes its author teach this module the rest, rather than pass unchecked.

Field names follow Logs Insights: a JSON line's nested keys are reached with dots (``error.code``); names starting
with ``@`` are Logs Insights' own (``@timestamp``, ``@message``, ``@log``) and exist in every line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_ABSENT = object()
_COMMAND = re.compile(r"^(SOURCE|fields|display|filter|stats|sort|limit)\b\s*(.*)$", re.DOTALL)
_STRING = r"(?:\"[^\"]*\"|'[^']*')"
_NAME = r"[A-Za-z_@][\w.@]*"
_COMPARISON = re.compile(rf"^({_NAME})\s*(=|!=)\s*({_STRING}|-?\d+(?:\.\d+)?|true|false)$")
_MEMBERSHIP = re.compile(rf"^({_NAME})\s+in\s+\[(.*)\]$", re.DOTALL)
_STATS = re.compile(r"^count\(\*\)(?:\s+as\s+(\w+))?\s+by\s+(.+)$", re.DOTALL)


class Unsupported(ValueError):
    """The query uses Logs Insights beyond what this module understands."""


@dataclass(frozen=True)
class Condition:
    name: str
    operator: str  # "=", "!=", "in"
    values: tuple[Any, ...]

    def holds(self, line: Mapping[str, Any]) -> bool:
        value = lookup(line, self.name)
        if self.operator == "!=":
            return value is _ABSENT or value != self.values[0]
        return value is not _ABSENT and value in self.values


@dataclass(frozen=True)
class Filter:
    """Conditions in disjunctive form: the line passes when every condition of one group holds."""

    groups: tuple[tuple[Condition, ...], ...]

    def holds(self, line: Mapping[str, Any]) -> bool:
        return any(all(condition.holds(line) for condition in group) for group in self.groups)

    @property
    def conditions(self) -> list[Condition]:
        return [condition for group in self.groups for condition in group]


@dataclass
class Query:
    sources: list[str] = field(default_factory=list)  # SOURCE '<log group>', in a dashboard widget
    shown: list[str] = field(default_factory=list)  # fields, display, stats' by-fields, sort field
    filters: list[Filter] = field(default_factory=list)
    aliases: set[str] = field(default_factory=set)  # names a stats command creates (count(*) as n)

    def selects(self, line: Mapping[str, Any]) -> bool:
        return all(query_filter.holds(line) for query_filter in self.filters)


def lookup(line: Mapping[str, Any], name: str) -> Any:
    """A field as Logs Insights sees a JSON line: ``@`` names always exist, dots descend into objects."""
    if name.startswith("@"):
        return name
    value: Any = line
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def has(line: Mapping[str, Any], name: str) -> bool:
    return lookup(line, name) is not _ABSENT


def parse(text: str) -> Query:
    query = Query()
    for command in _commands(text):
        match = _COMMAND.match(command)
        if match is None:
            raise Unsupported(f"command not understood: {command!r}")
        verb, rest = match[1], match[2].strip()
        if verb == "SOURCE":
            query.sources.append(_literal(rest))
        elif verb in ("fields", "display"):
            query.shown += _names(rest)
        elif verb == "filter":
            query.filters.append(_filter(rest))
        elif verb == "stats":
            stats = _STATS.match(rest)
            if stats is None:
                raise Unsupported(f"only `stats count(*) [as name] by fields` is understood: {rest!r}")
            if stats[1]:
                query.aliases.add(stats[1])
            query.shown += _names(stats[2])
        elif verb == "sort":
            sort = re.fullmatch(rf"({_NAME})(?:\s+(?:asc|desc))?", rest)
            if sort is None:
                raise Unsupported(f"sort not understood: {rest!r}")
            query.shown.append(sort[1])
        elif not rest.isdigit():
            raise Unsupported(f"limit not understood: {rest!r}")
    return query


def _commands(text: str) -> list[str]:
    """The query split at the pipes that are outside string literals."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "|":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if not re.fullmatch(_NAME, name):
            raise Unsupported(f"only plain field names are understood, not {name!r}")
    return names


def _literal(text: str) -> Any:
    if text[:1] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return float(text) if "." in text else int(text)


def _filter(text: str) -> Filter:
    groups = []
    for alternative in re.split(r"\s+or\s+", text):
        group = []
        for part in re.split(r"\s+and\s+", alternative):
            group.append(_condition(part.strip()))
        groups.append(tuple(group))
    return Filter(tuple(groups))


def _condition(text: str) -> Condition:
    if comparison := _COMPARISON.match(text):
        return Condition(comparison[1], comparison[2], (_literal(comparison[3]),))
    if membership := _MEMBERSHIP.match(text):
        values = tuple(_literal(value.strip()) for value in membership[2].split(","))
        return Condition(membership[1], "in", values)
    raise Unsupported(f"filter not understood: {text!r}")


def problems(query: Query, lines: Sequence[Mapping[str, Any]], groups: Iterable[str] = ()) -> list[str]:
    """Why ``query`` would show nothing useful on ``lines`` (empty: it works). Checked: some line passes its
    filters (in each of ``groups``, when lines carry their ``@log``), every value a filter names occurs,
    and every field it shows exists in a line it selects."""
    found: list[str] = []
    selected = [line for line in lines if query.selects(line)]
    if not selected:
        return [f"no line passes the filters {[c for f in query.filters for c in f.conditions]}"]
    for group in groups:
        if not any(line.get("@log") == group for line in selected):
            found.append(f"no line of {group} passes the filters")
    for query_filter in query.filters:
        for condition in query_filter.conditions:
            if condition.operator == "!=":
                continue
            seen = [lookup(line, condition.name) for line in lines if has(line, condition.name)]
            missing = [value for value in condition.values if value not in seen]
            if missing:
                found.append(f"{condition.name} is never {missing}")
    for name in query.shown:
        if name not in query.aliases and not any(has(line, name) for line in selected):
            found.append(f"no selected line has the field {name}")
    return found
