"""``coldchain report``: a shipment's release report, or one device's over a window (PDF, HTML,
JSON, CSV), and ``report verify`` of an issued PDF. The command that loads fpdf.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO

import click

from coldchain import __version__
from coldchain.apps.cli.context import known_device, stores_of, window
from coldchain.apps.cli.options import DB_OPTION, PROFILE_OPTION, STORE_OPTION, format_option
from coldchain.apps.cli.profile import chosen_profile
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
from coldchain.core.alarms import Alarm, alarm_subject
from coldchain.core.audit import next_record
from coldchain.core.device_state import with_live_figures
from coldchain.core.errors import ConfigurationError
from coldchain.core.shipments import Shipments
from coldchain.core.shipments import subject as shipment_subject
from coldchain.core.timestamps import to_canonical
from coldchain.core.trip import TripSummary, summarise_trip


class _DefaultCommandGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to ``default``:
    ``report DEVICE ...`` and ``report --shipment ID`` keep working beside ``report verify``.
    """

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
@format_option("pdf", "html", "csv", "json", default="json")
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
        profile = chosen_profile(stores, profile_path)
        known_device(stores, device_id)
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
    verify` can tell a report this store issued from a self-consistent forgery.
    """
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
        profile = chosen_profile(stores, profile_path)
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
