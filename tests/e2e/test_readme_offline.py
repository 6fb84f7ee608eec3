"""The README from setup to unlink, offline: ``make sandbox`` in a process of its own, and every command typed as a
user types it (``.venv/bin/kinotrakt …`` from the repository root, in the shell the sandbox told us to set up).
Each step checks what the command printed, its exit code, and what it left in the sandbox."""

from __future__ import annotations

import re
import shlex

import pytest

from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt
from devkit.fakes.library import DemoLibrary, seed_demo_library
from devkit.sandbox_server import PIN_TITLE, PIN_TRAKT_ID, seed
from tests.e2e.conftest import Result, RunningSandbox


@pytest.fixture(scope="module")
def library() -> DemoLibrary:
    """What the sandbox's fakes hold: the demo library, as ``make sandbox`` seeds it."""
    return seed_demo_library(FakeKinopub(), FakeTrakt())


@pytest.fixture(scope="module")
def pinnable() -> int:
    """The Kinopub id of the unmatched movie the sandbox's Trakt has under another title."""
    return seed(FakeKinopub(), FakeTrakt())


def ok(result: Result, *phrases: str) -> str:
    """The command succeeded and printed each phrase (in its normalised output); returns that output."""
    assert result.code == 0, result
    for phrase in phrases:
        assert phrase in result.text, f"{phrase!r} not in:\n{result}"
    return result.text


def printed_commands(result: Result, marker: str) -> dict[str, list[str]]:
    """The commands a command printed after ``marker`` (``  Trakt, in this terminal:  <command>``), by the word
    before the comma, as argv."""
    found = {}
    for line in result.out.splitlines():
        if marker in line:
            before, command = line.split(marker, 1)
            found[before.strip().split(",")[0].removeprefix("or ")] = shlex.split(command)
    return found


