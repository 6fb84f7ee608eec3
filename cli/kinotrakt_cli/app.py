"""``kinotrakt ...``: set a deployment up, link both accounts, run and watch the sync from a terminal.

This module assembles the typer app: the common options (where the deployment is, ``--debug``), accepted before
or after the command, and one line per command (``kinotrakt_cli.commands``). A new command is a new module
there plus one ``_add`` line here.

Exit codes: 0 done, 1 failed (one line on stderr says why; ``--debug`` adds the stack), 2 wrong usage.
Nothing here ever prints a token or a client secret; the setup key is printed only inside the login link,
because that link is how the owner uses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, get_type_hints

import typer

from kinotrakt import __version__
from kinotrakt_cli.commands import audit, check, link, setup, status, sync, unlink, unmatched
from kinotrakt_cli.commands import map as map_
from kinotrakt_cli.context import Cli, CliDeps, execute
from kinotrakt_cli.deployment import DEFAULT_STACK, Where
from kinotrakt_cli.errors import EXIT_FAILURE, EXIT_OK

WHERE = "Where the deployment is"

Stack = Annotated[
    str | None,
    typer.Option(
        help=f"CloudFormation stack name (default: samconfig.toml's stack_name, else {DEFAULT_STACK})",
        rich_help_panel=WHERE,
    ),
]
Table = Annotated[str | None, typer.Option(help="DynamoDB state table (env STATE_TABLE_NAME)", rich_help_panel=WHERE)]
KinopubSecret = Annotated[
    str | None, typer.Option(help="Kinopub secret id (env KINOPUB_SECRET_ID)", rich_help_panel=WHERE)
]
TraktSecret = Annotated[str | None, typer.Option(help="Trakt secret id (env TRAKT_SECRET_ID)", rich_help_panel=WHERE)]
Region = Annotated[
    str | None,
    typer.Option(
        help="AWS region (default: AWS_REGION, else samconfig.toml's region, else your AWS config)",
        rich_help_panel=WHERE,
    ),
]
EndpointUrl = Annotated[str | None, typer.Option(help="AWS endpoint, e.g. a moto server", rich_help_panel=WHERE)]
Debug = Annotated[bool, typer.Option("--debug", help="show logs and stack traces")]

# The common options, in the order --help lists them; each command takes them too (see _add).
COMMON: dict[str, Any] = {
    "stack": Stack,
    "table": Table,
    "kinopub_secret": KinopubSecret,
    "trakt_secret": TraktSecret,
    "region": Region,
    "endpoint_url": EndpointUrl,
    "debug": Debug,
}


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"kinotrakt {__version__}")
        raise typer.Exit


app = typer.Typer(
    name="kinotrakt",
    epilog="Start with `setup`, then `link trakt` (or the login link) and `link kinopub`.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    # Typer's own exception pages would print local variables, which may hold tokens; every failure is
    # handled by kinotrakt_cli.context.execute instead.
    pretty_exceptions_enable=False,
)


# The common options given before the command: typer keeps them in the group's ctx.params, where each
# command (see _add) finds them; the function itself has nothing to do.
@app.callback()
def _before_the_command(
    stack: Stack = None,
    table: Table = None,
    kinopub_secret: KinopubSecret = None,
    trakt_secret: TraktSecret = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
    debug: Debug = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Copy finished Kinopub views into Trakt history: set up, link accounts, run and watch the sync."""


def _add(name: str, run: Callable[..., int]) -> None:
    """Register ``run(cli, ...)`` as the command ``name``: its own parameters plus the common options; an option
    given after the command wins over the same option given before it."""
    hints = get_type_hints(run, include_extras=True)
    own = list(inspect.signature(run).parameters.values())[1:]  # the first is the Cli
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("ctx", keyword, annotation=typer.Context),
        *(parameter.replace(kind=keyword, annotation=hints[parameter.name]) for parameter in own),
        *(
            inspect.Parameter(option, keyword, annotation=annotation, default=False if option == "debug" else None)
            for option, annotation in COMMON.items()
        ),
    ]

    def command(ctx: typer.Context, **values: Any) -> None:
        before = ctx.parent.params if ctx.parent is not None else {}
        given = {option: values.pop(option) for option in COMMON}
        where = Where(
            **{option: given[option] or before.get(option) for option in COMMON if option != "debug"},
        )
        debug = bool(given["debug"] or before.get("debug"))
        deps = ctx.obj if isinstance(ctx.obj, CliDeps) else CliDeps()
        raise typer.Exit(execute(Cli(deps, where, debug=debug), run, values))

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    command.__doc__ = run.__doc__
    app.command(name)(command)


_add("setup", setup.run)
_add("link", link.run)
_add("unlink", unlink.run)
_add("sync", sync.run)
_add("status", status.run)
_add("unmatched", unmatched.run)
_add("map", map_.run)
_add("check", check.run)
_add("audit", audit.run)


def main(argv: Sequence[str] | None = None, *, deps: CliDeps | None = None) -> int:
    """The ``kinotrakt`` console script (``argv`` None: the process's arguments); returns the exit code."""
    try:
        app(args=None if argv is None else list(argv), prog_name="kinotrakt", obj=deps)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_FAILURE
    return EXIT_OK
