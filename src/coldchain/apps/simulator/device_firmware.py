"""The device side of firmware jobs (core.jobs), as the simulator plays it: on a job notice
it reports ``IN_PROGRESS``, downloads the image from the signed URL, checks its SHA-256 and
"applies" it (its readings then carry the new ``firmware_version``); a device told to fail
(``--firmware-failure-rate``), a refused download or a wrong hash reverts to the rollback
version and reports ``FAILED`` with the reason.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

DOWNLOAD_TIMEOUT_S: Final = 10.0
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: str
    reports: tuple[dict[str, Any], ...]  # in order: IN_PROGRESS, then SUCCEEDED or FAILED
    firmware_version: str


def download(url: str) -> bytes:
    """The image (loopback HTTP; the signed URL is the only credential).

    Raises:
        OSError: refused (403 expired or altered, 404) or unreachable.
    """
    parts = urllib.parse.urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
    if not (loopback or parts.scheme == "https") or parts.username or parts.password:
        raise OSError(f"refusing to download from {url!r}")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as answer:  # noqa: S310
        data: bytes = answer.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise OSError("image too large")
    return data


def run_job(payload: bytes, current_version: str, fail: bool) -> Outcome | None:
    """Carry out a job notice; None when it is not one."""
    try:
        execution = json.loads(payload)["execution"]
        job_id = str(execution["jobId"])
        document = execution["jobDocument"]
        target = str(document["firmware_version"])
        rollback = str(document.get("rollback_firmware_version") or current_version)
    except (ValueError, KeyError, TypeError):
        return None
    started = {"status": "IN_PROGRESS", "statusDetails": {"step": "downloading"}}
    try:
        image = download(str(document["url"]))
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return _failed(job_id, started, rollback, f"download refused: {exc}")
    if hashlib.sha256(image).hexdigest() != document.get("sha256"):
        return _failed(job_id, started, rollback, "SHA-256 does not match the job's")
    if fail:
        return _failed(job_id, started, rollback, "the new image did not boot (simulated)")
    done = {"status": "SUCCEEDED", "statusDetails": {"firmware_version": target}}
    return Outcome(job_id, (started, done), target)


def _failed(job_id: str, started: dict[str, Any], rollback: str, reason: str) -> Outcome:
    details = {"error": reason, "firmware_version": rollback}
    return Outcome(job_id, (started, {"status": "FAILED", "statusDetails": details}), rollback)
