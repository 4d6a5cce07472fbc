"""Shipments and the audit trail, the same contract on memory, SQLite and DynamoDB (moto):
the lifecycle, one device on one active shipment, decisions corrected by new records, and a
log that only grows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from coldchain.adapters.dynamodb import DynamoAlarmStore
from coldchain.adapters.dynamodb_audit import DynamoAuditLog
from coldchain.adapters.memory import MemoryAlarmStore, MemoryAuditLog
from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteAuditLog, SqliteDatabase
from coldchain.core.alarms import Alarm, AlarmState, acknowledge_alarm, alarm_id, alarm_subject
from coldchain.core.audit import AuditRecord
from coldchain.core.errors import NotFoundError, StateConflictError, StorageError, ValidationError
from coldchain.core.rules import Severity
from coldchain.core.shipments import Decision, Shipments, ShipmentStatus
from tests.aws import create_stack, fake_credentials
from tests.factories import T0


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def log(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryAuditLog()
    elif request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "audit.db")
        yield SqliteAuditLog(db)
        db.close()
    else:
        fake_credentials(monkeypatch)
        with mock_aws():
            stack = create_stack()
            yield DynamoAuditLog(stack.dynamodb, stack.audit)


def create(shipments: Shipments, shipment_id: str, devices: list[str]) -> None:
    shipments.create(
        shipment_id,
        "Vaccine X, 40 cartons",
        "pharma-2-8",
        "Hamburg",
        "Vienna",
        devices,
        "ana",
        T0,
        planned_start=T0 + timedelta(hours=1),
        planned_end=T0 + timedelta(days=2),
    )


def test_lifecycle_and_decision_corrected_by_a_new_record(log: Any) -> None:
    shipments = Shipments(log)
    create(shipments, "SH-1", ["dev-1", "dev-2"])
    assert shipments.get("SH-1").status is ShipmentStatus.PLANNED
    shipments.start("SH-1", "ana", T0 + timedelta(hours=1))
    with pytest.raises(ValidationError, match="is active: end it first"):
        shipments.decide("SH-1", Decision.RELEASE, "fine", "qa-bob", T0 + timedelta(hours=2))
    shipments.end("SH-1", "ana", T0 + timedelta(days=2))
    shipment = shipments.decide(
        "SH-1", Decision.RELEASE, "no excursion", "qa-bob", T0 + timedelta(days=2, hours=1)
    )
    assert shipment.decision is not None
    assert (shipment.decision.decision, shipment.decision.meaning) == (
        Decision.RELEASE,
        "reviewed and released",
    )
    corrected = shipments.decide(
        "SH-1",
        Decision.QUARANTINE,
        "logger 2 data missing",
        "qa-carol",
        T0 + timedelta(days=2, hours=2),
    )
    assert corrected.decision is not None
    assert corrected.decision.decision is Decision.QUARANTINE
    assert corrected.decision.corrects == shipment.decision.seq
    history = shipments.history("SH-1")
    assert [(r.seq, r.action, r.by) for r in history] == [
        (1, "created", "ana"),
        (2, "started", "ana"),
        (3, "ended", "ana"),
        (4, "decided", "qa-bob"),
        (5, "decided", "qa-carol"),
    ]
    assert history[3].reason == "no excursion"  # the first decision is kept, not overwritten
    assert [r.action for r in log.recent(2)] == ["decided", "decided"]
    assert log.recent(1)[0].by == "qa-carol"


def test_a_device_is_on_at_most_one_active_shipment(log: Any) -> None:
    shipments = Shipments(log)
    create(shipments, "SH-1", ["dev-1"])
    create(shipments, "SH-2", ["dev-2", "dev-1"])
    shipments.start("SH-1", "ana", T0 + timedelta(hours=1))
    with pytest.raises(ValidationError, match="dev-1 is on active shipment SH-1"):
        shipments.start("SH-2", "ana", T0 + timedelta(hours=2))
    assert shipments.get("SH-2").status is ShipmentStatus.PLANNED
    shipments.end("SH-1", "ana", T0 + timedelta(hours=3))
    shipments.start("SH-2", "ana", T0 + timedelta(hours=4))
    assert [s.id for s in shipments.all(ShipmentStatus.ACTIVE)] == ["SH-2"]
    assert shipments.for_device("dev-1", T0 + timedelta(hours=2)).id == "SH-1"  # type: ignore[union-attr]
    assert shipments.for_device("dev-1", T0 + timedelta(hours=5)).id == "SH-2"  # type: ignore[union-attr]
    assert shipments.for_device("dev-1", T0) is None


def test_bad_input_is_refused_with_every_reason(log: Any) -> None:
    shipments = Shipments(log)
    with pytest.raises(ValidationError, match="id:"):
        shipments.create("SH-1\n", "p", "p", "A", "B", ["dev-1"], "ana", T0)
    with pytest.raises(ValidationError) as refused:
        shipments.create("bad id!", " ", "p", "A", "", [], "ana", T0)
    text = str(refused.value)
    for fragment in ("id:", "product: is required", "destination: is required", "devices:"):
        assert fragment in text
    create(shipments, "SH-1", ["dev-1"])
    with pytest.raises(ValidationError, match="exists"):
        create(shipments, "SH-1", ["dev-1"])
    with pytest.raises(NotFoundError):
        shipments.start("SH-9", "ana", T0)
    assert [s.id for s in shipments.all()] == ["SH-1"]


def test_the_log_appends_only(log: Any) -> None:
    record = AuditRecord("alarm/abc", 1, "acknowledged", "ana", T0, "moved", {"n": 1})
    log.append(record)
    with pytest.raises(StateConflictError):
        log.append(AuditRecord("alarm/abc", 1, "acknowledged", "bob", T0, "again"))
    log.append(AuditRecord("alarm/abc", 2, "acknowledged", "bob", T0, "again"))
    assert [r.by for r in log.history("alarm/abc")] == ["ana", "bob"]
    assert log.history("alarm/abc")[0] == record


def test_sqlite_refuses_to_rewrite_history(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "audit.db")
    SqliteAuditLog(db).append(AuditRecord("alarm/abc", 1, "acknowledged", "ana", T0, "why"))
    for statement in (
        "UPDATE audit_log SET document = '{}'",
        "DELETE FROM audit_log",
        # REPLACE deletes without firing the delete trigger: refused by its own trigger.
        "INSERT OR REPLACE INTO audit_log (id, subject, seq, at, document) "
        "SELECT id, subject, seq, at, '{}' FROM audit_log",
        "INSERT OR REPLACE INTO audit_log (subject, seq, at, document) "
        "VALUES ('alarm/abc', 1, '2024', '{}')",
    ):
        with pytest.raises(Exception, match="append-only"):
            db.connection.execute(statement)
    assert SqliteAuditLog(db).history("alarm/abc")[0].reason == "why"
    db.close()
    assert issubclass(StateConflictError, StorageError)


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def alarm_stores(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any]]:
    """An alarm store and an audit log of one kind."""
    if request.param == "memory":
        yield MemoryAlarmStore(), MemoryAuditLog()
    elif request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "alarms.db")
        yield SqliteAlarmStore(db), SqliteAuditLog(db)
        db.close()
    else:
        fake_credentials(monkeypatch)
        with mock_aws():
            stack = create_stack()
            yield (
                DynamoAlarmStore(stack.dynamodb, stack.alarms),
                DynamoAuditLog(stack.dynamodb, stack.audit),
            )


def test_a_second_acknowledgement_is_kept_beside_the_first(alarm_stores: Any) -> None:
    alarms, audit = alarm_stores
    alarm = Alarm(
        alarm_id("dev-1", "Freezing", T0),
        "dev-1",
        "f",
        "Freezing",
        Severity.CRITICAL,
        AlarmState.ACTIVE,
        T0,
        T0,
        None,
        -1.5,
        timedelta(minutes=2),
        "temperature_c < 0 °C for 2 consecutive readings",
    )
    alarms.save([alarm])
    first, record = acknowledge_alarm(alarms, audit, alarm.id, "ana", "moved", T0)
    second, again = acknowledge_alarm(alarms, audit, alarm.id, "bob", "checked", T0)
    assert (record.seq, again.seq) == (1, 2)
    stored = alarms.get(alarm.id)
    assert stored.acknowledgement.by == "ana"  # the first is never overwritten
    assert stored.acknowledgement.comment == "moved"
    assert second == first
    trail = audit.history(alarm_subject(alarm.id))
    assert [(r.by, r.reason, r.action) for r in trail] == [
        ("ana", "moved", "acknowledged"),
        ("bob", "checked", "acknowledged"),
    ]
    with pytest.raises(ValidationError):
        acknowledge_alarm(alarms, audit, alarm.id, "carol", "  ", T0)
    assert len(audit.history(alarm_subject(alarm.id))) == 2
