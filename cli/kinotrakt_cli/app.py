"""``kinotrakt ...``: set a deployment up, link both accounts, run and watch the sync from a terminal.

Where things are: ``--table`` / ``--kinopub-secret`` / ``--trakt-secret`` (or the Lambda's own variables
``STATE_TABLE_NAME`` / ``KINOPUB_SECRET_ID`` / ``TRAKT_SECRET_ID``); without them, the stack named by ``--stack``
(default ``kinotrakt``): its secrets are ``<stack>/kinopub`` and ``<stack>/trakt``, its table is the stack output
``StateTableName``.

Exit codes: 0 done, 1 failed (one line on stderr says why; ``--debug`` adds the stack), 2 wrong usage.
Nothing here ever prints a token or a client secret; the setup key is printed only inside the login link,
because that link is how the owner uses it.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import IO, Any, Literal, Protocol
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr, ValidationError

from kinotrakt import __version__
from kinotrakt.clock import Clock, Deadline, SystemClock, utc_from_epoch
from kinotrakt.config import Settings
from kinotrakt.errors import KinotraktError, NotConfigured
from kinotrakt.http import CallCounter, Transport
from kinotrakt.observability import logger
from kinotrakt.service import run_sync_once
from kinotrakt.storage.ports import Pin, ServiceSecret, StateStore, TokenStore
from kinotrakt.tokens import TokenGrant, apply_grant, update_secret

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DEFAULT_STACK = "kinotrakt"
# Kinopub's refresh token reportedly dies after ~30 days unused (reference/kinopub-api.md).
KINOPUB_REFRESH_LIFETIME = timedelta(days=30)
UNUSED_TABLE = "unused-by-this-command"

Service = Literal["kinopub", "trakt"]


class CliError(Exception):
    """A failure to report in one line; ``exit_code`` 1 (failed) or 2 (wrong usage)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SyncRunner(Protocol):
    def __call__(
        self,
        settings: Settings,
        *,
        state: StateStore,
        kinopub_store: TokenStore,
        trakt_store: TokenStore,
        clock: Clock | None = None,
        remaining_seconds: float | None = None,
        dry_run: bool | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Stores:
    state: StateStore
    kinopub: TokenStore
    trakt: TokenStore


@dataclass(frozen=True)
class AwsTarget:
    """Where the AWS resources are; the production store factory turns this into clients."""

    region: str | None
    endpoint_url: str | None


@dataclass(frozen=True)
class Sandbox:
    """An offline deployment for ``sync --sandbox``: settings and stores that point at it."""

    settings: Settings
    stores: Stores


def _aws_stores(settings: Settings, target: AwsTarget) -> Stores:
    from kinotrakt.storage.aws import aws_stores

    state, kinopub, trakt = aws_stores(settings, session=_boto_session(target))
    return Stores(state, kinopub, trakt)


def _stack_outputs(stack: str, target: AwsTarget) -> dict[str, str]:
    """The CloudFormation outputs of ``stack`` (empty when the stack cannot be read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _boto_session(target).client("cloudformation")
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError):
        return {}
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs if "OutputKey" in o and "OutputValue" in o}


def _boto_session(target: AwsTarget) -> Any:
    import boto3

    class _Session(boto3.Session):
        """Every client of this session talks to ``--endpoint-url`` (a moto server, LocalStack)."""

        def client(self, *args: Any, **kwargs: Any) -> Any:
            if target.endpoint_url:
                kwargs.setdefault("endpoint_url", target.endpoint_url)
            return super().client(*args, **kwargs)

    return _Session(region_name=target.region)


@contextmanager
def _repository_sandbox() -> Iterator[Sandbox]:
    """``make demo``'s offline world (moto + fake Kinopub + fake Trakt, seeded); only in a repository checkout."""
    try:
        from devkit.fakes.library import seed_demo_library
        from devkit.sandbox import sandbox
    except ImportError:
        raise CliError("--sandbox needs the kinotrakt repository checkout (devkit) and its dev packages") from None
    with sandbox(seed=seed_demo_library) as box:
        yield Sandbox(Settings(), Stores(box.state(), box.kinopub_store(), box.trakt_store()))


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@dataclass
class CliDeps:
    """Everything the CLI touches outside itself; tests hand in moto-backed stores and the fakes' clocks."""

    settings: Settings | None = None  # None: from the environment (the Lambda's variables)
    stores: Callable[[Settings, AwsTarget], Stores] = _aws_stores
    stack_outputs: Callable[[str, AwsTarget], Mapping[str, str]] = _stack_outputs
    run_sync: SyncRunner = run_sync_once
    sandbox: Callable[[], AbstractContextManager[Sandbox]] = _repository_sandbox
    clock: Clock = field(default_factory=SystemClock)
    out: IO[str] | None = None  # None: sys.stdout at call time
    err: IO[str] | None = None
    prompt: Callable[[str], str] = input
    prompt_secret: Callable[[str], str] = getpass.getpass
    interactive: Callable[[], bool] = _stdin_is_terminal


# --- the context one command runs in -------------------------------------------------------------------------


class Context:
    def __init__(self, args: argparse.Namespace, deps: CliDeps) -> None:
        self.args = args
        self.deps = deps
        self.clock = deps.clock
        self.out: IO[str] = deps.out or sys.stdout
        self.err: IO[str] = deps.err or sys.stderr
        self.target = AwsTarget(args.region, args.endpoint_url)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.err, flush=True)

    @cached_property
    def base_settings(self) -> Settings:
        try:
            return self.deps.settings or Settings()
        except ValidationError as exc:
            names = ", ".join(sorted({str(error["loc"][0]).upper() for error in exc.errors() if error["loc"]}))
            raise CliError(f"invalid environment variable(s): {names}") from None

    @cached_property
    def stack_outputs(self) -> Mapping[str, str]:
        return self.deps.stack_outputs(self.args.stack, self.target)

    @cached_property
    def settings(self) -> Settings:
        """The deployment's settings: flags, then the environment, then the stack's names."""
        base = self.base_settings
        stack = self.args.stack
        kinopub = self.args.kinopub_secret or base.kinopub_secret_id or f"{stack}/kinopub"
        trakt = self.args.trakt_secret or base.trakt_secret_id or f"{stack}/trakt"
        table = self.args.table or base.state_table_name
        if not table and self.args.needs_state:
            table = self.stack_outputs.get("StateTableName", "")
        elif not table:
            # setup, link and unlink only touch the secrets; the state store is built but never called.
            table = UNUSED_TABLE
        if not table:
            raise CliError(
                f"cannot find the state table: pass --table, set STATE_TABLE_NAME, or deploy the stack "
                f"{stack!r} (its output StateTableName names it) and pass --stack/--region if it differs"
            )
        return base.model_copy(
            update={"kinopub_secret_id": kinopub, "trakt_secret_id": trakt, "state_table_name": table}
        )

    @cached_property
    def stores(self) -> Stores:
        return self.deps.stores(self.settings, self.target)

    def token_store(self, service: Service) -> TokenStore:
        return self.stores.kinopub if service == "kinopub" else self.stores.trakt

    def secret_name(self, service: Service) -> str:
        return self.settings.kinopub_secret_id if service == "kinopub" else self.settings.trakt_secret_id

    def transport(self, service: Service) -> Transport:
        deadline = Deadline(self.clock, None, 0)
        if service == "trakt":
            from kinotrakt.trakt.client import trakt_transport

            return trakt_transport(
                post_interval_seconds=self.settings.trakt_post_interval_seconds,
                clock=self.clock,
                deadline=deadline,
                counter=CallCounter(),
                timeout_seconds=self.settings.http_timeout_seconds,
            )
        return Transport(
            "kinopub",
            clock=self.clock,
            deadline=deadline,
            counter=CallCounter(),
            user_agent=self.settings.kinopub_user_agent,
            timeout=self.settings.http_timeout_seconds,
        )


