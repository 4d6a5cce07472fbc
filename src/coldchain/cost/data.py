"""The cost model's data files, packaged in :mod:`coldchain.data`: the prices and the figures
measured on moto (written by ``python -m benchmarks.aws_cost_inputs``).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Final

from coldchain.cost.inputs import (
    CostInputError,
    Measured,
    Prices,
    measured_from_mapping,
    prices_from_mapping,
)

PRICES_FILE: Final = "aws_prices.json"
MEASURED_FILE: Final = "aws_cost_inputs.json"


def data_path(name: str) -> Path:
    """Where a packaged data file is (the benchmark writes the measured one there)."""
    return Path(str(files("coldchain.data").joinpath(name)))


def load_prices(path: Path | None = None) -> Prices:
    """Raises: CostInputError: the file is missing or malformed."""
    return prices_from_mapping(_read(path or data_path(PRICES_FILE)))


def load_measured(path: Path | None = None) -> Measured:
    """Raises: CostInputError: the file is missing or malformed."""
    return measured_from_mapping(_read(path or data_path(MEASURED_FILE)))


def _read(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CostInputError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise CostInputError(f"{path}: not a JSON object")
    return document
