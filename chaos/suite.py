"""Many schedules, in parallel processes, summed up into the figures the suite prints."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from chaos.faults import CATALOGUE, EVENTS, RELINKED
from chaos.runner import ScheduleResult, run_schedule


@dataclass
class SuiteResult:
    schedules: int = 0
    duplicates: int = 0
    lost: int = 0
    leaked: int = 0
    wrong: int = 0
    removed_wrongly: int = 0
    removed: int = 0
    removals_unanswered: int = 0
    lease_violations: int = 0
    unconverged: int = 0
    max_converge: int = 0
    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    armed: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    failures: list[ScheduleResult] = field(default_factory=list)
    slowest: float = 0.0

    def add(self, result: ScheduleResult) -> None:
        self.schedules += 1
        self.duplicates += result.duplicates
        self.lost += result.lost
        self.leaked += result.leaked
        self.wrong += result.wrong
        self.removed_wrongly += result.removed_wrongly
        self.removed += result.removed
        self.removals_unanswered += result.removals_unanswered
        self.lease_violations += result.lease_violations
        self.runs += result.runs
        if result.converge_runs is None:
            self.unconverged += 1
        else:
            self.max_converge = max(self.max_converge, result.converge_runs)
        self.statuses.update(result.statuses)
        self.reasons.update(result.reasons)
        self.armed.update(result.armed)
        self.fired.update(result.fired)
        self.events.update(result.events)
        self.slowest = max(self.slowest, result.seconds)
        if result.failed:
            self.failures.append(result)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary_line(self) -> str:
        return (
            f"chaos: {self.schedules} schedules, {self.duplicates} duplicates, {self.lost} lost, "
            f"{self.leaked} leaked, {self.removed_wrongly} removed wrongly, max {self.max_converge} runs to converge"
        )

    def report(self) -> list[str]:
        """The per-fault table, run outcomes, other checks, then the summary line (last)."""
        width = max(len(name) for name in [*CATALOGUE, *EVENTS, RELINKED])
        lines = [f"{'fault':<{width}}  {'armed':>6}  {'fired':>6}"]
        lines += [f"{name:<{width}}  {self.armed[name]:>6}  {self.fired[name]:>6}" for name in CATALOGUE]
        lines += ["", f"{'between runs':<{width}}  {'':>6}  {'times':>6}"]
        lines += [f"{name:<{width}}  {'':>6}  {self.events[name]:>6}" for name in [*EVENTS, RELINKED]]
        outcomes = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        lines += [
            "",
            f"runs: {self.runs} ({outcomes})",
            *(f"  {count:>5} {reason}" for reason, count in self.reasons.most_common()),
            f"checks: {self.wrong} posted but not completed, {self.lease_violations} lease violations, "
            f"{self.unconverged} not converged; slowest schedule {self.slowest:.1f}s",
            f"audits removed {self.removed} plays ({self.removals_unanswered} removal requests met a fault), "
            f"{self.removed_wrongly} of them not an exact duplicate of an older play left on Trakt",
        ]
        for failure in self.failures:
            lines.append(f"FAILED seed {failure.seed}: replay with `make chaos SEED={failure.seed} SCHEDULES=1`")
            lines += [f"  {problem}" for problem in failure.problems[:10]]
            lines += [f"    {step}" for step in failure.trace]
        lines.append(self.summary_line())
        return lines


def run_suite(
    seeds: Iterable[int], *, workers: int = 1, progress: Callable[[ScheduleResult], None] | None = None
) -> SuiteResult:
    """Run every seed's schedule (in ``workers`` processes when more than one) and sum the results."""
    suite = SuiteResult()
    seeds = list(seeds)
    if workers <= 1:
        results: Iterable[ScheduleResult] = map(run_schedule, seeds)
        for result in results:
            suite.add(result)
            if progress is not None:
                progress(result)
        return suite
    # spawn: each worker imports afresh (moto, botocore and threads do not survive a fork reliably).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for result in pool.map(run_schedule, seeds, chunksize=4):
            suite.add(result)
            if progress is not None:
                progress(result)
    return suite
