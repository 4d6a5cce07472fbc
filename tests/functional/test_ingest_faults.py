"""A failure after each step of the ingest step, then the redelivery the broker or Lambda
makes: the same readings, state, alarms and notifications as a run without the fault.

SQLite runs the step in one transaction (a failure rolls it all back); DynamoDB has no
transaction, so the order of the writes is what makes it safe: effects first, state last."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from coldchain.adapters.dynamodb import (
    DynamoAlarmStore,
    DynamoDeviceStateStore,
    DynamoEventStore,
    DynamoReadingStore,
)
from coldchain.adapters.memory import MemoryDeadLetterStore, MemoryOutbox
from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteDeviceStateStore,
    SqliteEventStore,
    SqliteOutbox,
    SqliteReadingStore,
)
from coldchain.core.alarm_profile import default_profile
from coldchain.core.ingest import Ingest
from coldchain.core.messages import Message
from coldchain.core.processing import Processor
from coldchain.core.rules import Severity
from tests.aws import create_stack, fake_credentials
from tests.factories import T0, message, payload

NOW = T0 + timedelta(days=1)
STEPS = ("reading written", "alarm saved", "notification enqueued", "state written", "timeout")
_names = itertools.count()


class InjectedError(Exception):
    """The fault: a crash, a throttled call, the Lambda's timeout."""


class Faulty:
    """Wraps a store; raises once, after the wrapped call named ``after`` completed."""

    def __init__(self, inner: Any, method: str, fault: dict[str, bool]) -> None:
        self._inner, self._method, self._fault = inner, method, fault

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self._fault["armed"]:
                self._fault["armed"] = False
                raise InjectedError(name)
            return result

        return call


@dataclass
class Run:
    ingest: Ingest
    unit: Callable[[], AbstractContextManager[Any]]
    final: Callable[[], tuple[Any, ...]]


def sqlite_run(folder: Path, step: str | None, fault: dict[str, bool]) -> Run:
    db = SqliteDatabase(folder / f"{next(_names)}.db")
    readings: Any = SqliteReadingStore(db)
    alarms: Any = SqliteAlarmStore(db)
    outbox: Any = SqliteOutbox(db, {"log": Severity.INFO})
    states: Any = SqliteDeviceStateStore(db)
    readings, alarms, outbox, states = wrap(step, fault, readings, alarms, outbox, states)
    processor = Processor(readings, SqliteDeadLetterStore(db))
    ingest = Ingest(processor, states, alarms, outbox, default_profile(), SqliteEventStore(db))

    def final() -> tuple[Any, ...]:
        rows = db.connection.execute
        return (
            rows("SELECT * FROM readings ORDER BY device_id, ts").fetchall(),
            rows("SELECT * FROM device_state").fetchall(),
            sorted(
                (replace(a, last_notified_at=None) for a in SqliteAlarmStore(db).list(limit=999)),
                key=lambda a: a.id,
            ),
            rows("SELECT notification_key FROM outbox ORDER BY 1").fetchall(),
        )

    return Run(ingest, db.transaction, final)


def dynamodb_run(folder: Path, step: str | None, fault: dict[str, bool]) -> Run:
    aws = create_stack(prefix=f"f{next(_names)}")
    readings: Any = DynamoReadingStore(
        aws.dynamodb, aws.telemetry, aws.devices, record_latest=False
    )
    alarms: Any = DynamoAlarmStore(aws.dynamodb, aws.alarms)
    memory_outbox = MemoryOutbox()
    states: Any = DynamoDeviceStateStore(aws.dynamodb, aws.devices)
    readings, alarms, outbox, states = wrap(step, fault, readings, alarms, memory_outbox, states)
    processor = Processor(readings, MemoryDeadLetterStore())
    ingest = Ingest(
        processor,
        states,
        alarms,
        outbox,
        default_profile(),
        DynamoEventStore(aws.dynamodb, aws.events),
    )
    plain_states = DynamoDeviceStateStore(aws.dynamodb, aws.devices)

    def final() -> tuple[Any, ...]:
        state = plain_states.get_many(["dev-1"]).get("dev-1")
        stored = list(
            DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices).between(
                "dev-1", "2000", "9999"
            )
        )
        return (
            stored,
            None if state is None else replace(state, version=0),
            sorted(
                (
                    replace(a, last_notified_at=None)
                    for a in DynamoAlarmStore(aws.dynamodb, aws.alarms).list(limit=999)
                ),
                key=lambda a: a.id,
            ),
            sorted(n.key for n in memory_outbox.notifications),
        )

    return Run(ingest, nullcontext, final)


def wrap(
    step: str | None, fault: dict[str, bool], readings: Any, alarms: Any, outbox: Any, states: Any
) -> tuple[Any, Any, Any, Any]:
    if step == "reading written":
        readings = Faulty(readings, "put_many", fault)
    elif step == "alarm saved":
        alarms = Faulty(alarms, "save", fault)
    elif step == "notification enqueued":
        outbox = Faulty(outbox, "enqueue", fault)
    elif step in ("state written", "timeout"):
        states = Faulty(states, "put", fault)
    return readings, alarms, outbox, states


def batches() -> list[list[Message]]:
    temperatures = [5.0, 9.0, 9.5, 10.0, 4.0, 1.0, 0.5, 5.0]
    return [
        [
            message(
                payload(
                    at=T0 + timedelta(minutes=3 * n),
                    temperature_c=t,
                    battery_pct=10.0 if n == 3 else 90.0,
                    seq=n,
                ),
                received_at=NOW,
            )
        ]
        for n, t in enumerate(temperatures)
    ]


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    fake_credentials(monkeypatch)
    with mock_aws():
        yield sqlite_run if request.param == "sqlite" else dynamodb_run


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("at", [1, 3, 4])
def test_a_fault_after_each_step_then_redelivery_changes_nothing(
    backend: Any, step: str, at: int, tmp_path: Path
) -> None:
    clean = backend(tmp_path, None, {"armed": False})
    for batch in batches():
        with clean.unit():
            clean.ingest.run(batch, NOW)

    fault = {"armed": False}
    faulty = backend(tmp_path, step, fault)
    for index, batch in enumerate(batches()):
        fault["armed"] = index == at
        try:
            with faulty.unit():
                faulty.ingest.run(batch, NOW)
        except InjectedError:
            with faulty.unit():  # the redelivery
                faulty.ingest.run(batch, NOW)
    assert faulty.final() == clean.final()
