"""Terminal and JSON renderings shared by the CLI commands: local time with the zone."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from coldchain.core.alarms import Alarm, peak_unit
from coldchain.core.shipments import ReleaseDecision, Shipment
from coldchain.core.timestamps import to_canonical

# C0 and C1 controls (ESC starts a terminal escape sequence), DEL, zero-width and
# bidirectional overrides: shown as U+FFFD so a device string cannot restyle or rewrite a
# terminal, nor hide what it says.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def plain(value: object) -> Text:
    """Text shown literally: never read as rich markup, control characters made visible."""
    return Text(_UNSAFE.sub("\ufffd", str(value)))


def add_row(table: Table, *cells: object) -> None:
    """A table row of :func:`plain` cells: device-supplied strings stay inert."""
    table.add_row(*(plain(cell) for cell in cells))


LIST_FORMAT = click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people; json or csv for programs and spreadsheets.",
)


def echo_csv(documents: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """A list as CSV on stdout: one row per document, the columns given (default: the first
    document's keys); nested values as JSON, None as an empty cell.
    """
    chosen = list(columns or (documents[0].keys() if documents else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(chosen)
    for document in documents:
        writer.writerow([_csv_cell(document.get(column)) for column in chosen])
    click.echo(out.getvalue(), nl=False)


def echo_documents(output: str, documents: Sequence[Mapping[str, Any]]) -> None:
    """``json`` or ``csv`` of a list of documents on stdout."""
    if output == "csv":
        echo_csv(documents)
    else:
        click.echo(json.dumps(list(documents), indent=2))


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def keep_whole(table: Table, *headers: str) -> Table:
    """Columns that are never cut or wrapped (ids: what the next command needs is copied from
    them); the others give way. Call after the rows are added.
    """
    for column in table.columns:
        if column.header in headers:
            cells = [c.cell_len if isinstance(c, Text) else len(str(c)) for c in column.cells]
            column.no_wrap = True
            column.min_width = max([len(str(column.header)), *cells])
    return table


def local(moment: datetime | None) -> str:
    """A stored UTC time shown in the machine's zone, with the zone."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def alarm_document(alarm: Alarm) -> dict[str, Any]:
    ack = alarm.acknowledgement
    return {
        "id": alarm.id,
        "device_id": alarm.device_id,
        "fleet_id": alarm.fleet_id,
        "rule": alarm.rule,
        "severity": alarm.severity.value,
        "state": alarm.state.value,
        "started_at": to_canonical(alarm.started_at),
        "raised_at": to_canonical(alarm.raised_at),
        "cleared_at": None if alarm.cleared_at is None else to_canonical(alarm.cleared_at),
        "duration_s": alarm.duration.total_seconds(),
        "peak": alarm.peak,
        "unit": peak_unit(alarm),
        "detail": alarm.detail,
        "acknowledgement": None
        if ack is None
        else {"by": ack.by, "at": to_canonical(ack.at), "comment": ack.comment},
    }


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


def shipment_document(shipment: Shipment) -> dict[str, Any]:
    decision = shipment.decision
    return {
        "id": shipment.id,
        "status": shipment.status.value,
        "product": shipment.product,
        "profile": shipment.profile,
        "origin": shipment.origin,
        "destination": shipment.destination,
        "devices": list(shipment.devices),
        "planned_start": _canonical(shipment.planned_start),
        "planned_end": _canonical(shipment.planned_end),
        "started_at": _canonical(shipment.started_at),
        "ended_at": _canonical(shipment.ended_at),
        "created_by": shipment.created_by,
        "decision": decision_document(decision),
    }


def decision_document(decision: ReleaseDecision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "decision": decision.decision.value,
        "meaning": decision.meaning,
        "reason": decision.reason,
        "by": decision.by,
        "at": to_canonical(decision.at),
    }


def _canonical(moment: datetime | None) -> str | None:
    return None if moment is None else to_canonical(moment)
