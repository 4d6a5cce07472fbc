"""The AWS side of device management on moto: commands through iot-data (with the message
expiry), the Device Shadow (versions, a stale version refused), IoT Jobs (group targets,
pre-signed URL placeholder, rollout rate, abort rule, cancel)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.backends import get_backend

from coldchain.adapters.iot_device_management import (
    IotCommandPublisher,
    IotJobs,
    IotShadow,
    S3FirmwareImages,
)
from coldchain.core.commands import new_command
from coldchain.core.errors import ConfigurationError, StorageError
from coldchain.core.jobs import Job
from tests.aws import REGION, fake_credentials

NOW = datetime.now(UTC).replace(microsecond=0)
ACCOUNT = "123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_credentials(monkeypatch)
    with mock_aws():
        yield


def test_a_command_is_published_on_its_topic_with_what_is_left_of_its_validity(aws: None) -> None:
    client = boto3.client("iot-data", region_name=REGION)
    command = new_command("reefer-1", "self-test", {}, NOW, expires_in=timedelta(minutes=10))
    IotCommandPublisher(client).send(command, NOW + timedelta(minutes=4))
    published = get_backend("iot-data")[ACCOUNT][REGION].published_payloads
    [(topic, payload)] = published
    assert topic == "cmd/reefer-1/request"
    body = json.loads(payload)
    assert body["command_id"] == command.command_id
    assert body["name"] == "self-test"


def test_the_message_expiry_is_what_is_left_of_the_command() -> None:
    """moto keeps no MQTT properties: the request itself is checked with botocore's stubber."""
    client = boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url="https://data-ats.iot.eu-west-1.amazonaws.com",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    command = new_command("reefer-1", "reboot", {}, NOW, expires_in=timedelta(minutes=10))
    with Stubber(client) as stub:
        stub.add_response(
            "publish",
            {},
            {
                "topic": "cmd/reefer-1/request",
                "qos": 1,
                "payload": json.dumps(command.request()).encode(),
                "contentType": "application/json",
                "messageExpiry": 360,
            },
        )
        IotCommandPublisher(client).send(command, NOW + timedelta(minutes=4))
        stub.assert_no_pending_responses()


def test_the_shadow_keeps_versions_and_refuses_a_stale_one(aws: None) -> None:
    boto3.client("iot", region_name=REGION).create_thing(thingName="reefer-1")
    shadow = IotShadow(boto3.client("iot-data", region_name=REGION))
    assert shadow.get("reefer-1") is None
    first = shadow.desire("reefer-1", {"interval_s": 30})
    second = shadow.desire("reefer-1", {"band": [2, 8]}, version=first)
    assert second == first + 1
    found = shadow.get("reefer-1")
    assert found is not None
    assert found.desired == {"interval_s": 30, "band": [2, 8]}
    assert found.delta == {"interval_s": 30, "band": [2, 8]}  # nothing reported yet
    with pytest.raises(StorageError):
        shadow.desire("reefer-1", {"label": "x"}, version=first)


def test_a_firmware_job_targets_groups_with_a_presigned_url_rate_and_abort_rule(aws: None) -> None:
    iot = boto3.client("iot", region_name=REGION)
    group = iot.create_thing_group(thingGroupName="fleet-reefer")["thingGroupArn"]
    for thing in ("reefer-1", "reefer-2"):
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName="fleet-reefer", thingName=thing)
    jobs = IotJobs(iot, f"arn:aws:iam::{ACCOUNT}:role/coldchain-iot-presign")
    job = Job(
        job_id="fw-2.2.0-a1",
        target="fleet=reefer",
        firmware_version="2.2.0",
        sha256="ab" * 32,
        rollback_version="2.1.4",
        rate_per_minute=10,
        abort_failed_pct=20,
        created_at=NOW,
    )
    jobs.create(job, [group], "coldchain-firmware", "2.2.0.bin")
    described: dict[str, Any] = jobs.describe(job.job_id)
    assert described["presignedUrlConfig"]["expiresInSec"] == 3600
    assert described["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 10
    [criteria] = described["abortConfig"]["criteriaList"]
    assert (criteria["failureType"], criteria["thresholdPercentage"]) == ("ALL", 20)
    document = json.loads(iot.get_job_document(jobId=job.job_id)["document"])
    assert document["url"].startswith("${aws:iot:s3-presigned-url:https://s3.amazonaws.com/")
    assert document["rollback_firmware_version"] == "2.1.4"
    jobs.cancel(job.job_id)
    assert jobs.describe(job.job_id)["status"] == "CANCELED"


def test_a_firmware_image_goes_to_the_bucket_with_its_checksum_once(
    aws: None, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket="coldchain-firmware-test",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    images = S3FirmwareImages(s3, "coldchain-firmware-test")
    image = tmp_path / "2.2.0.bin"
    image.write_bytes(b"reefer firmware 2.2.0")
    digest, size = images.add(image, "2.2.0")
    assert (digest, size) == (hashlib.sha256(b"reefer firmware 2.2.0").hexdigest(), 21)
    stored = s3.get_object(Bucket="coldchain-firmware-test", Key=images.key("2.2.0"))
    assert stored["Body"].read() == b"reefer firmware 2.2.0"
    assert stored["Metadata"]["sha256"] == digest
    assert images.add(image, "2.2.0") == (digest, size)  # the same image again: nothing new
    image.write_bytes(b"something else")
    with pytest.raises(ConfigurationError):
        images.add(image, "2.2.0")