def _cleared(secret: ServiceSecret) -> ServiceSecret:
    """The secret without tokens: client credentials and the setup key stay."""
    return secret.model_copy(
        update={"access_token": None, "refresh_token": None, "expires_at": None, "issued_at": None}
    )


# --- setup ---------------------------------------------------------------------------------------------------


def cmd_setup(ctx: Context) -> int:
    args = ctx.args
    for service in ("kinopub", "trakt"):
        client_id = getattr(args, f"{service}_client_id")
        client_secret = getattr(args, f"{service}_client_secret")
        store = ctx.token_store(service)
        current = store.load().secret
        client_id = client_id or _ask(ctx, f"{_label(service)} client_id", current.client_id, secret=False)
        secret_value = client_secret or _ask(
            ctx,
            f"{_label(service)} client_secret",
            current.client_secret.get_secret_value() if current.client_secret else None,
            secret=True,
        )
        if not client_id or not secret_value:
            raise CliError(
                f"{_label(service)} client credentials are required: pass --{service}-client-id and "
                f"--{service}-client-secret (or run setup in a terminal to be asked)",
                EXIT_USAGE,
            )
        relink = current.client_id is not None and current.client_id != client_id and current.refresh_token is not None

        def change(secret: ServiceSecret, cid: str = client_id, csecret: str = secret_value) -> ServiceSecret:
            # Tokens belong to the app that issued them: a different client_id makes them useless.
            base = _cleared(secret) if secret.client_id not in (None, cid) else secret
            return base.model_copy(update={"client_id": cid, "client_secret": SecretStr(csecret)})

        update_secret(store, change)
        ctx.say(f"{_label(service)} client credentials stored in {ctx.secret_name(service)}.")
        if relink:
            ctx.say(f"  The client_id changed, so the old {_label(service)} link was cleared: link again below.")

    from kinotrakt.web.login import new_setup_key

    def set_key(secret: ServiceSecret) -> ServiceSecret:
        if secret.setup_key is not None and not args.new_key:
            return secret
        return secret.model_copy(update={"setup_key": new_setup_key()})

    previous = ctx.stores.trakt.load().secret.setup_key
    trakt_secret = update_secret(ctx.stores.trakt, set_key)
    assert trakt_secret.setup_key is not None  # noqa: S101 - set_key guarantees it
    key = trakt_secret.setup_key.get_secret_value()
    if previous is None:
        ctx.say("Setup key: generated.")
    elif args.new_key:
        ctx.say("Setup key: replaced; login links with the old key no longer work.")
    else:
        ctx.say("Setup key: kept (--new-key replaces it).")

    login = _login_url(ctx, key)
    ctx.say()
    ctx.say("Next, link both accounts:")
    if login:
        ctx.say("  Trakt, in a browser (this link works only with your setup key; keep it private):")
        ctx.say(f"    {login}")
        ctx.say("  or Trakt, in this terminal:  kinotrakt link trakt")
    else:
        ctx.say("  Trakt, in this terminal:  kinotrakt link trakt")
        ctx.say("  (for the browser login, pass --login-url or --stack: the stack output LoginUrl plus your setup key)")
    ctx.say("  Kinopub, in this terminal:  kinotrakt link kinopub")
    return EXIT_OK


