"""Builders of test payloads and readings, shared by every tier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from coldchain.core.messages import Message
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic

T0 = datetime(2024, 1, 15, 9, 0, 0, tzinfo=UTC)


def payload(device_id: str = "dev-1", at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """A valid wire-format reading; keyword arguments override or add fields (None removes)."""
    body: dict[str, Any] = {
        "device_id": device_id,
        "timestamp": to_canonical(at),
        "temperature_c": 4.0,
        "humidity_pct": 60.0,
        "shock_g": 0.02,
        "battery_pct": 90.0,
        "fleet_id": "fleet-a",
        "firmware_version": "2.1.4",
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def message(
    body: dict[str, Any] | bytes,
    topic_device: str | None = None,
    received_at: datetime | None = None,
) -> Message:
    """A message on the telemetry topic of ``topic_device`` (default: the payload's device)."""
    if isinstance(body, bytes):
        raw, device = body, topic_device or "dev-1"
    else:
        raw, device = json.dumps(body).encode(), topic_device or str(body["device_id"])
    if received_at is None:
        received_at = T0 + timedelta(minutes=1)
    return Message(telemetry_topic(device), raw, received_at)


def series(
    device_id: str,
    temperatures: list[float],
    start: datetime = T0,
    step_s: float = 10,
    **fields: Any,
) -> list[Message]:
    """Messages with the given temperatures, ``step_s`` apart, each arriving just after."""
    out = []
    for index, temperature in enumerate(temperatures):
        at = start + timedelta(seconds=index * step_s)
        body = payload(device_id, at, temperature_c=temperature, seq=index, **fields)
        out.append(message(body, received_at=at + timedelta(seconds=1)))
    return out
