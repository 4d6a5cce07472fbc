"""`coldchain firmware add` and `coldchain job create|show|list|cancel`: firmware rollouts to
the local fleet (core.jobs); the control service rolls them out and serves the images.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from coldchain.adapters.firmware_files import FirmwareFiles
from coldchain.adapters.sqlite import SqliteReadModel
from coldchain.adapters.sqlite.jobs import SqliteJobStore, execution_document, job_document
from coldchain.apps.cli.context import open_store, settings_of
from coldchain.apps.cli.options import DB_OPTION, FORMAT_OPTION
from coldchain.apps.cli.tables import add_row, keep_whole, local
from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.jobs import (
    Execution,
    Job,
    JobStatus,
    cancelled,
    check_version,
    parse_percent,
    parse_rate,
    parse_target,
)


@click.group()
def firmware() -> None:
    """Firmware images the control service can hand to devices."""


@firmware.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="The version the image installs.")
@DB_OPTION
@click.pass_context
def firmware_add(ctx: click.Context, file: Path, version: str, db: Path | None) -> None:
    """Register an image.

    Example: coldchain firmware add build/reefer-2.2.0.bin --version 2.2.0
    """
    settings = settings_of(ctx).override(db_path=db)
    check_version(version)
    digest, size = FirmwareFiles(settings.home / "firmware").add(file, version)
    database = open_store(settings)
    try:
        SqliteJobStore(database).add_firmware(version, digest, size, datetime.now(UTC))
    finally:
        database.close()
    click.echo(f"firmware {version}: {size:,} bytes, SHA-256 {digest}")


@click.group()
def job() -> None:
    """Firmware jobs: roll a version out to a fleet or to the devices on a version."""


@job.command("create")
@click.option("--target", required=True, help="fleet=FLEET or firmware=VERSION (devices on it).")
@click.option("--firmware", "version", required=True, help="The version to install.")
@click.option("--rollback", default=None, help="Version to revert to on failure [their current].")
@click.option("--rate", default=None, help="At most this many devices a minute, e.g. 10/min.")
@click.option("--abort-failed", default=None, help="Stop when more than this share failed: 20%.")
@DB_OPTION
@click.pass_context
def job_create(
    ctx: click.Context,
    target: str,
    version: str,
    rollback: str | None,
    rate: str | None,
    abort_failed: str | None,
    db: Path | None,
) -> None:
    """Create a job for every device the target names (as of now).

    Example: coldchain job create --target fleet=reefer-fleet --firmware 2.2.0 --rate 10/min
    --abort-failed 20%
    """
    kind, value = parse_target(target)
    rate_per_minute = None if rate is None else parse_rate(rate)
    abort_pct = None if abort_failed is None else parse_percent(abort_failed)
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        store = SqliteJobStore(database)
        image = store.firmware(check_version(version))
        if image is None:
            raise NotFoundError(f"no firmware {version} (add it with coldchain firmware add)")
        rows = SqliteReadModel(database).devices()
        field = "fleet_id" if kind == "fleet" else "firmware_version"
        targeted = [r for r in rows if r[field] == value and r["firmware_version"] != version]
        if not targeted:
            raise ConfigurationError(f"no device matches {target} (that is not on {version})")
        current = {str(r["firmware_version"]) for r in targeted}
        if rollback is None and len(current) == 1:
            rollback = current.pop()
        now = datetime.now(UTC)
        created = Job(
            job_id=f"fw-{version}-{uuid.uuid4().hex[:8]}",
            target=target,
            firmware_version=version,
            sha256=image[0],
            rollback_version=rollback,
            rate_per_minute=rate_per_minute,
            abort_failed_pct=abort_pct,
            created_at=now,
        )
        with database.transaction():  # the control service never sees a job without devices
            store.save_job(created)
            store.save_executions(
                [Execution(created.job_id, str(r["device_id"])) for r in targeted]
            )
    finally:
        database.close()
    click.echo(f"job {created.job_id}: {version} to {len(targeted)} devices ({target})")


@job.command("show")
@click.argument("job_id")
@FORMAT_OPTION
@DB_OPTION
@click.pass_context
def job_show(ctx: click.Context, job_id: str, output: str, db: Path | None) -> None:
    """A job's status, counts and each device's execution.

    Example: coldchain job show fw-2.2.0-1a2b3c4d
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        store = SqliteJobStore(database)
        found = store.require(job_id)
        executions = store.executions(job_id)
    finally:
        database.close()
    counts = Counter(e.status.value for e in executions)
    if output == "json":
        document = {
            **job_document(found),
            "counts": dict(sorted(counts.items())),
            "executions": [execution_document(e) for e in executions],
        }
        click.echo(json.dumps(document, indent=2))
        return
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"job {found.job_id}: {found.status.value}; {summary}")
    table = Table()
    for column in ("device", "status", "started", "details"):
        table.add_column(column)
    for e in executions:
        add_row(
            table,
            e.device_id,
            e.status.value,
            local(e.started_at),
            json.dumps(e.details or {}, sort_keys=True),
        )
    Console().print(keep_whole(table, "device"))


@job.command("list")
@DB_OPTION
@click.pass_context
def job_list(ctx: click.Context, db: Path | None) -> None:
    """Every job, oldest first.

    Example: coldchain job list
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        jobs = SqliteJobStore(database).jobs()
    finally:
        database.close()
    for found in jobs:
        status = found.status.value
        click.echo(f"{found.job_id}  {status:<11} {found.target} -> {found.firmware_version}")


@job.command("cancel")
@click.argument("job_id")
@DB_OPTION
@click.pass_context
def job_cancel(ctx: click.Context, job_id: str, db: Path | None) -> None:
    """Stop a rollout: executions not yet started are cancelled.

    Example: coldchain job cancel fw-2.2.0-1a2b3c4d
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        store = SqliteJobStore(database)
        found = store.require(job_id)
        if found.status is not JobStatus.IN_PROGRESS:
            raise ConfigurationError(f"job {job_id} is already {found.status.value}")
        with database.transaction():
            stopped, dropped = cancelled(found, store.executions(job_id), datetime.now(UTC))
            store.save_job(stopped)
            store.save_executions(dropped)
    finally:
        database.close()
    click.echo(f"job {job_id} cancelled; {len(dropped)} executions not started are cancelled")
