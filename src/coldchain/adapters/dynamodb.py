"""DynamoDB adapters (boto3 low-level client, injected): readings, device state, events.

Tables (see docs/architecture.md for the read/write cost per reading):

* telemetry: PK ``device_id`` (S), SK ``timestamp`` (S, canonical UTC, so string order is
  time order), every number an N, ``expires_at`` (N, epoch seconds) for TTL; GSI
  ``fleet-timestamp`` on ``fleet_id`` + ``timestamp``.
* devices: PK ``device_id``; the newest reading's fields, ``last_ts``, ``first_ts`` and a
  ``readings`` count, so "latest reading of every device" reads one small item per device;
  sparse KEYS_ONLY GSI ``registry-device`` (``registry``, ``device_id``) lists the devices
  without a Scan (its key never changes, so a state update writes no index entry).
* events: PK ``device_id``, SK ``event_key`` (``timestamp#kind``).

Numbers travel as DynamoDB N strings written from Python's shortest round-trip repr, so a
float read back is the float written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.adapters.clock import SystemClock
from coldchain.core.alarms import Acknowledgement, Alarm, AlarmState
from coldchain.core.device_state import DeviceState, state_document, state_from_document
from coldchain.core.errors import (
    Issue,
    NotFoundError,
    StateConflictError,
    StorageError,
    StorageUnavailableError,
    ValidationError,
)
from coldchain.core.events import Event, EventKind, event_order
from coldchain.core.messages import Outcome
from coldchain.core.reading import READING_FIELDS, Reading
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from coldchain.core.ports import Clock

Item = Mapping[str, "AttributeValueTypeDef"]

TELEMETRY_PK: Final = "device_id"
TELEMETRY_SK: Final = "timestamp"
TTL_ATTRIBUTE: Final = "expires_at"
FLEET_INDEX: Final = "fleet-timestamp"
FLEET_INDEX_PK: Final = "fleet_id"
DEVICES_PK: Final = "device_id"
DEVICES_REGISTRY_INDEX: Final = "registry-device"
DEVICES_REGISTRY_KEY: Final = "registry"
DEVICES_REGISTRY_VALUE: Final = "device"
EVENTS_PK: Final = "device_id"
EVENTS_SK: Final = "event_key"
DEFAULT_TTL_DAYS: Final = 90

_RETRYABLE: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
# A reading's attributes beyond the key, in Reading's order: strings as S, numbers as N.
_ATTRIBUTES: Final = tuple(f for f in READING_FIELDS if f not in {TELEMETRY_PK, TELEMETRY_SK})


def _n(value: float | int) -> AttributeValueTypeDef:
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": format(Decimal(repr(value)), "f")}


def storage_error(exc: ClientError | BotoCoreError, action: str) -> StorageError:
    """An SDK error as one of ours: throttling and network trouble are retryable."""
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else ""
    if isinstance(exc, BotoCoreError) or code in _RETRYABLE:
        return StorageUnavailableError(f"DynamoDB {action} failed: {exc}")
    return StorageError(f"DynamoDB {action} failed: {exc}")


@contextmanager
def translated(action: str) -> Iterator[None]:
    """DynamoDB's SDK errors as ours (see :func:`storage_error`)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise storage_error(exc, action) from exc


def pages(
    call: Callable[..., Any], request: Mapping[str, Any], action: str
) -> Iterator[Mapping[str, Any]]:
    """Every page of a Query or Scan (``call``), following ``LastEvaluatedKey``."""
    following = dict(request)
    while True:
        with translated(action):
            page: Mapping[str, Any] = call(**following)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        following["ExclusiveStartKey"] = last


def reading_item(
    reading: Reading, ttl_days: int = DEFAULT_TTL_DAYS
) -> dict[str, AttributeValueTypeDef]:
    """The telemetry item of a reading, with its TTL (reading time + ``ttl_days``)."""
    item: dict[str, AttributeValueTypeDef] = {
        TELEMETRY_PK: {"S": reading.device_id},
        TELEMETRY_SK: {"S": reading.timestamp},
        TTL_ATTRIBUTE: _n(int((reading.at + timedelta(days=ttl_days)).timestamp())),
    }
    for name in _ATTRIBUTES:
        value = getattr(reading, name)
        if value is not None:
            item[name] = {"S": value} if isinstance(value, str) else _n(value)
    return item


