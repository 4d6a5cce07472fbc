"""The options several commands share, declared once: the store (``--db``, ``--store``), the
alarm profile (``--profile``), the output ``--format``, notification severities, who acts
(``--by``) and durations.

Light on purpose (click and the standard library): ``coldchain pki --help`` imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

if TYPE_CHECKING:
    from click.decorators import FC

# The values of core.rules.Severity, lowest first (spelled out so that parsing options does not
# load the core's pydantic models; tests/functional/test_cli_package.py ties the two).
SEVERITIES: Final = ("info", "warning", "critical")

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


def profile_option(without: str) -> Callable[[FC], FC]:
    """``--profile FILE`` (the ``profile_path`` argument); ``without`` is what runs if absent."""
    return click.option(
        "--profile",
        "profile_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"Alarm profile (TOML or JSON) [{without}].",
    )


PROFILE_OPTION = profile_option("the one the worker recorded, else the built-in one")


def format_option(
    *choices: str, default: str | None = None, help: str | None = None
) -> Callable[[FC], FC]:
    """``--format`` (the ``output`` argument) among ``choices``, the first by default."""
    return click.option(
        "--format",
        "output",
        type=click.Choice(choices),
        default=default or choices[0],
        show_default=True,
        help=help,
    )


LIST_FORMAT = format_option(
    "table", "json", "csv", help="table for people; json or csv for programs and spreadsheets."
)
FORMAT_OPTION = format_option("table", "json")


def severity_option(flag: str, default: str) -> Callable[[FC], FC]:
    """A minimum severity, e.g. ``--mail-min-severity``."""
    return click.option(flag, type=click.Choice(SEVERITIES), default=default, show_default=True)


BY_OPTION = click.option("--by", default=None, help="Who does it [the login name].")


def as_duration(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    """A click callback: ``30s``, ``15m``, ``24h`` or ``2d`` as a timedelta."""
    from coldchain.core.alarm_profile import (  # noqa: PLC0415 - pydantic: not for `--help`
        parse_duration,
    )

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
