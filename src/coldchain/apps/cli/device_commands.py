"""`coldchain command send|list|show|retry` and `coldchain config show|set`: commands and desired
configuration for devices over the local broker (core.commands, core.shadow); the control
service (`coldchain control`, apps/control_service.py) sends them.

`command send` queues the command in the store; the control service (started by `coldchain
up`) publishes it and records the answer. `--wait` follows it: exit 0 when it succeeded,
1 when it failed or was rejected, 3 when it timed out or expired.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from coldchain.adapters.sqlite import SqliteShadowStore
from coldchain.adapters.sqlite.commands import SqliteCommandStore, command_document
from coldchain.apps.cli.context import open_store, settings_of
from coldchain.apps.cli.options import DB_OPTION, LIST_FORMAT, as_duration, format_option
from coldchain.apps.cli.tables import add_row, echo_documents, keep_whole, local
from coldchain.core.commands import (
    DEFAULT_EXPIRY,
    DEFAULT_TIMEOUT,
    Command,
    CommandStatus,
    new_command,
    retried,
)
from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.shadow import Rejected, Shadow, updated
from coldchain.core.topics import is_device_id

EXIT_FAILED = 1
EXIT_TIMED_OUT = 3
WAIT_POLL_S = 0.2


@click.group()
def command() -> None:
    """Commands to one device: self-test, set-interval, reboot (cmd/{device}/request)."""


def _arguments(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in value:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE")
        found[key] = text
    return found


@command.command("send")
@click.argument("device_id")
@click.argument("name")
@click.option("--arg", "args", multiple=True, callback=_arguments, help="KEY=VALUE, repeatable.")
@click.option(
    "--timeout",
    default=f"{int(DEFAULT_TIMEOUT.total_seconds())}s",
    show_default=True,
    callback=as_duration,
    help="How long to wait for the answer before it counts as timed out.",
)
@click.option(
    "--expires-in",
    default=f"{int(DEFAULT_EXPIRY.total_seconds() // 60)}m",
    show_default=True,
    callback=as_duration,
    help="How long an offline device may still receive it (then it is dropped).",
)
@click.option("--wait", is_flag=True, help="Wait for the answer; the exit code tells it.")
@format_option("text", "json")
@DB_OPTION
@click.pass_context
def command_send(
    ctx: click.Context,
    device_id: str,
    name: str,
    args: dict[str, str],
    timeout: timedelta,
    expires_in: timedelta,
    wait: bool,
    output: str,
    db: Path | None,
) -> None:
    """Queue a command for a device (the control service sends it).

    Example: coldchain command send reefer-0001 set-interval --arg seconds=30 --wait
    """
    if not is_device_id(device_id):
        raise click.BadParameter(f"{device_id!r} is not a device id", param_hint="DEVICE_ID")
    database = open_store(settings_of(ctx).override(db_path=db))
    store = SqliteCommandStore(database)
    try:
        queued = new_command(device_id, name, args, datetime.now(UTC), timeout, expires_in)
        store.save([queued])
        if output == "text":
            click.echo(f"command {queued.command_id} ({name}) queued for {device_id}", err=True)
        if not wait:
            if output == "json":
                click.echo(json.dumps(command_document(queued), indent=2))
            return
        done = _follow(store, queued)
    finally:
        database.close()
    _report(done, output)


def _follow(store: SqliteCommandStore, queued: Command) -> Command:
    """Poll until the command has a final state or has timed out."""
    deadline = time.monotonic() + (queued.expires_at - queued.issued_at).total_seconds() + 5
    while True:
        now = store.get(queued.command_id) or queued
        if now.status.final or now.status is CommandStatus.TIMED_OUT:
            return now
        if time.monotonic() > deadline:  # no control service moved it
            raise ConfigurationError(
                f"command {queued.command_id} is still {now.status}: is the control service "
                "running (coldchain up, or coldchain control)?"
            )
        time.sleep(WAIT_POLL_S)


def _report(done: Command, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(command_document(done), indent=2))
    else:
        result = json.dumps(dict(done.result or {}), sort_keys=True)
        click.echo(f"{done.status.value}: {result}")
    if done.status in (CommandStatus.FAILED, CommandStatus.REJECTED):
        raise SystemExit(EXIT_FAILED)
    if done.status in (CommandStatus.TIMED_OUT, CommandStatus.EXPIRED):
        raise SystemExit(EXIT_TIMED_OUT)


@command.command("retry")
@click.argument("command_id")
@click.option("--wait", is_flag=True, help="Wait for the answer; the exit code tells it.")
@DB_OPTION
@click.pass_context
def command_retry(ctx: click.Context, command_id: str, wait: bool, db: Path | None) -> None:
    """Send a command again with the same id (a device that acted answers from memory).

    Example: coldchain command retry 5b0c2f1e
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    store = SqliteCommandStore(database)
    try:
        found = store.get(store.resolve(command_id))
        assert found is not None
        again = retried(found, datetime.now(UTC))
        store.save([again])
        click.echo(f"command {again.command_id} queued again (attempt {again.attempts})", err=True)
        done = _follow(store, again) if wait else None
    finally:
        database.close()
    if done is not None:
        _report(done, "text")


