"""Firmware images, jobs and executions in the SQLite store (core.jobs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.errors import NotFoundError
from coldchain.core.jobs import Execution, ExecutionStatus, Job, JobStatus
from coldchain.core.timestamps import parse_canonical, to_canonical


def _when(value: datetime | None) -> str | None:
    return None if value is None else to_canonical(value)


def _at(value: str | None) -> datetime | None:
    return None if value is None else parse_canonical(value)


def job_document(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "target": job.target,
        "firmware_version": job.firmware_version,
        "sha256": job.sha256,
        "rollback_version": job.rollback_version,
        "rate_per_minute": job.rate_per_minute,
        "abort_failed_pct": job.abort_failed_pct,
        "abort_min_finished": job.abort_min_finished,
        "created_at": to_canonical(job.created_at),
        "status": job.status.value,
    }


def _job(document: dict[str, Any]) -> Job:
    return Job(
        job_id=document["job_id"],
        target=document["target"],
        firmware_version=document["firmware_version"],
        sha256=document["sha256"],
        rollback_version=document["rollback_version"],
        rate_per_minute=document["rate_per_minute"],
        abort_failed_pct=document["abort_failed_pct"],
        created_at=parse_canonical(document["created_at"]),
        status=JobStatus(document["status"]),
        abort_min_finished=int(document["abort_min_finished"]),
    )


def execution_document(execution: Execution) -> dict[str, Any]:
    return {
        "job_id": execution.job_id,
        "device_id": execution.device_id,
        "status": execution.status.value,
        "started_at": _when(execution.started_at),
        "updated_at": _when(execution.updated_at),
        "details": execution.details,
    }


def _execution(document: dict[str, Any]) -> Execution:
    return Execution(
        document["job_id"],
        document["device_id"],
        ExecutionStatus(document["status"]),
        _at(document["started_at"]),
        _at(document["updated_at"]),
        document["details"],
    )


class SqliteJobStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def add_firmware(self, version: str, sha256: str, size: int, now: datetime) -> None:
        with self._db.transaction(), translated():
            self._db.connection.execute(
                "INSERT INTO firmware (version, sha256, size, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                (version, sha256, size, to_canonical(now)),
            )

    def firmware(self, version: str) -> tuple[str, int] | None:
        """(sha256, size) of a registered image."""
        with translated():
            row = self._db.connection.execute(
                "SELECT sha256, size FROM firmware WHERE version = ?", (version,)
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def save_job(self, job: Job) -> None:
        with self._db.transaction(), translated():
            self._db.connection.execute(
                "INSERT INTO jobs (job_id, status, document, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, "
                "document = excluded.document",
                (
                    job.job_id,
                    job.status.value,
                    json.dumps(job_document(job)),
                    to_canonical(job.created_at),
                ),
            )

    def job(self, job_id: str) -> Job | None:
        with translated():
            row = self._db.connection.execute(
                "SELECT document FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return None if row is None else _job(json.loads(row[0]))

    def require(self, job_id: str) -> Job:
        """The job with this id.

        Raises:
            NotFoundError: there is none.
        """
        found = self.job(job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id!r}")
        return found

    def jobs(self, status: JobStatus | None = None) -> list[Job]:
        with translated():
            rows = self._db.connection.execute(
                "SELECT document FROM jobs WHERE ? IS NULL OR status = ? ORDER BY created_at",
                (None if status is None else status.value,) * 2,
            ).fetchall()
        return [_job(json.loads(row[0])) for row in rows]

    def save_executions(self, executions: Sequence[Execution]) -> None:
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                "INSERT INTO job_executions (job_id, device_id, status, document) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (job_id, device_id) DO UPDATE SET "
                "status = excluded.status, document = excluded.document",
                [
                    (e.job_id, e.device_id, e.status.value, json.dumps(execution_document(e)))
                    for e in executions
                ],
            )

    def move(self, changes: Sequence[tuple[Execution, ExecutionStatus]]) -> list[Execution]:
        """Write each execution only if its stored status is still the given one (an operator's
        cancel or a device's report may have come first); the ones written.
        """
        written = []
        with self._db.transaction(), translated():
            for execution, expected in changes:
                cursor = self._db.connection.execute(
                    "UPDATE job_executions SET status = ?, document = ? "
                    "WHERE job_id = ? AND device_id = ? AND status = ?",
                    (
                        execution.status.value,
                        json.dumps(execution_document(execution)),
                        execution.job_id,
                        execution.device_id,
                        expected.value,
                    ),
                )
                if cursor.rowcount == 1:
                    written.append(execution)
        return written

    def settle_job(self, job: Job) -> bool:
        """Write a job's new status only if it is still in progress (not cancelled meanwhile)."""
        with self._db.transaction(), translated():
            cursor = self._db.connection.execute(
                "UPDATE jobs SET status = ?, document = ? WHERE job_id = ? AND status = ?",
                (
                    job.status.value,
                    json.dumps(job_document(job)),
                    job.job_id,
                    JobStatus.IN_PROGRESS.value,
                ),
            )
        return cursor.rowcount == 1

    def executions(self, job_id: str) -> list[Execution]:
        with translated():
            rows = self._db.connection.execute(
                "SELECT document FROM job_executions WHERE job_id = ? ORDER BY device_id",
                (job_id,),
            ).fetchall()
        return [_execution(json.loads(row[0])) for row in rows]

    def executions_for_device(self, device_id: str, limit: int = 10) -> list[tuple[Job, Execution]]:
        """The device's executions with their jobs, newest job first, at most ``limit``.

        No index on ``job_executions.device_id``: the scan takes about 10 ms at 100,000
        executions (100 jobs on 1,000 devices), fine for one dashboard page every 5 s.
        """
        with translated():
            rows = self._db.connection.execute(
                "SELECT j.document, e.document FROM job_executions e "
                "JOIN jobs j ON j.job_id = e.job_id WHERE e.device_id = ? "
                "ORDER BY j.created_at DESC, j.job_id DESC LIMIT ?",
                (device_id, limit),
            ).fetchall()
        return [(_job(json.loads(job)), _execution(json.loads(run))) for job, run in rows]
