"""``kinotrakt setup``: client credentials into both secrets, the setup key, the login link; it repairs a secret it
cannot read (``--reset``).

Client secrets never go on the command line (shell history, the process list): they are asked for in a terminal
(without echo) or read from standard input, one line each (``--kinopub-client-secret-stdin``,
``--trakt-client-secret-stdin``; Kinopub's line first when both are piped). The old ``--…-client-secret VALUE``
options are refused with the command that pipes the secret instead. Kinopub's default is the public pair of the
Kodi add-on (``docs/kinopub.md``): with nothing stored, Enter in a terminal, or nothing given in a script, takes it.

The setup key the browser login needs expires (an hour by default, ``--key-valid-for``) and works for one link.
A live key is kept (its expiry is printed); a missing or expired one is replaced, and only then is the login link
printed: the link is shown once, when its key is made.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kinotrakt.storage.ports import ServiceSecret

SERVICES: tuple[Service, ...] = ("kinopub", "trakt")
DEFAULT_KEY_VALIDITY = "1h"
# A login link sits in browser history: the shorter it lives, the less use it is to whoever finds it there.
MIN_KEY_VALIDITY = timedelta(minutes=5)
MAX_KEY_VALIDITY = timedelta(days=1)
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


def run(
    cli: Cli,
    kinopub_client_id: Annotated[
        str | None,
        typer.Option(help="Kinopub client_id (default: the public one of the Kodi add-on, xbmc; or one from support)"),
    ] = None,
    kinopub_client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--kinopub-client-secret-stdin", help="read the Kinopub client_secret from standard input (one line)"
        ),
    ] = False,
    trakt_client_id: Annotated[str | None, typer.Option(help="Trakt (your API app) client_id")] = None,
    trakt_client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--trakt-client-secret-stdin",
            help="read the Trakt client_secret from standard input (one line; after Kinopub's when both are read)",
        ),
    ] = False,
    login_url: Annotated[str | None, typer.Option(help="the stack output LoginUrl, or the HTTP API's base URL")] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="replace the setup key even if it is still valid (old links stop working)")
    ] = False,
    key_valid_for: Annotated[
        str, typer.Option(help="how long a new login link works, e.g. 30m, 2h, 1h30m (at most 1d)")
    ] = DEFAULT_KEY_VALIDITY,
    reset: Annotated[
        bool,
        typer.Option("--reset", help="overwrite a secret kinotrakt cannot read (not its JSON) with an empty one"),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="with --reset: do not ask for confirmation")] = False,
    kinopub_client_secret: Annotated[str | None, typer.Option(hidden=True)] = None,
    trakt_client_secret: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> int:
    """Store both services' client credentials and make the login link.

    Store the Kinopub and Trakt client credentials in the deployment's secrets (secrets are asked for in a
    terminal, or piped: `printf '%s\\n' "$TRAKT_CLIENT_SECRET" | kinotrakt setup --trakt-client-secret-stdin`;
    Kinopub's default is the public pair of the Kodi add-on), make the setup key the browser login needs (valid for
    `--key-valid-for`, one link) and print the login link. A secret that does not hold kinotrakt's JSON is
    overwritten only with --reset (after a confirmation, or --yes), or when you confirm in a terminal.
    """
    on_command_line: dict[Service, str | None] = {"kinopub": kinopub_client_secret, "trakt": trakt_client_secret}
    for service in SERVICES:
        if on_command_line[service] is not None:
            raise CliError(_secret_on_command_line(cli, service), EXIT_USAGE)
    validity = parse_validity(key_valid_for)
    piping: dict[Service, bool] = {"kinopub": kinopub_client_secret_stdin, "trakt": trakt_client_secret_stdin}
    # Read before anything is written: a short input fails the command, not half of it.
    from_stdin = {service: _read_secret_line(cli, service) for service in SERVICES if piping[service]}
    for service in SERVICES:
        _readable(cli, service, reset=reset, yes=yes)
    ids = {"kinopub": kinopub_client_id, "trakt": trakt_client_id}
    for service in SERVICES:
        _store_credentials(cli, service, ids[service], from_stdin.get(service))
    key = _setup_key(cli, new_key=new_key, validity=validity)
    login = None if key is None else _login_link(cli, login_url, key)
    _print_redirect_uris(cli, login)
    _print_next_steps(cli, made_key=key is not None, login=login)
    return EXIT_OK


def _pipe_hint(cli: Cli, service: Service) -> str:
    variable = f"{service.upper()}_CLIENT_SECRET"
    return f"printf '%s\\n' \"${variable}\" | {cli.command(f'setup --{service}-client-secret-stdin')}"


def _secret_on_command_line(cli: Cli, service: Service) -> str:
    return (
        f"--{service}-client-secret puts the secret on the command line (shell history, the process list); "
        f"nothing was stored. Pipe it instead:  {_pipe_hint(cli, service)}  "
        f"(or run {cli.command('setup')} in a terminal to be asked)"
    )


def parse_validity(text: str) -> timedelta:
    """``30m``, ``2h``, ``1h30m``, ``1d``: how long a new setup key stays valid."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise CliError(f"--key-valid-for {text!r}: give minutes, hours or days, e.g. 30m, 2h, 1h30m", EXIT_USAGE)
    days, hours, minutes = (int(part or 0) for part in match.groups())
    validity = timedelta(days=days, hours=hours, minutes=minutes)
    if not MIN_KEY_VALIDITY <= validity <= MAX_KEY_VALIDITY:
        raise CliError(f"--key-valid-for {text!r}: a login link may work for 5 minutes to 1 day", EXIT_USAGE)
    return validity