def item_reading(item: Item) -> Reading:
    """The reading an item holds (telemetry items and device items alike)."""

    def number(name: str) -> float | None:
        value = item.get(name)
        return None if value is None else float(value["N"])

    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    seq = item.get("seq")
    return Reading(
        device_id=str(item[TELEMETRY_PK]["S"]),
        timestamp=str(item.get(TELEMETRY_SK, item.get("last_ts", {"S": ""}))["S"]),
        temperature_c=number("temperature_c") or 0.0,
        humidity_pct=number("humidity_pct") or 0.0,
        shock_g=number("shock_g") or 0.0,
        battery_pct=number("battery_pct") or 0.0,
        latitude=number("latitude"),
        longitude=number("longitude"),
        fleet_id=text("fleet_id"),
        firmware_version=text("firmware_version"),
        seq=None if seq is None else int(seq["N"]),
    )


class DynamoReadingStore:
    """Readings in DynamoDB; see :class:`coldchain.core.ports.ReadingStore`.

    Idempotency is a conditional put (``attribute_not_exists(device_id)``, evaluated on the
    full key); on a failed condition the old item comes back with the error and decides
    duplicate or conflict without a second read.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        telemetry_table: str,
        devices_table: str,
        ttl_days: int = DEFAULT_TTL_DAYS,
        page_size: int | None = None,
        *,
        record_latest: bool = True,
    ) -> None:
        self._client = client
        self._telemetry = telemetry_table
        self._devices = devices_table
        self._ttl_days = ttl_days
        self._page: dict[str, Any] = {} if page_size is None else {"Limit": page_size}
        # False where the device state store writes the latest values with the state, in one
        # update of the devices item (the ingest step): one write instead of two.
        self._record_latest = record_latest

    def put_many(self, readings: Sequence[Reading]) -> list[tuple[Outcome, Reading | None]]:
        return [self._put(reading) for reading in readings]

    def _put(self, reading: Reading) -> tuple[Outcome, Reading | None]:
        try:
            self._client.put_item(
                TableName=self._telemetry,
                Item=reading_item(reading, self._ttl_days),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": TELEMETRY_PK},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise storage_error(exc, "put_item") from exc
            old = cast("Item | None", exc.response.get("Item"))
            existing = item_reading(old) if old else self._get(reading)
            outcome = Outcome.DUPLICATE if existing == reading else Outcome.CONFLICT
            return outcome, existing
        except BotoCoreError as exc:
            raise storage_error(exc, "put_item") from exc
        if self._record_latest:
            self._record_device(reading)
        return Outcome.STORED, None

    def _get(self, reading: Reading) -> Reading | None:
        with translated("get_item"):
            found = self._client.get_item(
                TableName=self._telemetry,
                Key={
                    TELEMETRY_PK: {"S": reading.device_id},
                    TELEMETRY_SK: {"S": reading.timestamp},
                },
                ConsistentRead=True,
            )
        item = found.get("Item")
        return item_reading(item) if item else None

    def _record_device(self, reading: Reading) -> None:
        """Count the reading and, when it is the device's newest, make it the latest state."""
        latest = reading_item(reading, self._ttl_days)
        for name in (TELEMETRY_SK, TTL_ATTRIBUTE, TELEMETRY_PK):
            latest.pop(name)
        names = {f"#a{i}": name for i, name in enumerate(latest)}
        values: dict[str, AttributeValueTypeDef] = {
            f":a{i}": value for i, value in enumerate(latest.values())
        }
        values |= {":ts": {"S": reading.timestamp}, ":one": {"N": "1"}}
        values |= {":reg": {"S": DEVICES_REGISTRY_VALUE}}
        names |= {"#reg": DEVICES_REGISTRY_KEY, "#first": "first_ts"}
        assignments = ", ".join(f"#a{i} = :a{i}" for i in range(len(latest)))
        assignments += ", #reg = :reg, #first = if_not_exists(#first, :ts)"
        removals = [f for f in _ATTRIBUTES if f not in latest]
        names |= {f"#r{i}": name for i, name in enumerate(removals)}
        update = f"SET #last = :ts{', ' + assignments if assignments else ''} ADD #count :one"
        if removals:
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removals)))
        key = {DEVICES_PK: {"S": reading.device_id}}
        try:
            self._client.update_item(
                TableName=self._devices,
                Key=key,
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#last) OR #last < :ts",
                ExpressionAttributeNames={**names, "#last": "last_ts", "#count": "readings"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise storage_error(exc, "update_item") from exc
            # A late reading: it only counts.
            try:
                self._client.update_item(
                    TableName=self._devices,
                    Key=key,
                    UpdateExpression="ADD #count :one",
                    ExpressionAttributeNames={"#count": "readings"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
            except (ClientError, BotoCoreError) as inner:
                raise storage_error(inner, "update_item") from inner
        except BotoCoreError as exc:
            raise storage_error(exc, "update_item") from exc

    def recent(self, device_id: str, until: str, limit: int) -> list[Reading]:
        with translated("query"):
            found = self._client.query(
                TableName=self._telemetry,
                KeyConditionExpression="#pk = :d AND #ts <= :until",
                ExpressionAttributeNames={"#pk": TELEMETRY_PK, "#ts": TELEMETRY_SK},
                ExpressionAttributeValues={":d": {"S": device_id}, ":until": {"S": until}},
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,
            )
        return [item_reading(item) for item in reversed(found.get("Items", []))]

    def between(self, device_id: str, start: str, end: str) -> Iterator[Reading]:
        return self._query(
            {
                "TableName": self._telemetry,
                "KeyConditionExpression": "#pk = :k AND #ts BETWEEN :start AND :end",
                "ExpressionAttributeNames": {"#pk": TELEMETRY_PK, "#ts": TELEMETRY_SK},
                "ExpressionAttributeValues": {
                    ":k": {"S": device_id},
                    ":start": {"S": start},
                    ":end": {"S": end},
                },
            }
        )

    def fleet_between(self, fleet_id: str, start: str, end: str) -> Iterator[Reading]:
        readings = self._query(
            {
                "TableName": self._telemetry,
                "IndexName": FLEET_INDEX,
                "KeyConditionExpression": "#pk = :k AND #ts BETWEEN :start AND :end",
                "ExpressionAttributeNames": {"#pk": FLEET_INDEX_PK, "#ts": TELEMETRY_SK},
                "ExpressionAttributeValues": {
                    ":k": {"S": fleet_id},
                    ":start": {"S": start},
                    ":end": {"S": end},
                },
            }
        )
        return _ties_by_device(readings)

    def _query(self, request: dict[str, Any]) -> Iterator[Reading]:
        """Every page of a query, streamed."""
        for page in pages(self._client.query, request | self._page, "query"):
            yield from (item_reading(item) for item in page.get("Items", []))

    def latest(self) -> list[Reading]:
        request: dict[str, Any] = {"TableName": self._devices, "ConsistentRead": True, **self._page}
        items = [i for page in pages(self._client.scan, request, "scan") for i in page["Items"]]
        return sorted((item_reading(item) for item in items), key=lambda r: r.device_id)


def _ties_by_device(readings: Iterator[Reading]) -> Iterator[Reading]:
    """Readings of one timestamp ordered by device id (an index keeps ties in no order)."""
    group: list[Reading] = []
    for reading in readings:
        if group and reading.timestamp != group[0].timestamp:
            yield from sorted(group, key=lambda r: r.device_id)
            group = []
        group.append(reading)
    yield from sorted(group, key=lambda r: r.device_id)


class DynamoEventStore:
    """Raised events in DynamoDB; see :class:`coldchain.core.ports.EventLog`."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            item: dict[str, AttributeValueTypeDef] = {
                EVENTS_PK: {"S": event.device_id},
                EVENTS_SK: {"S": f"{event.timestamp}#{event.kind.value}"},
                "kind": {"S": event.kind.value},
                "timestamp": {"S": event.timestamp},
                "value": _n(event.value),
                "threshold": _n(event.threshold),
                "detail": {"S": event.detail},
            }
            if event.fleet_id is not None:
                item["fleet_id"] = {"S": event.fleet_id}
            with translated("put_item"):
                self._client.put_item(TableName=self._table, Item=item)

    def list(self, device_id: str | None = None, limit: int = 1000) -> list[Event]:
        request: dict[str, Any] = {"TableName": self._table}
        if device_id is not None:
            request |= {
                "KeyConditionExpression": "#pk = :d",
                "ExpressionAttributeNames": {"#pk": EVENTS_PK},
                "ExpressionAttributeValues": {":d": {"S": device_id}},
            }
        call = self._client.query if device_id is not None else self._client.scan
        items = [i for page in pages(call, request, "read events") for i in page.get("Items", [])]
        events = [
            Event(
                EventKind(str(item["kind"]["S"])),
                str(item[EVENTS_PK]["S"]),
                str(item["fleet_id"]["S"]) if "fleet_id" in item else None,
                str(item["timestamp"]["S"]),
                float(item["value"]["N"]),
                float(item["threshold"]["N"]),
                str(item["detail"]["S"]),
            )
            for item in items
        ]
        return sorted(events, key=event_order)[:limit]


ALARMS_PK: Final = "id"
ALARMS_DEVICE_INDEX: Final = "device-started"
# Sparse: only an active alarm carries ALARMS_ACTIVE_KEY, so the sweep reads the active alarms
# (a handful) instead of scanning every alarm the fleet ever had.
ALARMS_ACTIVE_INDEX: Final = "active-started"
ALARMS_ACTIVE_KEY: Final = "active"
# Every alarm by the month it started (``YYYY-MM``): listings read the newest months first
# and stop at the limit, instead of scanning the history.
ALARMS_MONTH_INDEX: Final = "month-started"
ALARMS_MONTH_KEY: Final = "started_month"
ALARMS_MONTHS_LISTED: Final = 15  # the TTL keeps cleared alarms 90 days; active ones come too
_ALARM_STRINGS: Final = (
    "fleet_id",
    "cleared_at",
    "ack_by",
    "ack_at",
    "ack_comment",
    "last_notified_at",
)


def _alarm_item(alarm: Alarm) -> dict[str, AttributeValueTypeDef]:
    ack = alarm.acknowledgement
    texts = {
        "fleet_id": alarm.fleet_id,
        "cleared_at": None if alarm.cleared_at is None else to_canonical(alarm.cleared_at),
        "ack_by": None if ack is None else ack.by,
        "ack_at": None if ack is None else to_canonical(ack.at),
        "ack_comment": None if ack is None else ack.comment,
        "last_notified_at": None
        if alarm.last_notified_at is None
        else to_canonical(alarm.last_notified_at),
    }
    item: dict[str, AttributeValueTypeDef] = {
        ALARMS_PK: {"S": alarm.id},
        "device_id": {"S": alarm.device_id},
        "rule": {"S": alarm.rule},
        "severity": {"S": alarm.severity.value},
        "state": {"S": alarm.state.value},
        "started_at": {"S": to_canonical(alarm.started_at)},
        "raised_at": {"S": to_canonical(alarm.raised_at)},
        "peak": _n(alarm.peak),
        "out_of_range_s": _n(alarm.out_of_range.total_seconds()),
        "detail": {"S": alarm.detail},
    }
    item |= {name: {"S": value} for name, value in texts.items() if value is not None}
    item[ALARMS_MONTH_KEY] = {"S": started_month(alarm.started_at)}
    if alarm.state is AlarmState.ACTIVE:
        item[ALARMS_ACTIVE_KEY] = {"S": ALARMS_ACTIVE_KEY}
    if alarm.cleared_at is not None:  # a cleared alarm expires with the readings it is about
        expires = alarm.cleared_at + timedelta(days=DEFAULT_TTL_DAYS)
        item[TTL_ATTRIBUTE] = _n(int(expires.timestamp()))
    return item


def started_month(moment: datetime) -> str:
    """The month index key of an alarm that started at ``moment``."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def _months_back(now: datetime, count: int) -> Iterator[str]:
    year, month = now.astimezone(UTC).year, now.astimezone(UTC).month
    for _ in range(count):
        yield f"{year:04d}-{month:02d}"
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)


def _item_alarm(item: Item) -> Alarm:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    def when(name: str) -> datetime | None:
        value = text(name)
        return None if value is None else datetime.fromisoformat(value)

    ack_by = text("ack_by")
    ack = None
    if ack_by is not None:
        acked_at = when("ack_at")
        if acked_at is None:
            raise StorageError("alarm record acknowledged without ack_at")
        ack = Acknowledgement(ack_by, acked_at, text("ack_comment") or "")
    started = when("started_at")
    raised = when("raised_at")
    assert started is not None
    assert raised is not None
    return Alarm(
        id=str(item[ALARMS_PK]["S"]),
        device_id=str(item["device_id"]["S"]),
        fleet_id=text("fleet_id"),
        rule=str(item["rule"]["S"]),
        severity=Severity(str(item["severity"]["S"])),
        state=AlarmState(str(item["state"]["S"])),
        started_at=started,
        raised_at=raised,
        cleared_at=when("cleared_at"),
        peak=float(item["peak"]["N"]),
        out_of_range=timedelta(seconds=float(item["out_of_range_s"]["N"])),
        detail=str(item["detail"]["S"]),
        acknowledgement=ack,
        last_notified_at=when("last_notified_at"),
    )


class DynamoAlarmStore:
    """Alarm records in DynamoDB; see :class:`coldchain.core.ports.AlarmStore`.

    PK ``id``; GSI ``device-started`` (``device_id``, ``started_at``) for one device's alarms;
    sparse GSI ``active-started`` for the active ones (the sweep); GSI ``month-started`` for
    the fleet's alarms newest first. No listing scans.
    """

    def __init__(self, client: DynamoDBClient, table: str, clock: Clock | None = None) -> None:
        self._client = client
        self._table = table
        self._clock = clock or SystemClock()

    def get(self, alarm_id: str) -> Alarm | None:
        with translated("get_item"):
            found = self._client.get_item(
                TableName=self._table, Key={ALARMS_PK: {"S": alarm_id}}, ConsistentRead=True
            )
        item = found.get("Item")
        return None if item is None else _item_alarm(item)

    def save(self, alarms: Sequence[Alarm]) -> None:
        for alarm in alarms:
            old = self.get(alarm.id) if alarm.acknowledgement is None else None
            if old is not None:
                alarm = replace(  # noqa: PLW2901 - the merged record replaces the given one
                    alarm,
                    acknowledgement=old.acknowledgement,
                    last_notified_at=alarm.last_notified_at or old.last_notified_at,
                )
            with translated("put_item"):
                self._client.put_item(TableName=self._table, Item=_alarm_item(alarm))

    def delete(self, alarm_ids: Sequence[str]) -> None:
        for alarm_id in alarm_ids:
            with translated("delete_item"):
                self._client.delete_item(TableName=self._table, Key={ALARMS_PK: {"S": alarm_id}})

    def _all(self, request: dict[str, Any]) -> list[Alarm]:
        found = pages(self._client.query, request, "read alarms")
        return [_item_alarm(item) for page in found for item in page.get("Items", [])]

    def for_device(self, device_id: str, since: datetime) -> list[Alarm]:
        found = self._all(self._index(ALARMS_DEVICE_INDEX, "device_id", device_id))
        wanted = [
            a
            for a in found
            if a.state is AlarmState.ACTIVE or (a.cleared_at is not None and a.cleared_at >= since)
        ]
        return sorted(wanted, key=lambda a: a.started_at)

    def list(
        self,
        *,
        active: bool | None = None,
        device_id: str | None = None,
        fleet_id: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        def wanted(alarm: Alarm) -> bool:
            return (
                (active is None or (alarm.state is AlarmState.ACTIVE) == active)
                and device_id in (None, alarm.device_id)
                and fleet_id in (None, alarm.fleet_id)
            )

        if active:  # the sparse index: active alarms only
            found = self._all(self._index(ALARMS_ACTIVE_INDEX, ALARMS_ACTIVE_KEY, "active"))
        elif device_id is not None:
            found = self._all(self._index(ALARMS_DEVICE_INDEX, "device_id", device_id))
        else:  # the active ones, then month by month, newest first, until the limit
            found = self._all(self._index(ALARMS_ACTIVE_INDEX, ALARMS_ACTIVE_KEY, "active"))
            found = [a for a in found if wanted(a)]
            for month in _months_back(self._clock.now(), ALARMS_MONTHS_LISTED):
                request = self._index(ALARMS_MONTH_INDEX, ALARMS_MONTH_KEY, month)
                found += [a for a in self._all(request) if wanted(a)]
                if len(found) >= limit:
                    break
        chosen = list({a.id: a for a in found if wanted(a)}.values())
        return sorted(chosen, key=lambda a: (-a.started_at.timestamp(), a.id))[:limit]

    def _index(self, index: str, key: str, value: str) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": key},
            "ExpressionAttributeValues": {":k": {"S": value}},
            "ScanIndexForward": False,
        }

    def resolve(self, prefix: str) -> str:
        """The alarm id that is ``prefix``, or the one listed alarm whose id starts with it.

        Raises:
            NotFoundError: no alarm id starts with it.
            ValidationError: several do (they are named).
        """
        if self.get(prefix) is not None:
            return prefix
        ids = sorted(a.id for a in self.list(limit=1_000_000) if a.id.startswith(prefix))
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise NotFoundError(f"no alarm {prefix!r}")
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise ValidationError([Issue("alarm", f"{prefix!r} is ambiguous: {shown}")])


STATE_ATTRIBUTE: Final = "rule_state"
STATE_VERSION: Final = "rule_state_version"


class DynamoDeviceStateStore:
    """Device states on the devices table's items, written with a conditional update on
    their version (optimistic concurrency: two Lambdas on one device cannot overwrite each
    other; the loser gets :class:`StateConflictError`, reloads and applies again).

    The state's newest reading *is* the item's latest values: this store writes them with
    the state in one update, so pair it with ``DynamoReadingStore(record_latest=False)``.
    """

    def __init__(self, client: DynamoDBClient, devices_table: str) -> None:
        self._client = client
        self._table = devices_table

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        found: dict[str, DeviceState] = {}
        with translated("batch_get_item"):
            for start in range(0, len(device_ids), 100):
                keys: list[Any] = [{DEVICES_PK: {"S": d}} for d in device_ids[start : start + 100]]
                request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
                while request:
                    answer = self._client.batch_get_item(RequestItems=request)
                    for item in answer["Responses"].get(self._table, []):
                        if STATE_ATTRIBUTE in item:
                            state = _item_state(item)
                            found[state.device_id] = state
                    request = cast("dict[str, Any]", answer.get("UnprocessedKeys") or {})
        return found

    def put(self, state: DeviceState, expected_version: int) -> None:
        """One update of the devices item: the state and, from its newest reading, the latest
        values and ``last_ts`` that ``DynamoReadingStore.latest`` reads.
        """
        document = state_document(state)
        document.pop("last")  # the latest values are attributes of the same item
        condition = "attribute_not_exists(#v)" if expected_version == 0 else "#v = :expected"
        names = {"#s": STATE_ATTRIBUTE, "#v": STATE_VERSION}
        values: dict[str, AttributeValueTypeDef] = {
            ":doc": {"S": json.dumps(document, separators=(",", ":"))},
            ":next": {"N": str(expected_version + 1)},
        }
        if expected_version:
            values[":expected"] = {"N": str(expected_version)}
        assignments = ["#s = :doc", "#v = :next", "#reg = :reg"]
        names["#reg"] = DEVICES_REGISTRY_KEY
        values[":reg"] = {"S": DEVICES_REGISTRY_VALUE}
        if state.readings:
            names["#count"], values[":count"] = "readings", {"N": str(state.readings)}
            assignments.append("#count = :count")
        if state.first is not None:
            names["#first"], values[":first"] = "first_ts", {"S": state.first}
            assignments.append("#first = :first")
        removals: list[str] = []
        if state.last is not None:
            latest = reading_item(state.last)
            for name in (TELEMETRY_SK, TTL_ATTRIBUTE, TELEMETRY_PK):
                latest.pop(name)
            latest["last_ts"] = {"S": state.last.timestamp}
            for index, (name, value) in enumerate(latest.items()):
                names[f"#a{index}"], values[f":a{index}"] = name, value
                assignments.append(f"#a{index} = :a{index}")
            absent = [f for f in _ATTRIBUTES if f not in latest]
            for index, name in enumerate(absent):
                names[f"#r{index}"] = name
                removals.append(f"#r{index}")
        update = "SET " + ", ".join(assignments)
        if removals:
            update += " REMOVE " + ", ".join(removals)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={DEVICES_PK: {"S": state.device_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateConflictError(
                    f"{state.device_id}: state changed since it was read"
                ) from exc
            raise storage_error(exc, "update_item") from exc
        except BotoCoreError as exc:
            raise storage_error(exc, "update_item") from exc

    def all(self) -> Iterator[DeviceState]:
        for page in pages(self._client.scan, {"TableName": self._table}, "scan"):
            for item in page.get("Items", []):
                if STATE_ATTRIBUTE in item:
                    yield _item_state(item)


def _item_state(item: Item) -> DeviceState:
    """A state from its devices item: the document, and the latest values beside it."""
    document = json.loads(item[STATE_ATTRIBUTE]["S"])
    document["last"] = None
    state = state_from_document(document, int(item[STATE_VERSION]["N"]))
    if "last_ts" not in item:
        return state
    return replace(state, last=item_reading(item))
