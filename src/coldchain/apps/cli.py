"""The ``coldchain`` command: thin wiring over the library.

Every error we expect (bad arguments, missing files, unreachable brokers) is printed as one
line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from coldchain.adapters import dynsec
from coldchain.adapters.lockfile import FolderLock
from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.mqtt import MqttConsumer
from coldchain.adapters.notify import Channel, LogChannel, SmtpChannel, WebhookChannel
from coldchain.adapters.pki import LocalPki
from coldchain.adapters.sqlite import (
    SqliteDatabase,
)
from coldchain.apps.aws_cost_cli import cost as aws_cost
from coldchain.apps.clictx import (
    DB_OPTION,
    STORE_OPTION,
    as_duration,
    settings_of,
    stores_of,
)
from coldchain.apps.command_cli import COMMANDS as COMMAND_COMMANDS
from coldchain.apps.dashboard.commands import COMMANDS as DASHBOARD_COMMANDS
from coldchain.apps.dispatcher import Dispatcher
from coldchain.apps.dlq_cli import COMMANDS as DLQ_COMMANDS
from coldchain.apps.firmware_cli import COMMANDS as FIRMWARE_COMMANDS
from coldchain.apps.operator_cli import COMMANDS as OPERATOR_COMMANDS
from coldchain.apps.render import LIST_FORMAT, alarm_document, echo_documents, print_alarms
from coldchain.apps.shipment_cli import COMMANDS as SHIPMENT_COMMANDS
from coldchain.apps.simulator.run import (
    DEFAULT_DEVICE_ID,
    MQTTS_PORT,
    SimulateRequest,
    env_defaults,
)
from coldchain.apps.simulator.run import simulate as run_simulation
from coldchain.apps.up import UpOptions, run_up
from coldchain.apps.worker import Worker, WorkerOptions
from coldchain.config import Settings, load_profile_file
from coldchain.core.alarm_profile import default_profile
from coldchain.core.alarms import acknowledge_alarm
from coldchain.core.batches import MAX_READINGS
from coldchain.core.device_state import with_live_figures
from coldchain.core.errors import ColdchainError, ConfigurationError
from coldchain.core.rules import Severity
from coldchain.core.topics import SHARED_TELEMETRY_FILTER, TELEMETRY_FILTER
from coldchain.tls import client_context

EXIT_ERROR = 1
EXIT_USAGE = 2


@click.group()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for certificates, broker state and the database [env COLDCHAIN_HOME; .coldchain].",
)
@click.version_option(package_name="coldchain")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """Cold chain monitoring: local broker, processor worker, devices and queries."""
    os.umask(0o077)  # databases, logs and broker state: owner only (readings carry positions)
    ctx.obj = Settings.from_env().override(home=home)
    logging.basicConfig(
        level=settings_of(ctx).log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for chatty in ("botocore", "boto3", "urllib3"):  # credentials and endpoints found, at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))


@cli.group()
def pki() -> None:
    """The local certificate authority (keys stay in <home>/pki, mode 0600)."""


@pki.command("init")
@click.pass_context
def pki_init(ctx: click.Context) -> None:
    """Create the CA, broker, admin and first processor certificates (idempotent).

    Example: coldchain pki init
    """
    authority = LocalPki(settings_of(ctx).pki_dir)
    written = authority.init()
    click.echo(
        f"{len(written)} files written in {authority.directory}"
        if written
        else f"PKI already complete in {authority.directory}"
    )


@pki.command("issue")
@click.argument("device_ids", nargs=-1, required=True)
@click.pass_context
def pki_issue(ctx: click.Context, device_ids: tuple[str, ...]) -> None:
    """Issue a client certificate for each device (CN = device id; idempotent).

    A running broker admits the devices at once. A device whose certificate is re-issued (its
    files were lost) has every earlier certificate revoked.

    Example: coldchain pki issue reefer-0001 reefer-0002
    """
    authority = LocalPki(settings_of(ctx).pki_dir)
    issued = [(device_id, authority.issue_device(device_id)) for device_id in device_ids]
    dynsec.admit(authority, device_ids, "device")
    for device_id, credentials in issued:
        click.echo(f"{device_id}: {credentials.cert} {credentials.key}")


@pki.command("issue-processor")
@click.argument("name")
@click.pass_context
def pki_issue_processor(ctx: click.Context, name: str) -> None:
    """Issue a processor identity: a worker whose client id is NAME (idempotent).

    `coldchain worker --client-id NAME` issues it on first use; this command is for a worker
    on another machine. Example: coldchain pki issue-processor coldchain-worker-2
    """
    authority = LocalPki(settings_of(ctx).pki_dir)
    credentials = authority.issue_processor(name)
    dynsec.admit(authority, [name], "processor")
    click.echo(f"{name}: {credentials.cert} {credentials.key}")


@pki.command("revoke")
@click.argument("name")
@click.pass_context
def pki_revoke(ctx: click.Context, name: str) -> None:
    """Revoke every certificate ever issued to a device (or processor).

    A running broker disconnects it at once and rereads the CRL (SIGHUP); copies of earlier
    certificates are refused too. Example: coldchain pki revoke reefer-0007
    """
    authority = LocalPki(settings_of(ctx).pki_dir)
    serials = authority.revoke(name)
    kind = authority.kind_of(name) or "device"
    running = dynsec.shut_out(authority, name, kind)
    listed = ", ".join(f"{serial:x}" for serial in serials) or "none new"
    click.echo(
        f"{name}: serials revoked: {listed}; CRL {authority.crl}; "
        + ("the running broker has reloaded it" if running else "the broker reads it at start")
    )


@pki.command("rotate")
@click.argument("device_id")
@click.option(
    "--grace",
    callback=as_duration,
    default="0s",
    show_default=True,
    help="How long the old certificate keeps working (e.g. 24h), to give the device time.",
)
@click.pass_context
def pki_rotate(ctx: click.Context, device_id: str, grace: timedelta) -> None:
    """Issue a new certificate for a device; the old ones are revoked when the grace ends.

    The broker refuses old certificates once `coldchain broker` (or `up`) sees the grace end
    (checked every minute). Example: coldchain pki rotate reefer-0007 --grace 24h
    """
    authority = LocalPki(settings_of(ctx).pki_dir)
    issued = authority.rotate(device_id, grace)
    if grace <= timedelta(0):
        dynsec.tell_running_broker(authority, [], reload_crl=True)
    ending = "earlier certificates revoked" if grace <= timedelta(0) else f"earlier end in {grace}"
    click.echo(
        f"{device_id}: new serial {issued.serial:x} in {authority.device(device_id).cert}; {ending}"
    )


@cli.command()
@click.option("--host", default=None, help="Address to listen on [127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TLS port [8883].")
@click.pass_context
def broker(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run mosquitto with mutual TLS and per-device ACLs, in the foreground.

    Example: coldchain broker --port 8883
    """
    settings = settings_of(ctx).override(mqtt_host=host, mqtt_port=port)
    authority = LocalPki(settings.pki_dir)
    authority.init()
    process = MosquittoProcess(
        BrokerConfig(
            settings.broker_dir,
            authority,
            settings.mqtt_host,
            settings.mqtt_port,
            log_to_file=False,
        )
    )
    process.start(stderr=sys.stderr.buffer)
    click.echo(f"mosquitto listening on {settings.mqtt_host}:{settings.mqtt_port} (mTLS)")

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signal.Signals(signum))  # only the main thread waits on it

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    while (code := process.wait(timeout_s=60)) is None:
        if authority.refresh_crl():  # a rotation's grace period ended
            process.reload()
    ctx.exit(0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code)


