"""``coldchain pki``: the local certificate authority, and the broker told of each change.

The CA's adapter (cryptography and the core's models) and the broker's (paho) are imported by
the commands that use them, so that ``coldchain pki --help`` starts as fast as ``--help``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from coldchain.apps.cli.context import settings_of
from coldchain.apps.cli.options import as_duration

if TYPE_CHECKING:
    from coldchain.adapters.pki import LocalPki


def _authority(ctx: click.Context) -> LocalPki:
    from coldchain.adapters.pki import LocalPki  # noqa: PLC0415 - see the module docstring

    return LocalPki(settings_of(ctx).pki_dir)


@click.group()
def pki() -> None:
    """The local certificate authority (keys stay in <home>/pki, mode 0600)."""


@pki.command("init")
@click.pass_context
def pki_init(ctx: click.Context) -> None:
    """Create the CA, broker, admin and first processor certificates (idempotent).

    Example: coldchain pki init
    """
    authority = _authority(ctx)
    written = authority.init()
    click.echo(
        f"{len(written)} files written in {authority.directory}"
        if written
        else f"PKI already complete in {authority.directory}"
    )


@pki.command("issue")
@click.argument("device_ids", nargs=-1, required=True)
@click.pass_context
def pki_issue(ctx: click.Context, device_ids: tuple[str, ...]) -> None:
    """Issue a client certificate for each device (CN = device id; idempotent).

    A running broker admits the devices at once. A device whose certificate is re-issued (its
    files were lost) has every earlier certificate revoked.

    Example: coldchain pki issue reefer-0001 reefer-0002
    """
    from coldchain.adapters import dynsec  # noqa: PLC0415 - see the module docstring

    authority = _authority(ctx)
    issued = [(device_id, authority.issue_device(device_id)) for device_id in device_ids]
    dynsec.admit(authority, device_ids, "device")
    for device_id, credentials in issued:
        click.echo(f"{device_id}: {credentials.cert} {credentials.key}")


@pki.command("issue-processor")
@click.argument("name")
@click.pass_context
def pki_issue_processor(ctx: click.Context, name: str) -> None:
    """Issue a processor identity: a worker whose client id is NAME (idempotent).

    `coldchain worker --client-id NAME` issues it on first use; this command is for a worker
    on another machine. Example: coldchain pki issue-processor coldchain-worker-2
    """
    from coldchain.adapters import dynsec  # noqa: PLC0415 - see the module docstring

    authority = _authority(ctx)
    credentials = authority.issue_processor(name)
    dynsec.admit(authority, [name], "processor")
    click.echo(f"{name}: {credentials.cert} {credentials.key}")


@pki.command("revoke")
@click.argument("name")
@click.pass_context
def pki_revoke(ctx: click.Context, name: str) -> None:
    """Revoke every certificate ever issued to a device (or processor).

    A running broker disconnects it at once and rereads the CRL (SIGHUP); copies of earlier
    certificates are refused too. Example: coldchain pki revoke reefer-0007
    """
    from coldchain.adapters import dynsec  # noqa: PLC0415 - see the module docstring

    authority = _authority(ctx)
    serials = authority.revoke(name)
    kind = authority.kind_of(name) or "device"
    running = dynsec.shut_out(authority, name, kind)
    listed = ", ".join(f"{serial:x}" for serial in serials) or "none new"
    click.echo(
        f"{name}: serials revoked: {listed}; CRL {authority.crl}; "
        + ("the running broker has reloaded it" if running else "the broker reads it at start")
    )


@pki.command("rotate")
@click.argument("device_id")
@click.option(
    "--grace",
    callback=as_duration,
    default="0s",
    show_default=True,
    help="How long the old certificate keeps working (e.g. 24h), to give the device time.",
)
@click.pass_context
def pki_rotate(ctx: click.Context, device_id: str, grace: timedelta) -> None:
    """Issue a new certificate for a device; the old ones are revoked when the grace ends.

    The broker refuses old certificates once `coldchain broker` (or `up`) sees the grace end
    (checked every minute). Example: coldchain pki rotate reefer-0007 --grace 24h
    """
    from coldchain.adapters import dynsec  # noqa: PLC0415 - see the module docstring

    authority = _authority(ctx)
    issued = authority.rotate(device_id, grace)
    if grace <= timedelta(0):
        dynsec.tell_running_broker(authority, [], reload_crl=True)
    ending = "earlier certificates revoked" if grace <= timedelta(0) else f"earlier end in {grace}"
    click.echo(
        f"{device_id}: new serial {issued.serial:x} in {authority.device(device_id).cert}; {ending}"
    )
