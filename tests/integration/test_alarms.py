"""Alarms end to end: real broker, worker and simulated fleet; webhook and SMTP run here."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.servers import smtp_server, webhook_server
from tests.stack import Stack, reading_body, wait_until

SHORT_PROFILE = """
name = "short"
max_gap = "5s"
silence_after = "{silence}"
reminder_every = "1h"

[[rules]]
name = "Early"
metric = "temperature_c"
comparison = ">"
threshold = 8.0
kind = "consecutive"
count = 2
severity = "warning"

[[rules]]
name = "High"
metric = "temperature_c"
comparison = ">"
threshold = 8.0
kind = "duration"
duration = "5s"
severity = "critical"

[[rules]]
name = "Low"
metric = "temperature_c"
comparison = "<"
threshold = 2.0
kind = "duration"
duration = "5s"
severity = "critical"

[[rules]]
name = "Battery"
metric = "battery_pct"
comparison = "<"
threshold = 15.0
kind = "instant"
severity = "warning"

[[rules]]
name = "Shock"
metric = "shock_g"
comparison = ">"
threshold = 2.0
kind = "instant"
severity = "warning"
"""


def write_profile(stack: Stack, silence: str) -> Path:
    path = stack.home / "profile.toml"
    path.write_text(SHORT_PROFILE.format(silence=silence))
    return path


def alarms(stack: Stack) -> list[tuple[str, str, str, str]]:
    return [
        (row[0], row[1], row[2], row[3])
        for row in stack.rows("SELECT id, device_id, rule, state FROM alarms")
    ]


def test_fleet_alarms_raise_clear_and_reach_webhook_and_email(stack: Stack) -> None:
    with webhook_server() as (url, hook), smtp_server() as (smtp_port, mail):
        stack.start_worker(
            extra=[
                "--profile",
                str(write_profile(stack, "1h")),
                "--sweep-every",
                "0.5",
                "--webhook",
                url,
                "--webhook-min-severity",
                "info",
                "--smtp",
                f"127.0.0.1:{smtp_port}",
                "--mail-to",
                "ops@example.com",
                "--mail-min-severity",
                "info",
            ]
        )
        fleet = stack.simulate(
            "--devices", "6", "--interval", "0.5", "--duration", "45", "--seed", "2"
        )
        _, err = fleet.communicate(timeout=150)
        assert fleet.returncode == 0, err
        wanted = {"Early", "High", "Low", "Battery", "Shock"}
        wait_until(lambda: wanted <= {rule for _, _, rule, _ in alarms(stack)}, 30, "every rule")
        records = alarms(stack)
        cleared = [a for a in records if a[3] == "cleared"]
        assert any(rule == "Shock" for _, _, rule, _ in cleared)  # a shock passes
        expected = {(alarm_id, "raised") for alarm_id, *_ in records}
        expected |= {(alarm_id, "cleared") for alarm_id, *_ in cleared}

        def delivered_hook() -> set[tuple[str, str]]:
            return {(item["alarm_id"], item["notification"]) for item in hook.snapshot()}

        wait_until(lambda: expected <= delivered_hook(), 30, "webhook notifications")

        def delivered_mail() -> set[tuple[str, str]]:
            found = set()
            for message in mail.snapshot():
                fields = dict(
                    line.split(": ", 1) for line in message["data"].splitlines() if ": " in line
                )
                found.add((fields.get("alarm_id", ""), fields.get("notification", "")))
            return found

        wait_until(lambda: expected <= delivered_mail(), 30, "emails")
        assert stack.count("alarms", "rule = 'DeviceSilence'") == 0


def test_a_stopped_device_raises_silence_and_clears_when_back(stack: Stack) -> None:
    stack.start_worker(extra=["--profile", str(write_profile(stack, "3s")), "--sweep-every", "0.5"])
    devices = {
        d: stack.simulate("--device-id", d, "--interval", "0.5", "--scenario", "healthy")
        for d in ("dev-1", "dev-2", "dev-3")
    }
    try:
        wait_until(lambda: stack.count("devices") == 3, 30, "three devices reporting")
        devices["dev-2"].send_signal(signal.SIGTERM)
        devices["dev-2"].communicate(timeout=30)
        wait_until(
            lambda: stack.count("alarms", "rule = 'DeviceSilence' AND state = 'active'") == 1,
            20,
            "silence raised",
        )
        [(device,)] = stack.rows("SELECT device_id FROM alarms WHERE rule = 'DeviceSilence'")
        assert device == "dev-2"
        devices["dev-2"] = stack.simulate(
            "--device-id", "dev-2", "--interval", "0.5", "--scenario", "healthy"
        )
        wait_until(
            lambda: stack.count("alarms", "rule = 'DeviceSilence' AND state = 'cleared'") == 1,
            30,
            "silence cleared",
        )
        assert stack.count("alarms", "device_id != 'dev-2'") == 0
    finally:
        for process in devices.values():
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)


def test_a_hanging_webhook_does_not_slow_ingestion(stack: Stack) -> None:
    with webhook_server() as (url, hook):
        hook.delay_s = 30.0  # longer than the channel's 5 s timeout
        hook.status = 200
        stack.start_worker(
            extra=[
                "--profile",
                str(write_profile(stack, "1h")),
                "--webhook",
                url,
                "--webhook-min-severity",
                "info",
            ]
        )
        device = stack.device("dev-1")
        hot = [reading_body("dev-1", seq, temperature_c=9.5, shock_g=3.0) for seq in range(40)]
        started = time.monotonic()
        device.publish_all(hot)
        wait_until(lambda: stack.count() == 40, 10, "every reading stored")
        stored_after = time.monotonic() - started
        assert stored_after < 5.0  # not held behind the webhook
        wait_until(lambda: stack.count("alarms") >= 3, 10, "alarms recorded")
        rules = {rule for _, _, rule, _ in alarms(stack)}
        assert {"Early", "High", "Shock"} <= rules
        pending = stack.count("outbox", "delivered_at IS NULL AND channel = 'webhook'")
        assert pending >= 1  # waiting for the webhook, not lost


def test_the_default_profile_raises_freezing_within_two_readings(stack: Stack) -> None:
    stack.start_worker()  # the built-in profile
    device = stack.simulate(
        "--device-id",
        "reefer-f",
        "--interval",
        "0.5",
        "--scenario",
        "freezing",
        "--duration",
        "60",
    )
    try:

        def freezing() -> list[tuple[str, ...]]:
            return stack.rows(
                "SELECT severity, started_at, raised_at FROM alarms WHERE rule = 'Freezing'"
            )

        wait_until(lambda: bool(freezing()), 60, "a Freezing alarm")
        [(severity, started_at, raised_at)] = freezing()
        assert severity == "critical"
        below = stack.rows(
            "SELECT ts FROM readings WHERE device_id = 'reefer-f' AND temperature_c < 0 "
            "ORDER BY ts LIMIT 2"
        )
        assert (started_at, raised_at) == (below[0][0], below[1][0])  # the second one below 0
    finally:
        device.send_signal(signal.SIGINT)
        device.communicate(timeout=30)
