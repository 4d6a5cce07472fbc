"""The local control service: sends the commands operators queue in the store, records the
devices' answers, and times commands out and expires them (core.commands).

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

from coldchain.adapters.mqtt import Delivery, MqttConsumer
from coldchain.adapters.sqlite import SqliteDatabase, SqliteDeadLetterStore
from coldchain.adapters.sqlite_commands import SqliteCommandStore
from coldchain.core.commands import Command, CommandStatus, answered, overdue, parse_response
from coldchain.core.errors import StorageError, ValidationError
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.ports import Clock
from coldchain.core.topics import command_request_topic, device_from_command_topic

log = logging.getLogger("coldchain.control")


class ControlService:
    """One loop: record answers, send what is unsent, time out and expire the rest."""

    def __init__(
        self, link: MqttConsumer, db: SqliteDatabase, clock: Clock, tick_s: float = 0.2
    ) -> None:
        self._link = link
        self._db = db
        self._commands = SqliteCommandStore(db)
        self._dead_letters = SqliteDeadLetterStore(db)
        self._clock = clock
        self._tick_s = tick_s

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            answers = self._link.take(100, self._tick_s)
            try:
                if answers:
                    self._record(answers)
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

    def _reject(self, delivery: Delivery, reason: str) -> None:
        message = delivery.message
        letter = DeadLetter(
            DeadLetterKind.REJECTED, message.topic, message.payload, message.received_at, reason
        )
        self._dead_letters.put_many([letter])

    def _send_and_expire(self) -> None:
        now = self._clock.now()
        changed: list[Command] = []
        for command in self._commands.open():
            late = overdue(command, now)
            if late is not None:
                changed.append(late)
                log.warning("command %s on %s %s", command.name, command.device_id, late.status)
                continue
            if command.status is CommandStatus.SENT and command.sent_at is None:
                left = math.ceil((command.expires_at - now).total_seconds())
                payload = json.dumps(command.request()).encode()
                topic = command_request_topic(command.device_id)
                if self._link.publish(topic, payload, left):
                    changed.append(replace(command, sent_at=now, updated_at=now))
        if changed:
            self._commands.save(changed)
