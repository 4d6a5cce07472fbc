"""Desired configuration (the Device Shadow pattern): state that must survive a reconnect.

An operator sets ``desired``, the device reports ``reported``; ``delta`` is every desired field
whose value differs from the reported one. Each accepted update raises ``version``; an update
that names a version other than the current one is rejected (409), as AWS IoT's shadow does,
so two writers cannot overwrite each other unseen. A field set to ``null`` is deleted. The
local stack keeps shadows in SQLite and speaks the same messages over the local broker; on
AWS the IoT Device Shadow service does (core/topics.py maps the topic names).

Configuration fields the devices understand: ``interval_s`` (reporting interval), ``band``
(``[low, high]`` °C the device alarms on locally) and ``label``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

MAX_STATE_BYTES: Final = 8 * 1024  # AWS IoT's shadow state limit


@dataclass(frozen=True, slots=True)
class Shadow:
    device_id: str
    desired: Mapping[str, Any] = field(default_factory=dict)
    reported: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_at: datetime | None = None

    @property
    def delta(self) -> dict[str, Any]:
        return delta(self.desired, self.reported)

    def document(self) -> dict[str, Any]:
        """What ``get`` answers (and ``config show`` prints)."""
        state: dict[str, Any] = {"desired": dict(self.desired), "reported": dict(self.reported)}
        if self.delta:
            state["delta"] = self.delta
        return {
            "state": state,
            "version": self.version,
            "timestamp": None if self.updated_at is None else int(self.updated_at.timestamp()),
        }


@dataclass(frozen=True, slots=True)
class Rejected(Exception):  # noqa: N818 - the shadow service's word for it
    """An update the shadow refuses, with AWS IoT's code and message."""

    code: int
    message: str

    def document(self, client_token: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {"code": self.code, "message": self.message}
        if client_token is not None:
            found["clientToken"] = client_token
        return found


def delta(desired: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """Desired fields whose value differs from the reported one (nested objects compared
    field by field, as the shadow service does).
    """
    found: dict[str, Any] = {}
    for key, wanted in desired.items():
        have = reported.get(key)
        if isinstance(wanted, Mapping) and isinstance(have, Mapping):
            inner = delta(wanted, have)
            if inner:
                found[key] = inner
        elif wanted != have:
            found[key] = wanted
    return found


def _merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_update(payload: bytes) -> dict[str, Any]:
    """An update request's JSON object.

    Raises:
        Rejected: 400, not a JSON object with a ``state`` object.
    """
    try:
        document = json.loads(payload)
    except ValueError:
        raise Rejected(400, "Payload contains invalid json") from None
    if not isinstance(document, dict) or not isinstance(document.get("state"), dict):
        raise Rejected(400, "Missing required node: state")
    return document


def updated(shadow: Shadow, request: Mapping[str, Any], now: datetime) -> Shadow:
    """The shadow after an update request (``{"state": {"desired"|"reported": {...}},
    "version"?: N}``).

    Raises:
        Rejected: 409 on a version that is not the current one, 400 on a malformed state,
            413 when the state grows past 8 KiB.
    """
    state = request.get("state")
    if not isinstance(state, Mapping) or not set(state) <= {"desired", "reported"}:
        raise Rejected(400, "State node must contain only desired and reported")
    expected = request.get("version")
    if expected is not None and expected != shadow.version:
        raise Rejected(409, "Version conflict")
    parts = {name: state.get(name) for name in ("desired", "reported")}
    for name, value in parts.items():
        if value is not None and not isinstance(value, Mapping):
            raise Rejected(400, f"{name} node must be an object")
    desired = _merged(shadow.desired, parts["desired"] or {})
    reported = _merged(shadow.reported, parts["reported"] or {})
    if len(json.dumps({"desired": desired, "reported": reported}).encode()) > MAX_STATE_BYTES:
        raise Rejected(413, "The payload exceeds the maximum size allowed")
    return Shadow(shadow.device_id, desired, reported, shadow.version + 1, now)
