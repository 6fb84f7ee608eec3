"""The HTML pages of the login broker: small, self-contained (no external asset), readable on a phone.

Every page is built from fixed text plus values passed through :func:`html.escape`; nothing a visitor
sent is ever echoed back (a Trakt ``error_description`` included: text an attacker can choose does not
belong on a page served from the owner's domain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from kinotrakt.errors import TraktAppRejected

# No script, no external anything: the only thing a page may load is its own inline style.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
}

HTML_CONTENT_TYPE = "text/html; charset=utf-8"

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:1.5rem;"
    "background:#f6f7f9;color:#1d2330;line-height:1.5}"
    "main{max-width:34rem;margin:2rem auto;background:#fff;border-radius:12px;padding:1.5rem;"
    "box-shadow:0 1px 4px rgba(0,0,0,.08)}"
    "h1{font-size:1.35rem;margin:0 0 .75rem}"
    ".ok h1{color:#1a7f37}.warn h1{color:#9a6700}.err h1{color:#cf222e}"
    "code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px;word-break:break-all}"
    "a{color:#0969da}footer{margin-top:1.25rem;font-size:.85rem;color:#57606a}"
)


@dataclass(frozen=True)
class Page:
    """A page: a title, paragraphs of plain text, commands shown as code, and links."""

    status: int
    title: str
    paragraphs: Sequence[str] = ()
    commands: Sequence[str] = ()
    tone: str = "err"  # "ok" | "warn" | "err": only the heading's colour
    links: Sequence[tuple[str, str]] = field(default=())  # (label, absolute URL)

    def render(self) -> str:
        parts = [f"<h1>{escape(self.title)}</h1>"]
        parts.extend(f"<p>{escape(text)}</p>" for text in self.paragraphs)
        parts.extend(f"<p><code>{escape(command)}</code></p>" for command in self.commands)
        parts.extend(f'<p><a href="{escape(url, quote=True)}">{escape(label)}</a></p>' for label, url in self.links)
        body = "".join(parts)
        return (
            "<!doctype html>"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="robots" content="noindex">'
            f"<title>{escape(self.title)} - kinotrakt</title>"
            f"<style>{_STYLE}</style></head>"
            f'<body><main class="{escape(self.tone, quote=True)}">{body}'
            "<footer>kinotrakt - Kinopub to Trakt sync</footer></main></body></html>"
        )


START_AGAIN = "Start again from the login link that kinotrakt setup printed (it ends with ?key=...)."


def linked(username: str | None, *, replaced: str | None = None) -> Page:
    if username:
        first = f"The Trakt account {username} is now linked to kinotrakt."
    else:
        first = "Your Trakt account is now linked to kinotrakt (Trakt did not tell us its user name just now)."
    before = (f"It replaces the Trakt account {replaced}, which was linked before.",) if replaced else ()
    return Page(
        200,
        "Trakt account linked",
        (
            first,
            *before,
            "The next scheduled sync will use it. The login link you used no longer works. You can close this page.",
            "To check on it from a terminal:",
        ),
        commands=("kinotrakt status",),
        tone="ok",
    )


def not_set_up() -> Page:
    return Page(
        403,
        "kinotrakt is not set up yet",
        ("This deployment has no Trakt app credentials yet, so nobody can link an account through it.", "Run:"),
        commands=("kinotrakt setup",),
    )


def wrong_key() -> Page:
    return Page(
        403,
        "This login link is not valid",
        (
            "The link is missing its setup key, or the key is wrong.",
            "Open the login link exactly as kinotrakt setup printed it. If you lost it, run setup again.",
        ),
    )


def key_expired() -> Page:
    return Page(
        403,
        "This login link has expired",
        (
            "Each login link works for a limited time (an hour unless setup was told otherwise), and for one link.",
            "For a new one, run:",
        ),
        commands=("kinotrakt setup",),
    )


def key_used() -> Page:
    return Page(
        403,
        "This login link was already used",
        (
            "A Trakt account was linked with it, or setup replaced it, since this sign-in started. "
            "Nothing was linked now.",
            "For a new one, run:",
        ),
        commands=("kinotrakt setup",),
    )


def bad_request() -> Page:
    return Page(
        400,
        "This link looks damaged",
        ("Some of its parameters are missing, too long or malformed, so nothing was done.", START_AGAIN),
    )


def state_invalid() -> Page:
    return Page(
        403,
        "This sign-in has expired or was already used",
        (
            "Each sign-in works once, for 10 minutes, in the browser that started it. Nothing was linked.",
            START_AGAIN,
        ),
    )


def cookie_mismatch() -> Page:
    return Page(
        403,
        "This sign-in was started in another browser",
        (
            "The sign-in must finish in the same browser that opened the login link, with cookies allowed. "
            "Nothing was linked.",
            START_AGAIN,
        ),
    )


def access_denied() -> Page:
    return Page(
        403,
        "Trakt did not authorize kinotrakt",
        (
            "The authorization was declined on Trakt, so nothing was linked.",
            "If you did approve it: since 2026 a free Trakt account can connect only one community app at a time. "
            "Disconnect the other app in your Trakt settings (Connected Apps), or upgrade to VIP, then try again.",
            START_AGAIN,
        ),
        tone="warn",
    )


def app_rejected() -> Page:
    """Trakt's JSON 403 to the token exchange: the deployment's API app itself is refused."""
    return Page(
        403,
        "Trakt refused kinotrakt's API app",
        (TraktAppRejected.message, "Nothing was linked."),
        tone="warn",
    )


def trakt_error() -> Page:
    return Page(
        400,
        "Trakt reported a problem",
        (
            "Trakt sent you back with an error instead of an authorization, so nothing was linked.",
            "Check that the Trakt app's redirect URI is this deployment's /trakt/callback URL.",
            START_AGAIN,
        ),
        tone="warn",
    )


def missing_code() -> Page:
    return Page(
        400,
        "Trakt did not send an authorization code",
        ("Nothing was linked.", START_AGAIN),
    )


def code_refused() -> Page:
    return Page(
        400,
        "Trakt did not accept the authorization",
        (
            "The authorization code was refused (it may have expired: they are valid for a few minutes only). "
            "Nothing was linked.",
            START_AGAIN,
        ),
    )


def trakt_unavailable() -> Page:
    return Page(
        502,
        "Trakt did not answer",
        (
            "Trakt is unreachable or overloaded right now, so nothing was linked.",
            "Wait a few minutes, then: " + START_AGAIN,
        ),
    )


def not_found() -> Page:
    return Page(404, "Nothing here", ("kinotrakt only answers /trakt/login and /trakt/callback.",))


def internal_error() -> Page:
    return Page(
        500,
        "Something went wrong",
        (
            "kinotrakt could not finish the sign-in. Try again in a minute.",
            "If it keeps happening, the AuthFunction's CloudWatch logs say what failed.",
        ),
    )


def redirecting(location: str) -> Page:
    """The body of the 302 to Trakt, for the rare browser that shows it."""
    return Page(
        302,
        "Continuing to Trakt",
        ("Trakt asks you to approve kinotrakt.",),
        links=(("Continue", location),),
        tone="ok",
    )
