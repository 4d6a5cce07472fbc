"""The CLI package: `coldchain --help` lists every command without importing one, exactly as
click would list them imported; a command loads only what it uses; shared options stay tied
to the core."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from coldchain.apps.cli import COMMANDS, cli
from coldchain.apps.cli.lazy import LazyGroup
from coldchain.apps.cli.options import SEVERITIES
from coldchain.apps.dashboard import commands as dashboard_commands
from coldchain.core.rules import Severity

SDKS = ("fpdf", "fontTools", "boto3", "botocore", "paho", "cryptography", "fastapi", "uvicorn")
# What the root and its shared modules may load: each command module is loaded by its command.
LIGHT_CLI = {"coldchain.apps.cli", "coldchain.apps.cli.lazy"}


def loaded_by(*args: str) -> tuple[str, set[str]]:
    """(stdout, modules loaded) of ``coldchain ARGS`` in a fresh interpreter."""
    code = (
        "import sys\nfrom coldchain.apps.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nsys.stderr.write(' '.join(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout, set(done.stderr.split())


def tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_lists_every_command_and_imports_none() -> None:
    out, modules = loaded_by("--help")
    for name in COMMANDS:
        assert f"\n  {name} " in out
    assert not tops(modules) & {*SDKS, "rich", "pydantic", "sqlite3"}
    cli_modules = {m for m in modules if m.startswith("coldchain.apps.")}
    assert cli_modules <= LIGHT_CLI, cli_modules - LIGHT_CLI
    assert not any(m.startswith(("coldchain.adapters", "coldchain.core.rules")) for m in modules)


def test_pki_help_loads_no_sdk() -> None:
    out, modules = loaded_by("pki", "--help")
    assert "rotate" in out
    assert not tops(modules) & {*SDKS, "rich", "pydantic", "sqlite3"}


@pytest.mark.parametrize("command", ["devices", "telemetry", "alarms", "shipment", "aws"])
def test_a_command_without_a_pdf_loads_no_pdf_library(command: str) -> None:
    _, modules = loaded_by(command, "--help")
    assert not tops(modules) & {"fpdf", "fontTools", "boto3"}, command


def test_report_loads_its_pdf_library() -> None:
    _, modules = loaded_by("report", "--help")
    assert "fpdf" in tops(modules)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_summary_is_the_first_sentence_of_its_command_help(name: str) -> None:
    command = LazyGroup(lazy=COMMANDS, package="coldchain.apps.cli").load(name)
    assert command.name == name
    assert command.get_short_help_str(limit=1_000) == COMMANDS[name].summary


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_listing_is_clicks_own(width: int) -> None:
    lazy = LazyGroup(name="coldchain", lazy=COMMANDS, package="coldchain.apps.cli")
    eager = click.Group(name="coldchain", commands={name: lazy.load(name) for name in COMMANDS})
    listings = []
    for group in (lazy, eager):
        formatter = click.HelpFormatter(width=width)
        group.format_commands(click.Context(group), formatter)
        listings.append(formatter.getvalue())
    assert not lazy.commands  # listed from the table alone
    assert listings[0] == listings[1]
    assert listings[0].count("\n") > len(COMMANDS)


def test_every_dashboard_command_is_registered() -> None:
    for command in dashboard_commands.COMMANDS:
        assert command.name is not None
        assert cli.get_command(click.Context(cli), command.name) is command


def test_severity_choices_are_the_cores() -> None:
    assert tuple(severity.value for severity in Severity) == SEVERITIES


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coldchain", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "version" in done.stdout
