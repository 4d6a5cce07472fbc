"""``coldchain dashboard`` as a process, against clients that misbehave at the HTTP level:
connections that send half a request and wait, hundreds of them, broken Content-Length
headers, signals, TLS. Loopback only, bounded in time."""

from __future__ import annotations

import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from coldchain.adapters.pki import LocalPki
from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.core.users import Role
from tests.dashboard import PASSWORD, accounts_for
from tests.stack import free_port, wait_until

REQUEST_TIMEOUT_S = 10.0  # the server's deadline for a whole request (ServerConfig default)
MARGIN_S = 3.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def threads(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Threads:"))[8:])


def serve(
    home: Path, *extra: str, scheme: str = "http", verify: ssl.SSLContext | bool = False
) -> Served:
    database = home / "coldchain.db"
    SqliteDatabase(database).close()
    port = free_port()
    log = home / "dashboard.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coldchain",
                "--home",
                str(home),
                "dashboard",
                "--port",
                str(port),
                "--db",
                str(database),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log, scheme)

    def answering() -> bool:
        assert process.poll() is None, served.text()
        try:
            response = httpx.get(f"{served.base}/api/health", verify=verify, timeout=2)
        except httpx.TransportError:
            return False
        return response.status_code == 401

    wait_until(answering, 20, "the dashboard answering")
    return served


def stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait(timeout=10)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "home")
    yield served
    stop(served)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(REQUEST_TIMEOUT_S + MARGIN_S)
    return sock


def closed_after(sock: socket.socket, started: float) -> float:
    """Seconds from ``started`` until the server closed ``sock`` (reads and drops any reply)."""
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return time.monotonic() - started


def trickled_until_closed(sock: socket.socket, started: float) -> float:
    """Send a request a byte every half second; seconds from ``started`` until it is closed."""
    for byte in b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 100:
        readable, _, _ = select.select([sock], [], [], 0.5)
        try:
            if readable and not sock.recv(4096):
                break
            sock.sendall(bytes([byte]))
        except OSError:
            break
    sock.close()
    return time.monotonic() - started


def test_half_sent_requests_are_closed_by_the_server(dashboard: Served) -> None:
    started = time.monotonic()
    silent = connect(dashboard.port)  # connects, sends nothing
    half_head = connect(dashboard.port)
    half_head.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
    half_body = connect(dashboard.port)
    half_body.sendall(
        b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    trickle = connect(dashboard.port)  # a byte every half second: never a whole request
    with ThreadPoolExecutor(4) as pool:
        waits = {
            "silent": pool.submit(closed_after, silent, started),
            "half head": pool.submit(closed_after, half_head, started),
            "half body": pool.submit(closed_after, half_body, started),
            "trickle": pool.submit(trickled_until_closed, trickle, started),
        }
        times = {name: future.result() for name, future in waits.items()}
    print(f"closed after (s): { {k: round(v, 2) for k, v in times.items()} }")
    for name, seconds in times.items():
        assert REQUEST_TIMEOUT_S - 0.5 <= seconds <= REQUEST_TIMEOUT_S + MARGIN_S, (name, seconds)
    assert "closed a connection from 127.0.0.1: no whole request within 10 s" in dashboard.text()
    assert "Traceback" not in dashboard.text()


def test_300_half_sent_requests_hold_no_threads_and_are_all_closed(dashboard: Served) -> None:
    threads_before = dashboard.threads()
    started = time.monotonic()
    held = []
    for _ in range(300):
        sock = connect(dashboard.port)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(sock)
    opened_s = time.monotonic() - started
    time.sleep(0.5)
    threads_held = dashboard.threads()
    # A well-formed request is answered at once while they are held: 503 (over the
    # connection limit), not a hang.
    asked = time.monotonic()
    during = httpx.get(f"{dashboard.base}/api/health", timeout=5)
    answered_s = time.monotonic() - asked
    closes = [closed_after(sock, started) for sock in held]
    after = httpx.get(f"{dashboard.base}/api/health", timeout=5)
    print(
        f"300 opened in {opened_s:.2f} s; threads {threads_before} -> {threads_held}; "
        f"request meanwhile: {during.status_code} in {answered_s * 1000:.0f} ms; "
        f"all closed by {max(closes):.1f} s; then {after.status_code}"
    )
    assert threads_held <= threads_before + 2  # no thread per connection
    assert during.status_code in (401, 503)
    assert answered_s < 2
    assert max(closes) <= REQUEST_TIMEOUT_S + MARGIN_S + opened_s
    assert after.status_code == 401  # served normally again (no credentials sent)
    assert dashboard.process.poll() is None


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"99999999999999999999"])
def test_a_broken_content_length_is_400_without_a_traceback(
    dashboard: Served, length: bytes
) -> None:
    sock = connect(dashboard.port)
    sock.sendall(
        b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\n\r\n{}"
    )
    reply = b""
    started = time.monotonic()
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert int(reply.split()[1]) in (400, 413), reply
    assert time.monotonic() - started < 2
    assert dashboard.process.poll() is None
    assert "Traceback" not in dashboard.text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    served = serve(tmp_path / "home")
    try:
        kept_open = connect(served.port)  # an idle keep-alive client does not hold the stop
        kept_open.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        kept_open.recv(4096)
        started = time.monotonic()
        served.process.send_signal(sig)
        assert served.process.wait(timeout=15) == 0
        print(f"{sig.name}: exit 0 after {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 8
        kept_open.close()
        assert "Traceback" not in served.text()
    finally:
        stop(served)


def test_tls_serves_https_with_a_secure_host_only_cookie(tmp_path: Path, shared_pki: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(shared_pki, home / "pki")
    credentials = LocalPki(home / "pki").broker()  # SAN 127.0.0.1 and localhost
    accounts = accounts_for(home / "coldchain.db")
    accounts.add("ana", Role.OPERATOR, PASSWORD)
    accounts.close()
    trust = ssl.create_default_context(cafile=str(credentials.ca))
    served = serve(
        home,
        "--tls-cert",
        str(credentials.cert),
        "--tls-key",
        str(credentials.key),
        scheme="https",
        verify=trust,
    )
    try:
        with httpx.Client(
            base_url=served.base, verify=trust, headers={"Origin": served.base}, timeout=10
        ) as client:
            response = client.post("/api/session", json={"name": "ana", "password": PASSWORD})
            assert response.status_code == 200
            cookie = response.headers["set-cookie"]
            assert cookie.startswith("__Host-coldchain-session=")
            assert "secure" in cookie.lower()
            assert client.get("/api/session").json()["name"] == "ana"
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(cafile=str(credentials.ca))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asking for old TLS on purpose
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.base}/api/health", verify=old, timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{served.port}/api/health", timeout=5).raise_for_status()
    finally:
        stop(served)
