"""Every saved Logs Insights query, dashboard widget and alarm of ``template.yaml`` against what the code really
emits: both handlers run on the sandbox (moto + the fakes) through the situations the queries are for (a run that
adds and leaves items unmatched, a dry run, audits that find and fix duplicates, a failed run and a failed audit,
logins that work and logins that are refused), and their
JSON log lines and EMF metrics are collected as CloudWatch would store them, per log group. A field renamed in
the code, or in a query, fails here."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from devkit.apigw import FakeLambdaContext, api_gateway_v2_event
from devkit.fakes.library import seed_demo_library, seed_other_tools_plays
from devkit.sandbox import Sandbox, load_handler, sandbox
from devkit.template import TEMPLATE_PATH, load_template
from kinotrakt.observability import logger, metrics
from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import update_secret
from tests.logs_insights import parse, problems

SETUP_KEY = "e2e-setup-key_0123456789abcdefghijklmnopqrs"  # the shape kinotrakt setup makes
SYNC_RUNS, AUDIT_RUNS = 4, 3  # what the capture below invokes
RUN_OUTCOME_METRICS = frozenset({"RunFailed", "RunPartial", "AuthRequired", "HttpCalls"})
README = TEMPLATE_PATH.parent / "README.md"
# Emitted by the auth function, once per refused login or link (the others: once per sync run).
AUTH_METRICS = frozenset({"LoginRefused", "TraktLinked"})


@dataclass(frozen=True)
class Captured:
    """JSON lines per log group logical id (each tagged with its ``@log``), and the EMF documents: the sync
    runs' (one per run) and the auth function's (one per refused login or link)."""

    lines: dict[str, list[dict[str, Any]]]
    emf: list[dict[str, Any]]
    auth_emf: list[dict[str, Any]]

    def of(self, groups: list[str]) -> list[dict[str, Any]]:
        return [line for group in groups for line in self.lines[group]]


@contextlib.contextmanager
def output_to(buffer: io.StringIO) -> Iterator[None]:
    """The Powertools log stream and stdout (where EMF goes) into ``buffer``, as Lambda collects both."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original = handler.setStream(buffer)
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        handler.setStream(original)


def json_lines(buffer: io.StringIO, group: str) -> list[dict[str, Any]]:
    return [{**json.loads(line), "@log": group} for line in buffer.getvalue().splitlines() if line.startswith("{")]


def drive_logins(box: Sandbox) -> None:
    """The browser's side of the Trakt login, as API Gateway hands it to the auth function: a key of another
    shape, a wrong key, no key, a login that links, its callback replayed, and (with a new key, the first one
    used by that link) a login whose code exchange finds Trakt down."""
    auth = load_handler("auth")
    box.trakt.auto_approve = True

    def call(path: str, query: str = "", cookies: tuple[str, ...] = ()) -> dict[str, Any]:
        answer: dict[str, Any] = auth.lambda_handler(
            api_gateway_v2_event(path, query, cookies=cookies), FakeLambdaContext()
        )
        return answer

    def through_trakt() -> tuple[str, tuple[str, ...]]:
        login = call("/trakt/login", f"key={SETUP_KEY}")
        assert login["statusCode"] == 302, login
        cookie = login["cookies"][0].split(";", 1)[0]
        approved = requests.get(login["headers"]["Location"], allow_redirects=False, timeout=10)
        return urlsplit(approved.headers["Location"]).query, (cookie,)

    call("/trakt/login", "key=not-the-setup-key")
    call("/trakt/login", f"key={'w' * 43}")
    call("/trakt/login")
    query, cookies = through_trakt()
    assert call("/trakt/callback", query, cookies)["statusCode"] == 200
    call("/trakt/callback", query, cookies)  # replayed
    give_a_setup_key(box)
    query, cookies = through_trakt()
    box.trakt.add_fault("POST", r"/oauth/token", status=503, times=-1)
    call("/trakt/callback", query, cookies)
    box.trakt.clear_faults()
    assert dict(parse_qsl(query)).get("code")


def give_a_setup_key(box: Sandbox) -> None:
    """What ``kinotrakt setup`` leaves: the key, valid for an hour (the auth handler keeps real time)."""
    valid = {"setup_key": SETUP_KEY, "setup_key_expires_at": int(time.time()) + 3600}
    update_secret(box.trakt_store(), lambda s: s.model_copy(update=valid))


