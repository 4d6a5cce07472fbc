"""What the commands print: rich tables of inert cells, CSV and JSON lists, local times."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import click
from rich.table import Table
from rich.text import Text

# C0 and C1 controls (ESC starts a terminal escape sequence), DEL, zero-width and
# bidirectional overrides: shown as U+FFFD so a device string cannot restyle or rewrite a
# terminal, nor hide what it says.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def plain(value: object) -> Text:
    """Text shown literally: never read as rich markup, control characters made visible."""
    return Text(_UNSAFE.sub("\ufffd", str(value)))


def add_row(table: Table, *cells: object) -> None:
    """A table row of :func:`plain` cells: device-supplied strings stay inert."""
    table.add_row(*(plain(cell) for cell in cells))


def echo_csv(documents: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """A list as CSV on stdout: one row per document, the columns given (default: the first
    document's keys); nested values as JSON, None as an empty cell.
    """
    chosen = list(columns or (documents[0].keys() if documents else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(chosen)
    for document in documents:
        writer.writerow([_csv_cell(document.get(column)) for column in chosen])
    click.echo(out.getvalue(), nl=False)


def echo_documents(output: str, documents: Sequence[Mapping[str, Any]]) -> None:
    """``json`` or ``csv`` of a list of documents on stdout."""
    if output == "csv":
        echo_csv(documents)
    else:
        click.echo(json.dumps(list(documents), indent=2))


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def keep_whole(table: Table, *headers: str) -> Table:
    """Columns that are never cut or wrapped (ids: what the next command needs is copied from
    them); the others give way. Call after the rows are added.
    """
    for column in table.columns:
        if column.header in headers:
            cells = [c.cell_len if isinstance(c, Text) else len(str(c)) for c in column.cells]
            column.no_wrap = True
            column.min_width = max([len(str(column.header)), *cells])
    return table


def local(moment: datetime | None) -> str:
    """A stored UTC time shown in the machine's zone, with the zone."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
