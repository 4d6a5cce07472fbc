"""A click group that imports a command's module only when that command runs.

``coldchain --help`` lists every command with the summary written in the group's table and
imports none of them; ``coldchain NAME ...`` imports NAME's module alone. So each command
pays only for its own dependencies (fpdf for ``report``, boto3 for ``aws provision``).
tests/functional/test_cli_package.py checks each summary against its command's docstring.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class Lazy:
    """Where a command is (``.module:attribute``, relative to the group's package) and its
    summary: the first sentence of its docstring, which ``--help`` shows.
    """

    target: str
    summary: str


class LazyGroup(click.Group):
    """A group whose ``lazy`` commands are imported on first use (click's "lazily loading
    subcommands" pattern), listed in ``--help`` from their summaries.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], package: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)
        self.package = package

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the command ``name``."""
        module, _, attribute = self.lazy[name].target.partition(":")
        command = getattr(importlib.import_module(module, self.package), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[name].target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with a stand-in of each command not imported yet."""
        listing = {
            name: self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            for name in self.list_commands(ctx)
        }
        click.Group(commands=listing).format_commands(ctx, formatter)
