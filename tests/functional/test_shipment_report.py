"""The shipment report as a release document: a two-device shipment filled through the real
ingest step, with one known excursion and three lost readings, rendered to PDF and HTML; the
PDF's text is read back; `report verify` accepts the file and refuses altered ones."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import FreeText

from coldchain.adapters.sqlite import SqliteAuditLog, SqliteDatabase
from coldchain.apps.local_ingest import local_ingest
from coldchain.apps.shipment_report import ATTACHMENT, checksum, render_pdf, zone_named
from coldchain.core.alarm_profile import default_profile
from coldchain.core.rules import Severity
from coldchain.core.shipments import Decision, Shipments
from tests.cli import run
from tests.factories import T0, message, payload

START, END = T0, T0 + timedelta(hours=2)
ARRIVAL = END + timedelta(minutes=1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    ingest = local_ingest(db, default_profile(), {"log": Severity.INFO})
    shipments = Shipments(SqliteAuditLog(db))
    shipments.create(
        "SH-42",
        "Vaccine X, 40 cartons",
        "default",
        "Hamburg",
        "Vienna",
        ["dev-1", "dev-2"],
        "ana",
        T0 - timedelta(days=1),
    )
    shipments.start("SH-42", "ana", START)
    messages = []
    for n in range(61):  # every 2 minutes for 2 hours
        at = T0 + timedelta(minutes=2 * n)
        warm = 20 <= n < 40  # 40 minutes at 9.5 °C: TemperatureHigh30m, one known excursion
        dev1 = payload("dev-1", at, temperature_c=9.5 if warm else 5.0, seq=n)
        messages.append(message(dev1, received_at=ARRIVAL))
        if n not in (10, 11, 12):  # three readings of dev-2 lost
            dev2 = payload("dev-2", at, temperature_c=4.5, seq=n)
            messages.append(message(dev2, received_at=ARRIVAL))
    with db.transaction():
        ingest.run(messages, END + timedelta(minutes=5))
    shipments.end("SH-42", "ana", END)
    db.close()
    return tmp_path


def cli(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run(["--home", str(home), *args], capsys)


def test_the_report_is_a_release_document_and_verifies(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = SqliteDatabase(home / "coldchain.db")
    [alarm_id] = [
        row[0]
        for row in db.connection.execute(
            "SELECT id FROM alarms WHERE rule = 'TemperatureHigh30m'"
        ).fetchall()
    ]
    db.close()
    code, _, err = cli(
        home, capsys, "alarms", "ack", alarm_id, "--comment", "door seal replaced", "--by", "ana"
    )
    assert code == 0, err
    code, _, err = cli(
        home,
        capsys,
        "shipment",
        "decide",
        "SH-42",
        "quarantine",
        "--reason",
        "warm hour",
        "--by",
        "qa-bob",
    )
    assert code == 0, err
    pdf = tmp_path / "SH-42.pdf"
    code, _, err = cli(
        home,
        capsys,
        "report",
        "--shipment",
        "SH-42",
        "--format",
        "pdf",
        "-o",
        str(pdf),
        "--tz",
        "Europe/Berlin",
    )
    assert code == 0, err
    digest = err.rsplit("SHA-256 ", 1)[1].strip()
    [attached] = PdfReader(pdf).attachments[ATTACHMENT]
    document = json.loads(attached)
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    text = "\n".join(pages)
    for fragment in (
        "SH-42",
        "Vaccine X, 40 cartons",
        "Hamburg -> Vienna",
        "TemperatureHigh30m (critical): temperature_c > 8 °C for 30 min",
        "Freezing (critical): temperature_c < 0 °C for 2 consecutive readings",
        "MKT",
        "peak 9.5 °C",
        "door seal replaced",
        "QUARANTINE - reviewed and quarantined pending investigation",
        "Signed: qa-bob",
        "Audit trail of the shipment",
        "decided by qa-bob: warm hour",
        "times in Europe/Berlin",
        "CET",  # 2024-01-15 in Berlin
        "dev-2: 3 readings missing (seq gaps)",
        f"SHA-256 {digest}",
    ):
        assert fragment in text, fragment
    assert f"page 1 of {len(pages)}" in pages[0]
    assert checksum(document) == digest
    [dev1] = [d for d in document["devices"] if d["device_id"] == "dev-1"]
    assert [e["rule"] for e in dev1["excursions"]].count("TemperatureHigh30m") == 1
    [dev2] = [d for d in document["devices"] if d["device_id"] == "dev-2"]
    assert dev2["readings"]["missing_by_seq"] == 3
    code, out, _ = cli(
        home, capsys, "report", "--shipment", "SH-42", "--format", "html", "--tz", "Europe/Berlin"
    )
    assert "door seal replaced" in out
    assert "Hamburg -&gt; Vienna" in out
    assert "SH-42" in out

    code, out, err = cli(home, capsys, "report", "verify", str(pdf))
    assert code == 0, err
    assert "intact" in out
    assert "issued by this store" in out

    # A page edited after the fact (text laid over it) is refused.
    overlay = FPDF()
    overlay.add_page()
    overlay.set_font("Helvetica", size=12)
    overlay.text(20, 250, "RELEASED")
    stamp = tmp_path / "stamp.pdf"
    overlay.output(str(stamp))
    writer = PdfWriter(clone_from=pdf)
    writer.pages[0].merge_page(PdfReader(stamp).pages[0])
    edited = tmp_path / "edited.pdf"
    with edited.open("wb") as out_file:
        writer.write(out_file)
    code, _, err = cli(home, capsys, "report", "verify", str(edited))
    assert code == 1
    assert "altered" in err

    # A stamp added as an annotation changes no extracted text, and is refused too.
    stamped = PdfWriter(clone_from=pdf)
    stamped.add_annotation(
        page_number=0, annotation=FreeText(text="RELEASED", rect=(50, 550, 200, 650))
    )
    annotated = tmp_path / "annotated.pdf"
    with annotated.open("wb") as out_file:
        stamped.write(out_file)
    code, _, err = cli(home, capsys, "report", "verify", str(annotated))
    assert code == 1
    assert "altered" in err

    # A self-consistent forgery (the data changed, re-rendered, a new checksum printed) is
    # refused: the shipment's audit trail records no report with that checksum.
    forged_document = dict(document)
    forged_document["decision"] = {**forged_document["decision"], "decision": "release"}
    forged = tmp_path / "forged.pdf"
    render_pdf(forged_document, zone_named("Europe/Berlin"), forged)
    code, _, err = cli(home, capsys, "report", "verify", str(forged))
    assert code == 1
    assert "not issued by this store" in err


def test_an_open_shipment_and_bad_options_get_one_line_answers(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = SqliteDatabase(home / "coldchain.db")
    shipments = Shipments(SqliteAuditLog(db))
    shipments.create("SH-43", "Salad", "default", "Lyon", "Paris", ["dev-1"], "ana", END)
    shipments.start("SH-43", "ana", END)
    db.close()
    code, out, err = cli(home, capsys, "report", "--shipment", "SH-43", "--format", "json")
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert any("has not ended" in w for w in warnings)
    assert json.loads(out)["decision"] is None
    for args, fragment in (
        (["report", "--shipment", "SH-9"], "no shipment 'SH-9'"),
        (["report", "--shipment", "SH-43", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["report", "--shipment", "SH-43", "dev-1"], "--shipment takes no DEVICE"),
    ):
        code, _, err = cli(home, capsys, *args)
        assert code in (1, 2)
        assert fragment in err
        assert "Traceback" not in err
    assert Decision.RELEASE.value == "release"
