"""``kinotrakt setup``: client credentials into both secrets, the setup key, the login link."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import typer
from pydantic import SecretStr

from kinotrakt.storage.ports import ServiceSecret
from kinotrakt.tokens import update_secret
from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label, without_tokens
from kinotrakt_cli.errors import EXIT_OK, EXIT_USAGE, CliError

SERVICES: tuple[Service, ...] = ("kinopub", "trakt")


def run(
    cli: Cli,
    kinopub_client_id: Annotated[str | None, typer.Option(help="Kinopub (issued by Kinopub support) client_id")] = None,
    kinopub_client_secret: Annotated[
        str | None, typer.Option(help="Kinopub client_secret (asked for when omitted)")
    ] = None,
    trakt_client_id: Annotated[str | None, typer.Option(help="Trakt (your API app) client_id")] = None,
    trakt_client_secret: Annotated[
        str | None, typer.Option(help="Trakt client_secret (asked for when omitted)")
    ] = None,
    login_url: Annotated[str | None, typer.Option(help="the stack output LoginUrl, or the HTTP API's base URL")] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="replace the setup key (old login links stop working)")
    ] = False,
) -> int:
    """Store both services' client credentials and create the login setup key.

    Store the Kinopub and Trakt client credentials in the deployment's secrets (asked for when not given),
    create the setup key the browser login requires, and print the login link.
    """
    given = {
        "kinopub": (kinopub_client_id, kinopub_client_secret),
        "trakt": (trakt_client_id, trakt_client_secret),
    }
    for service in SERVICES:
        _store_credentials(cli, service, *given[service])
    key = _setup_key(cli, new_key=new_key)
    _print_next_steps(cli, _login_link(cli, login_url, key))
    return EXIT_OK


def _store_credentials(cli: Cli, service: Service, client_id: str | None, client_secret: str | None) -> None:
    store = cli.deployment.token_store(service)
    current = store.load().secret
    name = label(service)
    client_id = client_id or cli.ask(f"{name} client_id", current.client_id, secret=False)
    secret_value = client_secret or cli.ask(
        f"{name} client_secret",
        current.client_secret.get_secret_value() if current.client_secret else None,
        secret=True,
    )
    if not client_id or not secret_value:
        raise CliError(
            f"{name} client credentials are required: pass --{service}-client-id and "
            f"--{service}-client-secret (or run setup in a terminal to be asked)",
            EXIT_USAGE,
        )
    relink = current.client_id is not None and current.client_id != client_id and current.refresh_token is not None

    def change(secret: ServiceSecret, cid: str = client_id, csecret: str = secret_value) -> ServiceSecret:
        # Tokens belong to the app that issued them: a different client_id makes them useless.
        base = without_tokens(secret) if secret.client_id not in (None, cid) else secret
        return base.model_copy(update={"client_id": cid, "client_secret": SecretStr(csecret)})

    update_secret(store, change)
    cli.output.say(f"{name} client credentials stored in {cli.deployment.secret_name(service)}.")
    if relink:
        cli.output.say(f"  The client_id changed, so the old {name} link was cleared: link again below.")


def _setup_key(cli: Cli, *, new_key: bool) -> str:
    from kinotrakt.web.login import new_setup_key

    def set_key(secret: ServiceSecret) -> ServiceSecret:
        if secret.setup_key is not None and not new_key:
            return secret
        return secret.model_copy(update={"setup_key": new_setup_key()})

    store = cli.deployment.token_store("trakt")
    previous = store.load().secret.setup_key
    stored = update_secret(store, set_key).setup_key
    assert stored is not None  # noqa: S101 - set_key guarantees it
    if previous is None:
        cli.output.say("Setup key: generated.")
    elif new_key:
        cli.output.say("Setup key: replaced; login links with the old key no longer work.")
    else:
        cli.output.say("Setup key: kept (--new-key replaces it).")
    return stored.get_secret_value()


def _login_link(cli: Cli, login_url: str | None, key: str) -> str | None:
    """The login link with the setup key: from ``--login-url`` or the stack output ``LoginUrl`` (a template with
    ``<setup_key>``, or a base URL that gets ``/trakt/login?key=``)."""
    template = login_url or cli.deployment.stack_outputs.get("LoginUrl")
    if not template:
        return None
    if "<setup_key>" in template:
        return template.replace("<setup_key>", quote(key, safe=""))
    parts = urlsplit(template)
    path = parts.path.rstrip("/")
    if not path.endswith("/trakt/login"):
        path += "/trakt/login"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode({"key": key}), ""))


def _print_next_steps(cli: Cli, login: str | None) -> None:
    say = cli.output.say
    say()
    say("Next, link both accounts:")
    if login:
        # The setup key is printed only inside this link: the link is how the owner uses it.
        say("  Trakt, in a browser (this link works only with your setup key; keep it private):")
        say(f"    {login}")
        say("  or Trakt, in this terminal:  kinotrakt link trakt")
    else:
        say("  Trakt, in this terminal:  kinotrakt link trakt")
        say("  (for the browser login, pass --login-url or --stack: the stack output LoginUrl plus your setup key)")
    say("  Kinopub, in this terminal:  kinotrakt link kinopub")
