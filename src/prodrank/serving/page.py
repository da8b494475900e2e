"""The search page at ``/``, and BentoML's API docs moved to ``/docs``.

The page is static HTML, JS and CSS shipped in the package (``serving/static/``); it calls only
the public API (``/search``, ``/feedback``, ``/metadata``), loads nothing from another host, and
works offline. :class:`SearchPage` is an ASGI middleware in front of the service: it answers
``GET /`` and ``GET /static/<file>`` for exactly the files in ``static/`` (no path is built from
the request), and hands ``GET /docs`` to BentoML's own index route, which is the Swagger UI its
``/`` used to show (its assets and ``docs.json`` are addressed relative to the page, so they
resolve from ``/docs`` as they did from ``/``).

The page's files are public (they hold no data), so :data:`PAGE_PATHS` stay open when the API
key is on; the page then asks for the key and sends it with every API call.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.responses import FileResponse

from prodrank.serving.guard import Receive, Scope, Send

STATIC_DIR = Path(__file__).with_name("static")
INDEX_FILE = "index.html"
DOCS_PATH = "/docs"
PAGE_FILES: dict[str, Path] = {
    "/": STATIC_DIR / INDEX_FILE,
    **{f"/static/{p.name}": p for p in sorted(STATIC_DIR.iterdir()) if p.is_file()},
}
PAGE_PATHS = frozenset(PAGE_FILES)


class SearchPage:
    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path")
        if path in PAGE_FILES:
            # no-cache: a page from an older server version must not call a changed API
            await FileResponse(PAGE_FILES[path], headers={"cache-control": "no-cache"})(scope, receive, send)
        elif path == DOCS_PATH:
            await self.app({**scope, "path": "/", "raw_path": b"/"}, receive, send)
        else:
            await self.app(scope, receive, send)
