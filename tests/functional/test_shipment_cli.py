"""`coldchain shipment ...`, `coldchain audit list` and a second acknowledgement, through
the real CLI on a SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteDatabase
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.rules import Severity
from tests.cli import run
from tests.factories import T0


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    SqliteAlarmStore(db).save(
        [
            Alarm(
                alarm_id("dev-1", "TemperatureHigh30m", T0),
                "dev-1",
                "f",
                "TemperatureHigh30m",
                Severity.CRITICAL,
                AlarmState.ACTIVE,
                T0,
                T0 + timedelta(minutes=30),
                None,
                9.4,
                timedelta(minutes=30),
                "temperature_c > 8 °C for 30 min",
            )
        ]
    )
    db.close()
    return tmp_path


def cli(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run(["--home", str(home), *args], capsys)


def test_lifecycle_through_the_cli(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for shipment_id, devices in (("SH-1", ["dev-1", "dev-2"]), ("SH-2", ["dev-1"])):
        code, out, err = cli(
            home,
            capsys,
            "shipment",
            "create",
            shipment_id,
            "--product",
            "Vaccine X",
            "--origin",
            "Hamburg",
            "--destination",
            "Vienna",
            *[a for d in devices for a in ("--device", d)],
            "--by",
            "ana",
        )
        assert code == 0, err
    assert cli(home, capsys, "shipment", "start", "SH-1", "--by", "ana")[0] == 0
    code, _, err = cli(home, capsys, "shipment", "start", "SH-2")
    assert code == 1
    [line] = err.strip().splitlines()  # one line, no traceback
    assert "dev-1 is on active shipment SH-1" in line
    code, _, err = cli(home, capsys, "shipment", "decide", "SH-1", "release", "--reason", "ok")
    assert code == 1
    assert "end it first" in err
    assert cli(home, capsys, "shipment", "end", "SH-1", "--by", "ana")[0] == 0
    code, out, _ = cli(
        home, capsys, "shipment", "decide", "SH-1", "release", "--reason", "clean", "--by", "qa"
    )
    assert code == 0
    assert "reviewed and released by qa" in out
    code, out, _ = cli(home, capsys, "shipment", "show", "SH-1", "--format", "json")
    shown = json.loads(out)
    assert shown["status"] == "ended"
    assert shown["decision"]["decision"] == "release"
    assert [r["action"] for r in shown["audit"]] == ["created", "started", "ended", "decided"]
    code, out, _ = cli(home, capsys, "shipment", "list", "--format", "csv")
    assert out.splitlines()[0] == "id,status,product,origin,destination,devices,decision"
    assert "SH-1,ended,Vaccine X,Hamburg,Vienna,dev-1 dev-2,release" in out
    code, out, _ = cli(home, capsys, "audit", "list", "--format", "json")
    actions = [(r["subject"], r["action"]) for r in json.loads(out)]
    assert actions[0] == ("shipment/SH-1", "decided")  # newest first
    assert len(actions) == 5  # two created, started, ended, decided (the refused start: none)


def test_a_second_acknowledgement_is_kept_beside_the_first(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = alarm_id("dev-1", "TemperatureHigh30m", T0)
    prefix = target[:5]  # a short unique prefix is enough
    code, _, err = cli(
        home, capsys, "alarms", "ack", prefix, "--comment", "door shut", "--by", "ana"
    )
    assert code == 0, err
    code, out, err = cli(
        home, capsys, "alarms", "ack", target, "--comment", "checked again", "--by", "bob"
    )
    assert code == 0, err
    assert "acknowledgement 2" in out
    code, out, _ = cli(home, capsys, "alarms", "list", "--format", "json")
    [listed] = json.loads(out)
    assert listed["acknowledgement"]["comment"] == "door shut"  # the first is not overwritten
    code, out, _ = cli(
        home, capsys, "audit", "list", "--subject", f"alarm/{target}", "--format", "json"
    )
    assert [(r["by"], r["reason"]) for r in json.loads(out)] == [
        ("ana", "door shut"),
        ("bob", "checked again"),
    ]
    code, _, err = cli(home, capsys, "alarms", "ack", "ffffff", "--comment", "x")
    assert code == 1
    assert "no alarm 'ffffff'" in err
