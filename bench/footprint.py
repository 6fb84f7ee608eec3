"""What a cold start pays before the first event: the sync handler's imports, and the layer Lambda unpacks.

- Import time: ``python -X importtime -c "import app"`` in fresh processes, the handler imported as Lambda does
  (``functions/sync`` and the layer on ``sys.path``). The figure is the sum of the cumulative times of the
  top-level imports that interpreter start-up does not already make; the best of a few runs (the least
  disturbed by whatever else the machine is doing; the median is kept too), after one run that writes the
  bytecode caches. boto3 is imported on the first event (functions/sync/app.py), so it is measured apart as
  the first event's extra import.
- Layer size: ``.aws-sam/build/KinotraktLayer`` when ``sam build`` has run; otherwise the layer is assembled
  the way SAM's python3.13/arm64 build does it — the pinned requirements as manylinux2014 aarch64 wheels for
  CPython 3.13 into ``build/layer/python``, plus the kinotrakt package — and measured unzipped (and zipped).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
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
class ImportTime:
    handler_ms: float  # the best importtime sum of `import app`
    handler_median_ms: float  # the median of the same runs
    handler_wall_ms: float  # the best wall time of the same import, timed from inside the process
    handler_cpu_ms: float  # the best CPU time of that import (steadier than wall time on a busy machine)
    first_event_ms: float  # the best extra import on the first event (boto3 and the AWS adapters)
    runs: int


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


def _importtime(code: str) -> tuple[dict[str, int], str]:
    """Top-level cumulative import times (µs) by module, and the program's stdout."""
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_handler_env(),
        cwd=REPO,
        check=True,
    )
    top: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
            top[name.strip()] = top.get(name.strip(), 0) + int(cumulative)
    return top, done.stdout


def measure_import(runs: int = 5) -> ImportTime:
    startup, _ = _importtime("pass")
    timed = (
        "import time; t, c = time.perf_counter(), time.process_time(); import app; "
        "t1, c1 = time.perf_counter(), time.process_time(); import kinotrakt.storage.aws; "
        "t2 = time.perf_counter(); print((t1 - t) * 1000, (c1 - c) * 1000, (t2 - t1) * 1000)"
    )
    _importtime(timed)  # writes the bytecode caches, as a built layer ships them
    sums: list[float] = []
    walls: list[float] = []
    cpus: list[float] = []
    first_events: list[float] = []
    for _ in range(runs):
        top, out = _importtime(timed)
        handler = sum(us for name, us in top.items() if name not in startup and not _first_event(name))
        sums.append(handler / 1000)
        wall, cpu, first_event = (float(x) for x in out.split())
        walls.append(wall)
        cpus.append(cpu)
        first_events.append(first_event)
    return ImportTime(
        handler_ms=round(min(sums), 1),
        handler_median_ms=round(statistics.median(sums), 1),
        handler_wall_ms=round(min(walls), 1),
        handler_cpu_ms=round(min(cpus), 1),
        first_event_ms=round(min(first_events), 1),
        runs=runs,
    )


def _first_event(module: str) -> bool:
    return module in {"kinotrakt.storage.aws", "kinotrakt.storage", "boto3", "botocore"}


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
