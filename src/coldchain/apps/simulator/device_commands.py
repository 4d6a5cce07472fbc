"""The device side of commands (core.commands), as the simulator plays it.

A command is acted on once per ``command_id``: the same command again (a retry, or the
broker's redelivery) gets the remembered response and no second action. A command past its
expiry is dropped unanswered (the broker should have dropped it already). Known commands:
``self-test`` (reports the sensors), ``set-interval`` (``seconds``: the reporting pace),
``reboot`` (answers, then drops the link and comes back); anything else is ``rejected``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from coldchain.core.commands import CommandResponse, CommandStatus, parse_request
from coldchain.core.errors import ValidationError

REMEMBERED: Final = 256
INTERVAL_RANGE: Final = (0.05, 86_400.0)


@dataclass(frozen=True, slots=True)
class Action:
    """What the fleet must do after answering."""

    interval_s: float | None = None
    reboot: bool = False


class DeviceCommands:
    """One device's command handling and its memory of answered commands."""

    def __init__(self, device_id: str, sensors: Callable[[], dict[str, Any]]) -> None:
        self.device_id = device_id
        self._sensors = sensors
        self._answered: OrderedDict[str, bytes] = OrderedDict()
        self.actions = 0  # commands acted on (not counting repeats)

    def handle(self, payload: bytes, now: datetime) -> tuple[bytes | None, Action]:
        """The response to publish (None: drop the command) and the action to take."""
        try:
            command = parse_request(payload)
        except ValidationError:
            return None, Action()
        if command.command_id in self._answered:
            return self._answered[command.command_id], Action()
        if now >= command.expires_at:
            return None, Action()
        status, result, action = self._act(command.name, dict(command.args))
        self.actions += 1
        response = CommandResponse(command.command_id, status, now, result)
        encoded = json.dumps(response.document()).encode()
        self._answered[command.command_id] = encoded
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)
        return encoded, action

    def _act(self, name: str, args: dict[str, str]) -> tuple[CommandStatus, dict[str, Any], Action]:
        if name == "self-test":
            return CommandStatus.SUCCEEDED, {"sensors": self._sensors()}, Action()
        if name == "set-interval":
            try:
                seconds = float(args.get("seconds", ""))
            except ValueError:
                return CommandStatus.FAILED, {"error": "seconds: a number"}, Action()
            low, high = INTERVAL_RANGE
            if not low <= seconds <= high:
                return CommandStatus.FAILED, {"error": f"seconds: {low}-{high:g}"}, Action()
            return CommandStatus.SUCCEEDED, {"interval_s": seconds}, Action(interval_s=seconds)
        if name == "reboot":
            return CommandStatus.SUCCEEDED, {"rebooting": True}, Action(reboot=True)
        return CommandStatus.REJECTED, {"error": f"unknown command {name!r}"}, Action()
