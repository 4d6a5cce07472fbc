"""MQTT topic names of the telemetry contract: ``dt/coldchain/{device_id}/telemetry``."""

from __future__ import annotations

import re
from typing import Final

DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,128}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
TOPIC_PREFIX: Final = "dt/coldchain"
TELEMETRY_SUFFIX: Final = "telemetry"
TELEMETRY_FILTER: Final = f"{TOPIC_PREFIX}/+/{TELEMETRY_SUFFIX}"
SHARED_GROUP: Final = "processors"
SHARED_TELEMETRY_FILTER: Final = f"$share/{SHARED_GROUP}/{TELEMETRY_FILTER}"


def is_device_id(value: str) -> bool:
    """Whether ``value`` is a legal device id (1-128 of ``[A-Za-z0-9_-]``)."""
    return bool(_DEVICE_ID.fullmatch(value))


def telemetry_topic(device_id: str) -> str:
    """The topic a device publishes its readings to."""
    return f"{TOPIC_PREFIX}/{device_id}/{TELEMETRY_SUFFIX}"


def device_from_topic(topic: str) -> str | None:
    """The device id segment of a telemetry topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[3] != TELEMETRY_SUFFIX:
        return None
    return parts[2] if is_device_id(parts[2]) else None


COMMAND_PREFIX: Final = "cmd"
COMMAND_REQUESTS: Final = f"{COMMAND_PREFIX}/+/request"
COMMAND_RESPONSES: Final = f"{COMMAND_PREFIX}/+/response"


def command_request_topic(device_id: str) -> str:
    """Where a device receives its commands."""
    return f"{COMMAND_PREFIX}/{device_id}/request"


def command_response_topic(device_id: str) -> str:
    """Where a device answers them."""
    return f"{COMMAND_PREFIX}/{device_id}/response"


def device_from_command_topic(topic: str) -> str | None:
    """The device of a command request or response topic, or None."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != COMMAND_PREFIX or parts[2] not in ("request", "response"):
        return None
    return parts[1] if is_device_id(parts[1]) else None


# The shadow's topics. AWS IoT: $aws/things/{thing}/shadow/...; the local broker uses
# shadow/{device}/... with the same suffixes (mosquitto keeps $-topics for itself: a client's
# wildcard never matches them, and they are a poor fit for per-device ACLs). One place maps.
SHADOW_PREFIX: Final = "shadow"
SHADOW_REQUESTS: Final = (f"{SHADOW_PREFIX}/+/update", f"{SHADOW_PREFIX}/+/get")


def shadow_topic(device_id: str, operation: str, *, aws: bool = False) -> str:
    """``operation``: update, get, update/accepted, update/rejected, update/delta,
    get/accepted, get/rejected.
    """
    base = f"$aws/things/{device_id}/shadow" if aws else f"{SHADOW_PREFIX}/{device_id}"
    return f"{base}/{operation}"


def shadow_request(topic: str) -> tuple[str, str] | None:
    """(device, "update" | "get") of a local shadow request topic, else None."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != SHADOW_PREFIX or parts[2] not in ("update", "get"):
        return None
    return (parts[1], parts[2]) if is_device_id(parts[1]) else None


# Jobs, likewise: AWS IoT's $aws/things/{thing}/jobs/...; locally jobs/{device}/...
JOBS_PREFIX: Final = "jobs"
JOB_UPDATES: Final = f"{JOBS_PREFIX}/+/+/update"


def jobs_topic(device_id: str, suffix: str, *, aws: bool = False) -> str:
    """``suffix``: notify-next, or ``{job_id}/update``."""
    base = f"$aws/things/{device_id}/jobs" if aws else f"{JOBS_PREFIX}/{device_id}"
    return f"{base}/{suffix}"


def job_update(topic: str) -> tuple[str, str] | None:
    """(device, job id) of a local job execution update topic, else None."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != JOBS_PREFIX or parts[3] != "update":
        return None
    return (parts[1], parts[2]) if is_device_id(parts[1]) else None


def aws_device_topics(thing: str, rule_name: str) -> dict[str, list[str]]:
    """What a device may do on AWS IoT, by policy action (terraform/iot.tf builds the device
    policy from the same lists; a test keeps them equal): publish its telemetry (directly or
    through Basic Ingest), its command answers, its shadow updates and gets and its job
    reports; subscribe to and receive its commands, its shadow's answers and its jobs.
    """
    return {
        "publish": [
            telemetry_topic(thing),
            f"$aws/rules/{rule_name}/{telemetry_topic(thing)}",
            command_response_topic(thing),
            shadow_topic(thing, "update", aws=True),
            shadow_topic(thing, "get", aws=True),
            jobs_topic(thing, "*", aws=True),
        ],
        "subscribe": [
            command_request_topic(thing),
            shadow_topic(thing, "*", aws=True),
            jobs_topic(thing, "*", aws=True),
        ],
    }
