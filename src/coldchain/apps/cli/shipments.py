"""Shipments and the audit trail: `coldchain shipment ...` and `coldchain audit list`."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from coldchain.adapters.sqlite import SqliteAuditLog, SqliteDatabase, SqliteProfileRecord
from coldchain.apps.cli.context import open_store, settings_of
from coldchain.apps.cli.options import BY_OPTION, DB_OPTION, FORMAT_OPTION, LIST_FORMAT
from coldchain.apps.cli.tables import add_row, echo_csv, echo_documents, keep_whole, local
from coldchain.apps.render import shipment_document
from coldchain.core.alarm_profile import default_profile
from coldchain.core.audit import AuditRecord
from coldchain.core.shipments import Decision, Shipment, Shipments, ShipmentStatus
from coldchain.core.timestamps import parse_iso

T = TypeVar("T")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}", param_hint=name) from None


def _with_shipments(ctx: click.Context, db: Path | None, work: Callable[[Shipments], T]) -> T:
    """Run ``work`` in one transaction of the local store (the checks and the append)."""
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        with database.transaction():
            return work(Shipments(SqliteAuditLog(database)))
    finally:
        database.close()


def _profile_name(database: SqliteDatabase) -> str:
    return (SqliteProfileRecord(database).remembered() or default_profile()).name


def _rows(documents: list[dict[str, Any]], columns: list[str], output: str, title: str) -> None:
    if output == "json":
        echo_documents(output, documents)
        return
    if output == "csv":  # a list cell (devices) as space-separated ids, as in the table
        flat = [
            {c: " ".join(v) if isinstance(v := d.get(c), list) else v for c in columns}
            for d in documents
        ]
        echo_csv(flat, columns)
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for document in documents:
        add_row(table, *(_cell(document.get(c)) for c in columns))
    Console().print(keep_whole(table, "id", "subject", "devices"))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


@click.group()
def shipment() -> None:
    """Shipments: a product travelling with devices, started, ended, released by QA."""


@shipment.command("create")
@click.argument("shipment_id")
@click.option("--product", required=True, help="What travels, e.g. 'Vaccine X, 40 cartons'.")
@click.option("--origin", required=True)
@click.option("--destination", required=True)
@click.option("--device", "devices", multiple=True, required=True, help="Repeatable.")
@click.option("--planned-start", default=None, help="ISO 8601 with a zone.")
@click.option("--planned-end", default=None, help="ISO 8601 with a zone.")
@BY_OPTION
@DB_OPTION
@click.pass_context
def shipment_create(
    ctx: click.Context,
    shipment_id: str,
    product: str,
    origin: str,
    destination: str,
    devices: tuple[str, ...],
    planned_start: str | None,
    planned_end: str | None,
    by: str | None,
    db: Path | None,
) -> None:
    """Create a planned shipment under the worker's alarm profile.

    Example: coldchain shipment create SH-1001 --product "Vaccine X" --origin Hamburg
    --destination Vienna --device reefer-0001 --device reefer-0002
    """
    start, end = _time(planned_start, "--planned-start"), _time(planned_end, "--planned-end")
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        profile = _profile_name(database)  # the rules the worker runs with
        with database.transaction():
            created = Shipments(SqliteAuditLog(database)).create(
                shipment_id,
                product,
                profile,
                origin,
                destination,
                list(devices),
                by or getpass.getuser(),
                datetime.now(UTC),
                start,
                end,
            )
    finally:
        database.close()
    click.echo(f"created {created.id} ({created.product}; {', '.join(created.devices)})")


@shipment.command("start")
@click.argument("shipment_id")
@click.option("--at", default=None, help="ISO 8601 with a zone [now].")
@BY_OPTION
@DB_OPTION
@click.pass_context
def shipment_start(
    ctx: click.Context, shipment_id: str, at: str | None, by: str | None, db: Path | None
) -> None:
    """Start a shipment: its devices' readings belong to it from now (or --at) on.

    Example: coldchain shipment start SH-1001
    """
    moment = _time(at, "--at") or datetime.now(UTC)
    done = _with_shipments(ctx, db, lambda s: s.start(shipment_id, by or getpass.getuser(), moment))
    click.echo(f"started {done.id} at {local(done.started_at)}")


@shipment.command("end")
@click.argument("shipment_id")
@click.option("--at", default=None, help="ISO 8601 with a zone [now].")
@BY_OPTION
@DB_OPTION
@click.pass_context
def shipment_end(
    ctx: click.Context, shipment_id: str, at: str | None, by: str | None, db: Path | None
) -> None:
    """End a shipment; QA can then decide.

    Example: coldchain shipment end SH-1001
    """
    moment = _time(at, "--at") or datetime.now(UTC)
    done = _with_shipments(ctx, db, lambda s: s.end(shipment_id, by or getpass.getuser(), moment))
    click.echo(f"ended {done.id} at {local(done.ended_at)}; pending QA decision")


@shipment.command("decide")
@click.argument("shipment_id")
@click.argument("decision", type=click.Choice([d.value for d in Decision]))
@click.option("--reason", required=True, help="Why (required; it goes into the audit trail).")
@BY_OPTION
@DB_OPTION
@click.pass_context
def shipment_decide(
    ctx: click.Context,
    shipment_id: str,
    decision: str,
    reason: str,
    by: str | None,
    db: Path | None,
) -> None:
    """Record QA's release decision (a later decision corrects it; both are kept).

    Example: coldchain shipment decide SH-1001 release --reason "no excursion"
    """
    who = by or getpass.getuser()
    done = _with_shipments(
        ctx,
        db,
        lambda s: s.decide(shipment_id, Decision(decision), reason, who, datetime.now(UTC)),
    )
    assert done.decision is not None
    click.echo(f"{done.id}: {done.decision.meaning} by {who} at {local(done.decision.at)}")


@shipment.command("show")
@click.argument("shipment_id")
@FORMAT_OPTION
@DB_OPTION
@click.pass_context
def shipment_show(ctx: click.Context, shipment_id: str, output: str, db: Path | None) -> None:
    """One shipment and its audit trail.

    Example: coldchain shipment show SH-1001
    """

    def work(shipments: Shipments) -> tuple[Shipment, list[AuditRecord]]:
        return shipments.get(shipment_id), shipments.history(shipment_id)

    found, history = _with_shipments(ctx, db, work)
    document = shipment_document(found)
    if output == "json":
        click.echo(json.dumps({**document, "audit": [r.document() for r in history]}, indent=2))
        return
    for key in ("id", "status", "product", "profile", "origin", "destination", "devices"):
        click.echo(f"{key:>12}: {_cell(document[key])}")
    for key in ("planned_start", "planned_end", "started_at", "ended_at"):
        moment = getattr(found, key)
        click.echo(f"{key:>12}: {local(moment)}")
    decision = found.decision
    click.echo(
        f"{'decision':>12}: "
        + (
            "pending"
            if decision is None
            else f"{decision.decision.value} ({decision.meaning}) by {decision.by}, "
            f"{local(decision.at)}: {decision.reason}"
        )
    )
    _print_audit(history)


@shipment.command("list")
@click.option("--status", type=click.Choice([s.value for s in ShipmentStatus]), default=None)
@LIST_FORMAT
@DB_OPTION
@click.pass_context
def shipment_list(ctx: click.Context, status: str | None, output: str, db: Path | None) -> None:
    """Every shipment.

    Example: coldchain shipment list --status active
    """
    wanted = None if status is None else ShipmentStatus(status)
    found = _with_shipments(ctx, db, lambda s: s.all(wanted))
    documents = [
        {**shipment_document(s), "decision": s.decision.decision.value if s.decision else None}
        for s in found
    ]
    columns = ["id", "status", "product", "origin", "destination", "devices", "decision"]
    _rows(documents, columns, output, f"{len(documents)} shipments")


def _print_audit(records: list[AuditRecord]) -> None:
    documents = [
        {**r.document(), "at": local(r.at), "corrects": r.corrects or "-"} for r in records
    ]
    _rows(
        documents,
        ["at", "subject", "seq", "action", "by", "reason", "corrects"],
        "table",
        "audit trail",
    )


@click.group()
def audit() -> None:
    """The append-only audit trail: shipments, acknowledgements, decisions."""


@audit.command("list")
@click.option("--subject", default=None, help="One subject, e.g. shipment/SH-1001 or alarm/ID.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@LIST_FORMAT
@DB_OPTION
@click.pass_context
def audit_list(
    ctx: click.Context, subject: str | None, limit: int, output: str, db: Path | None
) -> None:
    """Who did what, when and why, newest first (one subject: oldest first).

    Example: coldchain audit list --subject shipment/SH-1001
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        log = SqliteAuditLog(database)
        records = log.history(subject)[:limit] if subject else log.recent(limit)
    finally:
        database.close()
    if output == "table":
        _print_audit(records)
        return
    columns = ["at", "subject", "seq", "action", "by", "reason", "corrects"]
    _rows([r.document() for r in records], columns, output, "audit trail")
