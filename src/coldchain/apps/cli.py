"""The ``coldchain`` command: thin wiring over the library.

Every error we expect (bad arguments, missing files, unreachable brokers) is printed as one
line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.mqtt import MqttConsumer
from coldchain.adapters.pki import LocalPki
from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.apps.worker import Worker, WorkerOptions
from coldchain.config import Settings
from coldchain.core.errors import ColdchainError
from coldchain.core.topics import SHARED_TELEMETRY_FILTER
from coldchain.tls import client_context

EXIT_ERROR = 1
EXIT_USAGE = 2


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


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
    ctx.obj = Settings.from_env().override(home=home)
    logging.basicConfig(
        level=_settings(ctx).log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@cli.group()
def pki() -> None:
    """The local certificate authority (keys stay in <home>/pki, mode 0600)."""


@pki.command("init")
@click.pass_context
def pki_init(ctx: click.Context) -> None:
    """Create the CA, broker and processor certificates (idempotent).

    Example: coldchain pki init
    """
    authority = LocalPki(_settings(ctx).pki_dir)
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

    Example: coldchain pki issue reefer-0001 reefer-0002
    """
    authority = LocalPki(_settings(ctx).pki_dir)
    for device_id in device_ids:
        credentials = authority.issue_device(device_id)
        click.echo(f"{device_id}: {credentials.cert} {credentials.key}")


@cli.command()
@click.option("--host", default=None, help="Address to listen on [127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TLS port [8883].")
@click.pass_context
def broker(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run mosquitto with mutual TLS and per-device ACLs, in the foreground.

    Example: coldchain broker --port 8883
    """
    settings = _settings(ctx).override(mqtt_host=host, mqtt_port=port)
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
        process.stop(signal.Signals(signum))

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    ctx.exit(process.wait())


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
@click.pass_context
def worker(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    db: Path | None,
    client_id: str,
    batch_size: int,
) -> None:
    """Process telemetry from the broker into SQLite until SIGTERM or Ctrl-C.

    Example: coldchain worker --db .coldchain/coldchain.db
    """
    settings = _settings(ctx).override(mqtt_host=host, mqtt_port=port, db_path=db)
    credentials = LocalPki(settings.pki_dir).processor()
    tls = client_context(credentials.ca, credentials.cert, credentials.key)
    database = SqliteDatabase(settings.database)
    consumer = MqttConsumer(
        settings.mqtt_host, settings.mqtt_port, client_id, tls, SHARED_TELEMETRY_FILTER
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    consumer.start()
    logging.getLogger("coldchain.worker").info(
        "processing %s:%d into %s", settings.mqtt_host, settings.mqtt_port, settings.database
    )
    try:
        Worker(consumer, database, options=WorkerOptions(batch_size=batch_size)).run(stop)
    finally:
        consumer.stop()
        database.close()


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
