"""`coldchain aws csr` and `coldchain aws provision` against moto's IoT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from moto import mock_aws

from tests.cli import run


@pytest.fixture
def iot(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("iot", region_name="eu-west-1")
        client.create_policy(
            policyName="coldchain-device",
            policyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
                }
            ),
        )
        yield client


def test_csr_then_provision_registers_the_device(
    iot: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--home", str(tmp_path), "aws", "csr", "reefer-0001"], capsys)
    assert code == 0, err
    key = tmp_path / "aws" / "reefer-0001.key"
    csr = x509.load_pem_x509_csr((tmp_path / "aws" / "reefer-0001.csr").read_bytes())
    assert key.stat().st_mode & 0o777 == 0o600
    assert csr.subject.rfc4514_string() == "CN=reefer-0001"

    code, out, err = run(["--home", str(tmp_path), "aws", "provision", "reefer-0001"], capsys)
    assert code == 0, err
    assert "client id reefer-0001" in out
    client = boto3.client("iot", region_name="eu-west-1")
    principals = client.list_thing_principals(thingName="reefer-0001")["principals"]
    assert len(principals) == 1
    policies = client.list_attached_policies(target=principals[0])["policies"]
    assert [p["policyName"] for p in policies] == ["coldchain-device"]
    certificate = (tmp_path / "aws" / "reefer-0001.crt").read_text()
    assert "BEGIN CERTIFICATE" in certificate
    assert "PRIVATE KEY" not in certificate


def test_missing_policy_or_csr_is_one_line(
    iot: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--home", str(tmp_path), "aws", "provision", "reefer-0002"], capsys)
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "CSR not found" in err
    run(["--home", str(tmp_path), "aws", "csr", "reefer-0002"], capsys)
    code, _, err = run(
        ["--home", str(tmp_path), "aws", "provision", "reefer-0002", "--policy", "nope"], capsys
    )
    assert code == 1
    assert "policy 'nope' not found" in err
    assert err.strip().count("\n") == 0


def test_provision_places_the_thing_in_the_registry_for_jobs(
    iot: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["--home", str(tmp_path), "aws", "csr", "reefer-0003"], capsys)
    code, out, err = run(
        [
            "--home",
            str(tmp_path),
            "aws",
            "provision",
            "reefer-0003",
            "--fleet",
            "north",
            "--firmware",
            "2.1.4",
        ],
        capsys,
    )
    assert code == 0, err
    assert "groups fleet-north, firmware-2_1_4" in out
    client = boto3.client("iot", region_name="eu-west-1")
    thing = client.describe_thing(thingName="reefer-0003")
    assert thing["thingTypeName"] == "coldchain-logger"
    assert thing["attributes"] == {
        "fleet": "north",
        "firmware_version": "2.1.4",
        "device_type": "reefer-logger",
    }
    groups = client.list_thing_groups_for_thing(thingName="reefer-0003")["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == ["firmware-2_1_4", "fleet-north"]
    searchable = client.describe_thing_type(thingTypeName="coldchain-logger")[
        "thingTypeProperties"
    ]["searchableAttributes"]
    assert set(searchable) == {"fleet", "firmware_version", "device_type"}
    # Re-provisioning after a firmware update moves the attribute; the groups are added to.
    run(["--home", str(tmp_path), "aws", "csr", "reefer-0003"], capsys)
    code, _, err = run(
        [
            "--home",
            str(tmp_path),
            "aws",
            "provision",
            "reefer-0003",
            "--fleet",
            "north",
            "--firmware",
            "2.2.0",
        ],
        capsys,
    )
    assert code == 0, err
    attributes = client.describe_thing(thingName="reefer-0003")["attributes"]
    assert attributes["firmware_version"] == "2.2.0"
