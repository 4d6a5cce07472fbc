"""Device management on AWS IoT (boto3 clients, injected): commands published through
``iot-data`` with an MQTT v5 message expiry, the classic Device Shadow, and IoT Jobs for
firmware with pre-signed S3 URLs, a rollout rate and an abort rule. The same documents as
the local stack (core.commands, core.shadow, core.jobs); only the transport differs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.core.commands import Command
from coldchain.core.errors import (
    ConfigurationError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
)
from coldchain.core.jobs import Job, check_version
from coldchain.core.shadow import Shadow
from coldchain.core.topics import command_request_topic

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_iot.client import IoTClient
    from mypy_boto3_iot_data.client import IoTDataPlaneClient
    from mypy_boto3_s3.client import S3Client

PRESIGNED_URL_EXPIRY_S: Final = 3600  # IoT allows 60-3600 s


def _failed(exc: ClientError | BotoCoreError, action: str) -> StorageError | NotFoundError:
    if isinstance(exc, ClientError):
        code = exc.response["Error"]["Code"]
        if code == "ResourceNotFoundException":
            return NotFoundError(f"AWS IoT {action}: not found")
        if code in ("ThrottlingException", "ServiceUnavailableException"):
            return StorageUnavailableError(f"AWS IoT {action} failed: {exc}")
    return StorageError(f"AWS IoT {action} failed: {exc}")


class IotCommandPublisher:
    """Sends a command on ``cmd/{thing}/request`` (QoS 1). The message expiry is what is
    left of the command's validity, so IoT Core keeps it for an offline persistent session
    until then and never delivers it after.
    """

    def __init__(self, client: IoTDataPlaneClient) -> None:
        self._client = client

    def send(self, command: Command, now: datetime) -> None:
        left = math.ceil((command.expires_at - now).total_seconds())
        if left <= 0:
            raise NotFoundError(f"command {command.command_id} has expired")
        try:
            self._client.publish(
                topic=command_request_topic(command.device_id),
                qos=1,
                payload=json.dumps(command.request()).encode(),
                contentType="application/json",
                messageExpiry=left,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "publish") from exc


class IotShadow:
    """The classic (unnamed) Device Shadow of a thing."""

    def __init__(self, client: IoTDataPlaneClient) -> None:
        self._client = client

    def get(self, thing: str) -> Shadow | None:
        try:
            answer = self._client.get_thing_shadow(thingName=thing)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise _failed(exc, "get_thing_shadow") from exc
        except BotoCoreError as exc:
            raise _failed(exc, "get_thing_shadow") from exc
        document = json.loads(answer["payload"].read())
        state = document.get("state", {})
        return Shadow(
            thing,
            state.get("desired", {}),
            state.get("reported", {}),
            int(document.get("version", 0)),
        )

    def desire(self, thing: str, changes: dict[str, Any], version: int | None = None) -> int:
        """Set desired fields (None deletes one); the new version. With ``version``, the
        update is refused (409) unless the shadow is still at it.
        """
        request: dict[str, Any] = {"state": {"desired": changes}}
        if version is not None:
            request["version"] = version
        try:
            answer = self._client.update_thing_shadow(
                thingName=thing, payload=json.dumps(request).encode()
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "update_thing_shadow") from exc
        return int(json.loads(answer["payload"].read()).get("version", 0))


class IotJobs:
    """Firmware jobs on IoT Jobs, targeted at thing groups (``coldchain aws provision``
    puts each thing in ``fleet-F`` and ``firmware-V``).
    """

    def __init__(self, client: IoTClient, presign_role_arn: str) -> None:
        self._client = client
        self._role = presign_role_arn

    def create(self, job: Job, group_arns: list[str], bucket: str, key: str) -> str:
        """Create the job; its document's URL is IoT's pre-signed placeholder, replaced per
        device with a URL valid for PRESIGNED_URL_EXPIRY_S. Returns the job ARN.
        """
        placeholder = f"${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{bucket}/{key}}}"
        request: dict[str, Any] = {
            "jobId": job.job_id,
            "targets": group_arns,
            "document": json.dumps(job.document(placeholder)),
            "targetSelection": "SNAPSHOT",
            "presignedUrlConfig": {"roleArn": self._role, "expiresInSec": PRESIGNED_URL_EXPIRY_S},
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10},
        }
        if job.rate_per_minute is not None:
            request["jobExecutionsRolloutConfig"] = {
                "maximumPerMinute": max(1, math.floor(job.rate_per_minute))
            }
        if job.abort_failed_pct is not None:
            request["abortConfig"] = {
                "criteriaList": [
                    {
                        "failureType": "ALL",  # failed and timed out, as locally
                        "action": "CANCEL",
                        "thresholdPercentage": job.abort_failed_pct,
                        "minNumberOfExecutedThings": job.abort_min_finished,
                    }
                ]
            }
        try:
            answer = self._client.create_job(**request)
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "create_job") from exc
        return str(answer["jobArn"])

    def describe(self, job_id: str) -> dict[str, Any]:
        try:
            answer = self._client.describe_job(jobId=job_id)
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "describe_job") from exc
        return dict(answer["job"])

    def executions(self, job_id: str) -> dict[str, str]:
        """Thing ARN → execution status."""
        found: dict[str, str] = {}
        try:
            pages = self._client.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
            for page in pages:
                for summary in page.get("executionSummaries", []):
                    status = summary.get("jobExecutionSummary", {}).get("status", "")
                    found[summary.get("thingArn", "")] = str(status)
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "list_job_executions_for_job") from exc
        return found

    def cancel(self, job_id: str) -> None:
        try:
            self._client.cancel_job(jobId=job_id, comment="cancelled by an operator")
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "cancel_job") from exc


class S3FirmwareImages:
    """Firmware images in the bucket Terraform makes (`terraform output firmware_bucket`):
    one object per version, uploaded with its SHA-256 so S3 checks it on arrival, never
    overwritten with other contents.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @staticmethod
    def key(version: str) -> str:
        return f"firmware/{check_version(version)}.bin"

    def add(self, image: Path, version: str) -> tuple[str, int]:
        """Upload an image; its SHA-256 (hex) and size.

        Raises:
            ConfigurationError: the version exists with other contents.
            StorageError: S3 refused.
        """
        data = image.read_bytes()
        digest = hashlib.sha256(data).digest()
        key = self.key(version)
        try:
            found = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise _failed(exc, "head_object") from exc
        else:
            if found.get("Metadata", {}).get("sha256") != digest.hex():
                raise ConfigurationError(f"firmware {version} exists with other contents")
            return digest.hex(), len(data)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(digest).decode(),
                Metadata={"firmware-version": version, "sha256": digest.hex()},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failed(exc, "put_object") from exc
        return digest.hex(), len(data)
