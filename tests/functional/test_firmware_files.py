"""Signed firmware URLs on the loopback server: a valid one downloads the image; an expired,
re-signed or altered one is refused (403), an unknown version 404."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.adapters.clock import FixedClock
from coldchain.adapters.firmware_files import FirmwareFiles, FirmwareServer
from coldchain.apps.simulator.device_firmware import run_job

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
IMAGE = b"\x7fELF reefer firmware 2.2.0" * 100


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FirmwareFiles, FirmwareServer, FixedClock]]:
    files = FirmwareFiles(tmp_path / "firmware")
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGE)
    files.add(image, "2.2.0")
    clock = FixedClock(NOW)
    server = FirmwareServer(files, clock)
    server.start()
    try:
        yield files, server, clock
    finally:
        server.stop()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_signed_url_downloads_until_it_expires(
    served: tuple[FirmwareFiles, FirmwareServer, FixedClock],
) -> None:
    files, server, clock = served
    url = files.signed_url(server.base_url, "2.2.0", NOW + timedelta(minutes=15))
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read() == IMAGE
    clock.advance(timedelta(minutes=15))
    assert status_of(url) == 403


def test_a_version_with_a_plus_downloads(
    served: tuple[FirmwareFiles, FirmwareServer, FixedClock], tmp_path: Path
) -> None:
    files, server, _ = served
    image = tmp_path / "build.bin"
    image.write_bytes(b"build 7")
    files.add(image, "2.2.0+b7")
    url = files.signed_url(server.base_url, "2.2.0+b7", NOW + timedelta(minutes=1))
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read() == b"build 7"


def test_an_altered_url_is_refused(
    served: tuple[FirmwareFiles, FirmwareServer, FixedClock],
) -> None:
    files, server, _ = served
    url = files.signed_url(server.base_url, "2.2.0", NOW + timedelta(minutes=15))
    later = url.replace(
        f"expires={int((NOW + timedelta(minutes=15)).timestamp())}", "expires=9999999999"
    )
    flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
    other = url.replace("/firmware/2.2.0", "/firmware/2.2.1")
    assert [status_of(u) for u in (later, flipped, other)] == [403, 403, 403]
    unsigned = f"{server.base_url}/firmware/2.2.0"
    assert status_of(unsigned) == 403
    missing = files.signed_url(server.base_url, "9.9.9", NOW + timedelta(minutes=5))
    assert status_of(missing) == 404
    odd = url.split("signature=")[0] + "signature=%C3%A9%C3%A9"  # not hex, not ASCII
    assert status_of(odd) == 403
    escape = url.replace("/firmware/2.2.0", "/firmware/..%2F..%2Furl.key")
    assert status_of(escape) == 403  # the signature names 2.2.0: refused before any path


def test_the_device_refuses_a_bad_download_and_rolls_back(
    served: tuple[FirmwareFiles, FirmwareServer, FixedClock],
) -> None:
    files, server, clock = served
    url = files.signed_url(server.base_url, "2.2.0", NOW + timedelta(minutes=1))
    digest = hashlib.sha256(IMAGE).hexdigest()

    def notice(sha: str, link: str) -> bytes:
        document = {
            "firmware_version": "2.2.0",
            "url": link,
            "sha256": sha,
            "rollback_firmware_version": "2.1.4",
        }
        return json.dumps({"execution": {"jobId": "j1", "jobDocument": document}}).encode()

    good = run_job(notice(digest, url), "2.1.4", fail=False)
    assert good is not None
    assert good.firmware_version == "2.2.0"
    assert good.reports[-1]["status"] == "SUCCEEDED"
    wrong_hash = run_job(notice("0" * 64, url), "2.1.4", fail=False)
    assert wrong_hash is not None
    assert wrong_hash.reports[-1]["status"] == "FAILED"
    assert wrong_hash.firmware_version == "2.1.4"
    clock.advance(timedelta(minutes=2))
    expired = run_job(notice(digest, url), "2.1.4", fail=False)
    assert expired is not None
    assert "403" in expired.reports[-1]["statusDetails"]["error"]
