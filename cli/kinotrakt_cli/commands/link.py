"""``kinotrakt link kinopub|trakt``: the device flow from a terminal, tokens into the service's secret; a Trakt
link is announced on the alarm topic and counted (``TraktLinked``), as a browser link is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kinotrakt_cli.context import Cli
from kinotrakt_cli.deployment import Service, label
from kinotrakt_cli.errors import EXIT_INTERRUPTED, EXIT_OK, CliError, problem

if TYPE_CHECKING:
    from pydantic import SecretStr

    from kinotrakt.clock import Clock
    from kinotrakt.errors import ServiceUnavailable
    from kinotrakt.storage.ports import ServiceSecret, TokenStore
    from kinotrakt.tokens import TokenGrant
    from kinotrakt.web.login import LinkNotice


class LinkCancelled(CliError):
    """Ctrl-C before the tokens were stored."""

    def __init__(self, service: Service) -> None:
        super().__init__(f"{label(service)} link cancelled; nothing changed", EXIT_INTERRUPTED)


def run(
    cli: Cli,
    service: Annotated[Service, typer.Argument(help="the account to link")],
) -> int:
    """Link an account from this terminal (device code).

    Show a code to enter on the service's site, wait for approval (polling at the service's interval),
    store the tokens.
    """
    from kinotrakt.errors import NotConfigured, ServiceUnavailable

    store = cli.deployment.token_store(service)
    secret = store.load().secret
    if not secret.client_id or secret.client_secret is None:
        raise NotConfigured(label(service))
    try:
        if service == "kinopub":
            _link_kinopub(cli, store, secret.client_id, secret.client_secret)
        else:
            _link_trakt(cli, store, secret.client_id, secret.client_secret)
    except ServiceUnavailable as exc:
        raise CliError(_unreachable(cli, service, exc)) from None
    return EXIT_OK


def _unreachable(cli: Cli, service: Service, exc: ServiceUnavailable) -> str:
    """The host that could not be reached (or kept failing), and what to check; nothing was stored."""
    name = label(service)
    host = exc.host or cli.deployment.service_url(service)
    variable = "KINOPUB_API_URL" if service == "kinopub" else "TRAKT_AUTH_URL / TRAKT_API_URL"
    if exc.unreachable:
        return (
            f"could not reach {name} at {host} ({exc.detail}): check this machine's network connection and proxy "
            f"settings, and {variable} if you set it; nothing changed"
        )
    return f"{name} at {host} kept failing ({exc.detail}): try again in a few minutes; nothing changed"


def _link_kinopub(cli: Cli, store: TokenStore, client_id: str, client_secret: SecretStr) -> None:
    from kinotrakt import wiring
    from kinotrakt.errors import KinotraktError
    from kinotrakt_cli.output import device_code_wait

    oauth = wiring.kinopub_oauth(cli.deployment.settings, cli.deployment.transport("kinopub"), client_id, client_secret)
    try:
        device = oauth.request_device_code()
        with device_code_wait(
            cli.output, "Kinopub", device.verification_uri, device.user_code, device.expires_in, cli.clock
        ) as on_tick:
            grant = oauth.poll_device_token(device, cli.clock, on_tick)
    except KeyboardInterrupt:
        raise LinkCancelled("kinopub") from None
    _store_grant(store, grant, cli.clock, redirect_uri=None)
    try:
        oauth.notify_device(grant.access_token)
    except KinotraktError as exc:
        cli.output.warn(f"linked, but naming the device in Kinopub's device list failed ({problem(exc)})")
    cli.output.say(f"Kinopub account linked; tokens stored in {cli.deployment.secret_name('kinopub')}.")


def _link_trakt(cli: Cli, store: TokenStore, client_id: str, client_secret: SecretStr) -> None:
    from kinotrakt import wiring
    from kinotrakt.trakt.oauth import OOB_REDIRECT_URI
    from kinotrakt.web.login import LinkNotice, clean_username
    from kinotrakt_cli.output import device_code_wait

    oauth = wiring.trakt_oauth(cli.deployment.settings, cli.deployment.transport("trakt"), client_id, client_secret)
    try:
        device = oauth.request_device_code()
        # Trakt documents no prefilled activation link, so the code is typed in by hand.
        with device_code_wait(
            cli.output, "Trakt", device.verification_url, device.user_code, device.expires_in, cli.clock
        ) as on_tick:
            grant = oauth.poll_device_token(device, cli.clock, on_tick)
    except KeyboardInterrupt:
        raise LinkCancelled("trakt") from None
    username = clean_username(_trakt_username(cli, store.load().secret, grant.access_token))
    # Device-flow tokens are refreshed with the out-of-band redirect URI they were issued for (which is why the
    # Trakt app must list it next to the deployment's CallbackUrl). The browser login's setup key is of no use
    # once linked: it goes, as after a browser login.
    before = _store_grant(
        store,
        grant,
        cli.clock,
        redirect_uri=OOB_REDIRECT_URI,
        also={"setup_key": None, "setup_key_expires_at": None, "linked_user": username},
    )
    who = f" as {username}" if username else ""
    cli.output.say(f"Trakt account linked{who}; tokens stored in {cli.deployment.secret_name('trakt')}.")
    previous = clean_username(before.linked_user)
    _tell_owner(cli, LinkNotice(username, previous, before.refresh_token is not None, cli.clock.now(), "terminal"))


def _tell_owner(cli: Cli, notice: LinkNotice) -> None:
    """Announce the link as the browser login does (issue 13: an unexpected re-link must be noticed): the notice
    on the alarm topic and a ``TraktLinked`` count. The link is stored already: what cannot be sent is one
    warning line, never a failed command."""
    missed: list[str] = []
    try:
        cli.deployment.announce_link(notice)
    except Exception as exc:  # whatever it is, the link stays made
        missed.append(f"the owner was not notified: {_why(cli, exc)}")
    try:
        cli.deployment.count_event("TraktLinked")
    except Exception as exc:  # likewise
        missed.append(f"the TraktLinked metric was not recorded: {_why(cli, exc)}")
    if missed:
        cli.output.warn(f"Trakt linked, but {'; and '.join(missed)}")


def _why(cli: Cli, exc: Exception) -> str:
    """What went wrong, in the words the CLI's errors use (an AWS failure names the resource and the region)."""
    from kinotrakt.errors import KinotraktError
    from kinotrakt_cli.aws_errors import explain

    if isinstance(exc, CliError | KinotraktError):
        return str(exc)
    # The type only when nothing explains it: an unknown message could quote anything.
    return explain(exc, cli.deployment.target_for_messages()) or f"unexpected {type(exc).__name__}"


def _store_grant(
    store: TokenStore,
    grant: TokenGrant,
    clock: Clock,
    *,
    redirect_uri: str | None,
    also: dict[str, object] | None = None,
) -> ServiceSecret:
    """Store the grant (and ``also``) in one write; returns the secret as it was before that write."""
    from kinotrakt.tokens import apply_grant, update_secret

    before: list[ServiceSecret] = []

    def change(secret: ServiceSecret) -> ServiceSecret:
        before[:] = [secret]
        updated = apply_grant(secret, grant, clock.now())
        if redirect_uri is not None:
            updated = updated.model_copy(update={"redirect_uri": redirect_uri})
        return updated.model_copy(update=also or {})

    update_secret(store, change)
    return before[0]


def _trakt_username(cli: Cli, client: ServiceSecret, access_token: str) -> str | None:
    from kinotrakt.clock import Deadline
    from kinotrakt.errors import KinotraktError
    from kinotrakt.web.trakt_gateway import TraktGateway

    try:
        gateway = TraktGateway(cli.deployment.settings, cli.clock, Deadline(cli.clock, None, 0))
        return gateway.username(client, access_token)
    except KinotraktError as exc:
        cli.output.warn(f"linked, but reading the Trakt user name failed ({problem(exc)})")
        return None