@command.command("show")
@click.argument("command_id")
@DB_OPTION
@click.pass_context
def command_show(ctx: click.Context, command_id: str, db: Path | None) -> None:
    """One command, whole.

    Example: coldchain command show 5b0c2f1e
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        store = SqliteCommandStore(database)
        found = store.get(store.resolve(command_id))
    finally:
        database.close()
    assert found is not None
    click.echo(json.dumps(command_document(found), indent=2))


@command.command("list")
@click.option("--device", "device_id", default=None)
@click.option("--status", type=click.Choice([s.value for s in CommandStatus]), default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@LIST_FORMAT
@DB_OPTION
@click.pass_context
def command_list(
    ctx: click.Context,
    device_id: str | None,
    status: str | None,
    limit: int,
    output: str,
    db: Path | None,
) -> None:
    """Commands, newest first.

    Example: coldchain command list --device reefer-0001
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        found = SqliteCommandStore(database).list(device_id, status, limit)
    finally:
        database.close()
    documents: list[dict[str, Any]] = [command_document(c) for c in found]
    if output in ("json", "csv"):
        echo_documents(output, documents)
        return
    table = Table(title=f"{len(found)} commands")
    for column in ("id", "device", "name", "status", "issued", "attempts", "result"):
        table.add_column(column)
    for c in found:
        add_row(
            table,
            c.command_id,
            c.device_id,
            c.name,
            c.status.value,
            local(c.issued_at),
            str(c.attempts),
            json.dumps(dict(c.result or {}), sort_keys=True),
        )
    Console().print(keep_whole(table, "id", "device"))


@click.group()
def config() -> None:
    """Desired configuration (the shadow): what a device should run with, what it reports."""


def _band(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    low, sep, high = value.partition(":")
    try:
        band = [float(low), float(high)]
    except ValueError:
        raise click.BadParameter(f"{value!r}: use LOW:HIGH in °C, e.g. 2:8") from None
    if not sep or band[0] >= band[1]:
        raise click.BadParameter(f"{value!r}: use LOW:HIGH with LOW below HIGH")
    return band


@config.command("show")
@click.argument("device_id")
@format_option("text", "json")
@DB_OPTION
@click.pass_context
def config_show(ctx: click.Context, device_id: str, output: str, db: Path | None) -> None:
    """Desired, reported and their difference (delta), with the version.

    Example: coldchain config show reefer-0001
    """
    database = open_store(settings_of(ctx).override(db_path=db))
    try:
        shadow = SqliteShadowStore(database).get(device_id)
    finally:
        database.close()
    if shadow is None:
        raise NotFoundError(f"no configuration for {device_id!r} (set one with config set)")
    document = {"device_id": device_id, **shadow.document()}
    if output == "json":
        click.echo(json.dumps(document, indent=2))
        return
    state = document["state"]
    click.echo(f"{device_id}  version {shadow.version}")
    for part in ("desired", "reported", "delta"):
        click.echo(f"{part:>9}: {json.dumps(state.get(part, {}), sort_keys=True)}")


@config.command("set")
@click.argument("device_id")
@click.option("--interval", type=click.FloatRange(0.05, 86_400), default=None, help="Seconds.")
@click.option("--band", callback=_band, default=None, help="LOW:HIGH °C the device alarms on.")
@click.option("--label", default=None, help="A name shown for the device.")
@click.option("--version", "expected", type=int, default=None, help="Refuse unless at this.")
@DB_OPTION
@click.pass_context
def config_set(
    ctx: click.Context,
    device_id: str,
    interval: float | None,
    band: list[float] | None,
    label: str | None,
    expected: int | None,
    db: Path | None,
) -> None:
    """Change a device's desired configuration; it gets the delta now or when it reconnects.

    Example: coldchain config set reefer-0001 --interval 30 --band 2:8
    """
    if not is_device_id(device_id):
        raise click.BadParameter(f"{device_id!r} is not a device id", param_hint="DEVICE_ID")
    changes = {
        key: value
        for key, value in (("interval_s", interval), ("band", band), ("label", label))
        if value is not None
    }
    if not changes:
        raise click.UsageError("give --interval, --band or --label")
    database = open_store(settings_of(ctx).override(db_path=db))
    store = SqliteShadowStore(database)
    try:
        before = store.get(device_id) or Shadow(device_id)
        request: dict[str, Any] = {"state": {"desired": changes}}
        if expected is not None:
            request["version"] = expected
        try:
            after = updated(before, request, datetime.now(UTC))
            store.put(after, before.version, announce=True)
        except Rejected as refused:
            raise ConfigurationError(f"{device_id}: {refused.message} ({refused.code})") from None
    finally:
        database.close()
    pending = json.dumps(after.delta, sort_keys=True) if after.delta else "none"
    click.echo(f"{device_id}: desired version {after.version}; waiting for the device: {pending}")
