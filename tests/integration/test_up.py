"""`coldchain up`: the whole local stack with a simulated fleet, for a bounded time."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.stack import free_port


def test_up_runs_the_stack_and_every_alarm_type_shows(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    devices = 10
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain",
            "up",
            "--data-dir",
            str(home),
            "--port",
            str(free_port()),
            "--devices",
            str(devices),
            "--interval",
            "1",
            "--duration",
            "50",
            "--dashboard-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Stopped." in done.stdout
    with sqlite3.connect(home / "coldchain.db") as conn:
        reporting = conn.execute("SELECT count(DISTINCT device_id) FROM readings").fetchone()[0]
        kinds = {kind for (kind,) in conn.execute("SELECT DISTINCT kind FROM events")}
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert reporting == devices
    assert {"TemperatureExcursionHigh", "BatteryLow", "ShockDetected"} <= kinds
    assert dead == 0
    # Every child was stopped: the logs end with the worker's drain and the simulator's totals.
    assert "acknowledged" in (home / "logs" / "simulator.log").read_text()
    assert "totals:" in (home / "logs" / "worker.log").read_text()
    # The README's example finds the simulated fleet's excursions by its fleet id.
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(home),
            "excursions",
            "--since",
            "1h",
            "--fleet",
            "reefer-fleet",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout), "no excursions for --fleet reefer-fleet"
