"""``coldchain profile show``, and the alarm profile the operator commands judge readings by:
a ``--profile`` file, else the one the worker recorded in the store, else the built-in one.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from coldchain.apps.cli.context import stores_of
from coldchain.apps.cli.options import DB_OPTION, FORMAT_OPTION, PROFILE_OPTION, STORE_OPTION
from coldchain.apps.operator_stores import OperatorStores
from coldchain.config import load_profile_file
from coldchain.core.alarm_profile import AlarmProfile, default_profile, profile_mapping
from coldchain.core.errors import ConfigurationError


def chosen_profile(stores: OperatorStores, path: Path | None) -> AlarmProfile:
    """An explicit profile file, else the one the worker recorded, else the built-in one."""
    if path is not None:
        return load_profile_file(path)
    return stores.recorded_profile() or default_profile()


@click.group()
def profile() -> None:
    """The alarm profile: rules, band, silence and reminder times."""


@profile.command("show")
@PROFILE_OPTION
@click.option("--builtin", is_flag=True, help="The built-in default profile.")
@FORMAT_OPTION
@DB_OPTION
@STORE_OPTION
@click.pass_context
def profile_show(
    ctx: click.Context, profile_path: Path | None, builtin: bool, output: str, db: Path | None
) -> None:
    """The rules the worker runs with, and the band they keep cargo in. The JSON is what
    Terraform hands the Lambda (terraform/alarm-profile.json).

    Example: coldchain profile show --builtin --format json > terraform/alarm-profile.json
    """
    if builtin and profile_path is not None:
        raise click.UsageError("give --profile FILE or --builtin, not both")
    if builtin or profile_path is not None:
        chosen = default_profile() if builtin else load_profile_file(profile_path)  # type: ignore[arg-type]
    else:
        try:
            stores = stores_of(ctx, db)
        except ConfigurationError:  # no worker has run here: it would run with this one
            chosen = default_profile()
        else:
            try:
                chosen = chosen_profile(stores, None)
            finally:
                stores.close()
    document = {**profile_mapping(chosen), "band": chosen.band}
    if output == "json":
        click.echo(json.dumps(document, indent=2))
        return
    band = chosen.band
    limits = f"{band[0]:g} to {band[1]:g} °C" if band else "none"
    click.echo(
        f"profile {chosen.name}: band {limits}, silent after {document['silence_after']}, "
        f"reminders every {document['reminder_every']}"
    )
    table = Table()
    for column in ("rule", "severity", "condition"):
        table.add_column(column, no_wrap=column != "condition")
    for rule in chosen.rules:
        table.add_row(rule.name, rule.severity.value, rule.describe())
    Console().print(table)