def _ask(ctx: Context, what: str, current: str | None, *, secret: bool) -> str | None:
    if not ctx.deps.interactive():
        return current
    hint = ""
    if current is not None:
        hint = " [Enter keeps the stored one]" if secret else f" [{current}]"
    asker = ctx.deps.prompt_secret if secret else ctx.deps.prompt
    answer = asker(f"{what}{hint}: ").strip()
    return answer or current


def _login_url(ctx: Context, key: str) -> str | None:
    template = ctx.args.login_url or ctx.stack_outputs.get("LoginUrl")
    if not template:
        return None
    if "<setup_key>" in template:
        return template.replace("<setup_key>", quote(key, safe=""))
    parts = urlsplit(template)
    path = parts.path.rstrip("/")
    if not path.endswith("/trakt/login"):
        path += "/trakt/login"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode({"key": key}), ""))


# --- link ----------------------------------------------------------------------------------------------------


class Countdown:
    """``on_tick`` for the device flows: one updating line in a terminal, a line a minute elsewhere."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last_minute: int | None = None

    def __call__(self, seconds_left: float) -> None:
        left = max(0, int(seconds_left))
        text = f"waiting for approval... {left // 60}:{left % 60:02d} left"
        if self._tty:
            print(f"\r  {text} ", end="", file=self._out, flush=True)
        elif left // 60 != self._last_minute:
            self._last_minute = left // 60
            print(f"  {text}", file=self._out, flush=True)

    def done(self) -> None:
        if self._tty:
            print(file=self._out, flush=True)


def cmd_link(ctx: Context) -> int:
    service: Service = ctx.args.service
    store = ctx.token_store(service)
    secret = store.load().secret
    if not secret.client_id or secret.client_secret is None:
        raise NotConfigured(_label(service))
    transport = ctx.transport(service)
    countdown = Countdown(ctx.out)
    if service == "kinopub":
        from kinotrakt.kinopub.oauth import KinopubOAuth

        kinopub = KinopubOAuth(transport, ctx.settings.kinopub_base, secret.client_id, secret.client_secret)
        kp_device = kinopub.request_device_code()
        _show_code(ctx, "Kinopub", kp_device.verification_uri, kp_device.user_code, kp_device.expires_in)
        try:
            grant = kinopub.poll_device_token(kp_device, ctx.clock, countdown)
        finally:
            countdown.done()
        _store_grant(store, grant, ctx.clock, redirect_uri=None)
        try:
            kinopub.notify_device(grant.access_token)
        except KinotraktError as exc:
            ctx.warn(f"linked, but naming the device in Kinopub's device list failed: {exc}")
        ctx.say(f"Kinopub account linked; tokens stored in {ctx.secret_name(service)}.")
        return EXIT_OK

    from kinotrakt.trakt.oauth import OOB_REDIRECT_URI, TraktOAuth

    trakt = TraktOAuth(transport, ctx.settings.trakt_auth_base, secret.client_id, secret.client_secret)
    device = trakt.request_device_code()
    # Trakt documents no prefilled activation link, so the code is typed in by hand.
    _show_code(ctx, "Trakt", device.verification_url, device.user_code, device.expires_in)
    try:
        grant = trakt.poll_device_token(device, ctx.clock, countdown)
    finally:
        countdown.done()
    # Device-flow tokens are refreshed with the out-of-band redirect URI they were issued for.
    _store_grant(store, grant, ctx.clock, redirect_uri=OOB_REDIRECT_URI)
    username = _trakt_username(ctx, store)
    who = f" as {username}" if username else ""
    ctx.say(f"Trakt account linked{who}; tokens stored in {ctx.secret_name(service)}.")
    return EXIT_OK


def _show_code(ctx: Context, name: str, url: str, user_code: str, expires_in: int) -> None:
    ctx.say(f"Link {name}: open {url} and enter the code")
    ctx.say()
    ctx.say(f"    {user_code}")
    ctx.say()
    ctx.say(f"The code is valid for {expires_in // 60} min {expires_in % 60:02d} s. Ctrl+C cancels.")


def _store_grant(store: TokenStore, grant: TokenGrant, clock: Clock, *, redirect_uri: str | None) -> None:
    def change(secret: ServiceSecret) -> ServiceSecret:
        updated = apply_grant(secret, grant, clock.now())
        if redirect_uri is not None:
            updated = updated.model_copy(update={"redirect_uri": redirect_uri})
        return updated

    update_secret(store, change)


def _trakt_username(ctx: Context, store: TokenStore) -> str | None:
    from kinotrakt.web.trakt_gateway import TraktGateway

    try:
        return TraktGateway(ctx.settings, store, ctx.clock, Deadline(ctx.clock, None, 0)).username()
    except KinotraktError as exc:
        ctx.warn(f"linked, but reading the Trakt user name failed: {exc}")
        return None


# --- unlink --------------------------------------------------------------------------------------------------


def cmd_unlink(ctx: Context) -> int:
    service: Service = ctx.args.service
    store = ctx.token_store(service)
    secret = store.load().secret
    if secret.access_token is None and secret.refresh_token is None:
        ctx.say(f"{_label(service)} is not linked; nothing to do.")
        return EXIT_OK
    if not ctx.args.yes:
        if not ctx.deps.interactive():
            raise CliError("unlink stops the sync for this account: confirm with --yes", EXIT_USAGE)
        answer = ctx.deps.prompt(f"Unlink {_label(service)}? The sync stops until you link again [y/N]: ")
        if answer.strip().lower() not in ("y", "yes"):
            ctx.say("Nothing changed.")
            return EXIT_OK
    if service == "trakt":
        _revoke_trakt(ctx, secret)
    update_secret(store, _cleared)
    ctx.say(f"{_label(service)} unlinked: the tokens were removed from {ctx.secret_name(service)}.")
    if service == "kinopub":
        # Kinopub has no documented revoke endpoint (reference/kinopub-api.md).
        ctx.say("  Kinopub cannot revoke tokens remotely: remove the kinotrakt device in your Kinopub settings.")
    return EXIT_OK


def _revoke_trakt(ctx: Context, secret: ServiceSecret) -> None:
    from kinotrakt.trakt.oauth import TraktOAuth

    if not secret.client_id or secret.client_secret is None:
        ctx.warn("no Trakt client credentials stored, so the token could not be revoked on Trakt")
        return
    oauth = TraktOAuth(ctx.transport("trakt"), ctx.settings.trakt_auth_base, secret.client_id, secret.client_secret)
    token = secret.access_token or secret.refresh_token
    assert token is not None  # noqa: S101 - the caller checked that one is stored
    try:
        oauth.revoke(token.get_secret_value())
    except KinotraktError as exc:
        ctx.warn(f"Trakt did not confirm the revocation ({exc}); revoke kinotrakt in Trakt's Connected Apps")
    else:
        ctx.say("Trakt revoked the token.")


# --- sync ----------------------------------------------------------------------------------------------------


def cmd_sync(ctx: Context) -> int:
    dry_run = True if ctx.args.dry_run else None
    if ctx.args.sandbox:
        with ctx.deps.sandbox() as box:
            ctx.say("Sandbox: moto + fake Kinopub + fake Trakt, seeded with the demo library.")
            report = ctx.deps.run_sync(
                box.settings,
                state=box.stores.state,
                kinopub_store=box.stores.kinopub,
                trakt_store=box.stores.trakt,
                clock=ctx.clock,
                dry_run=dry_run,
            )
    else:
        report = ctx.deps.run_sync(
            ctx.settings,
            state=ctx.stores.state,
            kinopub_store=ctx.stores.kinopub,
            trakt_store=ctx.stores.trakt,
            clock=ctx.clock,
            dry_run=dry_run,
        )
    ctx.say(render_report(report))
    status = report.get("status")
    if status in ("ok", "skipped"):
        return EXIT_OK
    return EXIT_FAILURE


def render_report(report: Mapping[str, Any]) -> str:
    calls = report.get("http_calls") or {}
    dry = " (dry run: nothing was written)" if report.get("dry_run") else ""
    rows = [
        ("status", f"{str(report.get('status', '?')).upper()}{dry}"),
        ("completed views on Kinopub", report.get("candidates", 0)),
        ("added movies", report.get("added_movies", 0)),
        ("added episodes", report.get("added_episodes", 0)),
        ("skipped, already on Trakt", report.get("skipped_duplicates", 0)),
        ("not found on Trakt", report.get("not_found", 0)),
        ("unmatched", report.get("unmatched", 0)),
        ("watermark (last success)", report.get("watermark") or "-"),
        ("HTTP calls", f"Kinopub {calls.get('kinopub', 0)}, Trakt {calls.get('trakt', 0)}"),
    ]
    lines = [f"{label:<28} {value}" for label, value in rows]
    added = [entry for entry in report.get("added") or [] if isinstance(entry, str)]
    if added:
        lines.append("would add:" if report.get("dry_run") else "added:")
        lines += [f"  + {entry}" for entry in added]
    unmatched = [item for item in report.get("unmatched_items") or [] if isinstance(item, dict)]
    if unmatched:
        lines.append("unmatched (kinotrakt unmatched; fix with kinotrakt map):")
        lines += [f"  ? {_unmatched_label(item)}: {item.get('reason', '')}" for item in unmatched]
    error = report.get("error")
    if isinstance(error, dict) and error.get("message"):
        lines.append(f"error: {error['message']}")
    return "\n".join(lines)


def _unmatched_label(item: Mapping[str, Any]) -> str:
    title = str(item.get("title") or f"Kinopub item {item.get('kinopub_id', '?')}")
    season, episode = item.get("season"), item.get("episode")
    if isinstance(season, int) and isinstance(episode, int):
        return f"{title} S{season:02d}E{episode:02d}"
    return title


# --- status --------------------------------------------------------------------------------------------------


def cmd_status(ctx: Context) -> int:
    now = ctx.clock.now()
    state = ctx.stores.state
    reports = state.list_reports(limit=ctx.args.runs)
    ctx.say("Last runs (newest first):")
    if not reports:
        ctx.say("  none yet (the schedule runs the sync; or: kinotrakt sync)")
    for report in reports:
        ctx.say("  " + _run_line(report))
    watermark = state.load_sync_state().watermark
    ctx.say(f"Watermark (last success): {_when(watermark, now) if watermark else 'none yet'}")
    ctx.say()
    for service in ("kinopub", "trakt"):
        ctx.say(f"{_label(service)}: {_token_status(service, ctx.token_store(service).load().secret, now)}")
    ctx.say()
    pending = len(state.list_unmatched())
    if pending:
        ctx.say(f"Unmatched: {pending} waiting (kinotrakt unmatched)")
    else:
        ctx.say("Unmatched: none")
    return EXIT_OK


def _run_line(report: Mapping[str, Any]) -> str:
    started = str(report.get("started_at") or "?")[:16].replace("T", " ")
    status = str(report.get("status", "?"))
    text = (
        f"{started}Z  {status:<8} {report.get('candidates', 0)} views, added {report.get('added_movies', 0)} movies"
        f" + {report.get('added_episodes', 0)} episodes, {report.get('skipped_duplicates', 0)} already on Trakt,"
        f" {report.get('unmatched', 0)} unmatched"
    )
    if report.get("dry_run"):
        text += " (dry run)"
    error = report.get("error")
    if isinstance(error, dict) and error.get("message"):
        text += f"\n      {error['message']}"
    return text


def _token_status(service: Service, secret: ServiceSecret, now: datetime) -> str:
    if not secret.client_id or secret.client_secret is None:
        return "not set up (kinotrakt setup)"
    if secret.refresh_token is None:
        return f"not linked (kinotrakt link {service})"
    parts = []
    if secret.expires_at is not None:
        expires = utc_from_epoch(secret.expires_at)
        if expires > now:
            parts.append(f"access token expires {_when(expires, now)}")
        else:
            parts.append(f"access token expired {_when(expires, now)}, the next sync refreshes it")
    if service == "kinopub" and secret.issued_at is not None:
        dies = utc_from_epoch(secret.issued_at) + KINOPUB_REFRESH_LIFETIME
        days = (dies - now).total_seconds() / 86400
        if days > 0:
            parts.append(
                f"refresh token dies unused in ~{round(days)} days ({dies:%Y-%m-%d}) unless a sync refreshes it"
            )
        else:
            parts.append("refresh token unused for 30+ days, probably dead: kinotrakt link kinopub")
    return "linked; " + "; ".join(parts) if parts else "linked"


def _when(moment: datetime, now: datetime) -> str:
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 2 * 86400:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    relative = f"in {amount}" if delta.total_seconds() >= 0 else f"{amount} ago"
    return f"{moment:%Y-%m-%d %H:%M}Z ({relative})"


# --- unmatched and map ---------------------------------------------------------------------------------------


def cmd_unmatched(ctx: Context) -> int:
    items = sorted(ctx.stores.state.list_unmatched(), key=lambda i: (i.title, i.season or 0, i.episode or 0))
    if not items:
        ctx.say("Nothing unmatched: every completed view found its Trakt item.")
        return EXIT_OK
    rows = [("KINOPUB ID", "TITLE", "REASON", "DETAIL")]
    for item in items:
        where = f" S{item.season:02d}E{item.episode:02d}" if item.season is not None and item.episode else ""
        rows.append((str(item.kinopub_id), f"{item.title}{where}", item.reason, item.detail))
    ctx.say(_table(rows))
    ctx.say()
    ctx.say("Pin an item to the right Trakt title, then the next sync uses it:")
    ctx.say("  kinotrakt map <kinopub_id> movie|show <trakt_id> [--season-offset N]")
    return EXIT_OK


def cmd_map(ctx: Context) -> int:
    args = ctx.args
    if args.kinopub_id <= 0 or args.trakt_id <= 0:
        raise CliError("kinopub_id and trakt_id are positive numbers", EXIT_USAGE)
    if args.season_offset and args.kind != "show":
        raise CliError("--season-offset only applies to a show", EXIT_USAGE)
    pin = Pin(
        kinopub_id=args.kinopub_id, trakt_type=args.kind, trakt_id=args.trakt_id, season_offset=args.season_offset
    )
    ctx.stores.state.put_pin(pin)
    offset = f", Kinopub season N is Trakt season N{args.season_offset:+d}" if args.season_offset else ""
    ctx.say(f"Pinned Kinopub item {pin.kinopub_id} to Trakt {pin.trakt_type} {pin.trakt_id}{offset}.")
    ctx.say("The next sync uses it.")
    return EXIT_OK


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [min(48, max(len(row[i]) for row in rows)) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell[:width].ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _label(service: str) -> str:
    return "Kinopub" if service == "kinopub" else "Trakt"


# --- the parser ----------------------------------------------------------------------------------------------


# Applied after parsing: the options are shared by the main parser and every command (the same argparse
# actions), so a default set on one would overwrite a value given to the other.
_COMMON_DEFAULTS: dict[str, Any] = {
    "stack": DEFAULT_STACK,
    "table": None,
    "kinopub_secret": None,
    "trakt_secret": None,
    "region": None,
    "endpoint_url": None,
    "debug": False,
}


def build_parser() -> argparse.ArgumentParser:
    # The same options are accepted before or after the command: SUPPRESS keeps a command from
    # overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where the deployment is")
    where.add_argument(
        "--stack", default=argparse.SUPPRESS, help=f"CloudFormation stack name (default {DEFAULT_STACK})"
    )
    where.add_argument("--table", default=argparse.SUPPRESS, help="DynamoDB state table (env STATE_TABLE_NAME)")
    where.add_argument("--kinopub-secret", default=argparse.SUPPRESS, help="Kinopub secret id (env KINOPUB_SECRET_ID)")
    where.add_argument("--trakt-secret", default=argparse.SUPPRESS, help="Trakt secret id (env TRAKT_SECRET_ID)")
    where.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: your AWS config)")
    where.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="AWS endpoint, e.g. a moto server")
    where.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show logs and stack traces")

    parser = argparse.ArgumentParser(
        prog="kinotrakt",
        description="Copy finished Kinopub views into Trakt history: set up, link accounts, run and watch the sync.",
        parents=[common],
        epilog="Start with `setup`, then `link trakt` (or the login link) and `link kinopub`.",
    )
    parser.add_argument("--version", action="version", version=f"kinotrakt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    setup = commands.add_parser(
        "setup",
        parents=[common],
        help="store both services' client credentials and create the login setup key",
        description=(
            "Store the Kinopub and Trakt client credentials in the deployment's secrets (asked for when not "
            "given), create the setup key the browser login requires, and print the login link."
        ),
    )
    for service, label in (("kinopub", "Kinopub (issued by Kinopub support)"), ("trakt", "Trakt (your API app)")):
        setup.add_argument(f"--{service}-client-id", help=f"{label} client_id")
        setup.add_argument(f"--{service}-client-secret", help=f"{label} client_secret (asked for when omitted)")
    setup.add_argument("--login-url", help="the stack output LoginUrl, or the HTTP API's base URL")
    setup.add_argument("--new-key", action="store_true", help="replace the setup key (old login links stop working)")
    setup.set_defaults(handler=cmd_setup, needs_state=False)

    link = commands.add_parser(
        "link",
        parents=[common],
        help="link an account from this terminal (device code)",
        description="Show a code to enter on the service's site, wait for approval, store the tokens.",
    )
    link.add_argument("service", choices=["kinopub", "trakt"])
    link.set_defaults(handler=cmd_link, needs_state=False)

    unlink = commands.add_parser(
        "unlink",
        parents=[common],
        help="revoke (where possible) and remove an account's tokens",
        description="Revoke the token where the service supports it (Trakt) and remove the stored tokens.",
    )
    unlink.add_argument("service", choices=["kinopub", "trakt"])
    unlink.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    unlink.set_defaults(handler=cmd_unlink, needs_state=False)

    sync = commands.add_parser(
        "sync",
        parents=[common],
        help="run one sync now, as the schedule does",
        description="Run the same sync as the Lambda, against the deployed table and secrets, and print the report.",
    )
    sync.add_argument("--dry-run", action="store_true", help="plan and report; write nothing, keep the watermark")
    sync.add_argument("--sandbox", action="store_true", help="run offline against the demo sandbox instead")
    sync.set_defaults(handler=cmd_sync, needs_state=True)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="last runs, watermark, token expiry, unmatched count",
        description="Show the last runs, the watermark, when tokens expire, and how many items are unmatched.",
    )
    status.add_argument("--runs", type=int, default=5, help="how many runs to show (default 5)")
    status.set_defaults(handler=cmd_status, needs_state=True)

    unmatched = commands.add_parser(
        "unmatched",
        parents=[common],
        help="list what could not be matched on Trakt, and why",
        description="List the Kinopub items and episodes that could not be matched to Trakt, with the reason.",
    )
    unmatched.set_defaults(handler=cmd_unmatched, needs_state=True)

    mapping = commands.add_parser(
        "map",
        parents=[common],
        help="pin a Kinopub item to a Trakt movie or show",
        description=(
            "Pin a Kinopub item to a Trakt movie or show by its Trakt id (the number in the Trakt URL's API "
            "data, or from `unmatched`); a show can shift season numbers with --season-offset."
        ),
    )
    mapping.add_argument("kinopub_id", type=int, help="Kinopub item id (see `unmatched`)")
    mapping.add_argument("kind", choices=["movie", "show"], help="what it is on Trakt")
    mapping.add_argument("trakt_id", type=int, help="the Trakt id of the movie or show")
    mapping.add_argument(
        "--season-offset", type=int, default=0, help="Trakt season = Kinopub season + N (shows only; default 0)"
    )
    mapping.set_defaults(handler=cmd_map, needs_state=True)
    return parser


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


def main(argv: Sequence[str] | None = None, *, deps: CliDeps | None = None) -> int:
    deps = deps or CliDeps()
    err = deps.err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    for name, default in _COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    ctx = Context(args, deps)
    with _quiet_logs(args.debug, err):
        try:
            code: int = args.handler(ctx)
        except KeyboardInterrupt:
            print("interrupted", file=err)
            return 130
        except CliError as exc:
            print(f"error: {exc}", file=err)
            return exc.exit_code
        except KinotraktError as exc:
            print(f"error: {exc}", file=err)
            if args.debug:
                traceback.print_exc(file=err)
            return EXIT_FAILURE
        except Exception as exc:
            print(f"error: {_describe_unexpected(exc)} (run with --debug for details)", file=err)
            if args.debug:
                traceback.print_exc(file=err)
            return EXIT_FAILURE
    return code


def _describe_unexpected(exc: Exception) -> str:
    """botocore's messages name the AWS error and the resource; anything else gets only its type, since its
    message could quote a value we must not print."""
    module = type(exc).__module__
    if module.startswith("botocore"):
        return f"AWS: {exc}"
    return f"unexpected {type(exc).__name__}"