@cli.command()
@click.option("--host", default=None, help="Broker address [127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Broker port [8883].")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite database [<home>/coldchain.db].",
)
@click.option(
    "--client-id",
    default="coldchain-worker-1",
    show_default=True,
    help="MQTT client id; its persistent session survives restarts.",
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=500, show_default=True)
@click.option(
    "--stats-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between totals lines in the log.",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Alarm profile (TOML) [the built-in default].",
)
@click.option("--webhook", default=None, help="POST alarm notifications (JSON) to this URL.")
@click.option(
    "--webhook-min-severity",
    type=click.Choice(["info", "warning", "critical"]),
    default="warning",
    show_default=True,
)
@click.option("--smtp", default=None, metavar="HOST:PORT", help="Email alarm notifications.")
@click.option("--mail-from", default="coldchain@localhost", show_default=True)
@click.option("--mail-to", multiple=True, help="Recipient (repeatable).")
@click.option(
    "--mail-min-severity",
    type=click.Choice(["info", "warning", "critical"]),
    default="critical",
    show_default=True,
)
@click.option(
    "--sweep-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between silence and reminder sweeps.",
)
@click.option(
    "--shared",
    is_flag=True,
    help="Join the shared subscription $share/processors/... to split the stream with other "
    "workers. Without it the worker holds its own persistent subscription, which (unlike a "
    "shared one on mosquitto 2.0.11) survives a broker restart with nothing lost.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    db: Path | None,
    client_id: str,
    batch_size: int,
    stats_every: float,
    profile_path: Path | None,
    webhook: str | None,
    webhook_min_severity: str,
    smtp: str | None,
    mail_from: str,
    mail_to: tuple[str, ...],
    mail_min_severity: str,
    sweep_every: float,
    shared: bool,
) -> None:
    """Process telemetry from the broker into SQLite until SIGTERM or Ctrl-C.

    Example: coldchain worker --db .coldchain/coldchain.db
    """
    settings = settings_of(ctx).override(mqtt_host=host, mqtt_port=port, db_path=db)
    alarm_profile = load_profile_file(profile_path) if profile_path else default_profile()
    channels = _channels(webhook, webhook_min_severity, smtp, mail_from, mail_to, mail_min_severity)
    FolderLock(settings.home / f"worker-{client_id}.lock", f"a worker as {client_id}").acquire()
    authority = LocalPki(settings.pki_dir)
    credentials = authority.issue_processor(client_id)
    dynsec.admit(authority, [client_id], "processor")
    tls = client_context(credentials.ca, credentials.cert, credentials.key)
    database = SqliteDatabase(settings.database)
    subscription = SHARED_TELEMETRY_FILTER if shared else TELEMETRY_FILTER
    consumer = MqttConsumer(settings.mqtt_host, settings.mqtt_port, client_id, tls, subscription)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    consumer.start()
    dispatcher = Dispatcher(settings.database, channels)
    dispatcher.start()
    logging.getLogger("coldchain.worker").info(
        "processing %s:%d (%s) into %s",
        settings.mqtt_host,
        settings.mqtt_port,
        subscription,
        settings.database,
    )
    options = WorkerOptions(
        batch_size=batch_size, stats_every_s=stats_every, sweep_every_s=sweep_every
    )
    minimums = {channel.name: minimum for channel, minimum in channels}
    try:
        Worker(
            consumer, database, options=options, alarm_profile=alarm_profile, channels=minimums
        ).run(stop)
    finally:
        consumer.stop()
        dispatcher.stop()
        database.close()


