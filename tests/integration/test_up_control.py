"""`coldchain up` as a person runs it: Ctrl-C in a terminal, and a second start by mistake."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from tests.stack import free_port, wait_until


def up_command(home: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coldchain",
        "up",
        "--data-dir",
        str(home),
        "--port",
        str(free_port()),
        "--devices",
        "5",
        "--interval",
        "0.5",
        "--no-dashboard",
        *extra,
    ]


def stored(home: Path) -> int:
    database = home / "coldchain.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def take_terminal() -> None:
    """In the child, after setsid: make the pseudo-terminal on stdin the controlling one."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_c_in_a_terminal_stores_every_sampled_reading(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    main, secondary = os.openpty()
    process = subprocess.Popen(
        up_command(home),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
        preexec_fn=take_terminal,  # noqa: PLW1509 - the documented way to get a controlling tty
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(secondary)
    output: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                return
            if not chunk:
                return
            output.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_until(lambda: stored(home) >= 40, 60, "the fleet reporting")
        os.write(main, b"\x03")  # Ctrl-C: the terminal signals its foreground process group
        started = time.monotonic()
        code = process.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
        reader.join(5)
    text = b"".join(output).decode(errors="replace")
    assert code == 0, text[-2000:]
    assert elapsed < 10, f"stopping took {elapsed:.1f} s"
    assert "stopping the worker" in text
    log = (home / "logs" / "simulator.log").read_text()
    match = re.findall(r"sampled (\d+), acknowledged (\d+)", log)
    assert match, log[-1000:]
    sampled, acknowledged = map(int, match[-1])
    assert sampled == acknowledged
    assert stored(home) == sampled


def test_a_second_up_on_the_same_folder_exits_at_once_and_changes_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "stack"
    first = subprocess.Popen(
        up_command(home, "--duration", "120"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: stored(home) >= 20, 60, "the first stack running")
        started = time.monotonic()
        second = subprocess.run(
            up_command(home), capture_output=True, text=True, timeout=30, check=False
        )
        assert time.monotonic() - started < 5
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert "already running" in lines[0]
        assert f"pid {first.pid}" in lines[0]
        assert first.poll() is None
        before = stored(home)
        wait_until(lambda: stored(home) > before + 10, 30, "the first stack still storing")
        with sqlite3.connect(home / "coldchain.db") as conn:
            repeated = conn.execute(
                "SELECT count(*) FROM (SELECT device_id, seq FROM readings "
                "GROUP BY device_id, seq HAVING count(*) > 1)"
            ).fetchone()[0]
        assert repeated == 0  # no second simulator restarting seq at 0
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 0
