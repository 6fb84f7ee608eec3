"""What a cold start pays before the first event: the sync handler's imports, and the layer Lambda unpacks.

- Import ratio (issue 17): the handler's import (``import app`` and what the first event imports: boto3 and the
  AWS adapters) against the import of its third-party dependencies alone — the very modules the handler's own
  code imports from boto3, requests, pydantic, Powertools and the rest, found by reading its imports — each in
  fresh processes, alternately, best of a few (wall time, timed from inside the process), in the same run. The
  handler's process also reports its resident memory after the imports, before any event.
- Layer size: ``.aws-sam/build/KinotraktLayer`` when ``sam build`` has run; otherwise the layer is assembled
  the way SAM's python3.13/arm64 build does it — the pinned requirements as manylinux2014 aarch64 wheels for
  CPython 3.13 into ``build/layer/python``, plus the kinotrakt package — and measured unzipped (and zipped).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER_SOURCE = REPO / "layers" / "kinotrakt"
SAM_LAYER = REPO / ".aws-sam" / "build" / "KinotraktLayer"
BUILD_LAYER = REPO / "build" / "layer"
PIP_PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version",
    "3.13",
    "--implementation",
    "cp",
)
MB = 1024 * 1024


@dataclass(frozen=True)
class LayerSize:
    unzipped_mb: float | None
    zipped_mb: float | None
    source: str  # where the layer came from, or why it could not be measured


def _handler_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "KINOPUB_", "TRAKT_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(LAYER_SOURCE), str(REPO / "functions" / "sync")])
    env.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    return env


# Run in a fresh process: import the handler as Lambda does (and what its first event imports), time it, and
# name the third-party modules its own code imports (the ones that got imported).
_HANDLER_PROBE = """
import ast, sys, time
t = time.perf_counter()
import app
import kinotrakt.storage.aws
spent = time.perf_counter() - t
rss = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmRSS:'))
ours = [m for name, m in list(sys.modules.items()) if name == 'app' or name.split('.')[0] == 'kinotrakt']
third = set()
for module in ours:
    for node in ast.walk(ast.parse(open(module.__file__, encoding='utf-8').read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        skip = sys.stdlib_module_names | {'kinotrakt'}
        third.update(n for n in names if n.split('.')[0] not in skip and n in sys.modules)
print(spent * 1000, rss / 1024, ' '.join(sorted(third)))
"""
_DEPENDENCIES_PROBE = """
import importlib, sys, time
t = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
print((time.perf_counter() - t) * 1000)
"""


@dataclass(frozen=True)
class ImportRatio:
    handler_ms: float  # best wall time of the handler's import and its first event's
    dependencies_ms: float  # best wall time of importing the same third-party modules alone
    handler_rss_mb: float  # resident memory of a process that has imported the handler and nothing else
    dependencies: tuple[str, ...]
    runs: int

    @property
    def ratio(self) -> float:
        return round(self.handler_ms / self.dependencies_ms, 3) if self.dependencies_ms else float("inf")


def _probe(code: str, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=_handler_env(), cwd=REPO, check=True
    )
    return done.stdout.strip()


def measure_import_ratio(runs: int = 5) -> ImportRatio:
    """The handler's import against its third-party dependencies' alone, alternately in fresh processes (the
    first run of each writes the bytecode caches, as a built layer ships them)."""
    _, _, names = _probe(_HANDLER_PROBE).split(" ", 2)
    dependencies = tuple(names.split())
    _probe(_DEPENDENCIES_PROBE, *dependencies)
    handler: list[float] = []
    rss: list[float] = []
    alone: list[float] = []
    for _ in range(runs):
        spent, resident, _ = _probe(_HANDLER_PROBE).split(" ", 2)
        handler.append(float(spent))
        rss.append(float(resident))
        alone.append(float(_probe(_DEPENDENCIES_PROBE, *dependencies)))
    return ImportRatio(round(min(handler), 1), round(min(alone), 1), round(min(rss), 1), dependencies, runs)


def _tree_bytes(root: Path) -> int:
    return sum(path.lstat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def _zipped_bytes(root: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(root))
    return archive.stat().st_size


def measure_layer() -> LayerSize:
    if SAM_LAYER.is_dir():
        root, source = SAM_LAYER, ".aws-sam/build/KinotraktLayer (sam build)"
    else:
        try:
            root = _assemble_layer()
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = exc.stderr.strip().splitlines()[-1:] if isinstance(exc, subprocess.CalledProcessError) else []
            return LayerSize(None, None, f"could not assemble the layer: {exc} {' '.join(detail)}".strip())
        source = "build/layer (pip --platform manylinux2014_aarch64, CPython 3.13, + kinotrakt)"
    unzipped = _tree_bytes(root)
    zipped = _zipped_bytes(root, BUILD_LAYER.parent / "layer.zip")
    return LayerSize(round(unzipped / MB, 2), round(zipped / MB, 2), source)


def _assemble_layer() -> Path:
    """``build/layer``: ``python/`` with the pinned wheels (reused while requirements.txt is unchanged) and a
    fresh copy of the kinotrakt package."""
    requirements = LAYER_SOURCE / "requirements.txt"
    stamp = hashlib.sha256(requirements.read_bytes() + " ".join(PIP_PLATFORM).encode()).hexdigest()
    site = BUILD_LAYER / "python"
    stamp_file = BUILD_LAYER / ".requirements.sha256"
    if not stamp_file.is_file() or stamp_file.read_text() != stamp:
        shutil.rmtree(BUILD_LAYER, ignore_errors=True)
        site.mkdir(parents=True)
        subprocess.run(  # noqa: S603 - our own interpreter's pip, fixed arguments
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(site),
                *PIP_PLATFORM,
                "-r",
                str(requirements),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        stamp_file.write_text(stamp)
    package = site / "kinotrakt"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(LAYER_SOURCE / "kinotrakt", package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return site
