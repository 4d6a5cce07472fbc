"""Every CLI list renders ids whole at 80 columns: the id the next command needs can be
copied (issue 14: `f5e21…` could not be)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteAuditLog,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteReadingStore,
)
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.reading import Reading
from coldchain.core.rules import Severity
from coldchain.core.shipments import Shipments
from coldchain.core.timestamps import to_canonical
from tests.cli import run
from tests.factories import T0

DEVICE = "reefer-north-fleet-000123"
FLEET = "north-european-reefers"
SHIPMENT = "SH-2026-11-27-HAMBURG-VIENNA-0042"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    SqliteReadingStore(db).put_many(
        [Reading(DEVICE, to_canonical(T0), 9.5, 60.0, 0.0, 90.0, fleet_id=FLEET)]
    )
    SqliteAlarmStore(db).save(
        [
            Alarm(
                alarm_id(DEVICE, "TemperatureCumulative60m", T0),
                DEVICE,
                FLEET,
                "TemperatureCumulative60m",
                Severity.CRITICAL,
                AlarmState.ACTIVE,
                T0,
                T0,
                None,
                9.5,
                timedelta(minutes=61),
                "temperature_c outside 2..8 °C for 60 min in total within 24 h",
            )
        ]
    )
    SqliteDeadLetterStore(db).put_many(
        [
            DeadLetter(
                DeadLetterKind.REJECTED,
                f"dt/coldchain/{DEVICE}/telemetry",
                b"{}",
                T0,
                "device_id: is required; temperature_c: is required; humidity_pct: is required",
            )
        ]
    )
    Shipments(SqliteAuditLog(db)).create(
        SHIPMENT, "Vaccine X, 40 cartons", "default", "Hamburg", "Vienna", [DEVICE], "ana", T0
    )
    db.close()
    return tmp_path


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["devices"], [DEVICE, FLEET]),
        (["alarms", "list"], [alarm_id(DEVICE, "TemperatureCumulative60m", T0), DEVICE]),
        (["excursions", "--since", "3650d"], [DEVICE]),
        (["dlq", "list"], [f"dt/coldchain/{DEVICE}/telemetry"]),
        (["shipment", "list"], [SHIPMENT, DEVICE]),
        (["audit", "list"], [f"shipment/{SHIPMENT}"]),
    ],
)
def test_ids_are_whole_at_80_columns(
    home: Path,
    args: list[str],
    ids: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(["--home", str(home), *args], capsys)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80, out
    for wanted in ids:
        assert any(wanted in line for line in out.splitlines()), (wanted, out)


@pytest.mark.parametrize(
    ("args", "header", "wanted"),
    [
        (["devices"], "device_id", DEVICE),
        (["alarms", "list"], "id", alarm_id(DEVICE, "TemperatureCumulative60m", T0)),
        (["excursions", "--since", "3650d"], "id", DEVICE),
        (["dlq", "list"], "id", f"dt/coldchain/{DEVICE}/telemetry"),
        (["shipment", "list"], "id", SHIPMENT),
        (["audit", "list"], "at", f"shipment/{SHIPMENT}"),
    ],
)
def test_every_list_also_speaks_csv(
    home: Path,
    args: list[str],
    header: str,
    wanted: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["--home", str(home), *args, "--format", "csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert header in rows[0]
    assert any(wanted in value for row in rows for value in row.values() if value)
