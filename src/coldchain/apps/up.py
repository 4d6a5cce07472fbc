"""``coldchain up``: the whole local stack on one laptop.

Creates the local PKI if missing, starts mosquitto, a worker and (unless told not to) a
simulated fleet, each a child process with its log under ``<home>/logs``; shows a live
summary read from the store; on Ctrl-C (or ``--duration``) stops the simulator first (it
drains its buffers), then the worker (it commits what it holds), then the broker (it saves
its state), and prints where the data is.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final

from rich.console import Console
from rich.live import Live
from rich.table import Table

from coldchain.adapters.lockfile import FolderLock
from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.pki import LocalPki
from coldchain.adapters.sqlite import SqliteDatabase, StoreSummary, summarise
from coldchain.apps.accounts import ensure_admin
from coldchain.config import Settings
from coldchain.core.errors import ColdchainError, ConfigurationError

SIMULATED_FLEET: Final = "reefer-fleet"  # what the README's --fleet examples name


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What ``coldchain up`` runs."""

    devices: int = 25
    interval_s: float = 2.0
    simulator: bool = True
    duration_s: float | None = None
    seed: int = 0
    dashboard_port: int | None = 8080


_STOPPING = {
    "simulator": "delivering what its devices hold",
    "dashboard": "closing connections",
    "worker": "committing and acknowledging what it holds",
    "control": "recording the answers it holds",
}


