"""The command lifecycle (core.commands) and the device side's memory of answers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from coldchain.apps.simulator.device_commands import DeviceCommands
from coldchain.core.commands import (
    Command,
    CommandResponse,
    CommandStatus,
    answered,
    new_command,
    overdue,
    parse_response,
    retried,
)
from coldchain.core.errors import ValidationError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def sent(timeout_s: float = 30, expires_s: float = 3600) -> Command:
    command = new_command("dev-1", "self-test", {}, NOW, timeout_s * SECOND, expires_s * SECOND)
    return replace(command, sent_at=NOW)


def test_no_answer_times_out_then_a_late_answer_still_counts() -> None:
    command = sent()
    assert overdue(command, NOW + 29 * SECOND) is None
    late = overdue(command, NOW + 30 * SECOND)
    assert late is not None
    assert late.status is CommandStatus.TIMED_OUT
    ok = CommandResponse(late.command_id, CommandStatus.SUCCEEDED, NOW, {"x": 1})
    done = answered(late, ok, NOW + 40 * SECOND)
    assert done.status is CommandStatus.SUCCEEDED
    assert done.result == {"x": 1}
    # nothing moves a final state, an acknowledgement least of all
    ack = CommandResponse(late.command_id, CommandStatus.ACKNOWLEDGED, NOW, {})
    assert answered(done, ack, NOW + 41 * SECOND) == done


def test_unanswered_until_its_expiry_it_expires_and_cannot_be_retried() -> None:
    command = sent(timeout_s=1, expires_s=10)
    expired = overdue(command, NOW + 10 * SECOND)
    assert expired is not None
    assert expired.status is CommandStatus.EXPIRED
    assert overdue(expired, NOW + 11 * SECOND) is None
    with pytest.raises(ValidationError):
        retried(expired, NOW + 11 * SECOND)


def test_an_unsent_command_does_not_time_out_before_it_is_sent() -> None:
    command = new_command("dev-1", "reboot", {}, NOW, 5 * SECOND, 60 * SECOND)
    assert overdue(command, NOW + 30 * SECOND) is None


@pytest.mark.parametrize(
    ("name", "args", "timeout", "expires"),
    [("", {}, 30, 60), ("a b", {}, 30, 60), ("ok", {}, 0, 60), ("ok", {}, 60, 30)],
)
def test_bad_commands_are_refused(
    name: str, args: dict[str, str], timeout: int, expires: int
) -> None:
    with pytest.raises(ValidationError):
        new_command("dev-1", name, args, NOW, timeout * SECOND, expires * SECOND)


def test_a_response_must_be_a_device_answer() -> None:
    good = b'{"command_id": "c", "status": "failed", "timestamp": "2026-11-27T12:00:00Z"}'
    assert parse_response(good).status is CommandStatus.FAILED
    for bad in (
        b"not json",
        b'{"command_id": "c", "status": "expired", "timestamp": "2026-11-27T12:00:00Z"}',
        b'{"command_id": "c", "status": "succeeded"}',
        b'{"command_id": "c", "status": "succeeded", "timestamp": "x", "extra": 1}',
    ):
        with pytest.raises(ValidationError):
            parse_response(bad)


def test_the_device_acts_once_per_command_id_and_drops_expired_ones() -> None:
    device = DeviceCommands("dev-1", lambda: {"temperature": "ok"})
    command = new_command("dev-1", "set-interval", {"seconds": "5"}, NOW, 30 * SECOND)
    payload = json.dumps(command.request()).encode()
    first, action = device.handle(payload, NOW)
    again, repeat = device.handle(payload, NOW + SECOND)
    assert first == again
    assert first is not None
    assert action.interval_s == 5.0
    assert repeat.interval_s is None
    assert device.actions == 1
    stale = new_command("dev-1", "self-test", {}, NOW, 30 * SECOND, 60 * SECOND)
    response, _ = device.handle(json.dumps(stale.request()).encode(), NOW + 61 * SECOND)
    assert response is None
    assert device.actions == 1
    unknown = new_command("dev-1", "fly", {}, NOW)
    answer, _ = device.handle(json.dumps(unknown.request()).encode(), NOW)
    assert answer is not None
    assert json.loads(answer)["status"] == "rejected"


def test_a_basic_ingest_topic_is_read_as_the_device_s_topic() -> None:
    from coldchain.adapters.iot_rule_output import without_basic_ingest

    topic = "dt/coldchain/reefer-1/telemetry"
    assert without_basic_ingest(f"$aws/rules/coldchain_telemetry/{topic}") == topic
    assert without_basic_ingest(topic) == topic
    assert without_basic_ingest("$aws/rules/x") == "$aws/rules/x"