@pytest.fixture(scope="module")
def captured() -> Captured:
    sync_out, auth_out = io.StringIO(), io.StringIO()
    metrics.clear_metrics()  # one Metrics object per process: start from nothing
    with sandbox(seed=seed_demo_library) as box:
        give_a_setup_key(box)
        # One passing Kinopub hiccup: the transport's warning names the remote service and is retried away
        box.kinopub.add_fault("GET", r"/v1/history", status=503, times=1)
        with output_to(sync_out):
            assert box.invoke()["status"] == "ok"  # adds, skips, leaves items unmatched
            assert box.invoke({"dry_run": True})["dry_run"] is True
            # Kinopub asks for a pause longer than a run may wait: partial, rate_limited, resume_after
            box.kinopub.add_fault("GET", r"/v1/history", status=429, headers={"Retry-After": "300"})
            assert box.invoke()["resume_after"] is not None
            seed_other_tools_plays(box.trakt)
            assert box.invoke({"action": "audit"})["duplicates_found"] > 0
            assert box.invoke({"action": "audit", "fix": ["duplicates"]})["duplicates_removed"] > 0
        with output_to(auth_out):
            drive_logins(box)
        update_secret(box.kinopub_store(), _without_tokens)  # every run reads Kinopub first
        with output_to(sync_out):
            assert box.invoke()["status"] == "failed"
            assert box.invoke({"action": "audit"})["status"] == "failed"
    lines = {"SyncFunctionLogGroup": json_lines(sync_out, "SyncFunctionLogGroup")}
    lines["AuthFunctionLogGroup"] = json_lines(auth_out, "AuthFunctionLogGroup")
    emf = [line for line in lines["SyncFunctionLogGroup"] if "_aws" in line]
    auth_emf = [line for line in lines["AuthFunctionLogGroup"] if "_aws" in line]
    return Captured(lines, emf, auth_emf)


def _without_tokens(secret: ServiceSecret) -> ServiceSecret:
    return secret.model_copy(update={"access_token": None, "refresh_token": None, "expires_at": None})


def saved_queries() -> list[tuple[str, list[str], str]]:
    """(name after the stack's, log group logical ids, query) of every AWS::Logs::QueryDefinition."""
    found = []
    for resource in load_template()["Resources"].values():
        if resource["Type"] == "AWS::Logs::QueryDefinition":
            props = resource["Properties"]
            groups = [group["Ref"] for group in props["LogGroupNames"]]
            found.append((props["Name"]["Fn::Sub"].split("/", 1)[1], groups, props["QueryString"]))
    return found


def dashboard() -> dict[str, Any]:
    """The dashboard body, each ``${Logical}`` / ``${Logical.Attribute}`` replaced by its logical id."""
    raw = load_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body: dict[str, Any] = json.loads(re.sub(r"\$\{([^}.]+)(?:\.[^}]*)?\}", r"\1", raw))
    return body


def log_widgets() -> list[tuple[str, str]]:
    return [(w["properties"]["title"], w["properties"]["query"]) for w in dashboard()["widgets"] if w["type"] == "log"]


