"""The bench's measured process holds only what a Lambda would (issue 15.8): the worker (bench/worker.py) runs the
real handler and reports its peak RSS, so neither it nor its handle on the services process (bench/services.py)
may import the fakes, moto or its web server — at any depth, lazily or not. Those live in the services process
(bench/world.py), which bench/services.py starts by the module's name."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

from bench.services import WORLD_MODULE
from bench.worker import SERVICES_ONLY

REPO = Path(__file__).resolve().parents[2]
# The measured process runs these: the worker, its handle on the services process, and the handler it loads.
MEASURED_ENTRY_POINTS = [REPO / "bench" / "worker.py", REPO / "bench" / "services.py", REPO / "functions/sync/app.py"]
# First-party packages the walk follows into, by where their modules live.
ROOTS = {"bench": REPO, "kinotrakt": REPO / "layers" / "kinotrakt", "devkit": REPO, "tests": REPO, "chaos": REPO}
# Besides the services-only packages: dev tooling that would pull them in.
DEV_TOOLING = {"devkit", "tests", "chaos", "yaml", "pytest", "hypothesis", "responses", "flask"}


def module_file(name: str) -> Path | None:
    """The repository file of a first-party module (``bench.world`` -> bench/world.py), None for the rest."""
    root = ROOTS.get(name.split(".", maxsplit=1)[0])
    if root is None:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports included); ``from a import b`` also names
    ``a.b``, which is a module when b is one."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def reachable_modules(entry_points: list[Path]) -> set[str]:
    """Every module the entry points import, following first-party modules (and their parent packages)."""
    seen: set[str] = set()
    todo = list(entry_points)
    visited: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in imports_of(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                found = module_file(module)
                if found is None and depth > 1:
                    continue  # ``from a import b`` where b is a name, not a module
                seen.add(module)
                if found is not None:
                    todo.append(found)
    return seen


def test_the_walk_follows_the_worker_into_the_bench_and_the_layer() -> None:
    reached = reachable_modules(MEASURED_ENTRY_POINTS)
    assert {"bench.services", "bench.messages", "bench.clock", "bench.bounds", "kinotrakt.sync.pipeline"} <= reached


def test_the_walk_follows_a_lazy_import_through_the_modules_it_reaches(tmp_path: Path) -> None:
    # Given a file that imports the world inside a function
    entry = tmp_path / "entry.py"
    entry.write_text("def f():\n    import bench.world\n")

    # Then the walk reaches the world and, through it, the fakes and the sandbox
    assert {"bench.world", "devkit.fakes.fake_trakt", "devkit.sandbox"} <= reachable_modules([entry])


def test_the_measured_process_never_imports_the_world_the_fakes_or_moto() -> None:
    reached = reachable_modules(MEASURED_ENTRY_POINTS)
    top_level = {name.split(".")[0] for name in reached}
    assert WORLD_MODULE not in reached
    assert not top_level & (SERVICES_ONLY | DEV_TOOLING), sorted(top_level & (SERVICES_ONLY | DEV_TOOLING))


def test_the_services_process_entry_names_a_module_that_serves() -> None:
    # The name is resolved only in the services process; a wrong one would fail there, at bench time.
    assert callable(importlib.import_module(WORLD_MODULE).serve)


def test_importing_the_worker_loads_nothing_only_the_services_process_may_hold() -> None:
    """At run time too: a fresh interpreter that imports the worker and the services handle has none of them."""
    script = "import json, bench.worker, bench.services; print(json.dumps(bench.worker.services_only_modules()))"
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own script
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO / 'layers' / 'kinotrakt'}:{REPO}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
