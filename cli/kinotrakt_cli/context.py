"""What a command runs with (:class:`Cli`), everything it touches outside itself (:class:`CliDeps`, production
defaults; tests hand in moto-backed stores, the fakes' settings and virtual clocks), and how a command's
failure becomes one line and an exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from rich.console import Console
from rich.text import Text

from kinotrakt.audit.report import AuditReport
from kinotrakt.audit.run import Fix
from kinotrakt.clock import Clock, SystemClock
from kinotrakt.config import Settings
from kinotrakt.errors import KinotraktError
from kinotrakt.http import CallCounter
from kinotrakt.observability import logger
from kinotrakt.service import execute_audit, execute_sync
from kinotrakt.storage.ports import SyncStores
from kinotrakt.sync.report import SyncReport
from kinotrakt_cli.deployment import (
    Deployment,
    SandboxFactory,
    StackOutputs,
    StoresFactory,
    TokenStoreFactory,
    Where,
    aws_stack_outputs,
    aws_stores,
    aws_token_stores,
    repository_sandbox,
)
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CliError
from kinotrakt_cli.output import Output, console


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


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@dataclass
class CliDeps:
    """Everything the CLI touches outside itself, with the production defaults."""

    settings: Settings | None = None  # None: from the environment (the Lambda's variables)
    token_stores: TokenStoreFactory = aws_token_stores
    stores: StoresFactory = aws_stores
    stack_outputs: StackOutputs = aws_stack_outputs
    run_sync: SyncRunner = execute_sync
    run_audit: AuditRunner = execute_audit
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


class Cli:
    """The context one command runs in: the deployment, the output, the clock, the user at the keyboard."""

    def __init__(self, deps: CliDeps, where: Where, *, debug: bool) -> None:
        self.deps = deps
        self.debug = debug
        self.clock = deps.clock
        self.output = Output(deps.out or console(), deps.err or console(stderr=True), debug=debug)
        self.deployment = Deployment(
            where,
            settings=deps.settings,
            token_stores=deps.token_stores,
            stores=deps.stores,
            stack_outputs=deps.stack_outputs,
            clock=deps.clock,
        )

    def interactive(self) -> bool:
        return self.deps.interactive()

    def prompt(self, question: str, *, secret: bool = False) -> str:
        asker = self.deps.prompt_secret if secret else self.deps.prompt
        if asker is not None:
            return asker(question)
        return self.output.out.input(Text(question), password=secret)

    def read_secret_line(self, question: str) -> str:
        """One secret from standard input: the next line when it is piped, asked without echo on a terminal."""
        if self.interactive():
            return self.prompt(question, secret=True).strip()
        return self.deps.stdin().readline().strip()

    def ask(self, what: str, current: str | None, *, secret: bool) -> str | None:
        """The answer to ``what`` in a terminal (Enter keeps ``current``); ``current`` in a script."""
        if not self.interactive():
            return current
        hint = ""
        if current is not None:
            hint = " [Enter keeps the stored one]" if secret else f" [{current}]"
        answer = self.prompt(f"{what}{hint}: ", secret=secret).strip()
        return answer or current


def execute(cli: Cli, command: Callable[..., int], options: dict[str, Any]) -> int:
    """Run ``command``; a failure is one line on stderr (``--debug`` adds the stack) and exit code 1 or 2."""
    output = cli.output
    with _quiet_logs(cli.debug, output.err.file):
        try:
            return command(cli, **options)
        except KeyboardInterrupt:
            output.err.print("interrupted")
            return EXIT_INTERRUPTED
        except CliError as exc:
            output.error(str(exc))
            return exc.exit_code
        except KinotraktError as exc:
            output.error(str(exc))
            if cli.debug:
                output.traceback()
            return EXIT_FAILURE
        except Exception as exc:
            output.error(f"{_describe_unexpected(exc)} (run with --debug for details)")
            if cli.debug:
                output.traceback()
            return EXIT_FAILURE


def _describe_unexpected(exc: Exception) -> str:
    """botocore's messages name the AWS error and the resource; anything else gets only its type, since its
    message could quote a value we must not print."""
    if type(exc).__module__.startswith("botocore"):
        return f"AWS: {exc}"
    return f"unexpected {type(exc).__name__}"


@contextmanager
def _quiet_logs(debug: bool, err: IO[str]) -> Iterator[None]:
    """The package's JSON log lines go to stderr, and only errors unless ``--debug`` (the handler is
    quietened, not the logger, so other handlers still see every record)."""
    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    old_level = handler.level
    old_stream = handler.setStream(err)
    handler.setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        yield
    finally:
        handler.setLevel(old_level)
        if old_stream is not None:
            handler.setStream(old_stream)