def _channels(
    webhook: str | None,
    webhook_min: str,
    smtp: str | None,
    mail_from: str,
    mail_to: tuple[str, ...],
    mail_min: str,
) -> list[tuple[Channel, Severity]]:
    channels: list[tuple[Channel, Severity]] = [(LogChannel(), Severity.INFO)]
    if webhook:
        try:
            channels.append((WebhookChannel(webhook), Severity(webhook_min)))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--webhook") from None
    if smtp:
        host, _, port_text = smtp.rpartition(":")
        if not host or not port_text.isdigit():
            raise click.BadParameter(f"{smtp!r} is not HOST:PORT", param_hint="--smtp")
        if not mail_to:
            raise click.BadParameter("--smtp needs at least one --mail-to", param_hint="--mail-to")
        channels.append((SmtpChannel(host, int(port_text), mail_from, mail_to), Severity(mail_min)))
    return channels


@cli.command()
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


@cli.command()
@click.option(
    "--devices",
    type=click.IntRange(1, 100_000),
    default=25,
    show_default=True,
    help="Simulated devices.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between readings of one device.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for certificates, broker state, logs and the database [.coldchain].",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Broker port [8883].")
@click.option("--no-simulator", is_flag=True, help="Broker and worker only, for real devices.")
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=None,
    help="Stop by itself after this many seconds.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dashboard-port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
@click.pass_context
def up(
    ctx: click.Context,
    devices: int,
    interval: float,
    data_dir: Path | None,
    port: int | None,
    no_simulator: bool,
    duration: float | None,
    seed: int,
    dashboard_port: int,
    no_dashboard: bool,
) -> None:
    """Run the local stack: broker, worker, a simulated fleet and the dashboard.

    Example: coldchain up --devices 25 --interval 2   (dashboard on http://127.0.0.1:8080)
    """
    settings = settings_of(ctx).override(home=data_dir, mqtt_port=port)
    options = UpOptions(
        devices,
        interval,
        not no_simulator,
        duration,
        seed,
        dashboard_port=None if no_dashboard else dashboard_port,
    )
    run_up(settings, options)


@cli.group()
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
    """Alarm records, newest first. Example: coldchain alarms list --active --fleet reefer-fleet"""
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
@click.option("--by", default=None, help="Who acknowledges [the login name].")
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


@cli.group()
def aws() -> None:
    """AWS IoT Core: device keys and certificates (needs the 'aws' extra and credentials)."""


aws.add_command(aws_cost)


@aws.command("csr")
@click.argument("device_id")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the key and CSR go [<home>/aws].",
)
@click.pass_context
def aws_csr(ctx: click.Context, device_id: str, out_dir: Path | None) -> None:
    """Make a device key (0600, it never leaves the device) and a CSR for AWS IoT to sign.

    Example: coldchain aws csr reefer-0001
    """
    from coldchain.adapters.pki import make_csr  # noqa: PLC0415 - keep `coldchain --help` fast

    key, csr = make_csr(device_id, out_dir or settings_of(ctx).home / "aws")
    click.echo(f"key {key}\ncsr {csr}")


