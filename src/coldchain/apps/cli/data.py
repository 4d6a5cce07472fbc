"""What the devices sent: ``devices``, ``device show``, ``telemetry`` and ``excursions``.

They read the store (``--db`` or ``<home>/coldchain.db``, or ``--store``); times are stored in
UTC and shown in local time with the zone; ``--format json`` is there for scripts.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from coldchain.apps.cli.context import known_device, stores_of, window
from coldchain.apps.cli.options import DB_OPTION, FORMAT_OPTION, LIST_FORMAT, STORE_OPTION
from coldchain.apps.cli.profile import chosen_profile
from coldchain.apps.cli.tables import (
    add_row,
    echo_documents,
    keep_whole,
    local,
    plain,
    span,
)
from coldchain.apps.operator_stores import OperatorStores
from coldchain.apps.render import alarm_document
from coldchain.apps.reports import write_csv
from coldchain.core.alarms import peak_unit
from coldchain.core.device_status import device_status
from coldchain.core.errors import NotFoundError
from coldchain.core.timestamps import parse_iso, to_canonical


def _device_rows(stores: OperatorStores, fleet: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    profile = chosen_profile(stores, None)
    active = {a.device_id for a in stores.alarms.list(active=True, limit=1_000_000)}
    rows = []
    for device in stores.directory.devices():
        if fleet is not None and device["fleet_id"] != fleet:
            continue
        last = parse_iso(device["last_ts"])
        status = device_status(last, device["device_id"] in active, profile, now)
        rows.append({**device, "status": status.value})
    return rows


@click.command()
@click.option("--fleet", default=None)
@LIST_FORMAT
@DB_OPTION
@STORE_OPTION
@click.pass_context
def devices(ctx: click.Context, fleet: str | None, output: str, db: Path | None) -> None:
    """Every device: fleet, last seen, last temperature, battery, firmware, status.

    Example: coldchain devices --fleet reefer-fleet
    """
    stores = stores_of(ctx, db)
    try:
        rows = _device_rows(stores, fleet)
    finally:
        stores.close()
    if output in ("json", "csv"):
        echo_documents(output, rows)
        return
    table = Table(title=f"{len(rows)} devices")
    for column in ("device", "fleet", "last seen", "temp °C", "battery %", "firmware", "status"):
        table.add_column(column)
    for row in rows:
        add_row(
            table,
            row["device_id"],
            row["fleet_id"] or "-",
            local(parse_iso(row["last_ts"])),
            f"{row['temperature_c']:.2f}",
            f"{row['battery_pct']:.0f}",
            row["firmware_version"] or "-",
            row["status"],
        )
    Console().print(keep_whole(table, "device", "fleet"))


@click.group()
def device() -> None:
    """One device."""


@device.command("show")
@click.argument("device_id")
@FORMAT_OPTION
@DB_OPTION
@STORE_OPTION
@click.pass_context
def device_show(ctx: click.Context, device_id: str, output: str, db: Path | None) -> None:
    """A device's latest state, recent alarms and events.

    Example: coldchain device show reefer-0001
    """
    stores = stores_of(ctx, db)
    try:
        found = [r for r in _device_rows(stores, None) if r["device_id"] == device_id]
        if not found:
            raise NotFoundError(f"unknown device {device_id!r}")
        alarms = stores.alarms.list(device_id=device_id, limit=20)
        events = stores.events.list(device_id=device_id, limit=1_000_000)[-20:]
    finally:
        stores.close()
    document = {
        **found[0],
        "alarms": [alarm_document(a) for a in alarms],
        "events": [
            {"kind": e.kind.value, "timestamp": e.timestamp, "value": e.value} for e in events
        ],
    }
    if output == "json":
        click.echo(json.dumps(document, indent=2))
        return
    console = Console()
    for key in (
        "device_id",
        "fleet_id",
        "status",
        "first_ts",
        "last_ts",
        "readings",
        "temperature_c",
        "humidity_pct",
        "battery_pct",
        "shock_g",
        "latitude",
        "longitude",
        "firmware_version",
        "seq",
    ):
        value = document[key]
        if key.endswith("_ts"):
            value = local(parse_iso(value))
        shown = plain(value if value is not None else "-")
        console.print(Text.assemble((f"{key:>16}", "bold"), "  ", shown))
    listed = ", ".join(f"{a.rule} ({a.state.value}, {local(a.started_at)})" for a in alarms)
    console.print(Text.assemble((f"{'alarms':>16}", "bold"), "  ", plain(listed or "none")))


@click.command()
@click.argument("device_id")
@click.option("--since", default=None, help="e.g. 2h, 30m, 7d.")
@click.option("--from", "start", default=None, help="ISO 8601 with a zone.")
@click.option("--to", "end", default=None, help="ISO 8601 with a zone [now].")
@LIST_FORMAT
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@DB_OPTION
@STORE_OPTION
@click.pass_context
def telemetry(
    ctx: click.Context,
    device_id: str,
    since: str | None,
    start: str | None,
    end: str | None,
    output: str,
    output_file: Path | None,
    db: Path | None,
) -> None:
    """A device's readings in a window, streamed (a month exports in flat memory).

    Example: coldchain telemetry reefer-0001 --since 24h --format csv -o reefer-0001.csv
    """
    begin, until = window(since, start, end, default=None)
    stores = stores_of(ctx, db)
    try:
        known_device(stores, device_id)
        readings = stores.readings.between(device_id, to_canonical(begin), to_canonical(until))
        sink: IO[str] = output_file.open("w", newline="") if output_file else sys.stdout
        try:
            if output_file is not None:
                total = stores.directory.count(device_id, begin, until)
                with Progress(console=Console(stderr=True), transient=True) as progress:
                    task = progress.add_task(f"exporting {device_id}", total=total)

                    def counted() -> Any:
                        for n, reading in enumerate(readings, start=1):
                            if n % 1000 == 0:
                                progress.update(task, completed=n)
                            yield reading

                    written = _write(output, counted(), sink)
                click.echo(f"{written:,} readings written to {output_file}", err=True)
            else:
                _write(output, readings, sink)
        finally:
            if output_file is not None:
                sink.close()
    finally:
        stores.close()


def _write(output: str, readings: Any, sink: IO[str]) -> int:
    if output == "csv":
        return write_csv(readings, sink)
    count = 0
    if output == "json":
        sink.write("[")
        for count, reading in enumerate(readings, start=1):
            sink.write(("," if count > 1 else "") + "\n" + json.dumps(reading.to_wire()))
        sink.write("\n]\n")
        return count
    sink.write(f"{'time':<28}{'temp °C':>9}{'hum %':>7}{'shock g':>9}{'bat %':>7}{'seq':>8}\n")
    for r in readings:
        count += 1
        sink.write(
            f"{local(r.at):<28}{r.temperature_c:>9.2f}{r.humidity_pct:>7.1f}"
            f"{r.shock_g:>9.2f}{r.battery_pct:>7.1f}{'' if r.seq is None else r.seq:>8}\n"
        )
    return count


@click.command()
@click.option("--fleet", default=None)
@click.option("--device", "device_id", default=None)
@click.option("--since", default=None, help="Only occurrences started within, e.g. 24h.")
@LIST_FORMAT
@DB_OPTION
@STORE_OPTION
@click.pass_context
def excursions(
    ctx: click.Context,
    fleet: str | None,
    device_id: str | None,
    since: str | None,
    output: str,
    db: Path | None,
) -> None:
    """Alarm occurrences with start, end, duration and peak.

    Example: coldchain excursions --since 24h
    """
    begin = window(since, None, None)[0] if since else None
    stores = stores_of(ctx, db)
    try:
        found = stores.alarms.list(device_id=device_id, fleet_id=fleet, limit=100_000)
    finally:
        stores.close()
    found = [a for a in found if begin is None or a.started_at >= begin]
    if output in ("json", "csv"):
        echo_documents(output, [alarm_document(a) for a in found])
        return
    table = Table(title=f"{len(found)} excursions")
    for column in ("device", "rule", "severity", "start", "end", "duration", "peak"):
        table.add_column(column)
    for a in found:
        add_row(
            table,
            a.device_id,
            a.rule,
            a.severity.value,
            local(a.started_at),
            local(a.cleared_at),
            span(a.duration.total_seconds()),
            f"{a.peak:g} {peak_unit(a)}",
        )
    Console().print(keep_whole(table, "device"))
