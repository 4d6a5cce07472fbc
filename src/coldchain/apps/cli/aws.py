"""``coldchain aws``: a device's key and CSR, its registration in AWS IoT Core, and the bill
(``aws cost``, in :mod:`.aws_cost`). boto3 is the 'aws' extra: only ``aws provision`` loads it.
"""

from __future__ import annotations

from pathlib import Path

import click

from coldchain.adapters.pki import make_csr
from coldchain.apps.cli.aws_cost import cost
from coldchain.apps.cli.context import settings_of
from coldchain.core.errors import ConfigurationError


@click.group()
def aws() -> None:
    """AWS IoT Core: device keys and certificates (needs the 'aws' extra and credentials)."""


aws.add_command(cost)


@aws.command("csr")
@click.argument("device_id")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the key and CSR go [<home>/aws].",
)
@click.pass_context
def aws_csr(ctx: click.Context, device_id: str, out_dir: Path | None) -> None:
    """Make a device key (0600, it never leaves the device) and a CSR for AWS IoT to sign.

    Example: coldchain aws csr reefer-0001
    """
    key, csr = make_csr(device_id, out_dir or settings_of(ctx).home / "aws")
    click.echo(f"key {key}\ncsr {csr}")


@aws.command("provision")
@click.argument("device_id")
@click.option(
    "--csr",
    "csr_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The device's CSR [<home>/aws/DEVICE_ID.csr].",
)
@click.option(
    "--policy",
    default="coldchain-device",
    show_default=True,
    help="IoT policy to attach (terraform output device_policy_name).",
)
@click.option(
    "--thing-type", default="coldchain-logger", show_default=True, help="Made if missing."
)
@click.option("--fleet", "fleet_id", default=None, help="Fleet: attribute and thing group.")
@click.option("--firmware", default=None, help="Firmware version: attribute and thing group.")
@click.option("--region", default=None, help="AWS region [the AWS configuration's].")
@click.pass_context
def aws_provision(
    ctx: click.Context,
    device_id: str,
    csr_path: Path | None,
    policy: str,
    thing_type: str,
    fleet_id: str | None,
    firmware: str | None,
    region: str | None,
) -> None:
    """Register a device from its CSR: thing (typed, with fleet and firmware attributes, in a
    fleet group and a firmware group, so jobs can target them), certificate signed by AWS,
    policy.

    Example: coldchain aws provision reefer-0001 --fleet north --firmware 2.1.4
    """
    import boto3  # noqa: PLC0415 - boto3 is the 'aws' extra, loaded only for these commands

    from coldchain.adapters.iot_provisioning import (  # noqa: PLC0415
        Registry,
        provision_device,
        write_certificate,
    )

    csr_file = csr_path or settings_of(ctx).home / "aws" / f"{device_id}.csr"
    if not csr_file.is_file():
        raise ConfigurationError(f"CSR not found: {csr_file} (make one with 'coldchain aws csr')")
    client = boto3.client("iot", region_name=region)
    registry = Registry(thing_type, fleet_id, firmware)
    done = provision_device(client, device_id, csr_file.read_text(), policy, registry)
    cert = write_certificate(done, csr_file.parent)
    groups = f"; groups {', '.join(done.groups)}" if done.groups else ""
    click.echo(
        f"{device_id}: certificate {cert} ({done.certificate_arn}); type {thing_type}{groups}\n"
        f"connect to {done.endpoint}:8883 with client id {device_id}, CA AmazonRootCA1.pem"
    )