class _Child:
    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = log_path.stat().st_size if log_path.exists() else 0  # logs append
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coldchain", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float, say: Callable[[str], None]) -> int:
        if self.alive():
            say(f"stopping the {self.name}: {_STOPPING[self.name]}")
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def wait_for(self, text: str, timeout_s: float) -> None:
        """Wait until the child's log shows ``text``.

        Raises:
            ConfigurationError: the child exited, or ``text`` did not appear in time.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                if text.encode() in log.read():
                    return
            if not self.alive():
                raise ConfigurationError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail(1)}"
                )
            time.sleep(0.1)
        raise ConfigurationError(f"{self.name} did not start within {timeout_s:g} s")

    def tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def run_up(settings: Settings, options: UpOptions, console: Console | None = None) -> StoreSummary:
    """Run the stack until Ctrl-C, SIGTERM or the duration; returns the final totals.

    Raises:
        ConfigurationError: mosquitto is missing or the port is taken, or a child died.
    """
    console = console or Console()
    home = settings.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    stack_lock = FolderLock(home / "stack.lock", "coldchain up").acquire()
    pki = LocalPki(settings.pki_dir)
    pki.init()
    broker = MosquittoProcess(
        BrokerConfig(settings.broker_dir, pki, settings.mqtt_host, settings.mqtt_port)
    )
    try:
        broker.start()
    except ColdchainError:
        stack_lock.release()
        raise
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    common = ["--home", str(home)]
    net = ["--port", str(settings.mqtt_port)]
    children: list[_Child] = []
    db: SqliteDatabase | None = None
    try:
        _start_services(children, common, net, settings)
        db = SqliteDatabase(settings.database)
        if options.dashboard_port is not None:
            first_admin = ensure_admin(settings.database)
            if first_admin is not None:  # printed this once; auth.db keeps only its hash
                console.print(
                    f"dashboard: http://127.0.0.1:{options.dashboard_port}  sign in as "
                    f"{first_admin[0]} / {first_admin[1]} (shown once; change it with "
                    f"coldchain --home {home} user password {first_admin[0]})",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            children.append(
                _Child(
                    "dashboard",
                    [
                        *common,
                        "dashboard",
                        "--port",
                        str(options.dashboard_port),
                        "--db",
                        str(settings.database),
                    ],
                    home / "logs" / "dashboard.log",
                )
            )
        if options.simulator:
            children.append(
                _Child(
                    "simulator",
                    [
                        *common,
                        "simulate",
                        *net,
                        "--endpoint",
                        settings.mqtt_host,
                        "--devices",
                        str(options.devices),
                        "--interval",
                        f"{options.interval_s:g}",
                        "--seed",
                        str(options.seed),
                        "--fleet-id",
                        SIMULATED_FLEET,
                    ],
                    home / "logs" / "simulator.log",
                )
            )
        _watch(db, children, options, stop, console)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the drain
        say = console.print
        for child in reversed(children):  # simulator, dashboard, control, then worker
            if child.name == "worker" and db is not None and child.alive():
                _until_caught_up(db, say)
            child.stop(timeout_s=60, say=say)
        say("stopping the broker: saving its sessions and queues")
        broker.stop()
        stack_lock.release()
    summary = summarise(db)
    db.close()
    failed = [c for c in children if c.process.returncode not in (0, -signal.SIGTERM)]
    _farewell(settings, summary, console)
    if failed:
        raise ConfigurationError(
            f"{failed[0].name} exited with {failed[0].process.returncode}: {failed[0].tail(1)}"
        )
    return summary


def _start_services(
    children: list[_Child], common: list[str], net: list[str], settings: Settings
) -> None:
    """The worker, then the control service (commands), each up before the next starts."""
    home = settings.home
    children.append(
        _Child(
            "worker",
            [*common, "worker", *net, "--db", str(settings.database)],
            home / "logs" / "worker.log",
        )
    )
    # Devices must not publish before the worker's subscription exists: the broker
    # acknowledges a publish nobody subscribes to (reason 16) and drops it.
    children[-1].wait_for("processing ", timeout_s=30)
    children.append(
        _Child(
            "control",
            [*common, "control", *net, "--db", str(settings.database)],
            home / "logs" / "control.log",
        )
    )
    children[-1].wait_for("controlling ", timeout_s=30)


def _until_caught_up(
    db: SqliteDatabase, say: Callable[[str], None], quiet_s: float = 1.0, limit_s: float = 15.0
) -> None:
    """Before the worker stops: let it store what the broker still forwards (the readings the
    simulator delivered last), until the count has not moved for ``quiet_s``.
    """
    say("waiting for the worker to store what the broker still holds")
    deadline = time.monotonic() + limit_s
    count, since = summarise(db).readings, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        now = summarise(db).readings
        if now != count:
            count, since = now, time.monotonic()


def _watch(
    db: SqliteDatabase,
    children: list[_Child],
    options: UpOptions,
    stop: threading.Event,
    console: Console,
) -> None:
    started = time.monotonic()
    previous = (started, 0)
    rate = 0.0
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while not stop.wait(1.0):
            for child in children:
                if not child.alive():
                    raise ColdchainError(
                        f"{child.name} stopped unexpectedly (exit {child.process.returncode}); "
                        f"last log line: {child.tail(1)}"
                    )
            summary = summarise(db)
            now = time.monotonic()
            if now - previous[0] >= 2:
                rate = (summary.readings - previous[1]) / (now - previous[0])
                previous = (now, summary.readings)
            live.update(_table(summary, rate, now - started, options))
            if options.duration_s is not None and now - started >= options.duration_s:
                break


def _table(summary: StoreSummary, rate: float, elapsed: float, options: UpOptions) -> Table:
    title = f"coldchain up - {elapsed:.0f} s (Ctrl-C to stop)"
    if options.dashboard_port is not None:
        title += f"\ndashboard: http://127.0.0.1:{options.dashboard_port}"
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("readings stored", f"{summary.readings:,}")
    table.add_row("stored per second", f"{rate:,.1f}")
    devices = f"{summary.devices}"
    if options.simulator:
        devices += f" of {options.devices} simulated"
    table.add_row("devices reporting", devices)
    for kind in sorted(summary.events):
        table.add_row(kind, f"{summary.events[kind]:,}")
    if not summary.events:
        table.add_row("excursions", "none yet")
    table.add_row("active alarms", f"{summary.active_alarms:,}")
    table.add_row("dead letters", f"{summary.dead_letters:,}")
    return table


_QUERY_HINT = '"SELECT device_id, ts, temperature_c FROM readings ORDER BY ts DESC LIMIT 10"'


def _farewell(settings: Settings, summary: StoreSummary, console: Console) -> None:
    console.print(
        f"Stopped. {summary.readings:,} readings from {summary.devices} devices, "
        f"{sum(summary.events.values()):,} events, {summary.dead_letters:,} dead letters.\n"
        f"Data: {settings.database} (SQLite)   Logs: {settings.home / 'logs'}   "
        f"Broker: {settings.broker_dir}\n"
        f"Query it: sqlite3 {settings.database} {_QUERY_HINT}\n"
        f"Alarms: coldchain --home {settings.home} alarms list --active\n"
        f"Run again: coldchain --home {settings.home} up"
    )
