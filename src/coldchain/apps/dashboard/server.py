"""The dashboard's HTTP server (stdlib): static files from the package, the JSON API."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.apps.dashboard.api import Api
from coldchain.core.errors import StorageError

log = logging.getLogger("coldchain.dashboard")
_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_STATIC: Final = ("index.html", "app.js", "style.css")
MAX_BODY: Final = 64 * 1024


def make_server(
    db_path: Path, host: str, port: int, clock: Callable[[], datetime] | None = None
) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0 picks a free one) over the store at ``db_path``.

    Each request thread gets its own connection; ``clock`` replaces the wall clock in tests.
    """
    local = threading.local()

    def api() -> Api:
        if not hasattr(local, "api"):
            db = SqliteDatabase(db_path)
            local.api = Api(db) if clock is None else Api(db, now=clock)
        return local.api  # type: ignore[no-any-return]

    class Handler(BaseHTTPRequestHandler):
        server_version = "coldchain-dashboard"

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            if url.path.startswith("/api/"):
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._json(413, {"error": "body too large"})
                    return
                body = self.rfile.read(length) if length else b""
                try:
                    status, document = api().route(
                        method, url.path, dict(parse_qsl(url.query)), body
                    )
                except StorageError as exc:
                    status, document = 503, {"error": str(exc)}
                self._json(status, document)
                return
            name = (
                "index.html"
                if url.path in ("/", "/index.html")
                else url.path.removeprefix("/static/")
            )
            if method != "GET" or name not in _STATIC:
                self._json(404, {"error": f"no such page: {url.path}"})
                return
            data = resources.files("coldchain.apps.dashboard").joinpath("static", name).read_bytes()
            self._send(200, _TYPES[Path(name).suffix], data)

        def _json(self, status: int, document: Any) -> None:
            self._send(status, "application/json", json.dumps(document).encode())

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
