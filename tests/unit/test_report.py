"""The run report: the runtime contract's JSON from the typed model, and the tolerant read of stored reports
that ``kinotrakt status`` shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from kinotrakt.errors import OutOfTime, RateLimited, TraktAppRejected
from kinotrakt.sync.report import HttpCalls, ItemNote, KeptPlay, RunError, SyncReport, UnmatchedNote

STARTED = datetime(2026, 11, 1, 12, 0, 5, 250_000, tzinfo=UTC)


def finished_report() -> SyncReport:
    return SyncReport(
        run_id="exec-1",
        started_at=STARTED,
        status="partial",
        full_scan=True,
        candidates=7,
        added_movies=2,
        added_episodes=3,
        skipped_duplicates=1,
        not_found=1,
        updated_on_trakt=1,
        unmatched=2,
        watermark=datetime(2026, 10, 31, 9, 30, 15, 999_000, tzinfo=UTC),
        http_calls=HttpCalls(kinopub=12, trakt=9),
        items_examined=4,
        finished_at=STARTED + timedelta(seconds=40),
        error=RunError("out_of_time", "Kinopub reading paused; the next run continues"),
        added=["Начало / Inception (2010) @ 2025-02-08T21:47Z"],
        unmatched_items=[UnmatchedNote(7, "Scrubs", "episode_not_on_trakt", "no S10E01", 10, 1)],
        failed_items=[ItemNote(9, "Broken", "HTML instead of JSON")],
        skipped_items=[ItemNote(8, "Trailer", "unknown_type: trailer")],
        kept_plays=[KeptPlay("Кон-Тики / Kon-Tiki (2012)", "part 2 re-opened, not watched again")],
    )


def test_the_report_serialises_to_the_contract_json() -> None:
    # When a finished run's report is turned into the handler's return value
    data = finished_report().to_dict()
    # Then the contract's fields have their names and JSON forms: integers, ISO times with Z, nested objects
    assert json.loads(json.dumps(data)) == {
        "run_id": "exec-1",
        "started_at": "2026-11-01T12:00:05.250Z",
        "dry_run": False,
        "status": "partial",
        "full_scan": True,
        "candidates": 7,
        "added_movies": 2,
        "added_episodes": 3,
        "skipped_duplicates": 1,
        "not_found": 1,
        "updated_on_trakt": 1,
        "unmatched": 2,
        "watermark": "2026-10-31T09:30:15Z",
        "http_calls": {"kinopub": 12, "trakt": 9},
        "items_examined": 4,
        "finished_at": "2026-11-01T12:00:45.250Z",
        "error": {"code": "out_of_time", "message": "Kinopub reading paused; the next run continues"},
        "resume_after": None,
        "added": ["Начало / Inception (2010) @ 2025-02-08T21:47Z"],
        "unmatched_items": [
            {
                "kinopub_id": 7,
                "title": "Scrubs",
                "reason": "episode_not_on_trakt",
                "detail": "no S10E01",
                "season": 10,
                "episode": 1,
            }
        ],
        "failed_items": [{"kinopub_id": 9, "title": "Broken", "reason": "HTML instead of JSON"}],
        "skipped_items": [{"kinopub_id": 8, "title": "Trailer", "reason": "unknown_type: trailer"}],
        "kept_plays": [{"title": "Кон-Тики / Kon-Tiki (2012)", "detail": "part 2 re-opened, not watched again"}],
        "lease_held_since": None,
        "lease_held_until": None,
    }


def test_a_skipped_run_says_since_when_and_until_when_the_lease_is_held() -> None:
    # Given a run that found the lease held by another run
    report = SyncReport(
        run_id="r",
        started_at=STARTED,
        status="skipped",
        lease_held_since=datetime(2026, 11, 1, 11, 55, tzinfo=UTC),
        lease_held_until=datetime(2026, 11, 1, 12, 11, tzinfo=UTC),
    )
    # When it is serialised and read back
    data = json.loads(json.dumps(report.to_dict()))
    # Then both times are there, in the contract's form, and read back as they were
    assert (data["lease_held_since"], data["lease_held_until"]) == ("2026-11-01T11:55:00Z", "2026-11-01T12:11:00Z")
    assert SyncReport.from_stored(data) == report


def test_a_fresh_report_has_null_times_and_zero_counts() -> None:
    data = SyncReport(run_id="r", started_at=STARTED).to_dict()
    assert (data["status"], data["watermark"], data["finished_at"], data["error"]) == ("ok", None, None, None)
    assert data["resume_after"] is None
    assert data["http_calls"] == {"kinopub": 0, "trakt": 0}
    assert data["candidates"] == data["added_movies"] == data["unmatched"] == 0


def test_long_lists_are_cut_with_a_count_of_the_rest() -> None:
    report = SyncReport(run_id="r", started_at=STARTED, added=[f"Show S01E{n:02d}" for n in range(1, 61)])
    added = report.to_dict()["added"]
    assert len(added) == 51
    assert added[-2:] == ["Show S01E50", "... and 10 more"]


def test_a_stored_report_reads_back_as_the_model() -> None:
    # Given a report as the report store keeps it (the contract JSON)
    stored = json.loads(json.dumps(finished_report().to_dict()))
    # When `status` reads it
    report = SyncReport.from_stored(stored)
    # Then it is the run's report again (times to the precision the contract keeps)
    expected = finished_report()
    expected.watermark = datetime(2026, 10, 31, 9, 30, 15, tzinfo=UTC)
    assert report == expected


def test_a_stored_report_with_missing_or_odd_fields_still_reads() -> None:
    # Given a report written by another version: a few counts only, odd values, a cut list
    stored = {
        "status": "ok",
        "started_at": "2026-11-01T11:00:00.000Z",
        "candidates": 7,
        "added_movies": "2",
        "unmatched": True,
        "error": "not an object",
        "added": ["A @ 2025-01-01T10:00Z", 5, "... and 3 more"],
        "failed_items": ["... and 1 more", {"kinopub_id": 9}],
    }
    report = SyncReport.from_stored(stored)
    # Then what is readable is kept, the rest takes its default
    assert report is not None
    assert report.started_at == datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
    assert (report.status, report.candidates, report.added_movies, report.unmatched) == ("ok", 7, 0, 0)
    assert report.run_id == ""
    assert report.error is None
    assert report.added == ["A @ 2025-01-01T10:00Z"]
    assert report.failed_items == [ItemNote(9, "", "")]
    assert report.http_calls == HttpCalls(0, 0)


def test_what_is_not_a_run_report_reads_as_none() -> None:
    assert SyncReport.from_stored({}) is None
    assert SyncReport.from_stored(["ok"]) is None
    assert SyncReport.from_stored({"status": "ok", "started_at": "yesterday"}) is None
    assert SyncReport.from_stored({"status": "audit", "started_at": "2026-11-01T11:00:00.000Z"}) is None


RESUME = datetime(2026, 11, 1, 12, 5, 5, tzinfo=UTC)


def test_a_rate_limited_run_says_when_it_may_resume_and_reads_back() -> None:
    # Given a run Trakt rate-limited until a moment with a fraction of a second
    report = SyncReport(run_id="r", started_at=STARTED, status="partial")
    report.stopped_by(RateLimited("trakt", RESUME - timedelta(milliseconds=750)))
    # Then the contract JSON names the code, the service and the time, rounded up to the second
    data = json.loads(json.dumps(report.to_dict()))
    assert data["error"]["code"] == "rate_limited"
    assert data["error"]["message"].startswith("Trakt rate limit")
    assert "2026-11-01T12:05:05Z" in data["error"]["message"]
    assert data["resume_after"] == "2026-11-01T12:05:05Z"
    # and `status` reads it back
    stored = SyncReport.from_stored(data)
    assert stored is not None
    assert stored.resume_after == RESUME


def test_a_rate_limit_stays_the_error_when_the_deadline_follows_and_both_services_are_named() -> None:
    report = SyncReport(run_id="r", started_at=STARTED)
    # Given Kinopub rate-limited the reading, then the deadline stopped the push
    report.stopped_by(RateLimited("kinopub", RESUME))
    report.stopped_by(OutOfTime("trakt: waiting 40.0s (GET budget) would cross the Lambda deadline"))
    # Then the run still says when it may go on
    assert report.error is not None
    assert report.error.code == "rate_limited"
    assert report.resume_after == RESUME
    # When Trakt rate-limits it too, for longer: both are named, the later time wins
    report.stopped_by(RateLimited("trakt", RESUME + timedelta(minutes=4)))
    assert report.error.message.startswith("Kinopub rate limit")
    assert "; Trakt rate limit" in report.error.message
    assert report.resume_after == RESUME + timedelta(minutes=4)
    # And the other way round the earlier time does not win either
    report.stopped_by(RateLimited("kinopub", RESUME))
    assert report.resume_after == RESUME + timedelta(minutes=4)


def test_an_error_the_user_must_fix_replaces_a_rate_limit() -> None:
    report = SyncReport(run_id="r", started_at=STARTED)
    report.stopped_by(RateLimited("kinopub", RESUME))
    report.stopped_by(TraktAppRejected())
    assert report.error is not None
    assert report.error.code == "trakt_app_rejected"
    assert report.resume_after is None
