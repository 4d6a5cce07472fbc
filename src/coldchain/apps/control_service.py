"""The local control service: sends the commands operators queue in the store, records the
devices' answers, and times commands out and expires them (core.commands); and serves the
device shadows (core.shadow) over the local broker: a device's ``update`` and ``get`` are
answered on ``.../accepted`` or ``.../rejected`` (with AWS IoT's codes), a difference between
desired and reported goes out on ``.../update/delta``, and an operator's change (`coldchain
config set`, written to the store) is announced the same way.

Commands travel as QoS 1 with an MQTT v5 message expiry equal to what is left of their
validity, so the broker keeps one for a device that is offline (its persistent session) until
it reconnects, and drops it once expired. Answers arrive on ``cmd/+/response`` through a
persistent subscription and are acknowledged after they are committed, like telemetry.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from coldchain.adapters.firmware_files import FirmwareFiles
from coldchain.adapters.mqtt import Delivery, MqttConsumer
from coldchain.adapters.sqlite import SqliteDatabase, SqliteDeadLetterStore
from coldchain.adapters.sqlite.commands import SqliteCommandStore
from coldchain.adapters.sqlite.jobs import SqliteJobStore
from coldchain.adapters.sqlite.shadows import SqliteShadowStore
from coldchain.core.commands import CommandStatus, answered, overdue, parse_response
from coldchain.core.errors import Issue, StateConflictError, StorageError, ValidationError
from coldchain.core.jobs import (
    EXECUTION_TIMEOUT,
    Execution,
    ExecutionStatus,
    Job,
    JobStatus,
    next_to_start,
    reported,
    settle,
)
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.ports import Clock
from coldchain.core.shadow import Rejected, Shadow, parse_update, updated
from coldchain.core.topics import (
    command_request_topic,
    device_from_command_topic,
    job_update,
    jobs_topic,
    shadow_request,
    shadow_topic,
)

log = logging.getLogger("coldchain.control")
DELTA_EXPIRY_S: Final = 7 * 24 * 3600
URL_VALIDITY: Final = timedelta(minutes=15)  # a signed download URL, as IoT's pre-signed


def _was(execution: Execution) -> ExecutionStatus:
    """The status an execution that settle() changed had before (timed out: in progress;
    cancelled by the abort rule: queued).
    """
    if execution.status is ExecutionStatus.TIMED_OUT:
        return ExecutionStatus.IN_PROGRESS
    return ExecutionStatus.QUEUED


def _delta_document(shadow: Shadow) -> dict[str, Any]:
    return {"state": shadow.delta, "version": shadow.version}


class ControlService:
    """One loop: record answers, send what is unsent, time out and expire the rest."""

    def __init__(
        self,
        link: MqttConsumer,
        db: SqliteDatabase,
        clock: Clock,
        tick_s: float = 0.2,
        firmware: tuple[FirmwareFiles, str] | None = None,
    ) -> None:
        """``firmware``: the images and the base URL their server answers on (jobs)."""
        self._firmware = firmware
        self._jobs = SqliteJobStore(db)
        self._link = link
        self._db = db
        self._commands = SqliteCommandStore(db)
        self._dead_letters = SqliteDeadLetterStore(db)
        self._shadows = SqliteShadowStore(db)
        self._clock = clock
        self._tick_s = tick_s

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            answers = self._link.take(100, self._tick_s)
            try:
                if answers:
                    topics = [a.message.topic for a in answers]
                    shadows = [a for a, t in zip(answers, topics, strict=True) if shadow_request(t)]
                    jobs = [a for a, t in zip(answers, topics, strict=True) if job_update(t)]
                    self._record([a for a in answers if a not in shadows and a not in jobs])
                    self._serve(shadows)
                    self._progress(jobs)
                    self._link.ack(answers)
                self._send_and_expire()
            except StorageError as exc:  # unacknowledged answers come back; commands wait
                log.error("store unavailable: %s", exc)
                stop.wait(1.0)

    def _record(self, answers: Sequence[Delivery]) -> None:
        now = self._clock.now()
        with self._db.transaction():
            for delivery in answers:
                message = delivery.message
                try:
                    response = parse_response(message.payload)
                except ValidationError as exc:
                    self._reject(delivery, f"not a command response: {exc}")
                    continue
                command = self._commands.get(response.command_id)
                device = device_from_command_topic(message.topic)
                if command is None or command.device_id != device:
                    self._reject(delivery, f"no command {response.command_id} for {device}")
                    continue
                after = answered(command, response, now)
                if after != command:
                    self._commands.save([after])
                    log.info("command %s on %s: %s", command.name, device, after.status)

    def _serve(self, requests: Sequence[Delivery]) -> None:
        """Shadow requests, in arrival order; each answered after its write is committed."""
        for delivery in requests:
            found = shadow_request(delivery.message.topic)
            assert found is not None
            device, operation = found
            replies = self._shadow_reply(device, operation, delivery.message.payload)
            for suffix, document in replies:
                self._link.publish(
                    shadow_topic(device, suffix), json.dumps(document).encode(), DELTA_EXPIRY_S
                )

    def _shadow_reply(
        self, device: str, operation: str, payload: bytes
    ) -> list[tuple[str, dict[str, Any]]]:
        now = self._clock.now()
        current = self._shadows.get(device)
        if operation == "get":
            if current is None:
                return [("get/rejected", Rejected(404, "No shadow exists").document())]
            return [("get/accepted", current.document())]
        token: str | None = None
        try:
            request = parse_update(payload)
            token = request.get("clientToken")
            after = self._update(device, current, request, now)
        except Rejected as refused:
            return [("update/rejected", refused.document(token))]
        accepted: dict[str, Any] = {
            "state": request["state"],
            "version": after.version,
            "timestamp": int(now.timestamp()),
        }
        if token is not None:
            accepted["clientToken"] = token
        replies = [("update/accepted", accepted)]
        if after.delta and "desired" in request["state"]:
            replies.append(("update/delta", _delta_document(after)))
        return replies

    def _update(
        self, device: str, current: Shadow | None, request: dict[str, Any], now: datetime
    ) -> Shadow:
        """Apply an update; one that names no version is applied again on the newest shadow
        when an operator's change came in between (as the shadow service does).

        Raises:
            Rejected: refused, or a named version that is not the current one (409).
        """
        for attempt in range(2):
            before = current or Shadow(device)
            after = updated(before, request, now)
            try:
                self._shadows.put(after, before.version, announce=False)
            except StateConflictError:
                if request.get("version") is not None or attempt:
                    raise Rejected(409, "Version conflict") from None
                current = self._shadows.get(device)
                continue
            return after
        raise Rejected(409, "Version conflict")  # pragma: no cover - the loop returns or raises

    def _announce(self) -> None:
        """Operators' desired changes: the delta goes to the device (queued while it is
        offline; it also asks for it with ``get`` when it connects).
        """
        for shadow in self._shadows.due():
            if shadow.delta and not self._link.publish(
                shadow_topic(shadow.device_id, "update/delta"),
                json.dumps(_delta_document(shadow)).encode(),
                DELTA_EXPIRY_S,
            ):
                return
            self._shadows.announced(shadow.device_id, shadow.version)

    def _reject(self, delivery: Delivery, reason: str) -> None:
        message = delivery.message
        letter = DeadLetter(
            DeadLetterKind.REJECTED, message.topic, message.payload, message.received_at, reason
        )
        self._dead_letters.put_many([letter])

    def _progress(self, updates: Sequence[Delivery]) -> None:
        """Devices' job execution reports."""
        now = self._clock.now()
        for delivery in updates:
            found = job_update(delivery.message.topic)
            assert found is not None
            device, job_id = found
            current = {e.device_id: e for e in self._jobs.executions(job_id)}.get(device)
            try:
                document = json.loads(delivery.message.payload)
                if current is None:
                    raise ValidationError([Issue("job", f"no execution of {job_id} on {device}")])
                after = reported(
                    current,
                    str(document.get("status", "")).lower(),
                    dict(document.get("statusDetails") or {}),
                    now,
                )
            except (ValueError, TypeError, AttributeError, ValidationError) as exc:
                self._reject(delivery, f"not a job execution update: {exc}")
                continue
            if after != current:
                self._jobs.save_executions([after])
                log.info("job %s on %s: %s", job_id, device, after.status)

    def _roll_out(self) -> None:
        """Start what each job's rate allows; time out what a device never finished (in a
        stopped job too); apply the abort rule; finish jobs. Every write is conditional on
        what was read, so an operator's cancel in between wins.
        """
        if self._firmware is None:
            return
        now = self._clock.now()
        for job in self._jobs.jobs():
            executions = self._jobs.executions(job.job_id)
            running = any(e.status is ExecutionStatus.IN_PROGRESS for e in executions)
            if job.status is not JobStatus.IN_PROGRESS and not running:
                continue
            settled, changed = settle(job, executions, now)
            if changed:
                self._jobs.move([(e, _was(e)) for e in changed])
            if settled != job:
                if self._jobs.settle_job(settled):
                    log.warning("job %s %s", job.job_id, settled.status)
                continue
            if job.status is JobStatus.IN_PROGRESS:
                latest = self._jobs.executions(job.job_id) if changed else executions
                self._start(job, next_to_start(job, latest, now), now)

    def _start(self, job: Job, due: Sequence[Execution], now: datetime) -> None:
        """Claim each execution (queued to in progress), then notify its device; a notice the
        broker did not take puts it back in the queue.
        """
        assert self._firmware is not None
        files, base_url = self._firmware
        for execution in due:
            started = replace(
                execution, status=ExecutionStatus.IN_PROGRESS, started_at=now, updated_at=now
            )
            if not self._jobs.move([(started, ExecutionStatus.QUEUED)]):
                continue  # cancelled meanwhile
            url = files.signed_url(base_url, job.firmware_version, now + URL_VALIDITY)
            notice = {
                "execution": {
                    "jobId": job.job_id,
                    "status": "QUEUED",
                    "jobDocument": job.document(url),
                }
            }
            topic = jobs_topic(execution.device_id, "notify-next")
            expiry = int(EXECUTION_TIMEOUT.total_seconds())
            if not self._link.publish(topic, json.dumps(notice).encode(), expiry):
                self._jobs.move([(execution, ExecutionStatus.IN_PROGRESS)])
                return

    def _send_and_expire(self) -> None:
        self._announce()
        self._roll_out()
        now = self._clock.now()
        for command in self._commands.open():
            late = overdue(command, now)
            if late is not None:
                if self._commands.swap(command, late):  # unless answered or retried meanwhile
                    log.warning("command %s on %s %s", command.name, command.device_id, late.status)
                continue
            if command.status is CommandStatus.SENT and command.sent_at is None:
                left = math.ceil((command.expires_at - now).total_seconds())
                payload = json.dumps(command.request()).encode()
                topic = command_request_topic(command.device_id)
                if self._link.publish(topic, payload, left):
                    self._commands.swap(command, replace(command, sent_at=now, updated_at=now))
