"""Shared fixtures: markers by folder."""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS = ("unit", "functional", "integration", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tier of the folder it lives in."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))
