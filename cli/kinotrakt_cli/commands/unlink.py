"""``kinotrakt unlink kinopub|trakt``: revoke where the service can, and remove the stored tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label, without_tokens
from kinotrakt_cli.errors import EXIT_OK, EXIT_USAGE, CliError, problem

if TYPE_CHECKING:
    from kinotrakt.storage.ports import ServiceSecret


def run(
    cli: Cli,
    service: Annotated[Service, typer.Argument(help="the account to unlink")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> int:
    """Revoke (where possible) and remove an account's tokens.

    Revoke the token where the service supports it (Trakt) and remove the stored tokens; the client
    credentials and the setup key stay, so the account can be linked again right away.
    """
    from kinotrakt.tokens import update_secret

    store = cli.deployment.token_store(service)
    secret = store.load().secret
    name = label(service)
    if secret.access_token is None and secret.refresh_token is None:
        cli.output.say(f"{name} is not linked; nothing to do.")
        return EXIT_OK
    if not yes:
        if not cli.interactive():
            raise CliError("unlink stops the sync for this account: confirm with --yes", EXIT_USAGE)
        if not cli.confirm(f"Unlink {name}? The sync stops until you link again"):
            cli.output.say("Nothing changed.")
            return EXIT_OK
    if service == "trakt":
        _revoke_trakt(cli, secret)
    update_secret(store, without_tokens)
    cli.output.say(f"{name} unlinked: the tokens were removed from {cli.deployment.secret_name(service)}.")
    if service == "kinopub":
        # Kinopub has no documented revoke endpoint (docs/kinopub.md#auth-device-flow-only).
        cli.output.say("  Kinopub cannot revoke tokens remotely: remove the kinotrakt device in your Kinopub settings.")
    return EXIT_OK


def _revoke_trakt(cli: Cli, secret: ServiceSecret) -> None:
    from kinotrakt import wiring
    from kinotrakt.errors import KinotraktError

    if not secret.client_id or secret.client_secret is None:
        cli.output.warn("no Trakt client credentials stored, so the token could not be revoked on Trakt")
        return
    oauth = wiring.trakt_oauth(
        cli.deployment.settings, cli.deployment.transport("trakt"), secret.client_id, secret.client_secret
    )
    token = secret.access_token or secret.refresh_token
    assert token is not None  # noqa: S101 - the caller checked that one is stored
    try:
        oauth.revoke(token.get_secret_value())
    except KinotraktError as exc:
        cli.output.warn(
            f"Trakt did not confirm the revocation ({problem(exc)}); revoke kinotrakt in Trakt's Connected Apps"
        )
    else:
        cli.output.say("Trakt revoked the token.")
