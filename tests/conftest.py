"""Shared fixtures: markers by folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.pki import LocalPki
from tests.stack import DEVICES, Stack, free_port

_TIERS = ("unit", "functional", "integration", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tier of the folder it lives in."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def shared_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA with certificates for the test devices, made once per session."""
    directory = tmp_path_factory.mktemp("pki")
    authority = LocalPki(directory)
    authority.init()
    for device in DEVICES:
        authority.issue_device(device)
    return directory


@pytest.fixture
def stack(tmp_path: Path, shared_pki: Path) -> Iterator[Stack]:
    """A broker on a free port and a home folder for workers; both cleaned up after."""
    home = tmp_path / "home"
    shutil.copytree(shared_pki, home / "pki")
    running = Stack(home)
    running.start_broker()
    yield running
    running.close()


@pytest.fixture
def broker_only(tmp_path: Path, shared_pki: Path) -> Iterator[MosquittoProcess]:
    """Just a broker, for connection tests."""
    home = tmp_path / "home"
    shutil.copytree(shared_pki, home / "pki")
    process = MosquittoProcess(
        BrokerConfig(home / "broker", LocalPki(home / "pki"), port=free_port())
    )
    process.start()
    yield process
    process.stop()