@aws.command("provision")
@click.argument("device_id")
@click.option(
    "--csr",
    "csr_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The device's CSR [<home>/aws/DEVICE_ID.csr].",
)
@click.option(
    "--policy",
    default="coldchain-device",
    show_default=True,
    help="IoT policy to attach (terraform output device_policy_name).",
)
@click.option(
    "--thing-type", default="coldchain-logger", show_default=True, help="Made if missing."
)
@click.option("--fleet", "fleet_id", default=None, help="Fleet: attribute and thing group.")
@click.option("--firmware", default=None, help="Firmware version: attribute and thing group.")
@click.option("--region", default=None, help="AWS region [the AWS configuration's].")
@click.pass_context
def aws_provision(
    ctx: click.Context,
    device_id: str,
    csr_path: Path | None,
    policy: str,
    thing_type: str,
    fleet_id: str | None,
    firmware: str | None,
    region: str | None,
) -> None:
    """Register a device from its CSR: thing (typed, with fleet and firmware attributes, in a
    fleet group and a firmware group, so jobs can target them), certificate signed by AWS,
    policy.

    Example: coldchain aws provision reefer-0001 --fleet north --firmware 2.1.4
    """
    import boto3  # noqa: PLC0415 - boto3 is the 'aws' extra, loaded only for these commands

    from coldchain.adapters.iot_provisioning import (  # noqa: PLC0415
        Registry,
        provision_device,
        write_certificate,
    )

    csr_file = csr_path or settings_of(ctx).home / "aws" / f"{device_id}.csr"
    if not csr_file.is_file():
        raise ConfigurationError(f"CSR not found: {csr_file} (make one with 'coldchain aws csr')")
    client = boto3.client("iot", region_name=region)
    registry = Registry(thing_type, fleet_id, firmware)
    done = provision_device(client, device_id, csr_file.read_text(), policy, registry)
    cert = write_certificate(done, csr_file.parent)
    groups = f"; groups {', '.join(done.groups)}" if done.groups else ""
    click.echo(
        f"{device_id}: certificate {cert} ({done.certificate_arn}); type {thing_type}{groups}\n"
        f"connect to {done.endpoint}:8883 with client id {device_id}, CA AmazonRootCA1.pem"
    )


def _path(flag: Path | None, env: str | None) -> Path | None:
    return flag if flag is not None else (Path(env) if env else None)


for _command in (
    *OPERATOR_COMMANDS,
    *DLQ_COMMANDS,
    *COMMAND_COMMANDS,
    *FIRMWARE_COMMANDS,
    *SHIPMENT_COMMANDS,
    *DASHBOARD_COMMANDS,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; expected errors become one line on stderr and a non-zero exit."""
    try:
        cli.main(args=argv, prog_name="coldchain", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.UsageError as exc:
        click.echo(f"coldchain: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"coldchain: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("coldchain: aborted", err=True)
        sys.exit(130)
    except ColdchainError as exc:
        click.echo(f"coldchain: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
