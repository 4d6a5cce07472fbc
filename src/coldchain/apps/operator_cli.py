"""Operator commands: devices, telemetry, excursions, dead letters, shipment reports.

They read the local SQLite store (``--db`` or ``<home>/coldchain.db``); times are stored in
UTC and shown in local time with the zone; ``--format json`` is there for scripts.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from coldchain import __version__
from coldchain.apps.clictx import DB_OPTION, PROFILE_OPTION, STORE_OPTION, stores_of, window
from coldchain.apps.operator_stores import OperatorStores
from coldchain.apps.render import (
    LIST_FORMAT,
    add_row,
    alarm_document,
    echo_csv,
    echo_documents,
    keep_whole,
    local,
    plain,
    span,
)
from coldchain.apps.reports import (
    render_html,
    render_pdf,
    report_warnings,
    summary_document,
    write_csv,
)
from coldchain.apps.shipment_report import build as build_report
from coldchain.apps.shipment_report import checksum as report_checksum
from coldchain.apps.shipment_report import local_zone_name, zone_named
from coldchain.apps.shipment_report import render_html as render_shipment_html
from coldchain.apps.shipment_report import render_pdf as render_shipment_pdf
from coldchain.apps.shipment_report import verify as verify_report
from coldchain.config import load_profile_file
from coldchain.core.alarm_profile import AlarmProfile, default_profile, profile_mapping
from coldchain.core.alarms import Alarm, alarm_subject, peak_unit
from coldchain.core.audit import next_record
from coldchain.core.device_state import with_live_figures
from coldchain.core.device_status import device_status
from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.shipments import Shipments
from coldchain.core.shipments import subject as shipment_subject
from coldchain.core.timestamps import parse_iso, to_canonical
from coldchain.core.trip import TripSummary, summarise_trip

FORMAT_OPTION = click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def _profile(stores: OperatorStores, path: Path | None) -> AlarmProfile:
    """An explicit profile file, else the one the worker recorded, else the built-in one."""
    if path is not None:
        return load_profile_file(path)
    return stores.recorded_profile() or default_profile()


def _device_rows(stores: OperatorStores, fleet: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    profile = _profile(stores, None)
    active = {a.device_id for a in stores.alarms.list(active=True, limit=1_000_000)}
    rows = []
    for device in stores.directory.devices():
        if fleet is not None and device["fleet_id"] != fleet:
            continue
        last = parse_iso(device["last_ts"])
        status = device_status(last, device["device_id"] in active, profile, now)
        rows.append({**device, "status": status.value})
    return rows


def _known(stores: OperatorStores, device_id: str) -> None:
    if device_id not in {d["device_id"] for d in stores.directory.devices()}:
        raise NotFoundError(f"unknown device {device_id!r}")


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
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if output == "csv":
        echo_csv(rows)
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
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
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
        _known(stores, device_id)
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


class _DefaultCommandGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to ``default``:
    ``report DEVICE ...`` and ``report --shipment ID`` keep working beside ``report verify``."""

    default = "for"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultCommandGroup)
def report() -> None:
    """Reports for QA release: by shipment, or by device and window; `report verify FILE`.

    Example: coldchain report --shipment SH-1001 --format pdf --tz Europe/Berlin
    """


@report.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DB_OPTION
@STORE_OPTION
@click.pass_context
def report_verify(ctx: click.Context, path: Path, db: Path | None) -> None:
    """Check that a report PDF is as it was issued (exit 1 if altered): its pages say what
    its attached data says, the data matches the printed checksum, and (when this store
    holds the shipment) the checksum is one this store issued.

    Example: coldchain report verify report-SH-1001.pdf
    """
    try:
        digest, shipment_id = verify_report(path)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    issued = _issued(ctx, db, shipment_id, digest)
    if issued is False:
        raise ConfigurationError(
            f"{path}: consistent, but {shipment_id}'s audit trail records no report with "
            f"SHA-256 {digest}: not issued by this store"
        )
    where = "; issued by this store" if issued else "; shipment not in this store"
    click.echo(f"{path}: intact, SHA-256 of the report data {digest}{where}")


