"""The job state machine (core.jobs): rollout rate, abort rule, time-outs, reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from coldchain.core.errors import ValidationError
from coldchain.core.jobs import (
    EXECUTION_TIMEOUT,
    Execution,
    ExecutionStatus,
    Job,
    JobStatus,
    cancelled,
    next_to_start,
    parse_percent,
    parse_rate,
    reported,
    settle,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
Q, RUN, OK, FAIL = (
    ExecutionStatus.QUEUED,
    ExecutionStatus.IN_PROGRESS,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
)


def job(rate: float | None = None, abort: float | None = None) -> Job:
    return Job("j", "fleet=f", "2.2.0", "ab" * 32, "2.1.4", rate, abort, NOW)


def executions(*statuses: ExecutionStatus, started: datetime = NOW) -> list[Execution]:
    return [
        Execution("j", f"d{n:02d}", status, None if status is Q else started)
        for n, status in enumerate(statuses)
    ]


def test_without_a_rate_every_queued_execution_starts_at_once() -> None:
    assert [e.device_id for e in next_to_start(job(), executions(Q, OK, Q), NOW)] == ["d00", "d02"]


def test_a_rate_spaces_the_starts() -> None:
    paced = job(rate=6)  # one every 10 s
    current = executions(RUN, Q, Q)
    assert next_to_start(paced, current, NOW + timedelta(seconds=9)) == []
    [due] = next_to_start(paced, current, NOW + timedelta(seconds=10))
    assert due.device_id == "d01"


def test_the_abort_rule_cancels_what_is_queued_and_keeps_what_runs() -> None:
    settled, changed = settle(job(abort=20), executions(OK, FAIL, RUN, Q, Q), NOW)
    assert settled.status is JobStatus.ABORTED  # 1 of 2 finished failed: 50 % > 20 %
    assert [(e.device_id, e.status) for e in changed] == [
        ("d03", ExecutionStatus.CANCELED),
        ("d04", ExecutionStatus.CANCELED),
    ]
    below, _ = settle(job(abort=60), executions(OK, FAIL, Q), NOW)
    assert below.status is JobStatus.IN_PROGRESS


def test_a_silent_device_times_out_and_counts_as_failed() -> None:
    late = NOW + EXECUTION_TIMEOUT
    settled, changed = settle(job(abort=10), executions(RUN, OK, Q), late)
    assert changed[0].status is ExecutionStatus.TIMED_OUT
    assert settled.status is JobStatus.ABORTED


def test_a_job_completes_when_all_are_done_and_never_while_empty() -> None:
    assert settle(job(), executions(OK, FAIL), NOW)[0].status is JobStatus.COMPLETED
    assert settle(job(), [], NOW)[0].status is JobStatus.IN_PROGRESS


def test_a_report_counts_only_on_a_started_execution() -> None:
    [queued, running] = executions(Q, RUN)
    assert reported(queued, "succeeded", {}, NOW) == queued  # not sent yet: ignored
    done = reported(running, "succeeded", {"firmware_version": "2.2.0"}, NOW)
    assert done.status is OK
    assert reported(done, "failed", {}, NOW) == done  # final
    with pytest.raises(ValidationError):
        reported(running, "canceled", {}, NOW)


def test_cancel_stops_the_queued_ones_only() -> None:
    stopped, dropped = cancelled(job(), executions(RUN, Q), NOW)
    assert stopped.status is JobStatus.CANCELED
    assert [replace(e, updated_at=None).device_id for e in dropped] == ["d01"]


@pytest.mark.parametrize("text", ["0/min", "-1", "ten", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0%", "101%", "x"])
def test_bad_percentages_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_percent(text)
