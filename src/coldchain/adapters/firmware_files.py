"""Firmware images on disk and the loopback HTTP server that hands them to devices through
expiring signed URLs (the local counterpart of S3 pre-signed URLs).

A URL is ``http://127.0.0.1:PORT/firmware/VERSION?expires=EPOCH&signature=HEX``, the
signature an HMAC-SHA256 (stdlib ``hmac``) of the version and the expiry (one per line)
under a key kept in the firmware folder (mode 0600). A URL past its expiry, or with any
part changed, is refused with 403; an unknown version with 404. Only GET, only on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import threading
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from coldchain.core.errors import ConfigurationError, NotFoundError, ValidationError
from coldchain.core.jobs import check_version
from coldchain.core.ports import Clock

_CHUNK: Final = 1 << 16


class FirmwareFiles:
    """``<folder>/images/VERSION.bin`` and the URL signing key ``<folder>/url.key``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._images = folder / "images"

    def add(self, source: Path, version: str) -> tuple[str, int]:
        """Copy an image in; its SHA-256 and size.

        Raises:
            ConfigurationError: the file cannot be read, or the version is taken by another
                image.
        """
        check_version(version)
        try:
            digest, size = _digest(source)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {source}: {exc.strerror}") from None
        target = self.path(version)
        if target.exists() and _digest(target)[0] != digest:
            raise ConfigurationError(f"firmware {version} exists with other contents")
        self._images.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(source, target)
        return digest, size

    def path(self, version: str) -> Path:
        return self._images / f"{check_version(version)}.bin"

    def _key(self) -> bytes:
        key_file = self.folder / "url.key"
        if not key_file.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_hex(32))
        return bytes.fromhex(key_file.read_text().strip())

    def _signature(self, version: str, expires: int) -> str:
        return hmac.new(self._key(), f"{version}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, base: str, version: str, expires_at: datetime) -> str:
        expires = int(expires_at.timestamp())
        signature = self._signature(version, expires)
        return f"{base}/firmware/{quote(version)}?expires={expires}&signature={signature}"

    def verify(self, version: str, expires: str, signature: str, now: datetime) -> Path:
        """The image a signed URL names.

        Raises:
            PermissionError: expired, or the signature does not match.
            NotFoundError: no such image.
        """
        if not expires.isdigit() or int(expires) <= now.timestamp():
            raise PermissionError("the URL has expired")
        expected = self._signature(version, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise PermissionError("the URL's signature does not match")
        path = self.path(version)
        if not path.exists():
            raise NotFoundError(f"no firmware {version}")
        return path


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class FirmwareServer:
    """Serves signed firmware URLs on loopback (a daemon thread)."""

    def __init__(self, files: FirmwareFiles, clock: Clock, port: int = 0) -> None:
        handler = _handler(files, clock)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(files: FirmwareFiles, clock: Clock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            segments = parts.path.split("/")
            if len(segments) != 3 or segments[1] != "firmware":
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            try:
                path = files.verify(
                    unquote(segments[2]),
                    query.get("expires", [""])[0],
                    query.get("signature", [""])[0],
                    clock.now(),
                )
            except PermissionError as exc:
                self.send_error(HTTPStatus.FORBIDDEN, str(exc))
                return
            except (NotFoundError, ValidationError) as exc:
                self.send_error(HTTPStatus.NOT_FOUND, str(exc))
                return
            data = path.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # the control service logs what matters

    return Handler
