"""Drive Debian's headless Chromium over the DevTools protocol, standard library only.

``--remote-debugging-pipe`` makes Chromium read protocol messages (JSON, NUL-terminated) on fd 3 and write
them on fd 4: no port, no WebSocket client, no driver download. It is how Puppeteer's ``pipe: true`` talks
to the browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class ProtocolError(Exception):
    """Chromium answered a command with an error, or stopped answering."""


class Chromium:
    """One headless browser with a fresh profile; ``with Chromium() as browser: page = browser.new_page()``."""

    def __init__(self, executable: str, *, timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._profile = tempfile.TemporaryDirectory(prefix="kinotrakt-chromium-")
        self._next_id = 0
        self._buffer = b""
        self._process: subprocess.Popen[bytes] | None = None
        self._to_browser = -1
        self._from_browser = -1

    # --- lifecycle --------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        browser_reads, we_write = os.pipe()
        we_read, browser_writes = os.pipe()

        def wire_fds() -> None:  # runs in the child, before exec
            # Move both ends out of the way first: os.pipe() may have returned 3 or 4 itself.
            high_read = os.dup(browser_reads)
            high_write = os.dup(browser_writes)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        args = [
            self.executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            f"--user-data-dir={self._profile.name}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # close_fds=False: dup2 leaves fds 3 and 4 inheritable, every other fd Python opened is not (PEP 446).
        self._process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,  # noqa: PLW1509 - the only way to place a pipe on fd 3/4
            close_fds=False,
        )
        os.close(browser_reads)
        os.close(browser_writes)
        self._to_browser = we_write
        self._from_browser = we_read
        self.send("Browser.getVersion")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self._process
        if process is not None:
            with contextlib.suppress(ProtocolError, OSError):
                self.send("Browser.close", timeout=5)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._profile.cleanup()

    # --- protocol ---------------------------------------------------------------------------------------

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one command and return its ``result``; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ProtocolError(f"{method}: {answer['error'].get('message', answer['error'])}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self.events.append(answer)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ProtocolError("Chromium closed the DevTools pipe (did it crash?)")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    # --- pages ------------------------------------------------------------------------------------------

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def cookies(self) -> list[dict[str, Any]]:
        """Every cookie in the browser's jar, with its attributes (``secure``, ``httpOnly``, ``sameSite``)."""
        cookies: list[dict[str, Any]] = self.send("Storage.getCookies")["cookies"]
        return cookies


class Page:
    def __init__(self, browser: Chromium, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session_id=self.session_id)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise ProtocolError(f"script failed: {answer['exceptionDetails'].get('text', '')}")
        return answer["result"].get("value")

    def navigate(self, url: str) -> None:
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise ProtocolError(f"navigation failed: {answer['errorText']}")

    def wait_until(self, condition: Callable[[Page], bool], what: str, timeout: float = 20.0) -> None:
        """Poll ``condition`` until it holds; a page that is mid-navigation simply counts as not yet."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition(self):
                    return
            except ProtocolError:
                pass
            time.sleep(0.05)
        raise ProtocolError(f"timed out waiting for {what}; the page is at {self.url!r}")

    def wait_for_page(self, path: str, timeout: float = 20.0) -> None:
        """Wait until the page at ``path`` (on any host) has loaded completely."""
        self.wait_until(
            lambda page: (
                page.evaluate("location.pathname") == path and page.evaluate("document.readyState") == "complete"
            ),
            f"{path} to load",
            timeout,
        )

    @property
    def url(self) -> str:
        try:
            return str(self.evaluate("location.href"))
        except ProtocolError:
            return "<unknown>"

    @property
    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))
