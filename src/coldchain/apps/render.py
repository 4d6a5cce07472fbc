"""The JSON documents of alarms and shipments that the CLI prints and the dashboard's API
serves (the terminal tables are in :mod:`coldchain.apps.cli.tables`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coldchain.core.alarms import Alarm, peak_unit
from coldchain.core.shipments import ReleaseDecision, Shipment
from coldchain.core.timestamps import to_canonical


def alarm_document(alarm: Alarm) -> dict[str, Any]:
    ack = alarm.acknowledgement
    return {
        "id": alarm.id,
        "device_id": alarm.device_id,
        "fleet_id": alarm.fleet_id,
        "rule": alarm.rule,
        "severity": alarm.severity.value,
        "state": alarm.state.value,
        "started_at": to_canonical(alarm.started_at),
        "raised_at": to_canonical(alarm.raised_at),
        "cleared_at": None if alarm.cleared_at is None else to_canonical(alarm.cleared_at),
        "duration_s": alarm.duration.total_seconds(),
        "peak": alarm.peak,
        "unit": peak_unit(alarm),
        "detail": alarm.detail,
        "acknowledgement": None
        if ack is None
        else {"by": ack.by, "at": to_canonical(ack.at), "comment": ack.comment},
    }


def shipment_document(shipment: Shipment) -> dict[str, Any]:
    decision = shipment.decision
    return {
        "id": shipment.id,
        "status": shipment.status.value,
        "product": shipment.product,
        "profile": shipment.profile,
        "origin": shipment.origin,
        "destination": shipment.destination,
        "devices": list(shipment.devices),
        "planned_start": _canonical(shipment.planned_start),
        "planned_end": _canonical(shipment.planned_end),
        "started_at": _canonical(shipment.started_at),
        "ended_at": _canonical(shipment.ended_at),
        "created_by": shipment.created_by,
        "decision": decision_document(decision),
    }


def decision_document(decision: ReleaseDecision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "decision": decision.decision.value,
        "meaning": decision.meaning,
        "reason": decision.reason,
        "by": decision.by,
        "at": to_canonical(decision.at),
    }


def _canonical(moment: datetime | None) -> str | None:
    return None if moment is None else to_canonical(moment)
