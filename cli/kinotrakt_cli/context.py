"""What a command runs with (:class:`Cli`), everything it touches outside itself (:class:`CliDeps`, production
defaults; tests hand in moto-backed stores, the fakes' settings and virtual clocks), and how a command's
failure becomes one line and an exit code.

Only what ``kinotrakt --help`` needs is imported at start-up; the sync, pydantic and boto3 come with the command
that uses them.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from kinotrakt.clock import Clock, SystemClock
from kinotrakt_cli.deployment import (
    Deployment,
    MetricPutter,
    NoticePublisher,
    SandboxFactory,
    StackOutputs,
    StoresFactory,
    TokenStoreFactory,
    Where,
    aws_config_region,
    aws_publish_link_notice,
    aws_put_event_metric,
    aws_stack_outputs,
    aws_stores,
    aws_token_stores,
    repository_sandbox,
    samconfig_files,
)
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CliError

if TYPE_CHECKING:
    from rich.console import Console

    from kinotrakt.audit.report import AuditReport
    from kinotrakt.audit.run import Fix
    from kinotrakt.config import Settings
    from kinotrakt.http import CallCounter
    from kinotrakt.storage.ports import SyncStores
    from kinotrakt.sync.report import SyncReport
    from kinotrakt_cli.output import Output

# A command the CLI names in a message (`kinotrakt link trakt`), to be repeated with the user's own options.
_NAMED_COMMAND = re.compile(r"`kinotrakt ([^`]*)`")


class SyncRunner(Protocol):
    def __call__(
        self,
        settings: Settings,
        stores: SyncStores,
        *,
        clock: Clock | None = None,
        dry_run: bool | None = None,
        counter: CallCounter | None = None,
    ) -> SyncReport: ...


def _execute_sync(
    settings: Settings,
    stores: SyncStores,
    *,
    clock: Clock | None = None,
    dry_run: bool | None = None,
    counter: CallCounter | None = None,
) -> SyncReport:
    from kinotrakt.service import execute_sync

    return execute_sync(settings, stores, clock=clock, dry_run=dry_run, counter=counter)


class AuditRunner(Protocol):
    def __call__(
        self,
        settings: Settings,
        stores: SyncStores,
        *,
        fixes: Collection[Fix] = (),
        clock: Clock | None = None,
        remaining_seconds: float | None = None,
        counter: CallCounter | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> AuditReport: ...


def _execute_audit(
    settings: Settings,
    stores: SyncStores,
    *,
    fixes: Collection[Fix] = (),
    clock: Clock | None = None,
    remaining_seconds: float | None = None,
    counter: CallCounter | None = None,
    on_step: Callable[[str], None] | None = None,
) -> AuditReport:
    from kinotrakt.service import execute_audit

    return execute_audit(
        settings,
        stores,
        fixes=fixes,
        clock=clock,
        remaining_seconds=remaining_seconds,
        counter=counter,
        on_step=on_step,
    )


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def program_name(argv0: str | None = None, executable: str | None = None) -> str:
    """How the user started this command, so that the commands we print work when pasted: ``kinotrakt`` when that
    is what the shell finds, ``.venv/bin/kinotrakt`` as typed from the repository, ``.venv/bin/python -m
    kinotrakt_cli``; ``kinotrakt`` when started some other way (a test runner)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "kinotrakt_cli":
        return f"{_as_typed(Path(executable or sys.executable))} -m kinotrakt_cli"
    if path.name != "kinotrakt":
        return "kinotrakt"
    on_path = shutil.which("kinotrakt")
    if on_path is not None and path.exists() and Path(on_path).resolve() == path.resolve():
        return "kinotrakt"
    return _as_typed(path)


def _as_typed(path: Path) -> str:
    """A path as a user would type it here (relative when it is under the current directory), quoted for a shell."""
    if path.is_absolute():
        with suppress(ValueError):
            path = path.relative_to(Path.cwd())
    return shlex.quote(str(path))


@dataclass
class CliDeps:
    """Everything the CLI touches outside itself, with the production defaults."""

    settings: Settings | None = None  # None: from the environment (the Lambda's variables)
    token_stores: TokenStoreFactory = aws_token_stores
    stores: StoresFactory = aws_stores
    stack_outputs: StackOutputs = aws_stack_outputs
    publish_notice: NoticePublisher = aws_publish_link_notice  # a link, on the alarm topic
    put_metric: MetricPutter = aws_put_event_metric  # an event's metric (TraktLinked)
    run_sync: SyncRunner = _execute_sync
    run_audit: AuditRunner = _execute_audit
    sandbox: SandboxFactory = repository_sandbox
    clock: Clock = field(default_factory=SystemClock)
    out: Console | None = None  # None: a console on stdout
    err: Console | None = None  # None: a console on stderr
    prompt: Callable[[str], str] | None = None  # None: asks on the output console
    prompt_secret: Callable[[str], str] | None = None  # None: asks on the output console, without echo
    interactive: Callable[[], bool] = _stdin_is_terminal
    stdin: Callable[[], IO[str]] = lambda: sys.stdin  # read when a command reads a piped secret
    # A sync or an audit still running after this long shows a progress line (on a terminal).
    sync_progress_after_seconds: float = 3.0
    program: str | None = None  # None: as the user started it (program_name)
    # Where the deployment's samconfig.toml may be, and the AWS config's region (see kinotrakt_cli.deployment).
    samconfig_files: Callable[[], Sequence[Path]] = samconfig_files
    aws_config_region: Callable[[], tuple[str | None, str]] = aws_config_region