def _read_secret_line(cli: Cli, service: Service) -> str:
    name = label(service)
    value = cli.read_secret_line(f"{name} client_secret: ")
    if not value:
        raise CliError(
            f"--{service}-client-secret-stdin: standard input held no line for the {name} client_secret "
            f"(e.g. {_pipe_hint(cli, service)})",
            EXIT_USAGE,
        )
    return value


# --- a secret kinotrakt cannot read ---------------------------------------------------------------------------


def _readable(cli: Cli, service: Service, *, reset: bool, yes: bool) -> None:
    """Make sure the service's secret can be read: one that holds something else (edited by hand, not JSON, the
    wrong shape) is overwritten with an empty kinotrakt secret once the user has agreed to it."""
    from kinotrakt.errors import MalformedSecret
    from kinotrakt.storage.ports import ServiceSecret

    store = cli.deployment.token_store(service)
    try:
        store.load()
    except MalformedSecret as exc:
        name = cli.deployment.secret_name(service)
        if not reset and not cli.interactive():
            raise
        if not yes:
            if not cli.interactive():
                raise CliError(f"--reset overwrites the secret {name}: confirm with --yes", EXIT_USAGE) from None
            cli.output.warn(f"the secret {name} does not hold kinotrakt's token JSON ({exc.reason})")
            if not cli.confirm(f"Overwrite {name} with an empty kinotrakt secret? What it holds now is lost"):
                raise CliError(f"nothing changed; the secret {name} still cannot be read") from None
        store.save(ServiceSecret(), expected_version=exc.version)
        cli.output.say(f"{label(service)}: the secret {name} could not be read ({exc.reason}); it was reset.")


# --- client credentials ---------------------------------------------------------------------------------------


def _store_credentials(cli: Cli, service: Service, client_id: str | None, client_secret: str | None) -> None:
    from pydantic import SecretStr

    from kinotrakt.tokens import update_secret
    from kinotrakt_cli.deployment import without_tokens

    store = cli.deployment.token_store(service)
    current = store.load().secret
    name = label(service)
    client_id, secret_value, public = _ask_credentials(cli, service, current, client_id, client_secret)
    if not client_id or not secret_value:
        raise CliError(
            f"{name} client credentials are required: pass --{service}-client-id and pipe the secret "
            f"({_pipe_hint(cli, service)}), or run {cli.command('setup')} in a terminal to be asked",
            EXIT_USAGE,
        )
    relink = current.client_id is not None and current.client_id != client_id and current.refresh_token is not None

    def change(secret: ServiceSecret, cid: str = client_id, csecret: str = secret_value) -> ServiceSecret:
        # Tokens belong to the app that issued them: a different client_id makes them useless.
        base = without_tokens(secret) if secret.client_id not in (None, cid) else secret
        return base.model_copy(update={"client_id": cid, "client_secret": SecretStr(csecret)})

    update_secret(store, change)
    which = " (the public pair of the Kodi add-on, client_id xbmc)" if public else ""
    cli.output.say(f"{name} client credentials stored in {cli.deployment.secret_name(service)}{which}.")
    if relink:
        cli.output.say(f"  The client_id changed, so the old {name} link was cleared: link again below.")


