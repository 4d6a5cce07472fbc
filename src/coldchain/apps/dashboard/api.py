"""The dashboard's JSON API as plain methods over one store connection: query parameters in,
a JSON document out. :mod:`coldchain.apps.dashboard.app` maps them to routes.

Bad parameters raise :class:`BadRequestError` or our ``ValidationError`` (400), unknown
devices and alarms ``NotFoundError`` (404); the routes turn each into ``{"error": "..."}``.

A device's page also shows its desired and reported configuration (the shadow), its newest
commands and its firmware job executions; :meth:`Api.send_command` queues a command for the
control service to send, and records who sent it in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteAuditLog,
    SqliteDatabase,
    SqliteDeviceStateStore,
    SqliteEventStore,
    SqliteProfileRecord,
    summarise,
)
from coldchain.adapters.sqlite.commands import SqliteCommandStore, command_document
from coldchain.adapters.sqlite.jobs import SqliteJobStore
from coldchain.adapters.sqlite.queries import SqliteReadModel
from coldchain.adapters.sqlite.shadows import SqliteShadowStore
from coldchain.apps.render import alarm_document, shipment_document
from coldchain.core.alarm_profile import AlarmProfile, default_profile, profile_mapping
from coldchain.core.alarms import Alarm, acknowledge_alarm
from coldchain.core.audit import next_record
from coldchain.core.commands import new_command
from coldchain.core.device_state import with_live_figures
from coldchain.core.device_status import DeviceStatus, device_status
from coldchain.core.errors import BadRequestError, NotFoundError
from coldchain.core.jobs import Execution, Job
from coldchain.core.shadow import Shadow
from coldchain.core.shipments import Decision, Shipments, ShipmentStatus
from coldchain.core.timestamps import parse_iso, to_canonical

MAX_WINDOW: Final = timedelta(days=31)
MAX_POINTS: Final = 2000
DEVICE_COMMANDS: Final = 10  # the newest commands a device's page shows
DEVICE_JOBS: Final = 10  # and its newest job executions
COMMAND_SUBJECT: Final = "command/"  # audit subjects: command/<command_id>


def _optional_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(str(value))
    except ValueError as exc:
        raise BadRequestError(f"{name}: {exc}") from None


@dataclass
class Api:
    """The API over one store connection; ``now`` is injectable for tests."""

    db: SqliteDatabase
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- endpoints ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        summary = summarise(self.db)
        return {
            "status": "ok",
            "generated_at": to_canonical(self.now()),
            "readings": summary.readings,
            "devices": summary.devices,
            "dead_letters": summary.dead_letters,
            "active_alarms": summary.active_alarms,
            "events": summary.events,
        }

    def _profile(self) -> AlarmProfile:
        return SqliteProfileRecord(self.db).remembered() or default_profile()

    def profile(self) -> dict[str, Any]:
        """The rules the worker runs with (the built-in ones before it has run), and the
        temperature band they keep cargo in, which the dashboard draws.
        """
        profile = self._profile()
        return {**profile_mapping(profile), "band": profile.band}

    def devices(self) -> list[dict[str, Any]]:
        now, profile = self.now(), self._profile()
        active = {a.device_id for a in SqliteAlarmStore(self.db).list(active=True, limit=100_000)}
        out = []
        for device in SqliteReadModel(self.db).devices():
            last = parse_iso(device["last_ts"])
            status = device_status(last, device["device_id"] in active, profile, now)
            out.append(
                {
                    **device,
                    "seconds_since": round((now - last).total_seconds(), 1),
                    "silent": status is DeviceStatus.SILENT,
                    "status": status.value,
                }
            )
        return out

    def device(self, device_id: str) -> dict[str, Any]:
        found = next((d for d in self.devices() if d["device_id"] == device_id), None)
        if found is None:
            raise NotFoundError(f"unknown device {device_id!r}")
        alarms = self._live(SqliteAlarmStore(self.db).list(device_id=device_id, limit=50))
        events = SqliteEventStore(self.db).list(device_id=device_id, limit=100_000)[-50:]
        commands = SqliteCommandStore(self.db).list(device_id=device_id, limit=DEVICE_COMMANDS)
        shadow = SqliteShadowStore(self.db).get(device_id)
        runs = SqliteJobStore(self.db).executions_for_device(device_id, DEVICE_JOBS)
        return {
            **found,
            "alarms": [alarm_document(a) for a in alarms],
            "events": [
                {"kind": e.kind.value, "timestamp": e.timestamp, "value": e.value} for e in events
            ],
            "configuration": None if shadow is None else _configuration(shadow),
            "commands": [command_document(c) for c in commands],
            "jobs": [_job_run(job, run) for job, run in runs],
        }

    def send_command(
        self, device_id: str, name: str, args: Mapping[str, str], by: str
    ) -> dict[str, Any]:
        """Queue a command for a known device (the control service sends it), and record
        ``by`` (the signed-in user) in the audit trail; the device answers a name it does not
        know with ``rejected``.

        Raises:
            NotFoundError: no readings from ``device_id`` yet.
            ValidationError: a bad name or too many arguments.
        """
        if not any(d["device_id"] == device_id for d in SqliteReadModel(self.db).devices()):
            raise NotFoundError(f"unknown device {device_id!r}")
        now = self.now()
        command = new_command(device_id, name, args, now)
        subject = COMMAND_SUBJECT + command.command_id
        data = {"device_id": device_id, "name": name, "args": dict(args)}
        trail = SqliteAuditLog(self.db)
        with self.db.transaction():  # the command and its record, or neither
            SqliteCommandStore(self.db).save([command])
            trail.append(next_record(trail.history(subject), subject, "sent", by, now, "", data))
        return command_document(command)

    def readings(self, query: Mapping[str, str]) -> dict[str, Any]:
        device_id = query.get("device")
        if not device_id:
            raise BadRequestError("device is required")
        known = {d["device_id"]: d for d in SqliteReadModel(self.db).devices()}
        if device_id not in known:
            raise NotFoundError(f"unknown device {device_id!r}")
        start, end = self._window(query, default_end=parse_iso(known[device_id]["last_ts"]))
        points = self._int(query, "points", 300, 1, MAX_POINTS)
        bucket, buckets = SqliteReadModel(self.db).buckets(device_id, start, end, points)
        return {
            "device_id": device_id,
            "from": to_canonical(start),
            "to": to_canonical(end),
            "bucket_s": bucket.total_seconds(),
            "points": [_bucket(b) for b in buckets],
        }

    def trend(self, query: Mapping[str, str]) -> dict[str, Any]:
        start, end = self._window(query, default_end=self.now())
        points = self._int(query, "points", 120, 1, MAX_POINTS)
        model = SqliteReadModel(self.db)
        series = {}
        for device in model.devices():
            _, buckets = model.buckets(device["device_id"], start, end, points)
            series[device["device_id"]] = [_bucket(b) for b in buckets]
        return {"from": to_canonical(start), "to": to_canonical(end), "series": series}

    def ingest(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        minutes = self._int(query, "minutes", 60, 1, 24 * 60)
        return SqliteReadModel(self.db).ingest(self.now() - timedelta(minutes=minutes))

    def alarms(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        active = query.get("active")
        if active not in (None, "true", "false"):
            raise BadRequestError("active must be true or false")
        found = SqliteAlarmStore(self.db).list(
            active=None if active is None else active == "true",
            device_id=query.get("device"),
            fleet_id=query.get("fleet"),
            limit=self._int(query, "limit", 200, 1, 10_000),
        )
        return [alarm_document(a) for a in self._live(found)]

    def _live(self, alarms: list[Alarm]) -> list[Alarm]:
        return with_live_figures(alarms, SqliteDeviceStateStore(self.db).get_many)

    def dead_letters(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        return SqliteReadModel(self.db).dead_letters(self._int(query, "limit", 20, 1, 1000))

    # -- shipments ---------------------------------------------------------------------------
    def _shipments(self) -> Shipments:
        return Shipments(SqliteAuditLog(self.db))

    def shipments(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        status = query.get("status")
        if status is not None and status not in {s.value for s in ShipmentStatus}:
            raise BadRequestError("status must be planned, active or ended")
        wanted = None if status is None else ShipmentStatus(status)
        return [shipment_document(s) for s in self._shipments().all(wanted)]

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        """One shipment, its audit trail, and the alarms of its devices while it ran."""
        shipments = self._shipments()
        found = shipments.get(shipment_id)
        alarms: list[Alarm] = []
        if found.started_at is not None:
            store, begin = SqliteAlarmStore(self.db), found.started_at
            end = found.ended_at or self.now()
            for device_id in found.devices:  # every alarm that overlaps the shipment
                alarms += [
                    a
                    for a in store.list(device_id=device_id, limit=10_000)
                    if a.started_at <= end and (a.cleared_at or end) >= begin
                ]
        return {
            **shipment_document(found),
            "alarms": [alarm_document(a) for a in self._live(alarms)],
            "audit": [r.document() for r in shipments.history(shipment_id)],
        }

    def create_shipment(self, fields: Mapping[str, Any], by: str) -> dict[str, Any]:
        profile = (SqliteProfileRecord(self.db).remembered() or default_profile()).name
        with self.db.transaction():
            created = self._shipments().create(
                str(fields["id"]),
                str(fields["product"]),
                profile,
                str(fields["origin"]),
                str(fields["destination"]),
                [str(d) for d in fields["devices"]],
                by,
                self.now(),
                _optional_time(fields.get("planned_start"), "planned_start"),
                _optional_time(fields.get("planned_end"), "planned_end"),
            )
        return shipment_document(created)

    def shipment_step(self, shipment_id: str, step: str, by: str, reason: str) -> dict[str, Any]:
        """``start`` or ``end`` a shipment now."""
        with self.db.transaction():
            shipments = self._shipments()
            if step == "start":
                done = shipments.start(shipment_id, by, self.now(), reason)
            else:
                done = shipments.end(shipment_id, by, self.now(), reason)
        return shipment_document(done)

    def decide(self, shipment_id: str, decision: str, reason: str, by: str) -> dict[str, Any]:
        try:
            chosen = Decision(decision)
        except ValueError:
            raise BadRequestError("decision must be release, quarantine or reject") from None
        with self.db.transaction():
            done = self._shipments().decide(shipment_id, chosen, reason, by, self.now())
        return shipment_document(done)

    def audit(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        log = SqliteAuditLog(self.db)
        limit = self._int(query, "limit", 100, 1, 10_000)
        subject = query.get("subject")
        records = log.history(subject)[::-1][:limit] if subject else log.recent(limit)
        return [r.document() for r in records]  # newest first either way

    def acknowledge(self, alarm_id: str, by: str, comment: str) -> dict[str, Any]:
        """``by`` is the signed-in user, never a name the client sent."""
        with self.db.transaction():
            acked, _ = acknowledge_alarm(
                SqliteAlarmStore(self.db),
                SqliteAuditLog(self.db),
                alarm_id,
                by,
                comment,
                self.now(),
            )
        return alarm_document(acked)

    # -- parameters ----------------------------------------------------------------------
    def _window(self, query: Mapping[str, str], default_end: datetime) -> tuple[datetime, datetime]:
        try:
            end = parse_iso(query["to"]) if "to" in query else default_end
            if "from" in query:
                start = parse_iso(query["from"])
            else:
                hours = float(query.get("hours", "1"))
                if not 0 < hours <= MAX_WINDOW.total_seconds() / 3600:
                    raise BadRequestError("hours must be between 0 and 744")
                start = end - timedelta(hours=hours)
        except ValueError as exc:
            raise BadRequestError(f"bad time range: {exc}") from None
        if start >= end:
            raise BadRequestError("bad time range: from must be before to")
        if end - start > MAX_WINDOW:
            raise BadRequestError("bad time range: at most 31 days")
        return start, end

    @staticmethod
    def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
        text = query.get(name)
        if text is None:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            raise BadRequestError(f"{name} must be a whole number from {low} to {high}")
        return int(text)


def _configuration(shadow: Shadow) -> dict[str, Any]:
    """The shadow for the page: ``delta`` always present (empty when the device is in step)."""
    return {
        "desired": dict(shadow.desired),
        "reported": dict(shadow.reported),
        "delta": shadow.delta,
        "version": shadow.version,
        "updated_at": None if shadow.updated_at is None else to_canonical(shadow.updated_at),
    }


def _job_run(job: Job, run: Execution) -> dict[str, Any]:
    """One job as one device sees it: the job's state and its own execution's."""
    return {
        "job_id": job.job_id,
        "job_status": job.status.value,
        "target_version": job.firmware_version,
        "created_at": to_canonical(job.created_at),
        "execution_status": run.status.value,
        "started_at": None if run.started_at is None else to_canonical(run.started_at),
        "updated_at": None if run.updated_at is None else to_canonical(run.updated_at),
        "details": run.details,
    }


def _bucket(bucket: Any) -> dict[str, Any]:
    return {
        "t": to_canonical(bucket.start),
        "n": bucket.count,
        "min": bucket.minimum,
        "max": bucket.maximum,
        "avg": round(bucket.mean, 3),
    }
