"""What Lambda runs imports only what Lambda has: the layer's own package, its pinned dependencies and the
runtime's boto3. Dev tooling (the fakes, the sandbox, the in-memory stores, the CLI) never ships in the layer,
so an import of it from ``layers/`` or ``functions/`` would break the deployed function on its first call."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAMBDA_CODE = sorted([*(REPO / "layers").rglob("*.py"), *(REPO / "functions").rglob("*.py")])

# Top-level modules the deployed code may import: the standard library, the layer's requirements, and what the
# Lambda Python runtime provides (boto3 and botocore). mypy_boto3_* are type stubs, imported only for typing.
ALLOWED_THIRD_PARTY = {
    "aws_lambda_powertools",
    "boto3",
    "botocore",
    "kinotrakt",
    "mypy_boto3_dynamodb",
    "mypy_boto3_secretsmanager",
    "pydantic",
    "pydantic_core",  # pydantic's own engine, pinned in the layer's requirements (its JSON parser is used)
    "pydantic_settings",
    "requests",
    "urllib3",
}
DEV_ONLY = {
    *("devkit", "kinotrakt_cli", "tests", "bench", "chaos"),
    *("moto", "yaml", "pytest", "hypothesis", "typer", "rich"),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_lambda_code_is_where_we_look() -> None:
    assert REPO / "functions" / "sync" / "app.py" in LAMBDA_CODE
    assert REPO / "layers" / "kinotrakt" / "kinotrakt" / "sync" / "pipeline.py" in LAMBDA_CODE


@pytest.mark.parametrize("path", LAMBDA_CODE, ids=lambda p: str(p.relative_to(REPO)))
def test_lambda_code_imports_no_dev_tooling(path: Path) -> None:
    top_level = {name.split(".")[0] for name in imported_modules(path)}
    assert not top_level & DEV_ONLY, f"{path.relative_to(REPO)} imports dev-only {sorted(top_level & DEV_ONLY)}"
    unknown = {name for name in top_level - ALLOWED_THIRD_PARTY if name not in sys.stdlib_module_names}
    assert not unknown, f"{path.relative_to(REPO)} imports {sorted(unknown)}, which the layer does not ship"


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from devkit.fakes import FakeTrakt\n    import moto.core\n")
    assert imported_modules(sample) == {"devkit.fakes", "moto.core"}


def test_importing_both_handlers_loads_no_dev_module() -> None:
    """The handlers as Lambda imports them (``app`` from the function's directory, the layer on the path):
    after import, nothing from the dev tooling is in ``sys.modules``."""
    script = """
import importlib.util, json, sys
for name in ("sync", "auth"):
    spec = importlib.util.spec_from_file_location(f"{name}_app", f"functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
    layer = str(REPO / "layers" / "kinotrakt")
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own script
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {layer!r})\n{script}"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "kinotrakt" in loaded
    assert not loaded & DEV_ONLY, f"dev tooling loaded by the handlers: {sorted(loaded & DEV_ONLY)}"