def _ask_credentials(
    cli: Cli, service: Service, current: ServiceSecret, client_id: str | None, client_secret: str | None
) -> tuple[str | None, str | None, bool]:
    """The client id and secret to store (given, answered, stored, or Kinopub's public pair), and whether they
    are that public pair."""
    from kinotrakt.kinopub.oauth import PUBLIC_CLIENT_ID, PUBLIC_CLIENT_SECRET

    name = label(service)
    stored_secret = current.client_secret.get_secret_value() if current.client_secret else None
    if service == "kinopub" and current.client_id is None:
        # Nothing stored yet: the public pair is the default, in a terminal (Enter) and in a script.
        client_id = client_id or cli.ask(
            f"{name} client_id", PUBLIC_CLIENT_ID, secret=False, shown=f"{PUBLIC_CLIENT_ID}, the Kodi add-on's"
        )
    else:
        client_id = client_id or cli.ask(f"{name} client_id", current.client_id, secret=False)
    public = service == "kinopub" and client_id == PUBLIC_CLIENT_ID
    if client_secret is None:
        if client_id != current.client_id:
            stored_secret = None  # another app's secret is no default for this one
        if public and stored_secret is None:
            client_secret = cli.ask(
                f"{name} client_secret", PUBLIC_CLIENT_SECRET, secret=True, shown="Enter: the Kodi add-on's"
            )
        else:
            client_secret = cli.ask(f"{name} client_secret", stored_secret, secret=True)
    return client_id, client_secret, public and client_secret == PUBLIC_CLIENT_SECRET


# --- the setup key and the login link -------------------------------------------------------------------------


def _setup_key(cli: Cli, *, new_key: bool, validity: timedelta) -> str | None:
    """The new setup key, or None when a live one is kept (its login link was printed when it was made)."""
    from pydantic import SecretStr

    from kinotrakt.clock import utc_from_epoch
    from kinotrakt.tokens import update_secret
    from kinotrakt.web.login import new_setup_key, setup_key_live
    from kinotrakt_cli.output import when

    now = cli.clock.now()
    made: list[SecretStr] = []

    def set_key(secret: ServiceSecret) -> ServiceSecret:
        made.clear()
        if setup_key_live(secret, now) and not new_key:
            return secret
        made.append(new_setup_key())
        expires_at = int((now + validity).timestamp())
        return secret.model_copy(update={"setup_key": made[0], "setup_key_expires_at": expires_at})

    stored = update_secret(cli.deployment.token_store("trakt"), set_key)
    expires = utc_from_epoch(stored.setup_key_expires_at or 0)
    if not made:
        cli.output.say(
            f"Login link: the one made earlier works until {when(expires, now)}, for one link; it was printed "
            "then (--new-key makes a new one)."
        )
        return None
    cli.output.say(f"Login link: new, works until {when(expires, now)}, for one link.")
    return made[0].get_secret_value()


def _login_link(cli: Cli, login_url: str | None, key: str) -> str | None:
    """The login link with the setup key: from ``--login-url`` or the stack output ``LoginUrl`` (a template with
    ``<setup_key>``, or a base URL that gets ``/trakt/login?key=``)."""
    from urllib.parse import quote, urlencode, urlsplit, urlunsplit

    template = login_url or cli.deployment.login_url()
    if not template:
        return None
    if "<setup_key>" in template:
        return template.replace("<setup_key>", quote(key, safe=""))
    parts = urlsplit(template)
    path = parts.path.rstrip("/")
    if not path.endswith("/trakt/login"):
        path += "/trakt/login"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode({"key": key}), ""))


def _print_redirect_uris(cli: Cli, login: str | None) -> None:
    """The two redirect URIs the Trakt app must list: the browser login's callback (its tokens are refreshed with
    it) and the out-of-band one the terminal login's tokens are refreshed with (``trakt/oauth.py``)."""
    from urllib.parse import urlsplit, urlunsplit

    from kinotrakt.trakt.oauth import OOB_REDIRECT_URI

    callback = cli.deployment.callback_url()
    if callback is None and login is not None:
        parts = urlsplit(login)
        callback = urlunsplit((parts.scheme, parts.netloc, parts.path.removesuffix("/login") + "/callback", "", ""))
    say = cli.output.say
    say()
    say("Your Trakt app must list both redirect URIs (https://trakt.tv/oauth/applications, edit the app):")
    say(f"    {callback or 'the stack output CallbackUrl'}")
    say(f"    {OOB_REDIRECT_URI}")


def _print_next_steps(cli: Cli, *, made_key: bool, login: str | None) -> None:
    say = cli.output.say
    say()
    say("Next, link both accounts:")
    if login:
        # The setup key is printed only inside this link, and only now: the link is how the owner uses it.
        say("  Trakt, in a browser (this link carries your setup key; keep it private, it works once):")
        say(f"    {login}")
        say(f"  or Trakt, in this terminal:  {cli.command('link trakt')}")
    else:
        say(f"  Trakt, in this terminal:  {cli.command('link trakt')}")
        if made_key:
            new_key = cli.command("setup --new-key")
            say(f"  (for the browser login: {new_key} with --login-url or --stack, to print the link)")
    say(f"  Kinopub, in this terminal:  {cli.command('link kinopub')}")
