"""The README, read as a newcomer reads it: every command it shows is run by a test or by CI, and the test says
which. A command added to the README without a test that runs it fails here, as does a test named below that no
longer exists.

Besides that list: each ``kinotrakt`` command and each usage line of the CLI table exists with those options, each
``make`` command is a target that accepts those variables (``make -n``), and the two ``source`` lines work.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devkit.sandbox import REPO
from kinotrakt_cli.app import app
from tests.e2e.conftest import RunningSandbox

README = (REPO / "README.md").read_text("utf-8")
E2E = "tests/e2e/test_readme_offline.py::test_the_readme_from_setup_to_unlink"
ISOLATION = "tests/integration/test_sandbox_isolation.py"
INVOKE = "tests/e2e/test_invoke.py"
ERRORS = "tests/e2e/test_cli_errors.py"
CI = "CI: .ci/run runs `make test` and `make build` from a clean clone"
CI_TEST = "CI: `make test` runs it (its prerequisites: locked lint types validate unit)"

# Each command the README shows (`.venv/bin/` dropped), and the test that runs it (path::test), or CI.
CLI = "tests/integration/test_cli.py"
RUN_BY: dict[str, str] = {
    "kinotrakt setup": "tests/integration/test_cli.py::test_setup_in_a_terminal_offers_kinopubs_public_pair",
    "kinotrakt setup --trakt-client-id ID --trakt-client-secret-stdin": E2E,
    "kinotrakt setup --reset": f"{ERRORS}::test_secrets_that_are_not_kinotrakt_json_are_repaired_by_setup_reset",
    "kinotrakt setup --…-client-secret-stdin": "tests/integration/test_cli.py::test_setup_reads_one_piped_secret",
    "kinotrakt unlink trakt": E2E,
    "kinotrakt link kinopub": E2E,
    "kinotrakt link trakt": E2E,
    "kinotrakt status": E2E,
    "kinotrakt sync": E2E,
    "kinotrakt sync --dry-run": f"{ERRORS}::test_a_dry_run_is_labelled_everywhere_and_kept_apart",
    "kinotrakt sync --sandbox": f"{ISOLATION}::test_sync_sandbox_ignores_the_developers_aws_environment",
    "kinotrakt map": E2E,
    "kinotrakt audit": f"{CLI}::test_audit_shows_what_it_found_writes_nothing_and_says_how_to_fix_it",
    "kinotrakt audit --json": f"{CLI}::test_audit_json_holds_every_finding_even_past_the_reports_limit",
    "kinotrakt unmatched": f"{CLI}::test_unmatched_lists_titles_and_reasons",
    "kinotrakt check": "tests/integration/test_cli_check.py::test_services_that_answer_as_expected_pass_every_check",
    "source .venv/bin/activate": "tests/e2e/test_readme_commands.py::test_source_the_virtualenv_then_type_kinotrakt",
    "source build/sandbox/env.sh": "tests/e2e/test_readme_commands.py::test_source_the_sandbox_s_env_sh",
    "make demo": f"{ISOLATION}::test_make_demo_ignores_the_developers_aws_environment",
    "make sandbox": E2E,
    "make sandbox PORT=9000": E2E,
    "make sandbox HOST=0.0.0.0": "tests/e2e/test_invoke.py::test_docker_cannot_reach_a_sandbox_on_loopback",
    "make invoke": "tests/e2e/test_invoke.py::test_make_invoke_runs_this_script",
    "make invoke LOCAL=process": f"{INVOKE}::test_the_sync_function_runs_against_the_sandbox_as_a_dry_run",
    "make invoke STACK=<name> [REGION=…]": "tests/integration/test_invoke_targets.py::test_a_deployed_stack_fills_in_the_names",  # noqa: E501
    "make bench-readme": "tests/unit/test_bench_readme.py::test_the_command_writes_the_readme_from_the_bench_json",
    "make bench": "tests/unit/test_bench_report.py::test_every_scenario_reports_the_fields_issue_8_names",
    "make chaos": "tests/chaos/test_chaos.py::test_every_schedule_keeps_every_promise",
    "make chaos SEED=1": "tests/chaos/test_chaos.py::test_every_schedule_keeps_every_promise",
    "make chaos SCHEDULES=100 SEED=1": "tests/chaos/test_chaos.py::test_every_schedule_keeps_every_promise",
    "make chaos SEED=<seed> SCHEDULES=1": "tests/chaos/test_chaos.py::test_every_schedule_keeps_every_promise",
    "make chaos [SEED=…] [SCHEDULES=…]": "tests/chaos/test_chaos.py::test_every_schedule_keeps_every_promise",
    "make test": CI,
    "make build": CI,
    "sam build": CI,
    "make install": CI,
    "make install test": CI,
    "make lint types": CI_TEST,
    "make types": CI_TEST,
    "make validate": CI_TEST,
    "make locked": CI_TEST,
    "sam validate --lint": CI_TEST,
    ".ci/run": CI,
}
# What no test can run, and why; each is still checked as far as it can be (make -n, the tool's own command).
NOT_RUN: dict[str, str] = {
    "make deploy": "needs an AWS account; what it deploys is validated by CI (make validate) and tests/infrastructure",
    "sam deploy --guided": "make deploy's recipe; needs an AWS account",
    "make lock": "rewrites the lock files from PyPI; CI checks the result (make locked)",
    "make lock UPGRADE=1": "as make lock",
    "make clean": "removes the tools and virtualenvs the tests run in",
    "sam local": "SAM's local mode, named in prose: make invoke runs it (see above)",
    "sam local invoke": "needs Docker; tests/e2e/test_invoke.py checks the command make invoke builds for it",
    "aws configure": "the AWS CLI's own sign-in (your credentials), not kinotrakt's",
    "aws sso login": "the AWS CLI's own sign-in (your credentials), not kinotrakt's",
    ".venv/bin/pre-commit install": "optional; CI does not run it (the README says so)",
    ".venv/bin/pre-commit run --all-files": "optional; runs the same checks as make lint types locked",
}
_COMMAND = re.compile(r"(?:\.venv/bin/\S+|make|kinotrakt|sam|source|aws) \S.*|\.ci/run")
_PLACEHOLDERS = {"<seed>": "1", "<name>": "kinotrakt", "…": "x"}


def readme_commands() -> set[str]:
    """The commands the README shows: in `code spans` and in code blocks (without their # comments)."""
    candidates = re.findall(r"`([^`\n]+)`", README)
    for block in re.findall(r"```[^\n]*\n(.*?)```", README, re.DOTALL):
        candidates += [line.split("#", 1)[0] for line in block.splitlines()]
    found = set()
    for candidate in candidates:
        for part in re.split(r"&&| \| ", candidate):  # `a && b`, `printf … | kinotrakt …`
            command = part.strip().replace(".venv/bin/kinotrakt", "kinotrakt")
            # `kinotrakt …` alone names the program, not a command
            if _COMMAND.fullmatch(command) and command != "kinotrakt …":
                found.add(command)
    return found


def cli_table_usages() -> list[str]:
    """The first column of the README's CLI table (``setup [--trakt-client-id …] …``), each a usage line."""
    table = README.split("### The CLI", 1)[1].strip().split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [usage for row in rows for usage in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def test_every_readme_command_is_run_by_a_test_or_by_ci() -> None:
    shown = readme_commands()
    unaccounted = sorted(shown - RUN_BY.keys() - NOT_RUN.keys())
    assert not unaccounted, (
        f"the README shows commands no test runs (add a test, then list it in RUN_BY): {unaccounted}"
    )
    stale = sorted((RUN_BY.keys() | NOT_RUN.keys()) - shown)
    assert not stale, f"listed here but no longer in the README: {stale}"


@pytest.mark.parametrize("where", sorted({where for where in RUN_BY.values() if not where.startswith("CI")}))
def test_each_test_named_exists(where: str) -> None:
    path, _, name = where.partition("::")
    source = (REPO / path).read_text("utf-8")
    assert not name or f"def {name}(" in source, f"{where} does not exist"


@pytest.mark.parametrize("command", sorted(c for c in readme_commands() if c.startswith("kinotrakt ")))
def test_each_kinotrakt_command_exists_with_those_options(command: str) -> None:
    assert_usage(command.removeprefix("kinotrakt "))


def test_the_cli_table_shows_every_command() -> None:
    shown = {usage.split()[0] for usage in cli_table_usages()}
    assert shown == {command.name for command in app.registered_commands}


@pytest.mark.parametrize("usage", cli_table_usages())
def test_each_usage_in_the_cli_table_exists_with_those_options(usage: str) -> None:
    for one in usage.split(" / "):
        assert_usage(one)


def assert_usage(usage: str) -> None:
    """The command exists (``--help`` answers), and every ``--option`` the usage names is in its help."""
    words = usage.replace("\\|", "|").split()
    command = words[0]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [command, "--help"], prog_name="kinotrakt")
    assert result.exit_code == 0, f"kinotrakt {command}: {result.output}"
    for option in re.findall(r"--[a-z][a-z-]*", usage):
        assert option in result.output, f"kinotrakt {command} has no {option}"


@pytest.mark.parametrize("command", sorted(c for c in readme_commands() if c.startswith("make ")))
def test_each_make_command_is_a_target_taking_those_variables(command: str) -> None:
    argv = shlex.split(re.sub(r"\[([^]]*)\]", r"\1", command))
    argv = [_PLACEHOLDERS.get(word, word) for word in argv]
    argv = [re.sub("|".join(map(re.escape, _PLACEHOLDERS)), lambda m: _PLACEHOLDERS[m[0]], word) for word in argv]
    done = subprocess.run(  # noqa: S603 - make with the README's own arguments, printing only (-n)
        [argv[0], "-n", "--no-print-directory", *argv[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for assignment in (word for word in argv[1:] if "=" in word):
        name = assignment.split("=", 1)[0]
        assert re.search(rf"\$\({name}\)", (REPO / "Makefile").read_text()), f"make ignores {name}"


def test_the_ci_script_runs_what_the_readme_says() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert [line for line in script.splitlines() if line.startswith("make ")] == ["make test", "make build"]


def test_source_the_virtualenv_then_type_kinotrakt(tmp_path: Path) -> None:
    # When a user activates the virtualenv, then types kinotrakt (its hints then name it the same way)
    done = subprocess.run(
        ["bash", "-c", "source .venv/bin/activate && kinotrakt --version && kinotrakt --help"],  # noqa: S607
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kinotrakt ")
    assert "Usage: kinotrakt [OPTIONS] COMMAND" in done.stdout


def test_source_the_sandbox_s_env_sh(sandbox: RunningSandbox) -> None:
    # When a user sources the env.sh `make sandbox` wrote, in their own shell (its AWS profile, endpoints and
    # config pointing elsewhere), and asks for the status
    env_sh = sandbox.state_dir / "env.sh"
    done = subprocess.run(  # noqa: S603 - bash with our own fixed command line
        ["bash", "-c", f"source {shlex.quote(str(env_sh))} && .venv/bin/kinotrakt status"],  # noqa: S607
        cwd=REPO,
        env=sandbox.clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the CLI talks to the sandbox: its empty secrets say setup comes first
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Kinopub: not set up (.venv/bin/kinotrakt setup)" in done.stdout
