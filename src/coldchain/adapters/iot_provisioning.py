"""Register a device with AWS IoT Core from its CSR (boto3 IoT client, injected).

AWS signs the device's public key; the private key never leaves the device. The thing is
created if missing (or updated), typed, given its attributes (fleet, device type, firmware
version) and put into a fleet group and a firmware-version group, so that jobs can target a
fleet or every device on one version; the certificate is attached to it and to the shared
device policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.core.errors import ConfigurationError, NotFoundError
from coldchain.core.topics import is_device_id

if TYPE_CHECKING:
    from mypy_boto3_iot.client import IoTClient

DEFAULT_THING_TYPE: Final = "coldchain-logger"
SEARCHABLE: Final = ["fleet", "firmware_version", "device_type"]  # a thing type allows three


@dataclass(frozen=True, slots=True)
class Registry:
    """Where a device sits in the registry."""

    thing_type: str = DEFAULT_THING_TYPE
    fleet_id: str | None = None
    firmware_version: str | None = None
    device_type: str = "reefer-logger"

    def attributes(self) -> dict[str, str]:
        found = {
            "fleet": self.fleet_id,
            "firmware_version": self.firmware_version,
            "device_type": self.device_type,
        }
        return {name: value for name, value in found.items() if value}

    def groups(self) -> dict[str, str]:
        """Thing groups by name, with what each is for."""
        out = {}
        if self.fleet_id:
            out[group_name("fleet", self.fleet_id)] = f"coldchain fleet {self.fleet_id}"
        if self.firmware_version:
            name = group_name("firmware", self.firmware_version)
            out[name] = f"coldchain devices on firmware {self.firmware_version}"
        return out


def group_name(kind: str, value: str) -> str:
    """A thing group's name (1-128 of A-Z a-z 0-9 : _ -), e.g. ``firmware-2_1_4``."""
    return re.sub(r"[^A-Za-z0-9:_-]", "_", f"{kind}-{value}")[:128]


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a device needs next: its certificate, and where to connect."""

    thing_name: str
    certificate_arn: str
    certificate_pem: str
    endpoint: str
    groups: tuple[str, ...] = ()


def provision_device(
    client: IoTClient,
    device_id: str,
    csr_pem: str,
    policy_name: str,
    registry: Registry | None = None,
) -> Provisioned:
    """Create or update the thing in the registry, sign the CSR, attach certificate, thing
    and policy.

    Raises:
        ConfigurationError: the id is not a device id, or AWS refuses (with its reason).
        NotFoundError: the policy does not exist (deploy the Terraform first).
    """
    if not is_device_id(device_id):
        raise ConfigurationError(f"{device_id!r} is not a device id (1-128 of A-Z a-z 0-9 _ -)")
    registry = registry or Registry()
    try:
        client.get_policy(policyName=policy_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise NotFoundError(
                f"IoT policy {policy_name!r} not found; deploy terraform/ first"
            ) from None
        raise ConfigurationError(f"AWS IoT refused: {exc}") from None
    try:
        _ensure_thing_type(client, registry.thing_type)
        attributes = registry.attributes()
        try:
            client.describe_thing(thingName=device_id)
        except client.exceptions.ResourceNotFoundException:
            client.create_thing(
                thingName=device_id,
                thingTypeName=registry.thing_type,
                attributePayload={"attributes": attributes},
            )
        else:
            client.update_thing(
                thingName=device_id,
                thingTypeName=registry.thing_type,
                attributePayload={"attributes": attributes, "merge": True},
            )
        for name, description in registry.groups().items():
            _ensure_group(client, name, description)
            client.add_thing_to_thing_group(thingGroupName=name, thingName=device_id)
        created = client.create_certificate_from_csr(
            certificateSigningRequest=csr_pem, setAsActive=True
        )
        arn = created["certificateArn"]
        client.attach_policy(policyName=policy_name, target=arn)
        client.attach_thing_principal(thingName=device_id, principal=arn)
        endpoint = client.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    except (ClientError, BotoCoreError) as exc:
        raise ConfigurationError(f"AWS IoT refused: {exc}") from None
    groups = tuple(registry.groups())
    return Provisioned(device_id, arn, created["certificatePem"], endpoint, groups)


def _ensure_thing_type(client: IoTClient, name: str) -> None:
    try:
        client.describe_thing_type(thingTypeName=name)
    except client.exceptions.ResourceNotFoundException:
        client.create_thing_type(
            thingTypeName=name,
            thingTypeProperties={
                "thingTypeDescription": "coldchain cargo logger",
                "searchableAttributes": SEARCHABLE,
            },
        )


def _ensure_group(client: IoTClient, name: str, description: str) -> None:
    try:
        client.describe_thing_group(thingGroupName=name)
    except client.exceptions.ResourceNotFoundException:
        client.create_thing_group(
            thingGroupName=name, thingGroupProperties={"thingGroupDescription": description}
        )


def write_certificate(provisioned: Provisioned, directory: str | Path) -> Path:
    """Write the certificate PEM beside the device's key."""
    path = Path(directory) / f"{provisioned.thing_name}.crt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(provisioned.certificate_pem)
    return path
