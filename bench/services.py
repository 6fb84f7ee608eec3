"""The pipeline process's handle on the services process (bench/world.py): fakes and moto, elsewhere.

Keeping them out of the pipeline's process means its CPU time and memory are the pipeline's own (plus boto3 and
requests, as on Lambda), and the servers' threads do not compete with it for the GIL. This module imports
neither the fakes nor moto, so the measured process carries only what a Lambda would.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.bounds import Dataset
from bench.clock import SharedMicros

START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Traffic:
    """Requests the fakes received since the last look, per endpoint, and how many Trakt refused with 429."""

    by_endpoint: dict[str, int]
    throttled: int
    server_errors: int


@dataclass(frozen=True)
class NewView:
    item_id: int
    season: int
    episode: int
    at: int


@dataclass(frozen=True)
class StateSnapshot:
    """What the stored state says before a run: enough to know which rows and views it must read."""

    watermark: datetime | None
    last_full_scan: datetime | None
    ledger_keys: frozenset[str]
    refresh_due: dict[str, bool]  # per service: the access token expires within its refresh margin


class Services:
    """Start the services process (``spawn``: it shares nothing by accident) and send it commands."""

    def __init__(self, micros: SharedMicros[int], start_epoch: float) -> None:
        from bench.world import serve

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, micros, start_epoch), name="bench-services")
        self._process.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT):
            self._process.kill()
            raise RuntimeError("the services process did not start")
        self.env: dict[str, str] = self._answer()

    def _answer(self) -> Any:
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"the services process failed:\n{value}")
        return value

    def _call(self, name: str, **kwargs: Any) -> Any:
        self._conn.send((name, kwargs))
        return self._answer()

    def generate(self, **spec: Any) -> dict[str, Any]:
        """Seed both fakes with ``devkit.fakes.library.generate_library(**spec)``; its summary."""
        summary: dict[str, Any] = self._call("generate", **spec)
        return summary

    def link(self) -> None:
        """Create the table and secrets from template.yaml and store a valid token pair for both services."""
        self._call("link")

    def set_latency(self, kinopub: float, trakt: float) -> None:
        """Seconds each request to that fake moves the shared clock forward (0: time runs only in waits)."""
        self._call("set_latency", kinopub=kinopub, trakt=trakt)

    def traffic(self) -> Traffic:
        traffic: Traffic = self._call("traffic")
        return traffic

    def duplicates(self) -> int:
        return int(self._call("duplicates"))

    def dataset(self) -> Dataset:
        data: Dataset = self._call("dataset")
        return data

    def state(self) -> StateSnapshot:
        snapshot: StateSnapshot = self._call("state")
        return snapshot

    def watch_new(self, views: int, shows: int, times: list[int], seed: int) -> list[NewView]:
        """Finish ``views`` unwatched episodes spread over ``shows`` series, at ``times``."""
        added: list[NewView] = self._call("watch_new", views=views, shows=shows, times=times, seed=seed)
        return added

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("stop", {}))
                if self._conn.poll(15):
                    self._conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
            self._process.join(15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
