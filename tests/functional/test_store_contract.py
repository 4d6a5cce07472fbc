"""One contract for every reading store, dead-letter store and event log.

The in-memory fakes and the SQLite adapters run the same tests, so a fake can stand in
for the real thing in unit tests without lying.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from coldchain.adapters.dynamodb import DynamoEventStore, DynamoReadingStore
from coldchain.adapters.memory import MemoryDeadLetterStore, MemoryEventSink, MemoryReadingStore
from coldchain.adapters.sqlite import (
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteEventStore,
    SqliteReadingStore,
)
from coldchain.adapters.sqlite.readings import READING_COLUMNS
from coldchain.core.events import Event, EventKind
from coldchain.core.messages import (
    KEPT_PAYLOAD_BYTES,
    DeadLetter,
    DeadLetterKind,
    DeadLetterPolicy,
    Outcome,
    payload_sha256,
)
from coldchain.core.ports import DeadLetterStore, EventLog, ReadingStore
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical
from tests.aws import mocked_aws
from tests.factories import T0

Stores = tuple[ReadingStore, DeadLetterStore, EventLog]


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "memory":
        yield MemoryReadingStore(), MemoryDeadLetterStore(), MemoryEventSink()
        return
    if request.param == "dynamodb":
        # DynamoDB has no dead-letter store (dead letters go to SQS): the memory one stands in.
        # Pages of 3 items make every query here cross pages.
        with mocked_aws() as aws:
            yield (
                DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices, page_size=3),
                MemoryDeadLetterStore(),
                DynamoEventStore(aws.dynamodb, aws.events),
            )
        return
    db = SqliteDatabase(tmp_path / "store.db")
    yield SqliteReadingStore(db), SqliteDeadLetterStore(db), SqliteEventStore(db)
    db.close()


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def reading(device: str = "dev-1", seconds: int = 0, **fields: object) -> Reading:
    base = Reading(
        device,
        to_canonical(T0 + timedelta(seconds=seconds)),
        4.0,
        60.0,
        0.02,
        90.0,
        latitude=52.5,
        longitude=13.4,
        fleet_id="fleet-a",
        firmware_version="2.1.4",
        seq=seconds,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_put_reports_stored_duplicate_and_conflict(stores: Stores) -> None:
    store = stores[0]
    original = reading()
    outcomes = store.put_many([original, original, replace(original, temperature_c=5.5)])
    assert outcomes == [
        (Outcome.STORED, None),
        (Outcome.DUPLICATE, original),
        (Outcome.CONFLICT, original),
    ]


def test_readings_round_trip_exactly(stores: Stores) -> None:
    store = stores[0]
    sparse = reading(
        seconds=10,
        latitude=None,
        longitude=None,
        fleet_id=None,
        seq=None,
        firmware_version=None,
        temperature_c=-0.1,
    )
    store.put_many([reading(), sparse])
    assert list(store.between("dev-1", reading().timestamp, sparse.timestamp)) == [
        reading(),
        sparse,
    ]


def test_one_device_between_two_times_in_order_inclusive(stores: Stores) -> None:
    store = stores[0]
    store.put_many([reading(seconds=s) for s in (30, 0, 20, 10, 40)])
    store.put_many([reading("dev-2", seconds=15)])
    found = list(
        store.between("dev-1", reading(seconds=10).timestamp, reading(seconds=30).timestamp)
    )
    assert [r.seq for r in found] == [10, 20, 30]


def test_fleet_between_two_times(stores: Stores) -> None:
    store = stores[0]
    store.put_many(
        [reading("a", 0), reading("b", 5), reading("c", 7, fleet_id="other"), reading("a", 10)]
    )
    found = list(
        store.fleet_between("fleet-a", reading(seconds=0).timestamp, reading(seconds=9).timestamp)
    )
    assert [(r.device_id, r.seq) for r in found] == [("a", 0), ("b", 5)]


def test_latest_reading_per_device_even_when_late_ones_arrive(stores: Stores) -> None:
    store = stores[0]
    store.put_many([reading("b", 50), reading("a", 10)])
    store.put_many([reading("a", 5), reading("b", 60), reading("a", 1)])
    assert [(r.device_id, r.seq) for r in store.latest()] == [("a", 10), ("b", 60)]


def test_recent_returns_the_last_n_at_or_before_a_time(stores: Stores) -> None:
    store = stores[0]
    store.put_many([reading(seconds=s) for s in range(0, 100, 10)])
    found = store.recent("dev-1", reading(seconds=55).timestamp, 3)
    assert [r.seq for r in found] == [30, 40, 50]
    assert store.recent("dev-1", reading(seconds=40).timestamp, 2)[-1].seq == 40
    assert store.recent("nobody", reading(seconds=40).timestamp, 2) == []


def test_dead_letters_keep_bytes_reason_and_count_attempts(stores: Stores) -> None:
    letters = stores[1]
    bad = DeadLetter(
        DeadLetterKind.REJECTED, "dt/coldchain/x/telemetry", b"\x00\xff", T0, "not JSON"
    )
    other = replace(bad, payload=b"{}", reason="missing fields")
    letters.put_many([bad, other])
    letters.put_many([replace(bad, reason="still not JSON")])
    assert letters.count() == 2
    newest, oldest = letters.list()
    assert newest.letter == other
    assert oldest.letter.payload == b"\x00\xff"
    assert oldest.letter.reason == "still not JSON"
    assert oldest.attempts == 2
    assert oldest.letter.received_at == T0


@pytest.fixture(params=["memory", "sqlite"])
def bounded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterStore]:
    """Dead-letter stores with a quota of 3 letters per device and a one-day retention."""
    policy = DeadLetterPolicy(quota_per_device=3, retention=timedelta(days=1))
    if request.param == "memory":
        yield MemoryDeadLetterStore(policy)
        return
    db = SqliteDatabase(tmp_path / "store.db")
    yield SqliteDeadLetterStore(db, policy)
    db.close()


def letter(device: str, n: int, payload: bytes | None = None) -> DeadLetter:
    return DeadLetter(
        DeadLetterKind.REJECTED,
        f"dt/coldchain/{device}/telemetry",
        payload if payload is not None else f"bad {n}".encode(),
        T0 + timedelta(seconds=n),
        "not valid JSON",
    )


def test_a_dead_letter_keeps_4_kib_of_its_payload_with_size_and_digest(
    bounded: DeadLetterStore,
) -> None:
    big = bytes(range(256)) * 400  # 102,400 bytes
    bounded.put_many([letter("dev-1", 0, big), letter("dev-1", 1, big[:-1])])
    newest, oldest = bounded.list()
    assert len(oldest.letter.payload) == KEPT_PAYLOAD_BYTES
    assert oldest.letter.payload == big[:KEPT_PAYLOAD_BYTES]
    assert (oldest.size, oldest.sha256, oldest.truncated) == (len(big), payload_sha256(big), True)
    assert newest.sha256 == payload_sha256(big[:-1])  # same first 4 KiB, a different letter
    bounded.put_many([letter("dev-1", 0, big)])
    assert bounded.count() == 2
    assert bounded.list()[1].attempts == 2


def test_one_device_stops_at_its_quota_and_the_drops_are_counted(
    bounded: DeadLetterStore,
) -> None:
    bounded.put_many([letter("noisy", n) for n in range(10)])
    bounded.put_many([letter("quiet", 0)])
    bounded.put_many([letter("noisy", 0)])  # a repeat of a kept letter still counts attempts
    assert bounded.count() == 4
    assert {kept.letter.topic for kept in bounded.list()} == {
        "dt/coldchain/noisy/telemetry",
        "dt/coldchain/quiet/telemetry",
    }
    [noisy] = bounded.dropped()
    assert (noisy.device_id, noisy.over_quota, noisy.expired) == ("noisy", 7, 0)
    assert max(kept.attempts for kept in bounded.list()) == 2


def test_letters_past_the_retention_expire_and_are_counted(bounded: DeadLetterStore) -> None:
    bounded.put_many([letter("dev-1", 0), letter("dev-2", 1), letter("dev-2", 100_000)])
    assert bounded.expire(T0 + timedelta(days=1, seconds=50)) == 2
    assert bounded.count() == 1
    counts = {d.device_id: (d.over_quota, d.expired) for d in bounded.dropped()}
    assert counts == {"dev-1": (0, 1), "dev-2": (0, 1)}
    bounded.put_many([letter("dev-1", 5)])  # room again under the quota
    assert bounded.count() == 2


def test_events_are_listed_in_order_and_by_device(stores: Stores) -> None:
    events = stores[2]
    raised = [
        Event(EventKind.SHOCK, "a", "fleet-a", reading().timestamp, 3.0, 2.0, "shock"),
        Event(EventKind.BATTERY_LOW, "b", None, reading().timestamp, 10.0, 15.0, "battery"),
    ]
    events.publish(raised)
    assert events.list() == raised
    assert events.list(device_id="b") == raised[1:]


def test_a_range_streams_in_order_across_pages(stores: Stores) -> None:
    store = stores[0]
    many = [reading(seconds=s) for s in range(0, 50)]
    store.put_many(list(reversed(many)))
    assert list(store.between("dev-1", many[0].timestamp, many[-1].timestamp)) == many


def test_the_readings_table_has_a_column_for_every_field_of_reading(tmp_path: Path) -> None:
    """The SQLite column lists derive from Reading: a new field needs a migration too."""
    db = SqliteDatabase(tmp_path / "store.db")
    try:
        columns = {row[1] for row in db.connection.execute("PRAGMA table_info(readings)")}
    finally:
        db.close()
    assert columns == set(READING_COLUMNS)
