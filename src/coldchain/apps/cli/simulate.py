"""``coldchain simulate``: one simulated device, or a fleet, publishing over mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coldchain.apps.cli.context import settings_of
from coldchain.apps.simulator.run import (
    DEFAULT_DEVICE_ID,
    MQTTS_PORT,
    SimulateRequest,
    env_defaults,
)
from coldchain.apps.simulator.run import simulate as run_simulation
from coldchain.core.batches import MAX_READINGS
from coldchain.core.errors import ColdchainError


@click.command()
@click.option("--endpoint", default=None, help="Broker host [env IOT_ENDPOINT; 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Broker port [8883].")
@click.option(
    "--cert",
    type=click.Path(path_type=Path),
    default=None,
    help="Device certificate [env CERT_PATH; else issued by the local PKI].",
)
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    default=None,
    help="Device private key [env KEY_PATH].",
)
@click.option(
    "--ca",
    type=click.Path(path_type=Path),
    default=None,
    help="CA that signed the broker's certificate [env CA_PATH; the local CA].",
)
@click.option(
    "--device-id", default=None, help="One device's id [env DEVICE_ID; cold-chain-sim-01]."
)
@click.option("--fleet-id", default=None, help="Fleet id in every reading [env FLEET_ID].")
@click.option("--firmware-version", default=None, help="[env FIRMWARE_VERSION; 2.1.4].")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Seconds between readings of one device [env PUBLISH_INTERVAL_S; 10].",
)
@click.option(
    "--devices",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Run a fleet of N devices (<prefix>-0001 ...) instead of one.",
)
@click.option("--device-prefix", default="reefer", show_default=True)
@click.option(
    "--scenario",
    default=None,
    help="mix (fleet default), healthy (single default), door-open, compressor-failure, "
    "freezing, rough-road, low-battery, outage.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after seconds.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Readings per device.")
@click.option(
    "--buffer",
    "buffer_size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Readings each device keeps while offline.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_READINGS),
    default=1,
    show_default=True,
    help=f"Readings per message, 1 to {MAX_READINGS} (e.g. --batch 10): a batch goes when N "
    "are buffered or the oldest has waited N intervals; a backlog replays in batches of N.",
)
@click.option(
    "--firmware-failure-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of the devices whose firmware updates fail and roll back (e.g. 0.1).",
)
@click.option(
    "--basic-ingest",
    "basic_ingest",
    default=None,
    metavar="RULE",
    help="AWS IoT: publish through Basic Ingest ($aws/rules/RULE/...), no messaging charge; "
    "RULE is the topic rule's name (terraform: <name_prefix>_telemetry, '-' as '_').",
)
@click.option("--gps/--no-gps", default=False, show_default=True)
@click.option("--mqtt-version", type=click.Choice(["5", "3.1.1"]), default="5", show_default=True)
@click.pass_context
def simulate(ctx: click.Context, /, **options: Any) -> None:
    """Simulate one device (drop-in for the original simulator) or a fleet.

    Examples: coldchain simulate --count 5 --interval 1;
    coldchain simulate --devices 1000 --interval 10 --duration 120;
    coldchain simulate --devices 100 --interval 1 --batch 10   (10 readings per message)
    """
    settings = settings_of(ctx)
    env = env_defaults()
    interval = options["interval"] or float(env["interval"] or 10)
    request = SimulateRequest(
        endpoint=options["endpoint"] or env["endpoint"] or settings.mqtt_host,
        port=options["port"] or (MQTTS_PORT if env["endpoint"] else settings.mqtt_port),
        interval_s=interval,
        devices=options["devices"],
        device_id=options["device_id"] or env["device_id"] or DEFAULT_DEVICE_ID,
        device_prefix=options["device_prefix"],
        fleet_id=options["fleet_id"] or env["fleet_id"],
        firmware_version=options["firmware_version"] or env["firmware_version"] or "2.1.4",
        cert=_path(options["cert"], env["cert"]),
        key=_path(options["key"], env["key"]),
        ca=_path(options["ca"], env["ca"]),
        pki_dir=settings.pki_dir,
        scenario=options["scenario"],
        seed=options["seed"],
        duration_s=options["duration"],
        count=options["count"],
        buffer_size=options["buffer_size"],
        gps=options["gps"],
        protocol=options["mqtt_version"],
        batch=options["batch"],
        firmware_failure_rate=options["firmware_failure_rate"],
        basic_ingest_rule=options["basic_ingest"],
    )
    stats = run_simulation(request)
    undelivered = stats.sampled - stats.acked
    connected = (
        f", all connected after {stats.all_connected_after_s:.1f} s"
        if stats.all_connected_after_s is not None and request.devices is not None
        else ""
    )
    mean_connect_ms = 1000 * stats.connect_seconds / stats.connects if stats.connects else 0.0
    click.echo(
        f"sampled {stats.sampled}, acknowledged {stats.acked}, dropped {stats.dropped}, "
        f"refused {stats.refused}, reconnects {stats.reconnects}, "
        f"TCP+TLS connect {mean_connect_ms:.1f} ms on average{connected}"
        + (f", in {stats.messages} messages" if request.batch > 1 else ""),
        err=True,
    )
    if undelivered:
        raise ColdchainError(f"{undelivered} readings were not delivered")


def _path(flag: Path | None, env: str | None) -> Path | None:
    return flag if flag is not None else (Path(env) if env else None)
