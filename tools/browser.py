"""A page in headless Chromium, driven over the DevTools protocol, with the network cut.

    with Browser.open(url) as page:          # http://127.0.0.1:<port>/ or file:///...
        page.type_text("#query", "red sofa")  # focus + Input.insertText, as a keyboard would
        page.click("#search-button")          # a real mouse press and release at the element's centre
        page.wait_for("document.querySelectorAll('.card').length > 0")
        page.screenshot("search.png")

The search page test drives the page like a shopper (type, click, read the DOM); the report
tests load a file and read what rendered. Chromium gets the flags of :mod:`tools.screenshot`
(a dead proxy, every host resolving to nothing but a loopback server), so a page that needed a
CDN breaks here. The DevTools socket listens on a loopback port Chromium picks itself.
"""
from __future__ import annotations

import base64
import itertools
import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tools.screenshot import chromium, offline_flags


class BrowserError(RuntimeError):
    """The page threw, or what was awaited did not happen in time."""


class Page:
    """One tab: DevTools commands by name, JavaScript evaluated in the page."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events arriving meanwhile are dropped)."""
        command_id = next(self.ids)
        self.socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == command_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (promises awaited), or BrowserError with the page's exception."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for: {expression}")
            time.sleep(0.1)

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.navigate", url=url)
        # the tab starts on about:blank, which is complete at once: wait for the new document
        self.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'", timeout)

    def type_text(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A left click at the centre of the first element ``selector`` matches, scrolled into view."""
        box = self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            node.scrollIntoView({{block: "center"}});
            const r = node.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def screenshot(self, png: str | Path) -> int:
        """A PNG of the viewport; its size in bytes."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        Path(png).write_bytes(data)
        return len(data)


@contextmanager
def open_page(url: str, width: int = 1200, height: int = 800, timeout: float = 30.0) -> Iterator[Page]:
    """Chromium on ``url`` with the network cut (module doc); stopped by PID on exit."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: apt-get install -y chromium (or set $CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="prodrank-chromium-") as profile:
        proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                 "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                 *offline_flags(url), "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not port_file.is_file() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BrowserError(f"Chromium did not open its DevTools port (exit status {proc.poll()})")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as response:
                targets = json.loads(response.read())
            address = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
            with connect(address, max_size=None, open_timeout=timeout) as socket:
                page = Page(socket)
                page.navigate(url, timeout)
                yield page
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
