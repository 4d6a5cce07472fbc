"""Shipments: a load of a product, with its alarm profile, travelling from an origin to a
destination with one or more devices, started, ended, and then released, quarantined or
rejected by QA.

A shipment is not a row updated in place: it is the fold of its audit records (created,
started, ended, decided, ...), so its history is its audit trail by construction. A decision
made in error is corrected by a new decision that names the one it replaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from coldchain.core.audit import AuditLog, AuditRecord, next_record
from coldchain.core.errors import Issue, NotFoundError, ValidationError
from coldchain.core.timestamps import parse_iso, to_canonical

SUBJECT_PREFIX: Final = "shipment/"
SHIPMENT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ShipmentStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    ENDED = "ended"


class Decision(StrEnum):
    RELEASE = "release"
    QUARANTINE = "quarantine"
    REJECT = "reject"


MEANINGS: Final = {
    Decision.RELEASE: "reviewed and released",
    Decision.QUARANTINE: "reviewed and quarantined pending investigation",
    Decision.REJECT: "reviewed and rejected",
}


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """QA's signed decision on an ended shipment."""

    decision: Decision
    reason: str
    meaning: str  # what the signature means, e.g. "reviewed and released"
    by: str
    at: datetime
    seq: int  # the audit record that holds it
    corrects: int | None = None


@dataclass(frozen=True, slots=True)
class Shipment:
    id: str
    product: str
    profile: str  # the alarm profile's name
    origin: str
    destination: str
    devices: tuple[str, ...]
    planned_start: datetime | None
    planned_end: datetime | None
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    decision: ReleaseDecision | None = None

    @property
    def status(self) -> ShipmentStatus:
        if self.ended_at is not None:
            return ShipmentStatus.ENDED
        if self.started_at is not None:
            return ShipmentStatus.ACTIVE
        return ShipmentStatus.PLANNED

    def covers(self, device_id: str, at: datetime) -> bool:
        """Whether a reading of ``device_id`` at ``at`` belongs to this shipment."""
        if device_id not in self.devices or self.started_at is None:
            return False
        return self.started_at <= at and (self.ended_at is None or at <= self.ended_at)


def subject(shipment_id: str) -> str:
    return f"{SUBJECT_PREFIX}{shipment_id}"


def _time(value: object) -> datetime | None:
    return None if value is None else parse_iso(str(value))


def fold(records: Iterable[AuditRecord]) -> Shipment | None:
    """The shipment its records describe (None before it was created)."""
    shipment: Shipment | None = None
    for record in records:
        data = record.data
        if record.action == "created":
            shipment = Shipment(
                id=str(data["id"]),
                product=str(data["product"]),
                profile=str(data["profile"]),
                origin=str(data["origin"]),
                destination=str(data["destination"]),
                devices=tuple(str(d) for d in data["devices"]),
                planned_start=_time(data.get("planned_start")),
                planned_end=_time(data.get("planned_end")),
                created_by=record.by,
                created_at=record.at,
            )
        elif shipment is None:
            continue
        elif record.action == "started":
            shipment = replace(shipment, started_at=_time(data["at"]))
        elif record.action == "ended":
            shipment = replace(shipment, ended_at=_time(data["at"]))
        elif record.action == "decided":
            decision = Decision(str(data["decision"]))
            shipment = replace(
                shipment,
                decision=ReleaseDecision(
                    decision,
                    record.reason,
                    str(data.get("meaning", MEANINGS[decision])),
                    record.by,
                    record.at,
                    record.seq,
                    record.corrects,
                ),
            )
    return shipment


def _required(name: str, value: str) -> list[Issue]:
    return [] if value.strip() else [Issue(name, "is required")]


