"""How long a run holds the account's lease: long enough that no second run starts while it may still be sending,
the same for a sync and an audit (they share the lease)."""

from __future__ import annotations

from datetime import timedelta

from kinotrakt.audit.run import AuditOptions
from kinotrakt.service import run_lease
from kinotrakt.storage.ports import DEFAULT_LEASE
from kinotrakt.sync.pipeline import SyncOptions

LAMBDA_LONGEST_RUN = timedelta(minutes=15)


def test_a_run_of_unknown_length_holds_the_lease_past_lambdas_longest_run() -> None:
    # A run without a Lambda context (the CLI, a test) cannot know its deadline
    assert run_lease(None) == DEFAULT_LEASE
    assert DEFAULT_LEASE > LAMBDA_LONGEST_RUN
    # and a sync and an audit built without one hold it as long as each other (they were 15 and 16 minutes)
    assert SyncOptions().lease == AuditOptions().lease == DEFAULT_LEASE


def test_a_lambda_run_holds_the_lease_a_minute_past_its_time_left() -> None:
    assert run_lease(600) == timedelta(minutes=11)
    assert run_lease(899.5) == timedelta(seconds=959.5)
