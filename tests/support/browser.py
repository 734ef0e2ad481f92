"""A small Chrome DevTools Protocol driver for headless Chromium (Debian's package at /usr/bin/chromium).

Used by tests that open a page in a real browser: it records what the page logs, throws and requests,
evaluates JavaScript and takes a full-page screenshot. Only websocket-client and the standard library.

    with Browser() as browser, browser.open(path.as_uri()) as page:
        page.console, page.exceptions, page.log_errors, page.requests, page.evaluate("document.title")
        page.screenshot()  # PNG bytes of the whole document

The browser runs in its own process group with a new profile directory; leaving the `with` block
kills the group, waits for it and removes the directory, whether the test passed or not.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import websocket

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,900", "--remote-debugging-port=0"]


class BrowserError(RuntimeError):
    """Chromium did not start, answered a command with an error, or a wait timed out."""


@dataclass
class ConsoleMessage:
    type: str  # console API kind: log, info, warning, error, assert, …
    text: str


@dataclass
class Page:
    """One tab, attached over the browser's websocket as a flat session; collects its events as they arrive."""

    browser: Browser
    target_id: str
    session_id: str
    console: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)  # Runtime.exceptionThrown: message and stack
    log_errors: list[str] = field(default_factory=list)  # Log.entryAdded of level error (failed loads, …)
    log_entries: list[dict] = field(default_factory=list)  # every Log.entryAdded entry, any level
    requests: list[str] = field(default_factory=list)  # URL of every Network.requestWillBeSent
    failed_requests: list[str] = field(default_factory=list)  # "URL: net::ERR_…" from Network.loadingFailed
    _request_urls: dict[str, str] = field(default_factory=dict)
    _events: list[str] = field(default_factory=list)  # event names in arrival order, for waits

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, session_id=self.session_id)

    def navigate(self, url: str, timeout_s: float = 20.0) -> None:
        """Load `url` and wait for its load event (all images and subresources done or failed)."""
        seen = len(self._events)
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url} failed: {result['errorText']}")
        self.browser.wait(lambda: "Page.loadEventFired" in self._events[seen:], timeout_s,
                          f"the load event of {url}")
        # A round trip through the page's event loop, so messages queued during the load (a failed
        # image's log entry, a late console call) have arrived before the caller reads them.
        self.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited), as JSON-compatible Python."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating {expression!r} threw: {_exception_text(result['exceptionDetails'])}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole document (not only the viewport), at one device pixel per CSS pixel."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})
        return base64.b64decode(data["data"])

    def _on_event(self, method: str, params: dict) -> None:
        self._events.append(method)
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in params["args"])
            self.console.append(ConsoleMessage(params["type"], text))
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(_exception_text(params["exceptionDetails"]))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.log_entries.append(entry)
            if entry["level"] == "error":
                self.log_errors.append(f"{entry.get('url', '')}: {entry['text']}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
            self._request_urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.loadingFailed":
            self.failed_requests.append(f"{self._request_urls.get(params['requestId'], '?')}: {params['errorText']}")


class Browser:
    """Headless Chromium driven over the DevTools protocol; a context manager that always stops it."""

    def __init__(self, executable: Path = CHROMIUM, startup_timeout_s: float = 30.0, command_timeout_s: float = 30.0):
        self.executable = Path(executable)
        self.startup_timeout_s = startup_timeout_s
        self.command_timeout_s = command_timeout_s
        self._process: subprocess.Popen | None = None
        self._socket: websocket.WebSocket | None = None
        self._dir: Path | None = None
        self._next_id = 0
        self._pages: dict[str, Page] = {}  # by session id

    # ------------------------------------------------------------------ life cycle

    @property
    def process_group(self) -> int | None:
        """Chromium's process group id (its own pid) while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def temp_dir(self) -> Path | None:
        """The directory holding the profile and Chromium's output while it runs."""
        return self._dir

    def __enter__(self) -> Browser:
        if not os.access(self.executable, os.X_OK):
            raise RuntimeError(f"headless Chromium is not installed at {self.executable}: the browser tests need "
                               f"Debian's chromium package, which `make test`'s setup (scripts/setup.sh) installs "
                               f"with apt-get")
        self._dir = Path(tempfile.mkdtemp(prefix="yumaflow-chromium-"))
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        profile = self._dir / "profile"
        log_path = self._dir / "chromium.log"
        with open(log_path, "wb") as log:
            # Own session, so the whole tree (zygote, renderers, GPU/utility processes) is one group to kill.
            command = [str(self.executable), *FLAGS, f"--user-data-dir={profile}", "about:blank"]
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
        # Chromium writes the port it bound and the browser target's path once it listens.
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            lines = active_port.read_text().split("\n") if active_port.exists() else []
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                break
            if self._process.poll() is not None:
                raise BrowserError(f"{self.executable} exited with code {self._process.returncode} before "
                                   f"listening; its output:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise BrowserError(f"{self.executable} wrote no {active_port} within {self.startup_timeout_s} s; "
                                   f"its output:\n{_tail(log_path)}")
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
        # No Origin header: Chromium refuses DevTools websockets from origins not in --remote-allow-origins.
        self._socket = websocket.create_connection(url, timeout=self.command_timeout_s, suppress_origin=True)

    def close(self) -> None:
        """Kill Chromium's process group, wait for it and remove its profile; safe to call twice."""
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
        try:
            if self._process is not None:
                self._stop_process_group()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def _stop_process_group(self) -> None:
        pgid = self._process.pid  # the session leader's pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        _signal_group(pgid, signal.SIGKILL)  # a browser stuck in shutdown, or children that outlived it
        self._process.wait()
        self._process = None
        deadline = time.monotonic() + 10
        while (left := live_processes_in_group(pgid)) and time.monotonic() < deadline:
            time.sleep(0.02)  # SIGKILL takes effect when each process is next scheduled
        if left:
            raise BrowserError(f"Chromium processes {left} of group {pgid} survived SIGKILL for 10 s")

    # ------------------------------------------------------------------ pages

    @contextmanager
    def open(self, url: str, timeout_s: float = 20.0):
        """A new tab with Runtime, Log, Network and Page enabled, navigated to `url` (load event awaited)."""
        target_id = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        page = Page(self, target_id, session_id)
        self._pages[session_id] = page
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                page.call(f"{domain}.enable")
            page.navigate(url, timeout_s)
            yield page
        finally:
            self._pages.pop(session_id, None)
            # A tab that cannot be closed (the browser died) must not hide the test's own failure;
            # close() still stops the whole browser.
            with suppress(BrowserError, websocket.WebSocketException, OSError):
                if self._socket is not None:
                    self.call("Target.closeTarget", {"targetId": target_id})

    # ------------------------------------------------------------------ protocol

    def call(self, method: str, params: dict | None = None, session_id: str | None = None) -> dict:
        """Send one command and return its result, handling the events that arrive before the answer."""
        self._next_id += 1
        command_id = self._next_id
        message = {"id": command_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + self.command_timeout_s
        what = f"the answer to {method} ({self.command_timeout_s} s)"
        while (answer := self._receive(deadline, what)) is None or answer["id"] != command_id:
            pass
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error'].get('message')} {answer['error'].get('data', '')}")
        return answer.get("result", {})

    def wait(self, done, timeout_s: float, what: str) -> None:
        """Handle incoming events until `done()` holds; raise BrowserError naming `what` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self._receive(deadline, f"{what} ({timeout_s} s)")

    def _receive(self, deadline: float, what: str) -> dict | None:
        """Read one message: an event goes to its page (returns None), a command's answer is returned."""
        left = deadline - time.monotonic()
        if left > 0:
            self._socket.settimeout(left)
            try:
                message = json.loads(self._socket.recv())
            except websocket.WebSocketTimeoutException:
                left = 0
        if left <= 0:
            raise BrowserError(f"timed out waiting for {what}")
        if "method" not in message:
            return message
        page = self._pages.get(message.get("sessionId", ""))
        if page is not None:
            page._on_event(message["method"], message.get("params", {}))
        return None


def _exception_text(details: dict) -> str:
    exception = details.get("exception", {})
    return exception.get("description") or f"{details.get('text', '')} {exception.get('value', '')}".strip()


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids of the processes in group `pgid` that have not exited (zombies excluded: init reaps them)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we listed /proc
        if int(pgrp) == pgid and state != "Z":
            live.append(int(stat.parent.name))
    return live


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
