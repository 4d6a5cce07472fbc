"""The inputs of the cost model (:mod:`coldchain.cost.model`), as typed values: prices, each
with its unit, date and source, and the figures measured on moto by
``python -m benchmarks.aws_cost_inputs``. Pure: documents in, values out (reading the files is
:mod:`coldchain.cost.data`); also the DynamoDB item-size rules, which the benchmark measures
with and the model bills by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

ITEM_OVERHEAD_BYTES: Final = 100  # DynamoDB storage: per item, and per index entry
WRITE_UNIT_BYTES: Final = 1024
READ_UNIT_BYTES: Final = 4096


class CostInputError(ValueError):
    """A prices or measured-figures document is missing something or malformed."""


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Price:
    """``usd`` for ``per`` units of ``unit``, with where it comes from."""

    key: str
    usd: float
    per: float
    unit: str
    source: str
    date: str
    verified: bool

    @property
    def each(self) -> float:
        """Dollars for one unit."""
        return self.usd / self.per


@dataclass(frozen=True, slots=True)
class Prices:
    region: str
    date: str
    items: Mapping[str, Price]

    def __getitem__(self, key: str) -> Price:
        try:
            return self.items[key]
        except KeyError:
            raise CostInputError(f"prices: no price named {key!r}") from None

    def unverified(self) -> list[str]:
        return sorted(key for key, price in self.items.items() if not price.verified)


def prices_from_mapping(document: Mapping[str, Any]) -> Prices:
    """The prices of a parsed ``aws_prices.json``.

    Raises:
        CostInputError: a price without its amount, unit, date or source.
    """
    items: dict[str, Price] = {}
    for key, entry in _mapping(document, "prices").items():
        try:
            price = Price(
                key=key,
                usd=float(entry["usd"]),
                per=float(entry["per"]),
                unit=str(entry["unit"]),
                source=str(entry["source"]),
                date=str(entry["date"]),
                verified=bool(entry["verified"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CostInputError(f"prices: {key}: missing or bad {exc}") from None
        if price.per <= 0 or price.usd < 0 or not price.source.strip() or not price.date:
            raise CostInputError(f"prices: {key}: needs usd >= 0, per > 0, a date and a source")
        items[key] = price
    return Prices(str(document.get("region", "")), str(document.get("date", "")), items)


# ---------------------------------------------------------------------------------------------
# Measured figures
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Linear:
    """A per-invocation figure: ``fixed + per_message * messages + per_reading * readings``.

    The IoT-rule handler gets one message an invocation, so its ``per_message`` is folded
    into ``fixed``; the Kinesis handler gets a batch of records (messages).
    """

    fixed: float = 0.0
    per_message: float = 0.0
    per_reading: float = 0.0

    def at(self, messages: float, readings: float) -> float:
        return self.fixed + self.per_message * messages + self.per_reading * readings


@dataclass(frozen=True, slots=True)
class HandlerFigures:
    """One processor handler on moto, per invocation."""

    wall_ms: Linear  # the whole invocation, moto in-process
    own_ms: Linear  # outside the AWS SDK calls (our code, Powertools)
    calls: Linear  # AWS API calls
    log_bytes: Linear  # written to stdout: log lines and the EMF document
    log_events: Linear  # lines, each a CloudWatch Logs event
    telemetry_puts: Linear  # PutItem on the readings table
    state_writes: Linear  # UpdateItem on the devices table
    state_reads: Linear  # device items read (strongly consistent)


@dataclass(frozen=True, slots=True)
class SweepFigures:
    """The every-minute sweeper on moto, per invocation (``per_reading`` unused: per device)."""

    wall_ms: Linear  # fixed + per_message * devices
    own_ms: Linear
    calls: Linear
    log_bytes: Linear
    log_events: Linear
    read_bytes: Linear  # DynamoDB bytes read (each page rounded up to 4 KB by the model)
    consistent: bool


@dataclass(frozen=True, slots=True)
class Measured:
    """What ``python -m benchmarks.aws_cost_inputs`` measured, and how."""

    date: str
    command: str
    machine: str
    method: str
    reading_bytes: float  # one reading as its own message (the simulator's JSON)
    batch_base_bytes: float  # {"device_id": ..., "readings": []}
    batch_reading_bytes: float  # each reading inside a batch
    topic_bytes: float
    basic_ingest_topic_bytes: float
    rule_output_base_bytes: float  # the rule's output without the base64 payload
    telemetry_item_bytes: float  # DynamoDB item size of one reading
    table_key_bytes: float  # its device_id and timestamp attributes
    fleet_key_bytes: float  # its fleet_id attribute
    device_item_bytes: float  # one device's state item
    reading_log_line: str  # a sample of the per-reading log line
    log_compression: float  # gzip size / raw size of the logs measured
    iot: HandlerFigures
    kinesis: HandlerFigures
    sweep: SweepFigures

    @property
    def reading_log_bytes(self) -> int:
        return len(self.reading_log_line.encode()) + 1  # the newline


def measured_from_mapping(document: Mapping[str, Any]) -> Measured:
    """The figures of a parsed ``aws_cost_inputs.json``.

    Raises:
        CostInputError: a figure is missing or not a number.
    """
    try:
        payload = _mapping(document, "payload")
        dynamodb = _mapping(document, "dynamodb")
        logs = _mapping(document, "logs")
        handlers = _mapping(document, "handlers")
        sweep = _mapping(document, "sweep")
        return Measured(
            date=str(document["date"]),
            command=str(document["command"]),
            machine=str(document["machine"]),
            method=str(document["method"]),
            reading_bytes=float(payload["reading_bytes"]),
            batch_base_bytes=float(payload["batch_base_bytes"]),
            batch_reading_bytes=float(payload["batch_reading_bytes"]),
            topic_bytes=float(payload["topic_bytes"]),
            basic_ingest_topic_bytes=float(payload["basic_ingest_topic_bytes"]),
            rule_output_base_bytes=float(payload["rule_output_base_bytes"]),
            telemetry_item_bytes=float(dynamodb["telemetry_item_bytes"]),
            table_key_bytes=float(dynamodb["table_key_bytes"]),
            fleet_key_bytes=float(dynamodb["fleet_key_bytes"]),
            device_item_bytes=float(dynamodb["device_item_bytes"]),
            reading_log_line=str(logs["reading_log_line"]),
            log_compression=float(logs["compression"]),
            iot=_handler(_mapping(handlers, "iot")),
            kinesis=_handler(_mapping(handlers, "kinesis")),
            sweep=SweepFigures(
                wall_ms=_linear(sweep["wall_ms"]),
                own_ms=_linear(sweep["own_ms"]),
                calls=_linear(sweep["calls"]),
                log_bytes=_linear(sweep["log_bytes"]),
                log_events=_linear(sweep["log_events"]),
                read_bytes=_linear(sweep["read_bytes"]),
                consistent=bool(sweep["consistent"]),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CostInputError(f"measured figures: missing or bad {exc}") from None


def linear_mapping(value: Linear) -> dict[str, float]:
    return {
        "fixed": value.fixed,
        "per_message": value.per_message,
        "per_reading": value.per_reading,
    }


def _handler(document: Mapping[str, Any]) -> HandlerFigures:
    return HandlerFigures(**{f.name: _linear(document[f.name]) for f in fields(HandlerFigures)})


def _linear(document: Mapping[str, Any]) -> Linear:
    return Linear(
        float(document.get("fixed", 0.0)),
        float(document.get("per_message", 0.0)),
        float(document.get("per_reading", 0.0)),
    )


def _mapping(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key)
    if not isinstance(value, Mapping):
        raise CostInputError(f"{key}: missing or not an object")
    return value


# ---------------------------------------------------------------------------------------------
# DynamoDB item sizes
# ---------------------------------------------------------------------------------------------
def item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB counts it for capacity units (low-level attribute values):
    each attribute's name in UTF-8 plus its value (strings in UTF-8; numbers about one byte
    per two significant digits plus one; maps and lists 3 bytes plus 1 per element). The
    100 bytes of storage overhead are not included (:data:`ITEM_OVERHEAD_BYTES`).
    """
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def write_units(size: float) -> int:
    """Write units of one write of an item of ``size`` bytes (1 KB each, at least 1)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: float, *, consistent: bool = True) -> float:
    """Read units of one read of ``size`` bytes (4 KB each; half for eventual consistency)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units / 2


def _value_bytes(value: Mapping[str, Any]) -> int:
    kind, inner = next(iter(value.items()))
    try:
        return _SIZES[kind](inner)
    except KeyError:
        raise ValueError(f"unknown DynamoDB type {kind!r}") from None


def _number_bytes(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1 + text.startswith("-")


_SIZES: Final[dict[str, Callable[[Any], int]]] = {
    "S": lambda v: len(str(v).encode()),
    "N": lambda v: _number_bytes(str(v)),
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "M": lambda v: 3 + sum(len(k.encode()) + _value_bytes(x) + 1 for k, x in v.items()),
    "L": lambda v: 3 + sum(_value_bytes(x) + 1 for x in v),
    "SS": lambda v: sum(len(str(x).encode()) for x in v),
    "NS": lambda v: sum(_number_bytes(str(x)) for x in v),
    "BS": lambda v: sum(len(x) for x in v),
}
