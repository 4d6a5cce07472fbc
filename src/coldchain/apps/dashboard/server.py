"""The dashboard's HTTP server: uvicorn (h11) with the limits a server left open needs.

What uvicorn does by itself, read in its source (0.54) and measured in the tests:
``timeout_keep_alive`` closes a connection idle *between* requests, but nothing bounds the
time a client takes to send a request: a connection that sends half a request line, or half a
body, and then nothing is held forever (h11 has no header timeout, and the keep-alive timer
is cancelled by the first byte of the next request). :class:`DeadlineProtocol` adds that
bound: each request must arrive whole within ``request_timeout_s`` of the connection opening
(or of the previous response), else the connection is closed. ``limit_concurrency`` answers
503 once that many connections or requests are open, so a flood costs memory for at most
that many; headers are limited to 16 KiB by h11 and bodies to 16 KiB by the guard;
``Content-Length: -1`` or ``abc`` is answered 400 by h11 before any application code runs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from coldchain.apps.accounts import Accounts
from coldchain.apps.dashboard.app import AppConfig, create_app
from coldchain.core.errors import ConfigurationError

log = logging.getLogger("coldchain.dashboard")
LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS: Final = ("0.0.0.0", "::", "")  # noqa: S104 - names we recognise, not bind to
MAX_HEADER_BYTES: Final = 16 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the dashboard listens."""

    database: Path
    accounts: Accounts
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_hosts: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_bind: bool = False
    request_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_connections: int = 200
    shutdown_timeout_s: int = 5
    clock: Callable[[], datetime] | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tls: bool, insecure_bind: bool) -> None:
    """Refuse to serve beyond this machine without TLS, unless told to.

    Raises:
        ConfigurationError: ``host`` is not loopback, and neither TLS nor ``insecure_bind``.
    """
    if is_loopback(host) or tls or insecure_bind:
        return
    raise ConfigurationError(
        f"refusing to serve the dashboard on {host or '*'} without TLS: passwords and session "
        "cookies would cross the network in clear; give --tls-cert and --tls-key, or "
        "--insecure-bind on a network you trust"
    )


def allowed_hosts(host: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Host header values the server answers: loopback, the bind address, ``extra``."""
    names = list(LOOPBACK_NAMES)
    if host not in WILDCARDS:
        names.append(f"[{host}]" if ":" in host else host)
    names.extend(extra)
    return tuple(dict.fromkeys(name.lower() for name in names))


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request to arrive whole."""

    request_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in, or the connection is ending

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no whole request within %g s",
                self.client[0] if self.client else "?",
                self.request_timeout_s,
            )
            self.transport.close()


def _protocol(request_timeout_s: float) -> type[DeadlineProtocol]:
    return type("Deadline", (DeadlineProtocol,), {"request_timeout_s": request_timeout_s})


class Dashboard:
    """A bound socket and a uvicorn server over it; :meth:`serve` blocks until stopped."""

    def __init__(self, config: ServerConfig) -> None:
        """Raises ConfigurationError: the bind rule, the TLS files or the port."""
        check_bind(config.host, config.tls, config.insecure_bind)
        if (config.tls_cert is None) != (config.tls_key is None):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        for label, path in (("certificate", config.tls_cert), ("key", config.tls_key)):
            if path is not None and not path.is_file():
                raise ConfigurationError(f"TLS {label} not found: {path}")
        self.config = config
        app = create_app(
            AppConfig(
                config.database,
                config.accounts,
                allowed_hosts(config.host, config.allowed_hosts),
                tls=config.tls,
                clock=config.clock,
            )
        )
        self.uvicorn = uvicorn.Config(
            app,
            http=_protocol(config.request_timeout_s),
            ws="none",
            loop="asyncio",
            lifespan="on",
            timeout_keep_alive=config.keep_alive_s,
            limit_concurrency=config.max_connections,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_graceful_shutdown=config.shutdown_timeout_s,
            ssl_certfile=None if config.tls_cert is None else str(config.tls_cert),
            ssl_keyfile=None if config.tls_key is None else str(config.tls_key),
            proxy_headers=False,  # nothing stands in front: X-Forwarded-* would be spoofable
            server_header=False,
            log_config=None,  # the CLI configured logging
            access_log=False,
        )
        try:
            self.uvicorn.load()
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"TLS certificate or key cannot be used: {exc}") from None
        self.socket = _bind(config.host, config.port)
        self.server = uvicorn.Server(self.uvicorn)

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in WILDCARDS else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{self.config.scheme}://{host}:{self.port}"

    def serve(self) -> None:
        """Serve until :meth:`stop`, or SIGTERM/SIGINT when called in the main thread."""
        if threading.current_thread() is threading.main_thread():
            # uvicorn handles both signals while it serves, then re-raises the one it got to
            # the handler found before it: this one, so the process exits 0, not by signal.
            def stop(signum: int, frame: FrameType | None) -> None:
                self.stop()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def stop(self) -> None:
        self.server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
