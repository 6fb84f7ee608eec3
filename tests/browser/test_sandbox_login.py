"""The browser login of ``make sandbox``: the link its ``setup`` prints, opened in headless Chromium, goes through
the sandbox's auth function and fake Trakt (which approves at once) and links the account; the sync then runs
on those tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.cdp import Chromium
from tests.e2e.conftest import start_sandbox

pytestmark = pytest.mark.browser


def test_the_login_link_setup_prints_links_trakt_in_a_browser(chromium_path: str, tmp_path: Path) -> None:
    with start_sandbox(tmp_path) as sandbox:
        # Given the sandbox set up with the command it printed, Kinopub linked in the terminal
        setup = sandbox.run(sandbox.printed_command("kinotrakt setup"))
        assert setup.code == 0, setup
        assert sandbox.cli("link", "kinopub").code == 0
        (login,) = re.findall(r"http://127\.0\.0\.1:\d+/trakt/login\?key=\S+", setup.out)

        # When the owner opens the login link in a browser
        with Chromium(chromium_path) as browser:
            page = browser.new_page()
            page.navigate(login)

            # Then the sandbox's Trakt approves at once and the callback page names the linked account
            page.wait_for_page("/trakt/callback")
            page.wait_until(lambda p: "Trakt account linked" in p.text, "the success page")
            assert "kinotrakt-demo" in page.text

        # And the tokens are in the sandbox's secret, and a sync runs on them
        assert sandbox.secret("trakt")["refresh_token"]
        sync = sandbox.cli("sync")
        assert sync.code == 0, sync
        assert "status OK" in sync.text
