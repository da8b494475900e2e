"""Screenshots for the docs, checked: headless Chromium with every network request blocked.

    python -m tools.screenshot report reports/drift/<window>.html --png docs/img/drift-report.png
    python -m tools.screenshot prefect --png docs/img/prefect-ui-runs.png   # a running server's UI

:func:`render` opens a drift report and checks that it rendered (the DOM must hold the report's
widgets); :func:`prefect_ui` captures the project's Prefect server (the latest flow runs' names
must be in the page); :func:`snapshot` does either for any URL. Neither the library nor its
users need this: the docs' images and the monitoring tests do.

Needs a Chromium binary (``apt-get install -y chromium``; ``$CHROMIUM`` overrides the lookup).
The network is cut with a dead proxy and a resolver that maps every host to nothing (but a
loopback server the page is loaded from), so a report that needed a CDN would render empty.
Exit status 0 when the page rendered, 1 otherwise, 2 without Chromium (or without a server).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from prodrank.orchestration.server import discover, recent_run_names

OFFLINE_FLAGS = ["--proxy-server=127.0.0.1:9", "--disable-background-networking", "--no-first-run", "--disable-sync",
                 "--disable-extensions"]
# elements that exist only after the inlined JS ran: the page ships its widgets as JSON inside a
# <script>, so the report's own words are in the file either way; plotly's <svg class="main-svg">
# and rendered table cells are not
RENDERED_MARKERS = ('class="main-svg"', "<td")


def chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "headless_shell"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolver_rules(url: str) -> str:
    """Every host resolves to nothing (IP addresses included), except the URL's own host when it
    is a loopback address: a local server stays reachable, nothing else is (Chromium does not send
    loopback through the dead proxy either)."""
    host = urlsplit(url).hostname
    return "MAP * ~NOTFOUND" + (f", EXCLUDE {host}" if _loopback(host) else "")


def offline_flags(url: str) -> list[str]:
    """Chromium flags that cut the network for a page loaded from ``url`` (see :func:`_resolver_rules`)."""
    return [*OFFLINE_FLAGS, f"--host-resolver-rules={_resolver_rules(url)}"]


def _base(exe: str, profile: str, url: str, width: int, height: int) -> list[str]:
    return [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "--virtual-time-budget=15000",
            *offline_flags(url)]


def snapshot(url: str, png: str | Path | None = None, width: int = 1400, height: int = 2200,
             timeout: float = 120) -> str:
    """Load ``url`` in headless Chromium with the network cut and return the DOM after the page's
    scripts ran for 15 s of virtual time (Chromium holds that clock while requests are
    pending, so a single-page app gets its API answers first); with ``png``, also a screenshot of
    the ``width`` x ``height`` viewport. Only a server on a loopback IP (``http://127.0.0.1:…``)
    is reachable: see :func:`_resolver_rules`."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: apt-get install -y chromium (or set $CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="prodrank-chromium-") as profile:
        base = _base(exe, profile, url, width, height)
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout).stdout
        if png:
            Path(png).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*base, f"--screenshot={Path(png).resolve()}", url], capture_output=True, text=True,
                           timeout=timeout)
    return dom


def render(html: str | Path, png: str | Path | None = None, width: int = 1400, height: int = 2200,
           timeout: float = 120) -> dict:
    """Render ``html`` offline; returns {rendered, markers, dom_chars, png}."""
    dom = snapshot(Path(html).resolve().as_uri(), png, width, height, timeout=timeout)
    found = {m: m in dom for m in RENDERED_MARKERS}
    return {"rendered": all(found.values()), "markers": found, "dom_chars": len(dom),
            "png": str(png) if png and Path(png).exists() else None,
            "png_bytes": Path(png).stat().st_size if png and Path(png).exists() else 0}


def prefect_ui(png: str | Path, page: str = "runs", width: int = 1400, height: int = 900) -> dict:
    """A PNG of the running Prefect server's UI page ``page`` (docs/orchestration.md shows the
    result). The UI is a single-page app, so a PNG alone could be a blank frame: the check is
    that the latest flow runs' names, read from the API, appear in the rendered page."""
    info = discover()
    if info is None:
        raise RuntimeError("no Prefect server answers: start one with `make prefect-server`")
    names = recent_run_names(info.api_url)
    url = f"{info.ui_url}/{page}"
    shown: list[str] = []
    # the app lists runs only after its own API calls return; on a loaded machine the first
    # load can end before they do, so a page without any run is loaded again (three tries)
    for _ in range(3):
        dom = snapshot(url, png, width, height)
        shown = [name for name in names if name in dom]
        if shown:
            break
    return {"url": url, "rendered": bool(shown), "runs_in_api": names, "runs_shown": shown,
            "png": str(png) if Path(png).exists() else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    report = sub.add_parser("report", help="a drift report's HTML file, rendered offline")
    report.add_argument("html")
    report.add_argument("--png", help="write a screenshot here")
    report.add_argument("--width", type=int, default=1400)
    report.add_argument("--height", type=int, default=2200)
    prefect = sub.add_parser("prefect", help="the running Prefect server's UI")
    prefect.add_argument("--png", default="docs/img/prefect-ui-runs.png")
    prefect.add_argument("--page", default="runs", help="the UI page (runs, dashboard, deployments, ...)")
    args = parser.parse_args(argv)
    try:
        if args.what == "report":
            result = render(args.html, args.png, args.width, args.height)
        else:
            result = prefect_ui(args.png, args.page)
    except (FileNotFoundError, RuntimeError) as err:
        print(err, file=sys.stderr)
        return 2
    print(result)
    return 0 if result["rendered"] else 1


if __name__ == "__main__":
    sys.exit(main())
