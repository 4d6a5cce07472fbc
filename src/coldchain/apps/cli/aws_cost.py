"""`coldchain aws cost`: the monthly AWS bill of a fleet, line by line, from the cost model
(:mod:`coldchain.cost.model`) with the packaged prices and measured figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import click

from coldchain.apps.cli.options import FORMAT_OPTION
from coldchain.core.alarm_profile import parse_duration
from coldchain.cost.data import load_measured, load_prices
from coldchain.cost.inputs import CostInputError, Measured, Price, Prices
from coldchain.cost.model import bill, cheapest
from coldchain.cost.scenario import (
    DEFAULT_MAX_DELAY_S,
    MAX_BATCH,
    Bill,
    Capacity,
    FleetIndex,
    Mode,
    Scenario,
    TableClass,
)

CHEAPEST = "cheapest"


def _interval(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Seconds: ``10``, ``10s``, ``1m``."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parse_duration(value).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise click.BadParameter(f"{value!r}: must be a positive time")
    return seconds


@click.command("cost")
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Devices in the fleet.",
)
@click.option(
    "--interval",
    default="10s",
    show_default=True,
    callback=_interval,
    help="Time between a device's readings: seconds, or 10s, 1m.",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.LAMBDA.value,
    show_default=True,
    help="Ingest path: IoT rule to Lambda, through Kinesis, or Basic Ingest to Lambda.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH),
    default=1,
    show_default=True,
    help="Readings a device sends in one message.",
)
@click.option(
    "--fleet-index",
    type=click.Choice([f.value for f in FleetIndex]),
    default=FleetIndex.ALL.value,
    show_default=True,
    help="The readings' fleet GSI: as deployed (all), keys only, or none (dropped/sparse).",
)
@click.option(
    "--capacity",
    type=click.Choice([CHEAPEST, *(c.value for c in Capacity)]),
    default=CHEAPEST,
    show_default=True,
    help="The readings table's capacity mode.",
)
@click.option(
    "--table-class",
    type=click.Choice([CHEAPEST, *(c.value for c in TableClass)]),
    default=CHEAPEST,
    show_default=True,
    help="The readings table's class.",
)
@click.option(
    "--dashboard-views",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Dashboard views a month (each runs its Logs Insights queries).",
)
@click.option(
    "--cheapest",
    "search",
    is_flag=True,
    help=f"Search modes and batch sizes (uploads at most {DEFAULT_MAX_DELAY_S:g} s apart) "
    "for the cheapest; --mode and --batch are ignored.",
)
@FORMAT_OPTION
def cost(
    devices: int,
    interval: float,
    mode: str,
    batch: int,
    fleet_index: str,
    capacity: str,
    table_class: str,
    dashboard_views: int,
    search: bool,
    output: str,
) -> None:
    """The monthly AWS bill of a fleet and its cost per million readings, line by line:
    prices from the packaged price list (with dates and sources), Lambda time, log bytes,
    DynamoDB capacity and item sizes measured on moto by the real handlers.

    Example: coldchain aws cost --devices 1000 --interval 10s --mode basic-ingest --batch 15
    """
    try:
        prices, measured = load_prices(), load_measured()
    except CostInputError as exc:
        raise click.ClickException(f"cost model data: {exc}") from None
    scenario = _scenario(
        Scenario(devices, interval, Mode(mode), batch, FleetIndex(fleet_index), None, None),
        capacity,
        table_class,
        dashboard_views,
    )
    result = (cheapest if search else bill)(scenario, prices, measured)
    if output == "json":
        click.echo(json.dumps(bill_document(result, prices, measured), indent=2))
    else:
        click.echo(render(result, prices, measured))


def _scenario(scenario: Scenario, capacity: str, table_class: str, views: int) -> Scenario:
    return replace(
        scenario,
        capacity=None if capacity == CHEAPEST else Capacity(capacity),
        table_class=None if table_class == CHEAPEST else TableClass(table_class),
        dashboard_views=views,
    )


def command_line(b: Bill) -> str:
    """The ``coldchain aws cost`` command that prints this bill (storage choices explicit)."""
    s = b.scenario
    return (
        f"coldchain aws cost --devices {s.devices} --interval {s.interval_s:g}s "
        f"--mode {s.mode} --batch {s.batch}"
        + (f" --fleet-index {s.fleet_index}" if s.fleet_index is not FleetIndex.ALL else "")
        + (f" --capacity {s.capacity}" if s.capacity else "")
        + (f" --table-class {s.table_class}" if s.table_class else "")
    )


def render(b: Bill, prices: Prices, measured: Measured) -> str:
    """The bill as a text table, with how each line was figured and what is measured."""
    s = b.scenario
    name_width = max(len(line.name) for line in b.lines)
    header = (
        f"{s.devices:,} devices, a reading every {s.interval_s:g} s, {s.mode}, "
        f"{s.batch} reading(s) a message: {b.readings:,.0f} readings a month\n"
        f"readings table: {s.capacity}, {s.table_class}; fleet index: {s.fleet_index}\n"
    )
    rows = [f"{'line':<{name_width}}  {'$/month':>10}  {'$/M readings':>12}  basis"]
    for line in b.lines:
        mark = "*" if line.measured else " "
        rows.append(
            f"{line.name:<{name_width}}  {line.monthly:>10,.2f}  {line.per_million:>12.4f} "
            f"{mark}{_quantity(line.quantity)} {line.unit}, {_rate(prices[line.price_key])}"
        )
    rows.append(f"{'TOTAL':<{name_width}}  {b.monthly:>10,.2f}  {b.per_million:>12.4f}")
    notes = [f"  {line.name}: {line.note}" for line in b.lines]
    return "\n".join(
        [header, *rows, "", "How each line is figured:", *notes, "", *footer(b, prices, measured)]
    )


def footer(b: Bill, prices: Prices, measured: Measured) -> list[str]:
    """What is measured, what is priced, and what is assumed."""
    unverified = prices.unverified()
    lines = [
        f"* measured: quantities resting on figures measured on moto by the real handlers "
        f"({measured.date}, `{measured.command}`, {measured.machine}): payload and item sizes, "
        f"DynamoDB calls per reading, log bytes (the per-reading log line is "
        f"{measured.reading_log_bytes} B), Lambda time. moto timing is not Lambda timing: with "
        f"a pessimistic Lambda time the total is ${b.lambda_estimate_per_million:.3f}/M.",
        f"Priced: us-east-1 list prices of {prices.date} (src/coldchain/data/aws_prices.json, "
        f"each with its source); {len(unverified)} of {len(prices.items)} not checked against "
        f"AWS's pages: {', '.join(unverified)}. No free tier.",
    ]
    if b.alternatives:
        others = "; ".join(f"{name} ${value:.3f}/M" for name, value in b.alternatives)
        lines.append(f"Other readings-table choices: {others}.")
    lines.extend(b.notes)
    return lines


def bill_document(b: Bill, prices: Prices, measured: Measured) -> dict[str, Any]:
    s = b.scenario
    return {
        "command": command_line(b),
        "scenario": {
            "devices": s.devices,
            "interval_s": s.interval_s,
            "mode": str(s.mode),
            "batch": s.batch,
            "fleet_index": str(s.fleet_index),
            "capacity": str(s.capacity),
            "table_class": str(s.table_class),
            "dashboard_views": s.dashboard_views,
        },
        "readings_per_month": b.readings,
        "monthly_usd": round(b.monthly, 2),
        "per_million_readings_usd": round(b.per_million, 4),
        "per_million_with_pessimistic_lambda_usd": round(b.lambda_estimate_per_million, 4),
        "lines": [
            {
                "name": line.name,
                "monthly_usd": round(line.monthly, 4),
                "per_million_readings_usd": round(line.per_million, 6),
                "quantity": line.quantity,
                "unit": line.unit,
                "unit_price_usd": line.unit_price,
                "price": line.price_key,
                "measured": line.measured,
                "note": line.note,
            }
            for line in b.lines
        ],
        "alternatives": [{"choice": n, "per_million_readings_usd": v} for n, v in b.alternatives],
        "notes": list(b.notes),
        "prices": {"date": prices.date, "region": prices.region, "unverified": prices.unverified()},
        "measured": {
            "date": measured.date,
            "command": measured.command,
            "machine": measured.machine,
        },
    }


def _rate(price: Price) -> str:
    if price.per == 1:
        return f"${price.usd:g} each"
    if price.per == 1_000_000:
        return f"${price.usd:g} a million"
    return f"${price.usd:g} per {price.per:g}"


def _quantity(value: float) -> str:
    for limit, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if value >= limit:
            return f"{value / limit:,.1f}{suffix}"
    return f"{value:,.4g}"
