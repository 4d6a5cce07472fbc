"""The local CA's index: every serial by identity, revocation by name, rotation with grace."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from coldchain.adapters import dynsec
from coldchain.adapters.pki import LocalPki
from coldchain.core.errors import PkiError
from coldchain.core.topics import telemetry_topic


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    authority = LocalPki(tmp_path_factory.mktemp("pki"))
    authority.init()
    return authority


def crl_serials(pki: LocalPki) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(pki.crl.read_bytes())}


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_revoke_covers_every_certificate_a_device_was_issued(ca: LocalPki) -> None:
    first = serial_of(ca.issue_device("dev-a").cert)
    ca.device("dev-a").cert.unlink()
    second = serial_of(ca.issue_device("dev-a").cert)  # a re-issue revokes the earlier one
    assert first != second
    assert first in crl_serials(ca)
    assert second not in crl_serials(ca)
    assert set(ca.revoke("dev-a")) == {second}
    assert {first, second} <= crl_serials(ca)
    assert ca.revoke("dev-a") == []  # nothing new
    assert "dev-a" not in ca.names("device")


def test_issuing_is_idempotent_and_recorded_once(ca: LocalPki) -> None:
    ca.issue_device("dev-b")
    ca.issue_device("dev-b")
    assert [c.name for c in ca.certificates()].count("dev-b") == 1


def test_a_name_is_either_a_device_or_a_processor(ca: LocalPki) -> None:
    ca.issue_processor("worker-x")
    with pytest.raises(PkiError, match="already a processor"):
        ca.issue_device("worker-x")
    ca.issue_device("dev-c")
    with pytest.raises(PkiError, match="already a device"):
        ca.issue_processor("dev-c")
    with pytest.raises(PkiError, match="reserved"):
        ca.issue_device("coldchain-admin")


def test_rotate_with_grace_revokes_the_old_certificate_when_the_grace_ends(
    ca: LocalPki,
) -> None:
    old = serial_of(ca.issue_device("dev-d").cert)
    new = ca.rotate("dev-d", grace=timedelta(hours=24))
    assert new.serial != old
    assert old not in crl_serials(ca)
    assert not ca.refresh_crl()  # the grace has not ended
    later = datetime.now(UTC) + timedelta(hours=25)
    [entry] = [c for c in ca.certificates() if c.serial == old]
    assert entry.revoked(later)
    assert not entry.revoked(datetime.now(UTC))
    ca.rotate("dev-d")  # no grace: every earlier certificate now
    assert {old, new.serial} <= crl_serials(ca)


def test_keys_are_private_and_the_index_too(ca: LocalPki) -> None:
    ca.issue_device("dev-e")
    for path in (ca.device("dev-e").key, ca.index_file, ca.ca_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_broker_roles_follow_the_index(ca: LocalPki) -> None:
    ca.issue_device("dev-f")
    document = dynsec.render(ca.names("device"), ca.names("processor"))
    roles = {role["rolename"]: role for role in document["roles"]}
    sends = {
        a["topic"] for a in roles["device:dev-f"]["acls"] if a["acltype"] == "publishClientSend"
    }
    assert telemetry_topic("dev-f") in sends
    assert all("dev-f" in topic for topic in sends)  # only its own topics
    assert "device:dev-a" not in roles  # revoked above
    users = {client["username"] for client in document["clients"]}
    assert {"coldchain-admin", "coldchain-worker-1", "worker-x", "dev-f"} <= users
    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
