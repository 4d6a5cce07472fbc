"""Register a device with AWS IoT Core from its CSR (boto3 IoT client, injected).

AWS signs the device's public key; the private key never leaves the device. The thing is
created if missing, the certificate attached to it and to the shared device policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.topics import is_device_id

if TYPE_CHECKING:
    from mypy_boto3_iot.client import IoTClient


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a device needs next: its certificate, and where to connect."""

    thing_name: str
    certificate_arn: str
    certificate_pem: str
    endpoint: str


def provision_device(
    client: IoTClient,
    device_id: str,
    csr_pem: str,
    policy_name: str,
    thing_type: str | None = None,
) -> Provisioned:
    """Create (if needed) the thing, sign the CSR, attach certificate, thing and policy.

    Raises:
        ConfigurationError: the id is not a device id, or AWS refuses (with its reason).
        NotFoundError: the policy does not exist (deploy the Terraform first).
    """
    if not is_device_id(device_id):
        raise ConfigurationError(f"{device_id!r} is not a device id (1-128 of A-Z a-z 0-9 _ -)")
    try:
        client.get_policy(policyName=policy_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise NotFoundError(
                f"IoT policy {policy_name!r} not found; deploy terraform/ first"
            ) from None
        raise ConfigurationError(f"AWS IoT refused: {exc}") from None
    try:
        try:
            client.describe_thing(thingName=device_id)
        except client.exceptions.ResourceNotFoundException:
            if thing_type:
                client.create_thing(thingName=device_id, thingTypeName=thing_type)
            else:
                client.create_thing(thingName=device_id)
        created = client.create_certificate_from_csr(
            certificateSigningRequest=csr_pem, setAsActive=True
        )
        arn = created["certificateArn"]
        client.attach_policy(policyName=policy_name, target=arn)
        client.attach_thing_principal(thingName=device_id, principal=arn)
        endpoint = client.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    except (ClientError, BotoCoreError) as exc:
        raise ConfigurationError(f"AWS IoT refused: {exc}") from None
    return Provisioned(device_id, arn, created["certificatePem"], endpoint)


def write_certificate(provisioned: Provisioned, directory: str | Path) -> Path:
    """Write the certificate PEM beside the device's key."""
    path = Path(directory) / f"{provisioned.thing_name}.crt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(provisioned.certificate_pem)
    return path
