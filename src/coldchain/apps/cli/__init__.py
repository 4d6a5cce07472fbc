"""The ``coldchain`` command: thin wiring over the library, one module per audience.

    stack            broker, worker, control, up         running the local stack
    simulate         simulate                            simulated devices
    pki              pki init|issue|issue-processor|revoke|rotate
    alarms           alarms list|ack                     operators
    data             devices, device show, telemetry, excursions
    dlq              dlq list|replay
    profile          profile show (and the profile the operator commands judge by)
    report           report, report verify               QA
    shipments        shipment ..., audit list
    device_commands  command ..., config show|set        device management
    firmware         firmware add, job ...
    aws, aws_cost    aws csr|provision, aws cost
    apps/dashboard/commands.py: dashboard, user

Shared: ``options`` (the options several commands take, declared once), ``context`` (the
settings, the store, time windows), ``tables`` (what the commands print).

The root group imports a command's module only when the command runs (:mod:`.lazy`), so
``coldchain --help`` loads none of them. Every error we expect (bad arguments, missing files,
unreachable brokers) is printed as one line on stderr with a non-zero exit code, never as a
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Final

import click

from coldchain.apps.cli.lazy import Lazy, LazyGroup
from coldchain.config import Settings
from coldchain.core.errors import ColdchainError

EXIT_ERROR = 1
EXIT_USAGE = 2

# Every command: where it is and the summary `coldchain --help` shows (its docstring's first
# sentence; tests/functional/test_cli_package.py keeps the two equal).
COMMANDS: Final = {
    "alarms": Lazy(
        ".alarms:alarms", "Alarm records: list them, acknowledge them (with a comment)."
    ),
    "audit": Lazy(
        ".shipments:audit", "The append-only audit trail: shipments, acknowledgements, decisions."
    ),
    "aws": Lazy(
        ".aws:aws",
        "AWS IoT Core: device keys and certificates (needs the 'aws' extra and credentials).",
    ),
    "broker": Lazy(
        ".stack:broker", "Run mosquitto with mutual TLS and per-device ACLs, in the foreground."
    ),
    "command": Lazy(
        ".device_commands:command",
        "Commands to one device: self-test, set-interval, reboot (cmd/{device}/request).",
    ),
    "config": Lazy(
        ".device_commands:config",
        "Desired configuration (the shadow): what a device should run with, what it reports.",
    ),
    "control": Lazy(
        ".stack:control",
        "Run the control service: send queued commands, record answers, time them out.",
    ),
    "dashboard": Lazy(
        "coldchain.apps.dashboard.commands:dashboard",
        "Serve the operations dashboard and its JSON API until Ctrl-C or SIGTERM.",
    ),
    "device": Lazy(".data:device", "One device."),
    "devices": Lazy(
        ".data:devices",
        "Every device: fleet, last seen, last temperature, battery, firmware, status.",
    ),
    "dlq": Lazy(".dlq:dlq", "Dead letters: what could not be stored, and why."),
    "excursions": Lazy(".data:excursions", "Alarm occurrences with start, end, duration and peak."),
    "firmware": Lazy(
        ".firmware:firmware", "Firmware images the control service can hand to devices."
    ),
    "job": Lazy(
        ".firmware:job",
        "Firmware jobs: roll a version out to a fleet or to the devices on a version.",
    ),
    "pki": Lazy(
        ".pki:pki", "The local certificate authority (keys stay in <home>/pki, mode 0600)."
    ),
    "profile": Lazy(
        ".profile:profile", "The alarm profile: rules, band, silence and reminder times."
    ),
    "report": Lazy(
        ".report:report",
        "Reports for QA release: by shipment, or by device and window; `report verify FILE`.",
    ),
    "shipment": Lazy(
        ".shipments:shipment",
        "Shipments: a product travelling with devices, started, ended, released by QA.",
    ),
    "simulate": Lazy(
        ".simulate:simulate",
        "Simulate one device (drop-in for the original simulator) or a fleet.",
    ),
    "telemetry": Lazy(
        ".data:telemetry",
        "A device's readings in a window, streamed (a month exports in flat memory).",
    ),
    "up": Lazy(
        ".stack:up", "Run the local stack: broker, worker, a simulated fleet and the dashboard."
    ),
    "user": Lazy(
        "coldchain.apps.dashboard.commands:user",
        "Dashboard users (viewer < operator < qa < admin) and API tokens, kept in auth.db.",
    ),
    "worker": Lazy(
        ".stack:worker", "Process telemetry from the broker into SQLite until SIGTERM or Ctrl-C."
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, package=__name__)
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
    settings = ctx.obj = Settings.from_env().override(home=home)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for chatty in ("botocore", "boto3", "urllib3"):  # credentials and endpoints found, at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))


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
