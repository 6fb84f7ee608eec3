"""Exit codes and the one error a command raises to stop with a one-line message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl+C


class CliError(Exception):
    """A failure to report in one line; ``exit_code`` 1 (failed) or 2 (wrong usage)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def problem(exc: Exception) -> str:
    """A failure for a warning the CLI prints after the main work is done, without the scheduled run's "the next
    run will try again" (a person at the terminal runs the command again, or not)."""
    from kinotrakt.errors import ServiceUnavailable

    if isinstance(exc, ServiceUnavailable):
        return f"{exc.host or exc.service}: {exc.detail}"
    return str(exc)
