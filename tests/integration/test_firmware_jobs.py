"""Firmware jobs through the real broker: 20 simulated devices, 2 of them failing their
update: 18 report the new version, 2 roll back and report failed; with an abort rule the
rollout stops and what was not started is cancelled."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coldchain.apps.simulator.fleet import Fleet, FleetOptions
from coldchain.core.device_model import DeviceModel, Scenario
from coldchain.tls import client_context
from tests.integration.test_commands import Control, coldchain
from tests.stack import Stack, wait_until

FLEET = "fw-fleet"
IDS = [f"fw-{n:02d}" for n in range(20)]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack(tmp_path)
    made.pki.init()
    for device_id in IDS:
        made.pki.issue_device(device_id)
    made.start_broker()
    made.start_worker()
    control = Control(made)
    try:
        yield made
    finally:
        control.stop()
        made.close()


def run_fleet(stack: Stack, seed: int) -> tuple[Fleet, threading.Thread]:
    models = [DeviceModel(d, Scenario.HEALTHY, seed=seed, fleet_id=FLEET) for d in IDS]
    contexts = {}
    for device_id in IDS:
        credentials = stack.pki.device(device_id)
        contexts[device_id] = client_context(credentials.ca, credentials.cert, credentials.key)
    options = FleetOptions(
        "127.0.0.1", stack.port, interval_s=0.5, drain_s=2, firmware_failure_rate=0.1
    )
    fleet = Fleet(models, contexts.__getitem__, options, seed=seed)
    thread = threading.Thread(target=fleet.run, daemon=True)
    thread.start()
    wait_until(lambda: stack.count("devices") == len(IDS), 30, "every device reported")
    return fleet, thread


def create_job(stack: Stack, tmp_path: Path, *extra: str) -> str:
    image = tmp_path / "reefer-2.2.0.bin"
    image.write_bytes(b"reefer firmware 2.2.0\n" * 512)
    added = coldchain(stack, "firmware", "add", str(image), "--version", "2.2.0")
    assert added.returncode == 0, added.stderr
    made = coldchain(
        stack, "job", "create", "--target", f"fleet={FLEET}", "--firmware", "2.2.0", *extra
    )
    assert made.returncode == 0, made.stderr
    assert "to 20 devices" in made.stdout
    return made.stdout.split()[1].rstrip(":")


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    shown = coldchain(stack, "job", "show", job_id, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def firmware_of(stack: Stack) -> dict[str, str]:
    return dict(
        stack.rows(
            "SELECT d.device_id, r.firmware_version FROM devices d JOIN readings r "
            "ON r.device_id = d.device_id AND r.ts = d.last_ts"
        )
    )


def test_a_rollout_to_twenty_with_two_failing(stack: Stack, tmp_path: Path) -> None:
    fleet, thread = run_fleet(stack, seed=0)
    try:
        job_id = create_job(stack, tmp_path)
        wait_until(lambda: job(stack, job_id)["status"] == "completed", 60, "the job done")
        done = job(stack, job_id)
        assert done["counts"] == {"failed": 2, "succeeded": 18}
        failed = [e for e in done["executions"] if e["status"] == "failed"]
        assert all(e["details"]["firmware_version"] == "2.1.4" for e in failed)
        wait_until(
            lambda: sorted(firmware_of(stack).values()) == ["2.1.4"] * 2 + ["2.2.0"] * 18,
            20,
            "readings carry the installed version",
        )
        rolled_back = {e["device_id"] for e in failed}
        assert {d for d, v in firmware_of(stack).items() if v == "2.1.4"} == rolled_back
    finally:
        fleet.stop()
        thread.join(timeout=30)


def test_the_abort_rule_stops_the_rollout(stack: Stack, tmp_path: Path) -> None:
    fleet, thread = run_fleet(stack, seed=2)  # fw-01 and fw-02 fail: early in the rollout
    try:
        job_id = create_job(stack, tmp_path, "--rate", "60/min", "--abort-failed", "5%")
        wait_until(lambda: job(stack, job_id)["status"] == "aborted", 60, "the job aborted")
        wait_until(
            lambda: "in_progress" not in job(stack, job_id)["counts"], 20, "started ones done"
        )
        done = job(stack, job_id)
        counts = done["counts"]
        assert counts.get("failed", 0) >= 1
        assert counts.get("canceled", 0) >= 10
        assert sum(counts.values()) == 20
        untouched = {e["device_id"] for e in done["executions"] if e["status"] == "canceled"}
        wait_until(lambda: stack.count() > 0, 5)
        assert all(firmware_of(stack)[d] == "2.1.4" for d in untouched)
    finally:
        fleet.stop()
        thread.join(timeout=30)
