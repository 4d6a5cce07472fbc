"""`coldchain dlq replay` runs the worker's ingest step: its profile, its channels."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteDatabase, SqliteDeadLetterStore
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import default_profile
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.cli import run


def dead_letter(db: SqliteDatabase, battery_pct: float) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    body = {
        "device_id": "dev-1",
        "timestamp": to_canonical(at),
        "temperature_c": 4.0,
        "humidity_pct": 60.0,
        "shock_g": 0.0,
        "battery_pct": battery_pct,
    }
    letter = DeadLetter(
        DeadLetterKind.REJECTED,
        telemetry_topic("dev-1"),
        json.dumps(body).encode(),
        at,
        "internal error: a bug since fixed",
    )
    SqliteDeadLetterStore(db).put_many([letter])


def test_replay_raises_alarms_for_the_workers_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    # The worker ran with a webhook for warnings and above: it recorded its channels.
    local_ingest(db, default_profile(), {"log": Severity.INFO, "webhook": Severity.WARNING})
    dead_letter(db, battery_pct=9.0)
    db.close()
    code, out, err = run(["--home", str(tmp_path), "dlq", "replay", "--all"], capsys)
    assert code == 0, err
    assert "1 stored" in out
    db = SqliteDatabase(tmp_path / "coldchain.db")
    rows = db.connection.execute("SELECT channel, kind FROM outbox ORDER BY channel").fetchall()
    db.close()
    assert rows == [("log", "raised"), ("webhook", "raised")]  # BatteryLow, a warning


def test_replay_runs_the_rules_the_worker_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    # The worker runs a profile whose battery alarm starts at 40 %, not the built-in 15 %.
    strict = replace(
        default_profile(),
        rules=tuple(
            replace(rule, threshold=40.0) if rule.name == "BatteryLow" else rule
            for rule in default_profile().rules
        ),
    )
    local_ingest(db, strict, {"log": Severity.INFO})
    dead_letter(db, battery_pct=30.0)  # low for the worker's rules, fine for the built-in ones
    db.close()
    code, out, err = run(["--home", str(tmp_path), "dlq", "replay", "--all"], capsys)
    assert code == 0, err
    assert "1 stored" in out
    db = SqliteDatabase(tmp_path / "coldchain.db")
    alarms = SqliteAlarmStore(db).list()
    db.close()
    assert [a.rule for a in alarms] == ["BatteryLow"]
    code, out, _ = run(["--home", str(tmp_path), "profile", "show", "--format", "json"], capsys)
    assert code == 0
    shown = json.loads(out)
    assert [r["threshold"] for r in shown["rules"] if r["name"] == "BatteryLow"] == [40.0]
    assert shown["band"] == [2.0, 8.0]
