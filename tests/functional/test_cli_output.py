"""Device-supplied strings reach the terminal inert: no markup, no escape sequences."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.adapters.sqlite import SqliteDatabase, SqliteReadingStore
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical
from tests.cli import run
from tests.factories import T0


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    # Written straight to the store (as an older version's validation let through).
    SqliteReadingStore(db).put_many(
        [
            Reading("dev-markup", to_canonical(T0), 4.0, 60.0, 0.0, 90.0, firmware_version="[/]"),
            Reading(
                "dev-escape",
                to_canonical(T0),
                4.0,
                60.0,
                0.0,
                90.0,
                firmware_version="\x1b[2J\x1b[31mred\u202e",
            ),
        ]
    )
    db.close()
    return tmp_path


@pytest.mark.parametrize(
    "args", [["devices"], ["device", "show", "dev-markup"], ["device", "show", "dev-escape"]]
)
def test_device_strings_render_harmlessly(
    home: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--home", str(home), *args], capsys)
    assert code == 0, err
    assert "\x1b" not in out
    assert "\u202e" not in out
    if "dev-escape" not in args:
        assert "[/]" in out
