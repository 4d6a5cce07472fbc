"""Operator commands and the shipment report on a store filled from a known trip."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from coldchain.adapters.sqlite import (
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteReadingStore,
)
from coldchain.core.messages import Message
from coldchain.core.processing import Processor
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.cli import run
from tests.factories import T0

STEP = timedelta(minutes=10)
HOT = range(60, 64)  # 10:00 to 10:40 at 10 °C
LOST = (100, 101)  # two readings never arrived
WINDOW = ["--from", "2024-01-15T09:00:00Z", "--to", "2024-01-16T09:00:00Z"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A day of 10-minute readings through the real processing path, one 40-minute excursion."""
    db = SqliteDatabase(tmp_path / "coldchain.db")
    processor = Processor(SqliteReadingStore(db), SqliteDeadLetterStore(db))
    messages = []
    for seq in range(145):
        if seq in LOST:
            continue
        at = T0 + seq * STEP
        body = {
            "device_id": "reefer-7",
            "timestamp": to_canonical(at),
            "temperature_c": 10.0 if seq in HOT else 5.0,
            "humidity_pct": 60.0,
            "shock_g": 0.01,
            "battery_pct": 90.0,
            "fleet_id": "fleet-x",
            "seq": seq,
        }
        messages.append(Message(telemetry_topic("reefer-7"), json.dumps(body).encode(), at))
    messages.append(Message(telemetry_topic("reefer-7"), b"garbage", T0))
    with db.transaction():
        processor.process_batch(messages)
    db.close()
    return tmp_path


def test_json_report_has_every_number_right(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--home", str(home), "report", "reefer-7", *WINDOW], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["readings"] == {
        "received": 143,
        "interval_s": 600.0,
        "expected_by_interval": 145,
        "expected_by_seq": 145,
        "missing_by_seq": 2,
        "missing_seq_ranges": [[100, 101]],
    }
    assert (doc["first_reading"], doc["last_reading"]) == (
        "2024-01-15T09:00:00.000Z",
        "2024-01-16T09:00:00.000Z",
    )
    temps = doc["temperature_c"]
    assert (temps["min"], temps["max"], temps["band"]) == (5.0, 10.0, [2.0, 8.0])
    assert temps["mean"] == pytest.approx((139 * 5 + 4 * 10) / 143, abs=1e-3)
    # Time: 40 min above; the reading before the 30-minute hole stands for 20 min at most, so
    # 10 minutes are not covered; the last reading ends the window.
    in_range_min = 24 * 60 - 40 - 10
    assert doc["time_s"] == {
        "in_range": in_range_min * 60.0,
        "above": 2400.0,
        "below": 0.0,
        "percent_in_range": round(100 * in_range_min / (in_range_min + 40), 2),
    }
    expected_mkt = (
        10_000
        / -math.log(
            (in_range_min * math.exp(-10_000 / 278.15) + 40 * math.exp(-10_000 / 283.15))
            / (in_range_min + 40)
        )
        - 273.15
    )
    assert temps["mkt"] == pytest.approx(expected_mkt, abs=1e-3)
    assert [
        (e["rule"], e["start"], e["end"], e["duration_s"], e["peak"]) for e in doc["excursions"]
    ] == [
        (
            "TemperatureExcursion",
            "2024-01-15T19:00:00.000Z",
            "2024-01-15T19:40:00.000Z",
            2400.0,
            10.0,
        ),
        (
            "TemperatureHigh30m",
            "2024-01-15T19:00:00.000Z",
            "2024-01-15T19:40:00.000Z",
            2400.0,
            10.0,
        ),
    ]
    assert doc["verdict"] == "excursions present"


def test_pdf_has_the_chart_and_the_excursion_table(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "qa.pdf"
    code, _, err = run(
        [
            "--home",
            str(home),
            "report",
            "reefer-7",
            *WINDOW,
            "--format",
            "pdf",
            "-o",
            str(target),
            "--tz",
            "Europe/Berlin",
        ],
        capsys,
    )
    assert code == 0, err
    reader = PdfReader(target)
    assert 1 <= len(reader.pages) <= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    for fragment in (
        "Shipment report: reefer-7",
        "Temperature over the trip",
        "Excursions",
        "TemperatureHigh30m",
        "2024-01-15 20:00:00 CET",  # 19:00 UTC, shown in the zone asked for
        "Times in Europe/Berlin",
        "Mean kinetic temperature",
        "excursions present",
        "2 missing of 145 by seq",
    ):
        assert fragment in text
    drawing = reader.pages[0].get_contents()
    assert drawing is not None
    assert drawing.get_data().count(b" l") > 100  # the chart's line segments


def test_html_and_csv(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["--home", str(home), "report", "reefer-7", *WINDOW, "--format", "html", "--tz", "UTC"],
        capsys,
    )
    assert code == 0
    assert "<svg" in out
    assert '<text class="time"' in out  # a time axis under the chart
    assert "2024-01-15 21:00:00 UTC" in out  # its middle, in the zone asked for
    assert "TemperatureHigh30m" in out
    assert "https://" not in out
    code, out, _ = run(
        ["--home", str(home), "report", "reefer-7", *WINDOW, "--format", "csv"], capsys
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 143
    assert rows[60]["temperature_c"] == "10.0"


def test_devices_telemetry_excursions_and_dead_letters(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["--home", str(home), "devices", "--format", "json"], capsys)
    [device] = json.loads(out)
    assert (device["device_id"], device["readings"], device["status"]) == (
        "reefer-7",
        143,
        "silent",
    )
    code, out, _ = run(
        ["--home", str(home), "telemetry", "reefer-7", *WINDOW, "--format", "json"], capsys
    )
    assert len(json.loads(out)) == 143
    code, out, _ = run(["--home", str(home), "telemetry", "reefer-7", *WINDOW], capsys)
    assert code == 0
    assert len(out.strip().splitlines()) == 144
    code, out, _ = run(["--home", str(home), "dlq", "list", "--format", "json"], capsys)
    [letter] = json.loads(out)
    assert "not valid JSON" in letter["reason"]
    code, out, _ = run(["--home", str(home), "dlq", "replay", "--all"], capsys)
    assert "1 still failing" in out
    code, out, _ = run(["--home", str(home), "dlq", "list", "--format", "json"], capsys)
    assert json.loads(out)[0]["attempts"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report", "nobody", *WINDOW], "unknown device 'nobody'"),
        (["telemetry", "nobody", "--since", "1h"], "unknown device 'nobody'"),
        (["device", "show", "nobody"], "unknown device 'nobody'"),
        (
            [
                "report",
                "reefer-7",
                "--from",
                "2024-01-16T00:00:00Z",
                "--to",
                "2024-01-15T00:00:00Z",
            ],
            "--from must be before --to",
        ),
        (["telemetry", "reefer-7", "--from", "yesterday"], "bad time"),
        (["telemetry", "reefer-7", "--since", "soon"], "bad time"),
        (
            [
                "report",
                "reefer-7",
                "--from",
                "2020-01-01T00:00:00Z",
                "--to",
                "2020-01-02T00:00:00Z",
            ],
            "no readings",
        ),
        (["dlq", "replay"], "--id ID or --all"),
    ],
)
def test_errors_are_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, _, err = run(["--home", str(home), *args], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]


def test_an_unreachable_store_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["devices"], ["excursions"], ["report", "x", *WINDOW], ["dlq", "list"]):
        code, _, err = run(["--home", str(tmp_path / "nowhere"), *args], capsys)
        assert code == 1
        assert "no store at" in err.strip()
        assert len(err.strip().splitlines()) == 1