def metric_lines() -> list[tuple[str, list[Any]]]:
    """(where, [namespace, name, dimension, value, ...]) for every metric of our namespace that the dashboard
    graphs or an alarm watches (AWS/Lambda and AWS/SQS metrics come from AWS itself)."""
    graphed = [
        (widget["properties"]["title"], parts)
        for widget in dashboard()["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
        if (parts := [part for part in line if not isinstance(part, dict)])[0] == "Kinotrakt"
    ]
    alarms = [
        (name, [props["Namespace"], props["MetricName"], *[x for d in props["Dimensions"] for x in d.values()]])
        for name, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and (props := resource["Properties"])["Namespace"] == "Kinotrakt"
    ]
    return graphed + alarms


# --- the checks -----------------------------------------------------------------------------------------------


def test_the_capture_holds_what_the_queries_are_for(captured: Captured) -> None:
    # The situations above really happened: otherwise the checks below would prove little
    sync = captured.lines["SyncFunctionLogGroup"]
    finished = [line for line in sync if line.get("message") == "sync run finished"]
    assert [line["status"] for line in finished] == ["ok", "ok", "partial", "failed"]
    assert [line["dry_run"] for line in finished] == [False, True, False, False]
    assert any(line.get("message") == "unmatched item" for line in sync)
    assert any(line.get("remote") == "kinopub" and line["level"] == "WARNING" for line in sync)
    audits = [line for line in sync if line.get("message") == "audit run finished"]
    assert [(line["status"], line["fix"]) for line in audits] == [("ok", []), ("ok", ["duplicates"]), ("failed", [])]
    outcomes = {line.get("outcome") for line in captured.lines["AuthFunctionLogGroup"]}
    assert {
        "malformed_key",
        "wrong_key",
        "missing_key",
        "redirect",
        "linked",
        "unknown_or_used_state",
        "trakt_unavailable",
    } <= outcomes
    assert len(captured.emf) == SYNC_RUNS + AUDIT_RUNS


@pytest.mark.parametrize(("name", "groups", "query"), saved_queries(), ids=[q[0] for q in saved_queries()])
def test_each_saved_query_finds_real_lines_with_its_fields(
    captured: Captured, name: str, groups: list[str], query: str
) -> None:
    assert problems(parse(query), captured.of(groups), groups) == [], f"saved query {name!r}"


@pytest.mark.parametrize(("title", "query"), log_widgets(), ids=[w[0] for w in log_widgets()])
def test_each_dashboard_log_widget_finds_real_lines_with_its_fields(captured: Captured, title: str, query: str) -> None:
    parsed = parse(query)
    assert parsed.sources, f"widget {title!r} names no log group"
    assert problems(parsed, captured.of(parsed.sources), parsed.sources) == [], f"widget {title!r}"


@pytest.mark.parametrize(("where", "line"), metric_lines(), ids=[f"{m[0]}:{m[1][1]}" for m in metric_lines()])
def test_each_metric_of_ours_is_really_emitted_with_its_dimensions(
    captured: Captured, where: str, line: list[Any]
) -> None:
    namespace, name, *pairs = line
    dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
    login_metric = name in AUTH_METRICS
    emitted = [
        document
        for document in (captured.auth_emf if login_metric else captured.emf)
        for directive in document["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] == namespace
        and any(metric["Name"] == name for metric in directive["Metrics"])
        and sorted(dimensions) in [sorted(set_) for set_ in directive["Dimensions"]]
        and all(document.get(key) == value for key, value in dimensions.items())
    ]
    if login_metric:
        assert emitted, f"{where}: {namespace}/{name} {dimensions} is never emitted by the auth function"
    else:
        # the outcome of every run, sync or audit; a sync's counts by every sync
        runs = SYNC_RUNS + AUDIT_RUNS if name in RUN_OUTCOME_METRICS else SYNC_RUNS
        assert len(emitted) == runs, f"{where}: {namespace}/{name} {dimensions} is not emitted by every run"


def test_errors_cover_the_login_function(captured: Captured) -> None:
    # The errors query and the dashboard's error widget read the auth function's log group, where refused
    # logins are (a wrong setup key is someone probing the login URL)
    (errors,) = [q for q in saved_queries() if q[0] == "errors"]
    assert "AuthFunctionLogGroup" in errors[1]
    error_widgets = [parse(query) for title, query in log_widgets() if "errors" in title.lower()]
    assert error_widgets
    assert all("AuthFunctionLogGroup" in widget.sources for widget in error_widgets)


def test_last_runs_show_the_error_code_dry_runs_and_updates(captured: Captured) -> None:
    (last_runs,) = [q for q in saved_queries() if q[0].startswith("last runs")]
    widget = next(query for title, query in log_widgets() if title == "Last runs")
    for query in (last_runs[2], widget):
        assert {"error.code", "resume_after", "dry_run", "updated_on_trakt"} <= set(parse(query).shown)


def test_a_renamed_field_is_caught(captured: Captured) -> None:
    # Given the last-runs query with one field spelled as an older version of the code might have logged it
    (last_runs,) = [q for q in saved_queries() if q[0].startswith("last runs")]
    renamed = last_runs[2].replace("error.code", "error_code.code").replace('"sync run finished"', '"sync finished"')

    # Then the check says what is wrong
    found = problems(parse(renamed), captured.of(last_runs[1]))
    assert found == ["no line passes the filters [Condition(name='message', operator='=', values=('sync finished',))]"]
    found = problems(parse(last_runs[2].replace("error.code", "error_code.code")), captured.of(last_runs[1]))
    assert found == ["no selected line has the field error_code.code"]


def test_the_readme_names_each_saved_query_as_the_template_does() -> None:
    readme = README.read_text()
    for name, _groups, _query in saved_queries():
        assert f"`<stack>/{name}`" in readme, name