def report_count(result: Result, label: str) -> int:
    """A number from the sync report's table (``added movies 5``)."""
    found = re.search(rf"^{re.escape(label)} (\d+)$", result.text, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{result}"
    return int(found[1])


def test_the_readme_from_setup_to_unlink(sandbox: RunningSandbox, library: DemoLibrary, pinnable: int) -> None:
    kinopub_secret, trakt_secret = sandbox.env["KINOPUB_SECRET_ID"], sandbox.env["TRAKT_SECRET_ID"]

    # Given a fresh sandbox: its secrets are as a deploy leaves them
    assert sandbox.secret("kinopub")["client_id"] is None
    assert sandbox.secret("trakt")["refresh_token"] is None

    # When the user runs the setup command the sandbox printed
    setup = sandbox.run(sandbox.printed_command("kinotrakt setup"))
    # Then both client credentials are stored, a setup key is made, and the browser login link is printed
    ok(setup, f"client credentials stored in {kinopub_secret}", f"client credentials stored in {trakt_secret}")
    login = f"{sandbox.env['TRAKT_REDIRECT_URI'].removesuffix('/callback')}/login?key="
    assert login in setup.out, setup
    stored = sandbox.secret("trakt")
    assert stored["client_id"] == "fake-trakt-client-id"
    assert stored["setup_key"]
    assert f"{login}{stored['setup_key']}" in setup.out
    assert sandbox.secret("kinopub")["client_id"] == "xbmc"
    # And it names the redirect URIs the Trakt app must list: the login's callback and the terminal login's
    assert f"{sandbox.env['TRAKT_REDIRECT_URI']}\n    urn:ietf:wg:oauth:2.0:oob\n" in setup.out
    for value in (stored["client_secret"], sandbox.secret("kinopub")["client_secret"]):
        assert value not in setup.out + setup.err, "setup printed a client secret"

    # And the commands it prints for the next steps are the ones this user can paste, as typed from the repository
    link_commands = printed_commands(setup, "in this terminal:")
    assert link_commands == {
        "Trakt": [".venv/bin/kinotrakt", "link", "trakt"],
        "Kinopub": [".venv/bin/kinotrakt", "link", "kinopub"],
    }

    # When they link Kinopub in the terminal with the command setup printed (the sandbox approves the code at once)
    link_kinopub = sandbox.run(link_commands["Kinopub"])
    # Then the code was shown and the tokens are stored
    ok(link_kinopub, "Link Kinopub", "enter the code", f"Kinopub account linked; tokens stored in {kinopub_secret}")
    kinopub_tokens = sandbox.secret("kinopub")
    assert kinopub_tokens["access_token"]
    assert kinopub_tokens["refresh_token"]

    # When they link Trakt in the terminal, the same way
    link_trakt = sandbox.run(link_commands["Trakt"])
    # Then it names the account it linked, and stores its tokens without printing them
    ok(link_trakt, "Link Trakt", "Trakt account linked as kinotrakt-demo", f"tokens stored in {trakt_secret}")
    # (and announces the link on the sandbox's alarm topic, as on a deployment: no "not notified" warning)
    assert "warning" not in link_trakt.err, link_trakt
    trakt_tokens = sandbox.secret("trakt")
    access_token = trakt_tokens["access_token"]
    for token in (
        access_token,
        trakt_tokens["refresh_token"],
        *(kinopub_tokens[k] for k in ("access_token", "refresh_token")),
    ):
        assert token not in link_kinopub.out + link_kinopub.err + link_trakt.out + link_trakt.err
    before = sandbox.trakt_history_keys(access_token)
    assert before == list(library.trakt_keys_before)

    # When they sync
    sync = sandbox.cli("sync")
    # Then the report counts the demo library's views, and Trakt holds exactly the plays it should
    ok(sync, "status OK")
    expected = library.expected_counts()
    assert report_count(sync, "completed views on Kinopub") == expected["candidates"]
    assert report_count(sync, "added movies") == expected["added_movies"]
    assert report_count(sync, "added episodes") == expected["added_episodes"]
    assert report_count(sync, "skipped, already on Trakt") == expected["skipped_duplicates"]
    assert report_count(sync, "unmatched") == expected["unmatched"]
    assert sandbox.trakt_history_keys(access_token) == library.expected_trakt_keys()

    # When they sync again at once
    again = sandbox.cli("sync")
    # Then nothing is added: no duplicate, ever
    ok(again, "status OK")
    assert report_count(again, "added movies") == report_count(again, "added episodes") == 0
    assert sandbox.trakt_history_keys(access_token) == library.expected_trakt_keys()

    # When they look at the status
    status = ok(sandbox.cli("status"), "Last runs", "Kinopub: linked", "Trakt: linked")
    # Then the first run is listed with its figures, and the unmatched items are counted
    first_run = (
        f"ok {expected['candidates']} {expected['added_movies']} {expected['added_episodes']} "
        f"{expected['skipped_duplicates']} {expected['unmatched']}"
    )
    assert first_run in status, status
    assert f"Unmatched: {expected['unmatched']} waiting" in status

    # When they list what could not be matched
    unmatched = ok(sandbox.cli("unmatched"))
    # Then each unmatched view is there: its Kinopub id and reason on one row, its title (a table may wrap it)
    for view in library.unmatched:
        assert re.search(rf"^{view.kinopub_id} .*\b{view.reason}\b", unmatched, re.MULTILINE), (view.label, unmatched)
        assert view.title in unmatched

    # When they pin the unmatched movie to the Trakt movie they found by hand
    ok(sandbox.cli("map", str(pinnable), "movie", str(PIN_TRAKT_ID)), f"Pinned Kinopub item {pinnable} to Trakt movie")
    # Then the next sync adds it under that Trakt movie, and it is no longer unmatched
    pinned = sandbox.cli("sync")
    ok(pinned, "status OK")
    assert report_count(pinned, "added movies") == 1
    assert PIN_TITLE in sandbox.trakt_get("/sync/history/movies", access_token, limit="250").text
    assert str(pinnable) not in ok(sandbox.cli("unmatched")).split("\n", 1)[-1]

    # When they unlink Trakt
    unlink = sandbox.cli("unlink", "trakt", "--yes")
    # Then the token is revoked on Trakt and removed from the secret; the client credentials stay
    ok(unlink, "Trakt revoked the token", f"Trakt unlinked: the tokens were removed from {trakt_secret}")
    after = sandbox.secret("trakt")
    assert after["access_token"] is None
    assert after["refresh_token"] is None
    assert after["client_id"] == "fake-trakt-client-id"
    assert sandbox.trakt_get("/users/settings", access_token).status_code == 401
    ok(sandbox.cli("status"), "Trakt: not linked (.venv/bin/kinotrakt link trakt)", "Kinopub: linked")


def test_ctrl_c_stops_the_sandbox_and_removes_its_environment(sandbox: RunningSandbox) -> None:
    # Given a running sandbox whose environment file a shell could source
    assert (sandbox.state_dir / "env.sh").exists()
    assert (sandbox.state_dir / "sandbox.json").exists()

    # When the user presses Ctrl-C
    said = sandbox.interrupt()

    # Then it stops cleanly, says so, and leaves no environment pointing at nothing
    assert sandbox.process.returncode == 0
    assert "sandbox stopped" in said
    assert not (sandbox.state_dir / "env.sh").exists()
    assert not (sandbox.state_dir / "sandbox.json").exists()
