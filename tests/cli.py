"""Run the ``coldchain`` command in-process and capture what it printed."""

from __future__ import annotations

import pytest

from coldchain.apps.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``coldchain ARGS``."""
    code = 0
    try:
        main(args)
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err