@report.command("for")
@click.argument("device_id", required=False)
@click.option("--shipment", "shipment_id", default=None, help="A shipment's release report.")
@click.option("--from", "start", default=None, help="ISO 8601 with a zone (device form).")
@click.option("--to", "end", default=None, help="ISO 8601 with a zone (device form).")
@click.option("--tz", default=None, help="IANA zone for the times shown [the machine's].")
@PROFILE_OPTION
@click.option(
    "--format",
    "output",
    type=click.Choice(["pdf", "html", "csv", "json"]),
    default="json",
    show_default=True,
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[stdout for json/csv/html; report-DEVICE.pdf (report-SHIPMENT.pdf) for pdf]",
)
@DB_OPTION
@STORE_OPTION
@click.pass_context
def report_for(
    ctx: click.Context,
    device_id: str | None,
    shipment_id: str | None,
    start: str | None,
    end: str | None,
    tz: str | None,
    profile_path: Path | None,
    output: str,
    output_file: Path | None,
    db: Path | None,
) -> None:
    """A shipment's release report (`--shipment ID`), or one device over a window:
    completeness, min/max/mean, MKT, time in range, excursions; PDF and HTML.

    Example: coldchain report reefer-0001 --from 2024-01-15T00:00Z --to 2024-01-17T00:00Z
    --format pdf
    """
    if shipment_id is not None:
        if device_id is not None or start is not None or end is not None:
            raise click.UsageError("--shipment takes no DEVICE, --from or --to")
        _shipment_report(ctx, shipment_id, tz, profile_path, output, output_file, db)
        return
    if device_id is None or start is None or end is None:
        raise click.UsageError("give --shipment ID, or DEVICE with --from and --to")
    begin, until = window(None, start, end)
    stores = stores_of(ctx, db)
    try:
        profile = _profile(stores, profile_path)
        _known(stores, device_id)
        readings = list(
            stores.readings.between(device_id, to_canonical(begin), to_canonical(until))
        )
        if output == "csv":
            sink: IO[str] = output_file.open("w", newline="") if output_file else sys.stdout
            try:
                write_csv(readings, sink)
            finally:
                if output_file:
                    sink.close()
            return
    finally:
        stores.close()
    try:
        trip = summarise_trip(readings, begin, until, profile)
    except ValueError:
        raise ConfigurationError(f"{device_id} has no readings between {start} and {end}") from None
    zone = _zone(tz)
    now = datetime.now(UTC)
    if output == "pdf":
        path = output_file or Path(f"report-{device_id}.pdf")
        render_pdf(trip, readings, path, zone, now)
        click.echo(f"report written to {path}", err=True)
        return
    text = (
        json.dumps({**summary_document(trip), "warnings": report_warnings(trip, now)}, indent=2)
        if output == "json"
        else render_html(trip, readings, zone, now)
    )
    if output_file:
        output_file.write_text(text)
        click.echo(f"report written to {output_file}", err=True)
    else:
        click.echo(text)


@click.group()
def profile() -> None:
    """The alarm profile: rules, band, silence and reminder times."""


@profile.command("show")
@PROFILE_OPTION
@click.option("--builtin", is_flag=True, help="The built-in default profile.")
@FORMAT_OPTION
@DB_OPTION
@STORE_OPTION
@click.pass_context
def profile_show(
    ctx: click.Context, profile_path: Path | None, builtin: bool, output: str, db: Path | None
) -> None:
    """The rules the worker runs with, and the band they keep cargo in. The JSON is what
    Terraform hands the Lambda (terraform/alarm-profile.json).

    Example: coldchain profile show --builtin --format json > terraform/alarm-profile.json
    """
    if builtin and profile_path is not None:
        raise click.UsageError("give --profile FILE or --builtin, not both")
    if builtin or profile_path is not None:
        chosen = default_profile() if builtin else load_profile_file(profile_path)  # type: ignore[arg-type]
    else:
        try:
            stores = stores_of(ctx, db)
        except ConfigurationError:  # no worker has run here: it would run with this one
            chosen = default_profile()
        else:
            try:
                chosen = _profile(stores, None)
            finally:
                stores.close()
    document = {**profile_mapping(chosen), "band": chosen.band}
    if output == "json":
        click.echo(json.dumps(document, indent=2))
        return
    band = chosen.band
    limits = f"{band[0]:g} to {band[1]:g} °C" if band else "none"
    click.echo(
        f"profile {chosen.name}: band {limits}, silent after {document['silence_after']}, "
        f"reminders every {document['reminder_every']}"
    )
    table = Table()
    for column in ("rule", "severity", "condition"):
        table.add_column(column, no_wrap=column != "condition")
    for rule in chosen.rules:
        table.add_row(rule.name, rule.severity.value, rule.describe())
    Console().print(table)


