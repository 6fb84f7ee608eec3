"""One module per ``kinotrakt`` command. Each exposes ``run(cli, ...) -> int``: its own arguments and options as
typer annotations, its help as the docstring (first paragraph: the one-line summary in ``kinotrakt --help``).
``kinotrakt_cli.app`` adds the common options and registers it with one line."""
