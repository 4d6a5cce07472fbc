"""``coldchain alarms list|ack``: alarm records, and acknowledging them with a comment."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from coldchain.apps.cli.context import stores_of
from coldchain.apps.cli.options import BY_OPTION, DB_OPTION, LIST_FORMAT, STORE_OPTION
from coldchain.apps.cli.tables import add_row, echo_documents, keep_whole, local, span
from coldchain.apps.render import alarm_document
from coldchain.core.alarms import Alarm, acknowledge_alarm, peak_unit
from coldchain.core.device_state import with_live_figures


@click.group()
def alarms() -> None:
    """Alarm records: list them, acknowledge them (with a comment)."""


@alarms.command("list")
@click.option("--active", is_flag=True, help="Only alarms not yet cleared.")
@click.option("--device", default=None)
@click.option("--fleet", default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@LIST_FORMAT
@DB_OPTION
@STORE_OPTION
@click.pass_context
def alarms_list(
    ctx: click.Context,
    active: bool,
    device: str | None,
    fleet: str | None,
    limit: int,
    output: str,
    db: Path | None,
) -> None:
    """Alarm records, newest first.

    Example: coldchain alarms list --active --fleet reefer-fleet
    """
    stores = stores_of(ctx, db)
    try:
        found = stores.alarms.list(
            active=True if active else None, device_id=device, fleet_id=fleet, limit=limit
        )
        found = with_live_figures(found, stores.states.get_many)
    finally:
        stores.close()
    if output in ("json", "csv"):
        echo_documents(output, [alarm_document(alarm) for alarm in found])
        return
    print_alarms(found)


@alarms.command("ack")
@click.argument("alarm_id")
@click.option("--comment", required=True, help="Why, and what was done (required).")
@BY_OPTION
@DB_OPTION
@STORE_OPTION
@click.pass_context
def alarms_ack(
    ctx: click.Context, alarm_id: str, comment: str, by: str | None, db: Path | None
) -> None:
    """Acknowledge an alarm (a comment is required).

    Example: coldchain alarms ack 3f2a9c1b7d0e --comment "moved to cold room"
    """
    stores = stores_of(ctx, db)
    who = by or getpass.getuser()
    try:
        with stores.unit_of_work():
            acked, record = acknowledge_alarm(
                stores.alarms,
                stores.audit,
                stores.alarms.resolve(alarm_id),
                who,
                comment,
                datetime.now(UTC),
            )
    finally:
        stores.close()
    again = "" if record.seq == 1 else f" (acknowledgement {record.seq}; the earlier ones are kept)"
    click.echo(f"acknowledged {acked.id} ({acked.rule} on {acked.device_id}) by {who}{again}")


def print_alarms(alarms: list[Alarm], console: Console | None = None) -> None:
    table = Table(title=f"{len(alarms)} alarms")
    for column in (
        "id",
        "device",
        "rule",
        "severity",
        "state",
        "started",
        "duration",
        "peak",
        "acknowledged",
    ):
        table.add_column(column)
    for alarm in alarms:
        ack = alarm.acknowledgement
        add_row(
            table,
            alarm.id,
            alarm.device_id,
            alarm.rule,
            alarm.severity.value,
            alarm.state.value,
            local(alarm.started_at),
            span(alarm.duration.total_seconds()),
            f"{alarm.peak:g} {peak_unit(alarm)}",
            "-" if ack is None else f"{ack.by}: {ack.comment}",
        )
    (console or Console()).print(keep_whole(table, "id", "device"))
