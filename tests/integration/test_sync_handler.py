"""The scheduled handler as Lambda runs it (Powertools decorators included): metrics, the summary log
line with the scheduler's execution id as correlation id, and the event shapes it accepts."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devkit.fakes.fake_trakt import CLOUDFLARE_403, CLOUDFLARE_429, CLOUDFLARE_RETRY_AFTER
from devkit.sandbox import Sandbox, load_handler, patched_environ, sandbox
from kinotrakt.observability import logger as powertools_logger
from kinotrakt.observability import metrics
from kinotrakt.sync.report import ItemNote, KeptPlay, SyncReport, UnmatchedNote
from tests.infrastructure.test_template import CONTRACT_METRICS
from tests.infrastructure.test_template import REPORT_FIELDS as TEMPLATE_REPORT_FIELDS
from tests.integration.test_sync_pipeline import seed_basic

# The same names the template's dashboard and alarms are checked against.
REPORT_FIELDS = {*TEMPLATE_REPORT_FIELDS, "http_calls"}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(powertools_logger.registered_formatter.format(record)))


@pytest.fixture
def box() -> Iterator[Sandbox]:
    # Powertools' Metrics is one object per process: start from an empty set, whatever ran before.
    metrics.clear_metrics()
    with sandbox(seed=seed_basic) as sb:  # the system clock: the real lambda_handler path
        yield sb


@pytest.fixture
def log_lines() -> Iterator[_Lines]:
    lines = _Lines()
    logging.getLogger("kinotrakt").addHandler(lines)
    yield lines
    logging.getLogger("kinotrakt").removeHandler(lines)


def emf_metrics(out: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "Kinotrakt"
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    values[metric["Name"]] = value[0] if isinstance(value, list) else value
    return values


def test_a_run_emits_every_design_metric_and_one_summary_line(
    box: Sandbox, capsys: pytest.CaptureFixture[str], log_lines: _Lines
) -> None:
    event = {"scheduled_time": "2026-11-27T10:00:00Z", "execution_id": "exec-1234"}
    report = box.invoke(event)
    metrics = emf_metrics(capsys.readouterr().out)
    # Then CloudWatch gets every contract metric (docs/contract.md#metrics), with this run's figures
    assert set(metrics) >= set(CONTRACT_METRICS)
    assert metrics["AddedMovies"] == 2
    assert metrics["AddedEpisodes"] == 3
    assert metrics["RunFailed"] == 0
    assert metrics["HttpCalls"] == report["http_calls"]["kinopub"] + report["http_calls"]["trakt"]
    # And one "sync run finished" line carries the report, correlated with the scheduler's execution id
    finished = [r for r in log_lines.records if r["message"] == "sync run finished"]
    assert len(finished) == 1
    assert set(finished[0]) >= REPORT_FIELDS
    assert finished[0]["correlation_id"] == "exec-1234"
    assert finished[0]["status"] == "ok"


def test_a_failed_run_is_a_report_and_a_runfailed_metric_not_a_lambda_error(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the Trakt link was revoked: no valid refresh token
    store = box.trakt_store()
    stored = store.load()
    store.save(
        stored.secret.model_copy(update={"refresh_token": None, "access_token": None}), expected_version=stored.version
    )
    report = box.invoke({})
    metrics = emf_metrics(capsys.readouterr().out)
    assert report["status"] == "failed"
    assert report["error"]["code"] == "relink_required"
    assert "kinotrakt link trakt" in report["error"]["message"]
    assert metrics["RunFailed"] == 1
    assert metrics["AuthRequired"] == 1


@pytest.mark.parametrize(
    ("status", "updated", "counted"),
    [
        pytest.param(200, {"movies": 1, "episodes": 2}, 3, id="2026 contract, 200"),
        pytest.param(201, {"movies": 0, "episodes": 0}, 0, id="201, nothing updated"),
        pytest.param(201, None, 0, id="updated null"),
        pytest.param(202, "absent", 0, id="no updated block"),
    ],
)
def test_the_write_answers_updated_block_is_counted_and_logged(
    box: Sandbox, log_lines: _Lines, status: int, updated: object, counted: int
) -> None:
    # Given Trakt answers the history write with any 2xx, with or without an `updated` block
    answer: dict[str, object] = {"added": {"movies": 2, "episodes": 3}, "not_found": {}}
    if updated != "absent":
        answer["updated"] = updated
    box.trakt.add_fault("POST", r"/sync/history", status=status, body=json.dumps(answer))

    # When the run sends its batch
    report = box.invoke({})

    # Then the batch is a success, and the report and the log say how many plays Trakt updated
    assert report["status"] == "ok"
    assert (report["added_movies"], report["added_episodes"]) == (2, 3)
    assert report["updated_on_trakt"] == counted
    written = [r for r in log_lines.records if r["message"] == "history batch written"]
    assert [(r["updated_movies"], r["updated_episodes"]) for r in written] == [
        (updated["movies"], updated["episodes"]) if isinstance(updated, dict) else (0, 0)
    ]
    assert report["watermark"] is not None


def test_a_trakt_app_trakt_deleted_fails_the_run_and_raises_the_auth_alarm(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Trakt deleted the API app (2026: every request with its client id gets a JSON 403)
    box.trakt.app_deleted = True

    # When the scheduled run comes
    report = box.invoke({})
    metrics = emf_metrics(capsys.readouterr().out)

    # Then it fails with what happened and what to do, nothing is written, the watermark stays
    assert report["status"] == "failed"
    assert report["error"]["code"] == "trakt_app_rejected"
    assert "deleted or not approved" in report["error"]["message"]
    assert "kinotrakt setup" in report["error"]["message"]
    assert box.trakt.plays() == []
    assert report["watermark"] is None
    # and the alarms see it: a failed run that needs the user
    assert metrics["RunFailed"] == 1
    assert metrics["AuthRequired"] == 1


def test_a_cloudflare_block_stays_distinct_from_a_rejected_app(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Trakt's Cloudflare front answers every request with its HTML 403 page
    box.trakt.add_fault("*", r"/.*", status=403, body=CLOUDFLARE_403, content_type="text/html", times=-1)

    # When the scheduled run comes
    report = box.invoke({})
    metrics = emf_metrics(capsys.readouterr().out)

    # Then it fails as a Cloudflare block, which linking again would not fix: no AuthRequired
    assert report["error"]["code"] == "trakt_cloudflare_blocked"
    assert metrics["RunFailed"] == 1
    assert metrics["AuthRequired"] == 0


@pytest.mark.parametrize("event", [{}, {"dry_run": True}, {"scheduled_time": "x", "execution_id": "y", "extra": 1}])
def test_accepted_events(box: Sandbox, event: dict[str, object]) -> None:
    assert box.invoke(event)["status"] == "ok"


@pytest.mark.parametrize("event", [{"dry_run": "yes"}, {"dry_run": 1}, ["not", "an", "object"]])
def test_malformed_events_are_refused_before_any_call(box: Sandbox, event: object) -> None:
    with pytest.raises(ValueError, match="unexpected sync event"):
        box.invoke(event)
    assert box.kinopub.requests == []
    assert box.trakt.requests == []


def test_a_cloudflare_429_ends_the_run_partial_rate_limited_without_one_more_trakt_request(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Trakt's GET budget already spent: Cloudflare answers every read with its HTML 429, Retry-After: 300
    # and no X-Ratelimit header (docs/trakt.md#limits-and-errors, 2026)
    box.trakt.add_fault(
        "GET",
        r"/.*",
        status=429,
        body=CLOUDFLARE_429,
        headers={"Server": "cloudflare", "Retry-After": str(CLOUDFLARE_RETRY_AFTER)},
        content_type="text/html; charset=UTF-8",
        times=-1,
    )

    # When the scheduled run meets it
    report = box.invoke({})

    # Then the run ends partial with rate_limited, says it is Trakt and from when it may go on, never waited
    # 5 minutes, sent Trakt not one more request, wrote nothing and left the watermark alone
    assert report["status"] == "partial"
    assert report["error"]["code"] == "rate_limited"
    assert "Trakt" in report["error"]["message"]
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["error"]["message"])
    assert report["http_calls"]["trakt"] == 1
    assert len(box.trakt.requests) == 1
    assert box.trakt.play_keys() == []
    assert report["watermark"] is None
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["RunPartial"] == 1
    assert metrics["RunFailed"] == 0


def test_the_summary_line_of_a_run_with_every_list_full_of_long_titles_stays_under_cloudwatchs_limit(
    box: Sandbox, log_lines: _Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run whose every list is full: thousands of views with 300-character Cyrillic titles and details
    title = ("Очень длинное название " * 20)[:300]
    detail = "Подробности несовпадения номеров " * 30
    big = SyncReport(run_id="big", started_at=datetime(2026, 11, 1, tzinfo=UTC), unmatched=5000, candidates=9000)
    big.added = [f"{title} S01E{n % 99:02d} @ 2026-11-01T12:00Z" for n in range(2000)]
    big.unmatched_items = [UnmatchedNote(n, title, "numbering_mismatch", detail, 1, n % 99) for n in range(5000)]
    big.failed_items = [ItemNote(n, title, detail) for n in range(1000)]
    big.skipped_items = [ItemNote(n, title, detail) for n in range(1000)]
    big.kept_plays = [KeptPlay(title, detail) for _ in range(1000)]
    with patched_environ(box.env):
        handler = load_handler("sync")
    monkeypatch.setattr(handler, "execute_sync", lambda *args, **kwargs: big)

    # When the handler returns it
    returned = handler.handle({}, None, stores=box.stores())

    # Then it returns the report as the contract has it (lists cut at 50); its one log line stays under
    # CloudWatch's 256 KB with every count, the lists cut further, each with a line counting what was cut
    assert len(returned["unmatched_items"]) == 51
    (finished,) = [r for r in log_lines.records if r["message"] == "sync run finished"]
    line = json.dumps(finished, ensure_ascii=False, separators=(",", ":"))  # as Powertools writes it
    assert len(line.encode()) < 256 * 1024
    assert (finished["unmatched"], finished["candidates"]) == (5000, 9000)
    for name, total in (("added", 2000), ("unmatched_items", 5000), ("kept_plays", 1000)):
        entries = finished[name]
        assert isinstance(entries, list)
        assert entries[-1] == f"... and {total - (len(entries) - 1)} more"
