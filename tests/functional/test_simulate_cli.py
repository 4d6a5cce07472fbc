"""The simulator's command line: the original's environment, output and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.adapters.pki import LocalPki
from coldchain.apps.simulator.run import original_line
from coldchain.core.reading import Reading
from tests.cli import run
from tests.stack import free_port


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_original_output_line() -> None:
    reading = Reading("cold-chain-sim-01", "2024-01-15T09:23:41.000Z", 3.2, 68.0, 0.02, 94.0)
    from datetime import datetime

    line = original_line(reading, datetime(2024, 1, 15, 9, 23, 41))
    assert line == (
        "[2024-01-15 09:23:41] Published -> dt/coldchain/cold-chain-sim-01/telemetry"
        " | temp: 3.2°C, hum: 68%, shock: 0.02g, bat: 94%"
    )


def test_missing_certificate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CERT_PATH", str(tmp_path / "nope.crt"))
    monkeypatch.setenv("KEY_PATH", str(tmp_path / "nope.key"))
    monkeypatch.setenv("CA_PATH", str(tmp_path / "ca.crt"))
    code, _, err = run(["simulate", "--count", "1"], capsys)
    assert code != 0
    assert_one_line_error(err, "not found")


def test_unreadable_certificate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("bad.crt", "bad.key", "ca.crt"):
        (tmp_path / name).write_text("this is not PEM\n")
    code, _, err = run(
        [
            "simulate",
            "--cert",
            str(tmp_path / "bad.crt"),
            "--key",
            str(tmp_path / "bad.key"),
            "--ca",
            str(tmp_path / "ca.crt"),
            "--count",
            "1",
        ],
        capsys,
    )
    assert code != 0
    assert_one_line_error(err, "cannot be used")


def test_nothing_listening_at_the_endpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    LocalPki(tmp_path / "pki").init()
    code, _, err = run(
        [
            "--home",
            str(tmp_path),
            "simulate",
            "--endpoint",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--count",
            "1",
        ],
        capsys,
    )
    assert code != 0
    assert_one_line_error(err, "connection refused")


def test_unknown_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    LocalPki(tmp_path / "pki").init()
    code, _, err = run(["--home", str(tmp_path), "simulate", "--scenario", "meteor"], capsys)
    assert code != 0
    assert_one_line_error(err, "unknown scenario 'meteor'")


def test_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["simulate", "--interval", "soon"], capsys)
    assert code == 2
    assert_one_line_error(err, "--interval")


@pytest.mark.parametrize("size", ["0", "101", "ten"])
def test_batch_outside_the_format_is_one_line(
    capsys: pytest.CaptureFixture[str], size: str
) -> None:
    code, _, err = run(["simulate", "--batch", size, "--count", "1"], capsys)
    assert code == 2
    assert_one_line_error(err, "--batch")


def test_batch_in_the_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["simulate", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())  # click rewraps the docstring
    assert "--batch INTEGER RANGE Readings per message, 1 to 100" in text
    assert "coldchain simulate --devices 100 --interval 1 --batch 10" in text