class Cli:
    """The context one command runs in: the deployment, the output, the clock, the user at the keyboard."""

    def __init__(self, deps: CliDeps, where: Where, *, debug: bool) -> None:
        from kinotrakt_cli.output import Output, console

        self.deps = deps
        self.debug = debug
        self.clock = deps.clock
        self.where = where
        self.program = deps.program or program_name()
        self.output: Output = Output(deps.out or console(), deps.err or console(stderr=True), debug=debug)
        self.deployment = Deployment(
            where,
            settings=deps.settings,
            token_stores=deps.token_stores,
            stores=deps.stores,
            stack_outputs=deps.stack_outputs,
            clock=deps.clock,
            publish_notice=deps.publish_notice,
            put_metric=deps.put_metric,
            samconfig_files=deps.samconfig_files,
            config_region=deps.aws_config_region,
        )

    def command(self, words: str) -> str:
        """A command line to print for the user: this program, the options they gave, then ``words``."""
        return " ".join(part for part in (self.program, shlex.join(self.where.flags()), words) if part)

    def with_commands(self, text: str) -> str:
        """``text`` with each `kinotrakt ...` it names repeated as :meth:`command` would print it."""
        return _NAMED_COMMAND.sub(lambda found: f"`{self.command(found[1])}`", text)

    def interactive(self) -> bool:
        return self.deps.interactive()

    def prompt(self, question: str, *, secret: bool = False) -> str:
        from rich.text import Text

        asker = self.deps.prompt_secret if secret else self.deps.prompt
        if asker is not None:
            return asker(question)
        return self.output.out.input(Text(question), password=secret)

    def read_secret_line(self, question: str) -> str:
        """One secret from standard input: the next line when it is piped, asked without echo on a terminal."""
        if self.interactive():
            return self.prompt(question, secret=True).strip()
        return self.deps.stdin().readline().strip()

    def confirm(self, question: str) -> bool:
        """Yes only for an explicit y/yes."""
        return self.prompt(f"{question} [y/N]: ").strip().lower() in ("y", "yes")

    def ask(self, what: str, current: str | None, *, secret: bool, shown: str | None = None) -> str | None:
        """The answer to ``what`` in a terminal (Enter keeps ``current``, described by ``shown`` when given); in a
        script, ``current``."""
        if not self.interactive():
            return current
        hint = ""
        if shown is not None:
            hint = f" [{shown}]"
        elif current is not None:
            hint = " [Enter keeps the stored one]" if secret else f" [{current}]"
        answer = self.prompt(f"{what}{hint}: ", secret=secret).strip()
        return answer or current


def execute(cli: Cli, command: Callable[..., int], options: dict[str, Any]) -> int:
    """Run ``command``; a failure is one line on stderr (``--debug`` adds the stack) and exit code 1 or 2."""
    from kinotrakt.errors import KinotraktError
    from kinotrakt_cli.aws_errors import explain

    output = cli.output
    with _quiet_logs(cli.debug, output.err.file):
        try:
            return command(cli, **options)
        except KeyboardInterrupt:
            output.err.print("interrupted")
            return EXIT_INTERRUPTED
        except CliError as exc:
            output.error(cli.with_commands(str(exc)))
            if cli.debug:
                output.traceback()
            return exc.exit_code
        except KinotraktError as exc:
            output.error(cli.with_commands(str(exc)))
            if cli.debug:
                output.traceback()
            return EXIT_FAILURE
        except Exception as exc:
            explained = explain(exc, cli.deployment.target_for_messages())
            if explained is None:
                output.error(f"unexpected {type(exc).__name__} (run with --debug for details)")
            else:
                output.error(cli.with_commands(explained))
            if cli.debug:
                output.traceback()
            return EXIT_FAILURE


@contextmanager
def _quiet_logs(debug: bool, err: IO[str]) -> Iterator[None]:
    """The package's JSON log lines go to stderr with ``--debug``, and nowhere otherwise: what went wrong is the
    command's own one-line message (the handler is quietened, not the logger, so other handlers still see every
    record)."""
    from kinotrakt.observability import logger

    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    old_level = handler.level
    old_stream = handler.setStream(err)
    handler.setLevel(logging.DEBUG if debug else logging.CRITICAL + 1)
    try:
        yield
    finally:
        handler.setLevel(old_level)
        if old_stream is not None:
            handler.setStream(old_stream)
