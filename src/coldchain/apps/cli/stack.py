"""Running the local stack: ``broker``, ``worker``, ``control`` (the service that sends commands
and firmware to devices) and ``up`` (all of them, a simulated fleet and the dashboard).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from coldchain.adapters import dynsec
from coldchain.adapters.clock import SystemClock
from coldchain.adapters.firmware_files import FirmwareFiles, FirmwareServer
from coldchain.adapters.lockfile import FolderLock
from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.mqtt import MqttConsumer
from coldchain.adapters.notify import Channel, LogChannel, SmtpChannel, WebhookChannel
from coldchain.adapters.pki import LocalPki
from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.apps.cli.context import settings_of
from coldchain.apps.cli.options import DB_OPTION, profile_option, severity_option
from coldchain.apps.control_service import ControlService
from coldchain.apps.dispatcher import Dispatcher
from coldchain.apps.up import UpOptions, run_up
from coldchain.apps.worker import Worker, WorkerOptions
from coldchain.config import load_profile_file
from coldchain.core.alarm_profile import default_profile
from coldchain.core.rules import Severity
from coldchain.core.topics import (
    COMMAND_RESPONSES,
    JOB_UPDATES,
    SHADOW_REQUESTS,
    SHARED_TELEMETRY_FILTER,
    TELEMETRY_FILTER,
)
from coldchain.tls import client_context

FIRMWARE_PORT = 0  # any free loopback port: the service puts it in the URLs it signs


@click.command()
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


@click.command()
@click.option("--host", default=None, help="Broker address [127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Broker port [8883].")
@DB_OPTION
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
@profile_option("the built-in default")
@click.option("--webhook", default=None, help="POST alarm notifications (JSON) to this URL.")
@severity_option("--webhook-min-severity", "warning")
@click.option("--smtp", default=None, metavar="HOST:PORT", help="Email alarm notifications.")
@click.option("--mail-from", default="coldchain@localhost", show_default=True)
@click.option("--mail-to", multiple=True, help="Recipient (repeatable).")
@severity_option("--mail-min-severity", "critical")
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


@click.command()
@click.option("--host", default=None, help="Broker host [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Broker port [8883].")
@click.option(
    "--client-id",
    type=click.Choice(["control"]),  # adapters.dynsec.CONTROL_IDENTITIES: the control role
    default="control",
    show_default=True,
)
@click.option(
    "--firmware-port",
    type=click.IntRange(0, 65535),
    default=FIRMWARE_PORT,
    show_default=True,
    help="Loopback port of the firmware download server (0: any free one).",
)
@DB_OPTION
@click.pass_context
def control(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    client_id: str,
    firmware_port: int,
    db: Path | None,
) -> None:
    """Run the control service: send queued commands, record answers, time them out.

    Example: coldchain control --db .coldchain/coldchain.db
    """
    settings = settings_of(ctx).override(mqtt_host=host, mqtt_port=port, db_path=db)
    FolderLock(
        settings.home / f"control-{client_id}.lock", f"a control service as {client_id}"
    ).acquire()
    authority = LocalPki(settings.pki_dir)
    credentials = authority.issue_processor(client_id)
    dynsec.admit(authority, [client_id], "processor")
    tls = client_context(credentials.ca, credentials.cert, credentials.key)
    database = SqliteDatabase(settings.database)
    topics = (COMMAND_RESPONSES, *SHADOW_REQUESTS, JOB_UPDATES)
    files = FirmwareFiles(settings.home / "firmware")
    server = FirmwareServer(files, SystemClock(), firmware_port)
    link = MqttConsumer(settings.mqtt_host, settings.mqtt_port, client_id, tls, topics)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    link.start()
    server.start()
    logging.getLogger("coldchain.control").info(
        "controlling %s:%d (%s) from %s; firmware at %s",
        settings.mqtt_host,
        settings.mqtt_port,
        ", ".join(topics),
        settings.database,
        server.base_url,
    )
    try:
        firmware = (files, server.base_url)
        ControlService(link, database, SystemClock(), firmware=firmware).run(stop)
    finally:
        server.stop()
        link.stop()
        database.close()


@click.command()
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
