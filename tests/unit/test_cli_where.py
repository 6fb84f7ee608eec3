"""Where the CLI looks for the deployment, and how it names the commands it suggests: the region's order
(flag, environment, samconfig.toml, the AWS config), what ``sam deploy --guided`` leaves in samconfig.toml, and the
program as the user typed it."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kinotrakt_cli.context import Cli, CliDeps, program_name
from kinotrakt_cli.deployment import REPOSITORY, Samconfig, Where, resolve_region, samconfig_files, samconfig_values

GUIDED = """version = 0.1
[default.global.parameters]
stack_name = "kinotrakt"
region = "eu-central-1"

[default.deploy.parameters]
stack_name = "kt-prod"
region = "eu-west-3"
capabilities = "CAPABILITY_IAM"
"""


def no_config() -> tuple[str | None, str]:
    return None, "the AWS config (profile default)"


def test_the_region_comes_from_the_flag_then_the_environment_then_samconfig_then_the_aws_config(
    tmp_path: Path,
) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(GUIDED)
    found = Samconfig.find([samconfig])
    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert resolve_region("ap-south-1", env, found, no_config) == ("ap-south-1", "--region")
    assert resolve_region(None, env, found, no_config) == ("us-east-1", "AWS_REGION")
    assert resolve_region(None, {"AWS_DEFAULT_REGION": "us-west-2"}, found, no_config) == (
        "us-west-2",
        "AWS_DEFAULT_REGION",
    )
    assert resolve_region(None, {}, found, no_config) == ("eu-west-3", str(samconfig))
    assert resolve_region(None, {}, Samconfig(), lambda: ("sa-east-1", "the AWS config (profile me)")) == (
        "sa-east-1",
        "the AWS config (profile me)",
    )
    assert resolve_region(None, {}, Samconfig(), no_config) == no_config()


def test_what_sam_deploy_guided_wrote_wins_over_the_shipped_defaults(tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(GUIDED)
    assert samconfig_values(samconfig) == {"stack_name": "kt-prod", "region": "eu-west-3"}
    # The repository's own file names the defaults `make deploy` uses
    assert samconfig_values(REPOSITORY / "samconfig.toml") == {"stack_name": "kinotrakt", "region": "eu-central-1"}


@pytest.mark.parametrize("content", ["not [toml", "version = 0.1\n", "default = 5\n", '[default]\nglobal = "x"\n'])
def test_a_samconfig_that_names_nothing_is_passed_over(tmp_path: Path, content: str) -> None:
    unreadable = tmp_path / "samconfig.toml"
    unreadable.write_text(content)
    assert samconfig_values(unreadable) == {}
    assert Samconfig.find([unreadable, REPOSITORY / "samconfig.toml"]).values["region"] == "eu-central-1"
    assert samconfig_values(tmp_path / "missing.toml") == {}


def test_the_current_directory_s_samconfig_comes_before_the_repository_s(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(GUIDED)
    assert samconfig_files(tmp_path) == [tmp_path / "samconfig.toml", REPOSITORY / "samconfig.toml"]
    assert samconfig_files(REPOSITORY) == [REPOSITORY / "samconfig.toml"]
    assert samconfig_files(tmp_path / "nowhere") == [REPOSITORY / "samconfig.toml"]


def test_the_program_is_named_as_the_user_typed_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)
    monkeypatch.setenv("PATH", str(tmp_path))  # no kinotrakt on PATH
    script = REPOSITORY / ".venv" / "bin" / "kinotrakt"
    assert program_name(".venv/bin/kinotrakt") == ".venv/bin/kinotrakt"
    assert program_name(str(script)) == ".venv/bin/kinotrakt"
    main = REPOSITORY / "cli" / "kinotrakt_cli" / "__main__.py"
    assert program_name(str(main), str(REPOSITORY / ".venv/bin/python")) == ".venv/bin/python -m kinotrakt_cli"
    assert program_name("/usr/lib/python3/site-packages/pytest/__main__.py") == "kinotrakt"
    # With the virtualenv activated, the shell finds it by name
    monkeypatch.setenv("PATH", str(script.parent))
    assert program_name(str(script)) == "kinotrakt"
    # Elsewhere, the path as it must be typed there
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert program_name(str(script)) == shlex.quote(str(script))


def test_suggested_commands_repeat_the_program_and_the_options_given() -> None:
    where = Where(stack="my stack", region="eu-west-3", endpoint_url=None, table="t")
    cli = Cli(CliDeps(program=".venv/bin/kinotrakt"), where, debug=False)
    assert cli.command("link trakt") == ".venv/bin/kinotrakt --stack 'my stack' --region eu-west-3 --table t link trakt"
    assert cli.with_commands("run `kinotrakt setup --reset`, then `kinotrakt link trakt`; kinotrakt map") == (
        "run `.venv/bin/kinotrakt --stack 'my stack' --region eu-west-3 --table t setup --reset`, then "
        "`.venv/bin/kinotrakt --stack 'my stack' --region eu-west-3 --table t link trakt`; kinotrakt map"
    )
    assert Cli(CliDeps(program="kinotrakt"), Where(), debug=False).command("sync") == "kinotrakt sync"


def test_help_does_not_load_the_sync_pydantic_or_boto3() -> None:
    """``kinotrakt --help`` imports what it shows: typer, rich and the commands' signatures."""
    code = (
        "import sys; from kinotrakt_cli.app import main; code = main(['--help']); "
        "heavy = sorted(m for m in ('boto3', 'botocore', 'pydantic', 'requests', 'kinotrakt.service', "
        "'aws_lambda_powertools') if m in sys.modules); print(heavy)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_audit_help_names_every_fix_the_audit_knows_in_its_order() -> None:
    """The audit command names its fixes itself (so ``--help`` loads no audit code): they are the audit's own."""
    from kinotrakt.audit.run import FIXES
    from kinotrakt_cli.commands.audit import WHAT_FIXES_DO

    assert tuple(WHAT_FIXES_DO) == tuple(FIXES)