def _zone(name: str | None) -> tzinfo:
    """``--tz`` (an IANA name), else the machine's zone."""
    try:
        return zone_named(name or local_zone_name())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None


def _record_report(
    ctx: click.Context, db: Path | None, shipment_id: str, digest: str, at: datetime
) -> None:
    """The checksum of an issued report goes into the shipment's audit trail, so `report
    verify` can tell a report this store issued from a self-consistent forgery."""
    stores = stores_of(ctx, db)
    try:
        with stores.unit_of_work():
            audit = stores.audit
            subject = shipment_subject(shipment_id)
            data = {"sha256": digest}
            who = getpass.getuser()
            history = audit.history(subject)
            audit.append(next_record(history, subject, "report issued", who, at, "", data))
    finally:
        stores.close()


def _issued(ctx: click.Context, db: Path | None, shipment_id: str, digest: str) -> bool | None:
    """Whether this store issued a report with ``digest`` (None: no such shipment here)."""
    try:
        stores = stores_of(ctx, db)
    except ConfigurationError:  # no store here
        return None
    try:
        history = stores.audit.history(shipment_subject(shipment_id))
    finally:
        stores.close()
    if not history:
        return None
    return any(r.action == "report issued" and r.data.get("sha256") == digest for r in history)


def _shipment_report(
    ctx: click.Context,
    shipment_id: str,
    tz: str | None,
    profile_path: Path | None,
    output: str,
    output_file: Path | None,
    db: Path | None,
) -> None:
    zone_name = tz or local_zone_name()
    zone = _zone(zone_name)
    if output == "csv":
        raise click.UsageError("--format csv is for one device's readings; use pdf, html or json")
    now = datetime.now(UTC)
    stores = stores_of(ctx, db)
    try:
        profile = _profile(stores, profile_path)
        audit = stores.audit
        shipment = Shipments(audit).get(shipment_id)
        trips: dict[str, TripSummary | None] = {}
        alarms: list[Alarm] = []
        begin, until = shipment.started_at, shipment.ended_at or now
        store, alarm_store = stores.readings, stores.alarms
        for device_id in shipment.devices if begin is not None else ():
            assert begin is not None
            readings = list(store.between(device_id, to_canonical(begin), to_canonical(until)))
            try:
                trips[device_id] = summarise_trip(readings, begin, until, profile)
            except ValueError:
                trips[device_id] = None
            alarms += [
                a
                for a in alarm_store.list(device_id=device_id, limit=100_000)
                if a.started_at <= until and (a.cleared_at or until) >= begin
            ]
        alarms = with_live_figures(
            sorted(alarms, key=lambda a: (a.started_at, a.device_id)),
            stores.states.get_many,
        )
        acknowledgements = {a.id: audit.history(alarm_subject(a.id)) for a in alarms}
        history = audit.history(shipment_subject(shipment_id))
    finally:
        stores.close()
    document = build_report(
        shipment,
        trips,
        alarms,
        acknowledgements,
        history,
        profile,
        getpass.getuser(),
        now,
        __version__,
        zone_name,
    )
    if output == "pdf":
        path = output_file or Path(f"report-{shipment_id}.pdf")
        render_shipment_pdf(document, zone, path)
        digest = report_checksum(document)
        _record_report(ctx, db, shipment_id, digest, now)
        click.echo(f"report written to {path}; SHA-256 {digest}", err=True)
        return
    text = (
        json.dumps({**document, "sha256": report_checksum(document)}, indent=2)
        if output == "json"
        else render_shipment_html(document, zone)
    )
    if output_file:
        output_file.write_text(text)
        click.echo(f"report written to {output_file}", err=True)
    else:
        click.echo(text)


COMMANDS = (devices, device, telemetry, excursions, report, profile)
