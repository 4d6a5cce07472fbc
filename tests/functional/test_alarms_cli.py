"""`coldchain alarms list` and `coldchain alarms ack`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteDatabase
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import default_profile
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.rules import Severity
from tests.cli import run
from tests.factories import T0, message, payload


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    SqliteAlarmStore(db).save(
        [
            Alarm(
                alarm_id("dev-1", "High", T0),
                "dev-1",
                "f",
                "High",
                Severity.CRITICAL,
                AlarmState.ACTIVE,
                T0,
                T0 + timedelta(minutes=30),
                None,
                9.4,
                timedelta(minutes=30),
                "temperature_c > 8 °C for 30 min",
            ),
            Alarm(
                alarm_id("dev-2", "Shock", T0),
                "dev-2",
                "g",
                "Shock",
                Severity.WARNING,
                AlarmState.CLEARED,
                T0,
                T0,
                T0 + timedelta(minutes=1),
                3.1,
                timedelta(minutes=1),
                "shock_g > 2 g",
            ),
        ]
    )
    db.close()
    return tmp_path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_ack_without_a_comment_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = alarm_id("dev-1", "High", T0)
    code, _, err = run(["--home", str(home), "alarms", "ack", target], capsys)
    assert code == 2
    assert "--comment" in one_line(err)
    code, _, err = run(["--home", str(home), "alarms", "ack", target, "--comment", "  "], capsys)
    assert code == 1
    assert "comment" in one_line(err)


def test_ack_with_a_comment_is_stored_and_listed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = alarm_id("dev-1", "High", T0)
    code, out, err = run(
        [
            "--home",
            str(home),
            "alarms",
            "ack",
            target,
            "--comment",
            "moved to the cold room",
            "--by",
            "ana",
        ],
        capsys,
    )
    assert code == 0, err
    assert "acknowledged" in out
    code, out, _ = run(
        ["--home", str(home), "alarms", "list", "--active", "--format", "json"], capsys
    )
    [listed] = json.loads(out)
    assert listed["id"] == target
    assert listed["acknowledgement"]["by"] == "ana"
    assert listed["acknowledgement"]["comment"] == "moved to the cold room"


def test_list_filters_and_unknown_ids(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["--home", str(home), "alarms", "list", "--fleet", "g", "--format", "json"], capsys
    )
    assert [a["rule"] for a in json.loads(out)] == ["Shock"]
    code, out, _ = run(["--home", str(home), "alarms", "list"], capsys)
    assert code == 0
    assert "dev-1" in out
    assert "dev-2" in out
    code, _, err = run(["--home", str(home), "alarms", "ack", "nope", "--comment", "x"], capsys)
    assert code == 1
    assert "no alarm 'nope'" in one_line(err)


def test_no_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--home", str(tmp_path), "alarms", "list"], capsys)
    assert code == 1
    assert "no store" in one_line(err)


def test_an_active_alarm_shows_its_live_peak_though_its_record_is_written_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    ingest = local_ingest(db, default_profile())
    now = T0 + timedelta(hours=1)
    saved: list[list[Alarm]] = []
    store_save = SqliteAlarmStore.save

    def counting(self: SqliteAlarmStore, alarms: list[Alarm]) -> None:
        saved.append(list(alarms))
        store_save(self, alarms)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqliteAlarmStore, "save", counting)
        for minute, temperature in enumerate([9.0, 9.5, 11.0, 12.5, 10.0]):
            body = payload(at=T0 + timedelta(minutes=2 * minute), temperature_c=temperature)
            with db.transaction():
                ingest.run([message(body, received_at=now)], now)
    excursion = [a for batch in saved for a in batch if a.rule == "TemperatureExcursion"]
    assert len(excursion) == 1  # raised at the second reading; later readings write no record
    (stored,) = [a for a in SqliteAlarmStore(db).list() if a.rule == "TemperatureExcursion"]
    assert stored.peak == 9.5
    db.close()
    code, out, _ = run(
        ["alarms", "list", "--active", "--format", "json", "--db", str(tmp_path / "coldchain.db")],
        capsys,
    )
    assert code == 0
    (listed,) = [a for a in json.loads(out) if a["rule"] == "TemperatureExcursion"]
    assert listed["peak"] == 12.5  # the worst so far, from the device's state
    assert listed["unit"] == "°C"
    assert listed["duration_s"] == 8 * 60  # four 2-minute gaps, the newest excluded
