"""What every command shares: the settings on the click context, opening the local store,
and parsing time options into a window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.apps.operator_stores import OperatorStores, open_stores
from coldchain.config import Settings
from coldchain.core.alarm_profile import parse_duration
from coldchain.core.errors import ConfigurationError
from coldchain.core.timestamps import parse_iso

DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite store [<home>/coldchain.db].",
)


def _remember_store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["coldchain.store"] = value


STORE_OPTION = click.option(
    "--store",
    default=None,
    expose_value=False,
    callback=_remember_store,
    help="dynamodb://PREFIX (the deployed stack; AWS_* settings) or sqlite:///PATH "
    "[$COLDCHAIN_STORE, else --db].",
)
PROFILE_OPTION = click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Alarm profile (TOML or JSON) [the one the worker recorded, else the built-in one].",
)


def as_duration(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    """A click callback: ``30s``, ``15m``, ``24h`` or ``2d`` as a timedelta."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


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
    if not settings.database.exists():
        raise ConfigurationError(f"no store at {settings.database} (start the stack first)")
    return SqliteDatabase(settings.database)


def window(
    since: str | None, start: str | None, end: str | None, default: timedelta | None = None
) -> tuple[datetime, datetime]:
    """``--since 2h`` or ``--from T --to T`` (ISO 8601 with a zone) as a UTC window.

    Raises:
        click.BadParameter: unparsable, empty or reversed.
    """
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
