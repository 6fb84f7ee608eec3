"""The pipeline process's handle on the services process (bench/world.py): fakes and moto, elsewhere.

Keeping them out of the pipeline's process means its CPU time and memory are the pipeline's own (plus boto3 and
requests, as on Lambda), and the servers' threads do not compete with it for the GIL. Neither this module nor
bench/worker.py imports bench/world.py, the fakes or moto, not even lazily: the services process is started at
``_services_main``, which imports the world by name only once it runs there (``spawn`` pickles the target by
its module and name, so naming ``bench.world.serve`` here would import the world into the measured process).
tests/unit/test_bench_imports.py walks these imports, and bench/worker.py checks ``sys.modules`` after a run.
"""

from __future__ import annotations

import importlib
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from bench.bounds import Dataset
from bench.clock import SharedMicros
from bench.messages import NewView, ReplayCall, StateSnapshot, Traffic

START_TIMEOUT = 120.0
# The services process's module (fakes, moto): imported by name, in that process only.
WORLD_MODULE = "bench.world"


def _services_main(conn: Connection, micros: SharedMicros[int], start_epoch: float) -> None:
    """The services process's entry point: the world is imported here, in that process."""
    importlib.import_module(WORLD_MODULE).serve(conn, micros, start_epoch)


class Services:
    """Start the services process (``spawn``: it shares nothing by accident) and send it commands."""

    def __init__(self, micros: SharedMicros[int], start_epoch: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_services_main, args=(child, micros, start_epoch), name="bench-services")
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

    def record(self) -> None:
        """Record every request (and its answer) from now on."""
        self._call("record")

    def recorded(self) -> list[ReplayCall]:
        """Stop recording; the requests recorded, in order, as the baseline sends them again."""
        calls: list[ReplayCall] = self._call("recorded")
        return calls

    def playback(self, on: bool) -> None:
        """While on, the fakes answer each request with the next recorded answer and change nothing."""
        self._call("playback", on=on)

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
