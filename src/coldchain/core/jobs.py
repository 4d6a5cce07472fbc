"""Firmware jobs (the OTA pattern, as AWS IoT Jobs runs it).

A job targets a group of devices (a fleet, or the devices on one firmware version) with a
document: the target version, a download URL, its SHA-256 and the version to roll back to.
Each targeted device gets an execution::

    queued ──(rollout: at most ``rate_per_minute``)──▶ in_progress ──▶ succeeded | failed
       └──(job aborted or cancelled)──▶ canceled

The device downloads, checks the hash, applies and reports; on failure it reverts to the
rollback version and reports ``failed``. The abort rule stops the rollout when more than
``abort_failed_pct`` of the finished executions failed (once ``abort_min_finished`` have
finished): the queued executions are cancelled, as AWS IoT's abort config does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from coldchain.core.errors import Issue, ValidationError

VERSION_PATTERN: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,31}")
EXECUTION_TIMEOUT: Final = timedelta(minutes=10)


class JobStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"
    ABORTED = "aborted"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.TIMED_OUT,
        )


_FINISHED: Final = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT}
)


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    target: str  # "fleet=F" or "firmware=V"
    firmware_version: str
    sha256: str
    rollback_version: str | None
    rate_per_minute: float | None
    abort_failed_pct: float | None
    created_at: datetime
    status: JobStatus = JobStatus.IN_PROGRESS
    abort_min_finished: int = 1

    def document(self, url: str) -> dict[str, Any]:
        """What the device gets (the URL signed for it)."""
        return {
            "operation": "firmware-update",
            "firmware_version": self.firmware_version,
            "url": url,
            "sha256": self.sha256,
            "rollback_firmware_version": self.rollback_version,
        }


@dataclass(frozen=True, slots=True)
class Execution:
    job_id: str
    device_id: str
    status: ExecutionStatus = ExecutionStatus.QUEUED
    started_at: datetime | None = None
    updated_at: datetime | None = None
    details: dict[str, Any] | None = None


def parse_target(target: str) -> tuple[str, str]:
    """``fleet=F`` or ``firmware=V`` as (kind, value).

    Raises:
        ValidationError: anything else.
    """
    kind, sep, value = target.partition("=")
    if not sep or kind not in ("fleet", "firmware") or not value:
        raise ValidationError([Issue("target", f"{target!r}: use fleet=FLEET or firmware=VERSION")])
    return kind, value


def check_version(version: str) -> str:
    """Raises ValidationError unless ``version`` looks like a firmware version."""
    if not VERSION_PATTERN.fullmatch(version):
        raise ValidationError([Issue("version", f"{version!r}: 1-32 of [0-9A-Za-z.+-]")])
    return version


def parse_rate(text: str) -> float:
    """``10/min`` (or ``10``) as executions per minute.

    Raises:
        ValidationError: not a positive number per minute.
    """
    number = text.removesuffix("/min")
    try:
        rate = float(number)
    except ValueError:
        rate = 0.0
    if rate <= 0:
        raise ValidationError(
            [Issue("rate", f"{text!r}: a positive number per minute, e.g. 10/min")]
        )
    return rate


def parse_percent(text: str) -> float:
    """``20%`` (or ``20``) as a percentage in (0, 100].

    Raises:
        ValidationError: out of range.
    """
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 100:
        raise ValidationError([Issue("abort", f"{text!r}: a percentage in (0, 100], e.g. 20%")])
    return value


def next_to_start(job: Job, executions: Sequence[Execution], now: datetime) -> list[Execution]:
    """Queued executions the rollout may start now: all of them without a rate, else one per
    ``60 / rate`` seconds since the last start.
    """
    if job.status is not JobStatus.IN_PROGRESS:
        return []
    queued = sorted(
        (e for e in executions if e.status is ExecutionStatus.QUEUED), key=lambda e: e.device_id
    )
    if job.rate_per_minute is None:
        return queued
    starts = [e.started_at for e in executions if e.started_at is not None]
    spacing = timedelta(seconds=60 / job.rate_per_minute)
    if starts and now - max(starts) < spacing:
        return []
    return queued[:1]


def settle(job: Job, executions: Sequence[Execution], now: datetime) -> tuple[Job, list[Execution]]:
    """The job after its executions' news: timed-out executions, the abort rule (queued ones
    cancelled), completion. Returns the job and the executions that changed.
    """
    changed: list[Execution] = []
    current: list[Execution] = []
    for execution in executions:
        started = execution.started_at
        if (
            execution.status is ExecutionStatus.IN_PROGRESS
            and started is not None
            and now - started >= EXECUTION_TIMEOUT
        ):
            execution = replace(execution, status=ExecutionStatus.TIMED_OUT, updated_at=now)  # noqa: PLW2901
            changed.append(execution)
        current.append(execution)
    if job.status is not JobStatus.IN_PROGRESS:
        return job, changed
    finished = [e for e in current if e.status.finished]
    failed = [e for e in finished if e.status is not ExecutionStatus.SUCCEEDED]
    if (
        job.abort_failed_pct is not None
        and len(finished) >= job.abort_min_finished
        and 100 * len(failed) / len(finished) > job.abort_failed_pct
    ):
        return replace(job, status=JobStatus.ABORTED), changed + _cancel_queued(current, now)
    done = (e.status.finished or e.status is ExecutionStatus.CANCELED for e in current)
    if current and all(done):
        return replace(job, status=JobStatus.COMPLETED), changed
    return job, changed


def cancelled(
    job: Job, executions: Sequence[Execution], now: datetime
) -> tuple[Job, list[Execution]]:
    """An operator's cancel: the job and its queued executions."""
    return replace(job, status=JobStatus.CANCELED), _cancel_queued(executions, now)


def _cancel_queued(executions: Sequence[Execution], now: datetime) -> list[Execution]:
    return [
        replace(e, status=ExecutionStatus.CANCELED, updated_at=now)
        for e in executions
        if e.status is ExecutionStatus.QUEUED
    ]


def reported(
    execution: Execution, status: str, details: dict[str, Any], now: datetime
) -> Execution:
    """A device's progress report on a started execution; any other is ignored (a queued
    one has not been sent: a device cannot start itself ahead of the rollout).

    Raises:
        ValidationError: a status a device cannot report.
    """
    allowed = {"in_progress", "succeeded", "failed"}
    if status not in allowed:
        raise ValidationError([Issue("status", f"{status!r}: one of {sorted(allowed)}")])
    if execution.status is not ExecutionStatus.IN_PROGRESS:
        return execution
    return replace(execution, status=ExecutionStatus(status), updated_at=now, details=details)
