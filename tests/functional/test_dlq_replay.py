"""`coldchain dlq replay` runs the worker's ingest step: its profile, its channels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite import SqliteDatabase, SqliteDeadLetterStore
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import default_profile
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.cli import run


def test_replay_raises_alarms_for_the_workers_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    # The worker ran with a webhook for warnings and above: it recorded its channels.
    local_ingest(db, default_profile(), {"log": Severity.INFO, "webhook": Severity.WARNING})
    at = datetime.now(UTC) - timedelta(minutes=5)
    body = {
        "device_id": "dev-1",
        "timestamp": to_canonical(at),
        "temperature_c": 4.0,
        "humidity_pct": 60.0,
        "shock_g": 0.0,
        "battery_pct": 9.0,
    }
    letter = DeadLetter(
        DeadLetterKind.REJECTED,
        telemetry_topic("dev-1"),
        json.dumps(body).encode(),
        at,
        "internal error: a bug since fixed",
    )
    SqliteDeadLetterStore(db).put_many([letter])
    db.close()
    code, out, err = run(["--home", str(tmp_path), "dlq", "replay", "--all"], capsys)
    assert code == 0, err
    assert "1 stored" in out
    db = SqliteDatabase(tmp_path / "coldchain.db")
    rows = db.connection.execute("SELECT channel, kind FROM outbox ORDER BY channel").fetchall()
    db.close()
    assert rows == [("log", "raised"), ("webhook", "raised")]  # BatteryLow, a warning
