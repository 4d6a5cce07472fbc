"""What every command shares: the settings on the click context, opening the store, and
parsing time options into a window.

The store and time parsing are imported when a command first uses them, so that commands
which never open a store (``pki``, ``aws cost``, any ``--help``) do not load SQLite or the
core's pydantic models.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coldchain.config import Settings
from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.timestamps import parse_iso

if TYPE_CHECKING:
    from coldchain.adapters.sqlite import SqliteDatabase
    from coldchain.apps.operator_stores import OperatorStores


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def stores_of(ctx: click.Context, db: Path | None) -> OperatorStores:
    """The store ``--store`` (or ``--db``, or the environment) names.

    Raises:
        click.UsageError: both ``--store`` and ``--db``.
        ConfigurationError: an unknown store, or no local store.
    """
    from coldchain.apps.operator_stores import open_stores  # noqa: PLC0415 - see the docstring

    store = ctx.meta.get("coldchain.store")
    if store is not None and db is not None:
        raise click.UsageError("give --store or --db, not both")
    settings = settings_of(ctx)
    if db is not None:
        return open_stores(replace(settings, db_path=db, store_url=None), None)
    return open_stores(settings, store)


def open_store(settings: Settings) -> SqliteDatabase:
    """The local SQLite store.

    Raises:
        ConfigurationError: there is no store at the configured path.
    """
    from coldchain.adapters.sqlite import SqliteDatabase  # noqa: PLC0415 - see the docstring

    if not settings.database.exists():
        raise ConfigurationError(f"no store at {settings.database} (start the stack first)")
    return SqliteDatabase(settings.database)


def known_device(stores: OperatorStores, device_id: str) -> None:
    """Raises NotFoundError unless the store has seen ``device_id``."""
    if device_id not in {d["device_id"] for d in stores.directory.devices()}:
        raise NotFoundError(f"unknown device {device_id!r}")


def window(
    since: str | None, start: str | None, end: str | None, default: timedelta | None = None
) -> tuple[datetime, datetime]:
    """``--since 2h`` or ``--from T --to T`` (ISO 8601 with a zone) as a UTC window.

    Raises:
        click.BadParameter: unparsable, empty or reversed.
    """
    from coldchain.core.alarm_profile import parse_duration  # noqa: PLC0415 - see the docstring

    now = datetime.now(UTC)
    try:
        if since is not None:
            if start is not None:
                raise click.BadParameter("use --since or --from/--to, not both")
            return now - parse_duration(since), now
        until = parse_iso(end) if end else now
        if start is None:
            if default is None:
                raise click.BadParameter("give --since or --from (and --to)")
            return until - default, until
        begin = parse_iso(start)
    except ValueError as exc:
        raise click.BadParameter(f"bad time: {exc}") from None
    if begin >= until:
        raise click.BadParameter("bad time range: --from must be before --to")
    return begin, until
