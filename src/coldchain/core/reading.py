"""The telemetry wire format (version 1) and its validation.

A payload becomes a :class:`Reading` through :func:`decode_reading`, which checks every field
with pydantic in strict mode (a number sent as a string is an error), normalises the timestamp
to the canonical UTC form and drops a ``0,0`` GPS fix with a warning instead of rejecting the
whole reading: a good temperature is evidence worth keeping.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any, Final

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from coldchain.core.errors import Issue, ValidationError
from coldchain.core.timestamps import from_epoch_seconds, parse_iso, to_canonical
from coldchain.core.topics import DEVICE_ID_PATTERN

MAX_PAYLOAD_BYTES: Final = 16 * 1024
"""Largest payload we parse; a real reading is about 200 bytes."""

_Number = Annotated[float, Field(allow_inf_nan=False)]


def _to_datetime(value: object) -> datetime:
    """ISO 8601 with a zone, or integer Unix seconds (the original firmware's form)."""
    if isinstance(value, str):
        return parse_iso(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return from_epoch_seconds(value)
        except OverflowError:
            raise ValueError("timestamp must lie between 2000 and 2100") from None
    raise ValueError("must be an ISO 8601 string with a zone or integer Unix seconds")


class _WireReading(BaseModel):
    """The JSON object a device publishes (field names of the original firmware)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    timestamp: Annotated[datetime, BeforeValidator(_to_datetime)]
    temperature_c: Annotated[_Number, Field(ge=-40, le=85)]
    humidity_pct: Annotated[_Number, Field(ge=0, le=100)]
    shock_g: Annotated[_Number, Field(ge=0, le=200)]
    battery_pct: Annotated[_Number, Field(ge=0, le=100)]
    latitude: Annotated[_Number, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[_Number, Field(ge=-180, le=180)] | None = None
    fleet_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)] | None = None
    # Printable ASCII only: the string reaches terminals, tables and reports.
    firmware_version: Annotated[str, Field(pattern=r"^[ -~]{1,64}$")] | None = None
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated reading; ``timestamp`` is canonical UTC (``2024-01-15T09:23:41.000Z``)."""

    device_id: str
    timestamp: str
    temperature_c: float
    humidity_pct: float
    shock_g: float
    battery_pct: float
    latitude: float | None = None
    longitude: float | None = None
    fleet_id: str | None = None
    firmware_version: str | None = None
    seq: int | None = None

    @property
    def at(self) -> datetime:
        """The reading time as an aware UTC datetime."""
        return datetime.fromisoformat(self.timestamp)

    def to_wire(self) -> dict[str, Any]:
        """The wire-format object of this reading (optional fields only when present)."""
        return {
            name: value for name in READING_FIELDS if (value := getattr(self, name)) is not None
        }


READING_FIELDS: Final[tuple[str, ...]] = tuple(field.name for field in fields(Reading))
"""Reading's field names in order: the wire form, the report's CSV columns and the stores'
column and attribute lists derive from it rather than restating it.
"""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A reading that passed validation, with the warnings it earned on the way."""

    reading: Reading
    at: datetime
    warnings: tuple[str, ...] = ()


def decode_reading(payload: bytes) -> Decoded:
    """Validate a raw payload and build a :class:`Reading`.

    Raises:
        ValidationError: naming every failing field with a human reason.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            [Issue("", f"payload is {len(payload)} bytes, larger than {MAX_PAYLOAD_BYTES}")]
        )
    try:
        wire = _WireReading.model_validate_json(payload)
    except pydantic.ValidationError as exc:
        raise ValidationError(_issues_from(exc)) from None
    at = wire.timestamp
    latitude, longitude, warnings = _position(wire.latitude, wire.longitude)
    reading = Reading(
        device_id=wire.device_id,
        timestamp=to_canonical(at),
        temperature_c=float(wire.temperature_c),
        humidity_pct=float(wire.humidity_pct),
        shock_g=float(wire.shock_g),
        battery_pct=float(wire.battery_pct),
        latitude=latitude,
        longitude=longitude,
        fleet_id=wire.fleet_id,
        firmware_version=wire.firmware_version,
        seq=wire.seq,
    )
    return Decoded(reading, at, warnings)


def _position(
    latitude: float | None, longitude: float | None
) -> tuple[float | None, float | None, tuple[str, ...]]:
    if latitude is None and longitude is None:
        return None, None, ()
    if latitude is None or longitude is None:
        return None, None, ("latitude and longitude come in pairs; the lone one was dropped",)
    if latitude == 0 and longitude == 0:
        return None, None, ("0,0 means no GPS fix; the position was dropped",)
    return float(latitude), float(longitude), ()


def _issues_from(exc: pydantic.ValidationError) -> list[Issue]:
    issues: list[Issue] = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            reason = f"not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})"
        elif error["type"] == "model_type":
            reason = "payload must be a JSON object"
        else:
            reason = _human(error["msg"])
        issues.append(Issue(field, reason))
    return issues


def _human(message: str) -> str:
    replacements = {
        "Input should be a valid number": "must be a number, not a string or other type",
        "Input should be a valid string": "must be a string",
        "Input should be a valid integer": "must be an integer",
        "Field required": "is required",
        "Value error, ": "",
        "Input should be a finite number": "must be a finite number (not NaN or Infinity)",
    }
    for prefix, human in replacements.items():
        if message.startswith(prefix):
            return human or message.removeprefix(prefix)
    return message[0].lower() + message[1:] if message else message