class Shipments:
    """Shipment commands over an audit log; each appends one record (and validates first)."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def get(self, shipment_id: str) -> Shipment:
        """Raises:
        NotFoundError: no shipment has that id.
        """
        found = fold(self._log.history(subject(shipment_id)))
        if found is None:
            raise NotFoundError(f"no shipment {shipment_id!r}")
        return found

    def history(self, shipment_id: str) -> list[AuditRecord]:
        self.get(shipment_id)
        return self._log.history(subject(shipment_id))

    def all(self, status: ShipmentStatus | None = None) -> list[Shipment]:
        found = [fold(self._log.history(s)) for s in self._log.subjects(SUBJECT_PREFIX)]
        return [s for s in found if s is not None and (status is None or s.status is status)]

    def for_device(self, device_id: str, at: datetime) -> Shipment | None:
        """The shipment a reading of ``device_id`` at ``at`` belongs to, if any."""
        return next((s for s in self.all() if s.covers(device_id, at)), None)

    def create(
        self,
        shipment_id: str,
        product: str,
        profile: str,
        origin: str,
        destination: str,
        devices: Sequence[str],
        by: str,
        at: datetime,
        planned_start: datetime | None = None,
        planned_end: datetime | None = None,
    ) -> Shipment:
        """Raises:
        ValidationError: a field is missing or wrong, or the id is taken.
        """
        issues = []
        if not SHIPMENT_ID.fullmatch(shipment_id):
            issues.append(Issue("id", "must be 1-64 of A-Z a-z 0-9 _ . - (no leading symbol)"))
        for name, value in (
            ("product", product),
            ("origin", origin),
            ("destination", destination),
            ("by", by),
        ):
            issues += _required(name, value)
        if not devices:
            issues.append(Issue("devices", "a shipment needs at least one device"))
        if len(set(devices)) != len(devices):
            issues.append(Issue("devices", "a device is listed twice"))
        if planned_start and planned_end and planned_end <= planned_start:
            issues.append(Issue("planned_end", "must be after the planned start"))
        history = self._log.history(subject(shipment_id)) if not issues else []
        if history:
            issues.append(Issue("id", f"shipment {shipment_id!r} exists"))
        if issues:
            raise ValidationError(issues)
        data = {
            "id": shipment_id,
            "product": product.strip(),
            "profile": profile,
            "origin": origin.strip(),
            "destination": destination.strip(),
            "devices": list(devices),
            "planned_start": None if planned_start is None else to_canonical(planned_start),
            "planned_end": None if planned_end is None else to_canonical(planned_end),
        }
        self._log.append(next_record(history, subject(shipment_id), "created", by, at, "", data))
        return self.get(shipment_id)

    def start(self, shipment_id: str, by: str, at: datetime, reason: str = "") -> Shipment:
        """Raises:
        NotFoundError: no such shipment.
        ValidationError: not planned, or one of its devices is on another active shipment.
        """
        history = self._log.history(subject(shipment_id))
        shipment = self._existing(shipment_id, history)
        if shipment.status is not ShipmentStatus.PLANNED:
            raise ValidationError([Issue("status", f"{shipment_id} is {shipment.status.value}")])
        busy = [
            f"{device} is on active shipment {other.id}"
            for other in self.all(ShipmentStatus.ACTIVE)
            for device in shipment.devices
            if device in other.devices
        ]
        if busy:
            raise ValidationError([Issue("devices", "; ".join(busy))])
        data = {"at": to_canonical(at)}
        self._log.append(
            next_record(history, subject(shipment_id), "started", by, at, reason, data)
        )
        return self.get(shipment_id)

    def end(self, shipment_id: str, by: str, at: datetime, reason: str = "") -> Shipment:
        """Raises:
        NotFoundError: no such shipment.
        ValidationError: not active, or ``at`` is before its start.
        """
        history = self._log.history(subject(shipment_id))
        shipment = self._existing(shipment_id, history)
        if shipment.status is not ShipmentStatus.ACTIVE:
            raise ValidationError([Issue("status", f"{shipment_id} is {shipment.status.value}")])
        assert shipment.started_at is not None
        if at < shipment.started_at:
            raise ValidationError([Issue("at", "the end is before the start")])
        data = {"at": to_canonical(at)}
        self._log.append(next_record(history, subject(shipment_id), "ended", by, at, reason, data))
        return self.get(shipment_id)

    def decide(
        self, shipment_id: str, decision: Decision, reason: str, by: str, at: datetime
    ) -> Shipment:
        """Record QA's decision; a second decision corrects the first (both are kept).

        Raises:
            NotFoundError: no such shipment.
            ValidationError: not ended yet, or no reason.
        """
        history = self._log.history(subject(shipment_id))
        shipment = self._existing(shipment_id, history)
        issues = _required("reason", reason) + _required("by", by)
        if shipment.status is not ShipmentStatus.ENDED:
            issues.append(
                Issue("status", f"{shipment_id} is {shipment.status.value}: end it first")
            )
        if issues:
            raise ValidationError(issues)
        previous = shipment.decision
        data = {"decision": decision.value, "meaning": MEANINGS[decision]}
        record = next_record(
            history,
            subject(shipment_id),
            "decided",
            by,
            at,
            reason.strip(),
            data,
            corrects=None if previous is None else previous.seq,
        )
        self._log.append(record)
        return self.get(shipment_id)

    @staticmethod
    def _existing(shipment_id: str, history: Sequence[AuditRecord]) -> Shipment:
        found = fold(history)
        if found is None:
            raise NotFoundError(f"no shipment {shipment_id!r}")
        return found
