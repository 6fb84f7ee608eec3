"""The real browser every test here drives."""

from __future__ import annotations

import os

import pytest

from tests.browser.cdp import find_chromium


@pytest.fixture
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        reason = (
            "!!! Chromium is not installed, so the real-browser login test cannot run. "
            "`make unit` installs Debian's chromium (apt-get install -y chromium) !!!"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
