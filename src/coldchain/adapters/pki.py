"""A local certificate authority for the broker, the processors and every device (cryptography).

Layout under the PKI directory (default ``.coldchain/pki``, ignored by git)::

    ca.crt  ca.key                       the local CA (EC P-256, 10 years)
    broker.crt  broker.key               server certificate, SAN localhost and 127.0.0.1
    admin.crt  admin.key                 the broker-administration identity (CN coldchain-admin)
    processors/<name>.crt  .key          one client identity per worker, CN = its client id
    devices/<id>.crt  devices/<id>.key   one client certificate per device, CN = device id
    index.json                           every serial ever issued, by identity (a CA database)
    crl.pem                              the revocation list the broker checks

The broker makes the certificate CN both the MQTT username and the client id, so an identity
is a name: the index keeps one kind per name (a device or a processor), and a name of one kind
can never be issued as the other. Every serial issued is recorded, so ``revoke`` revokes a
device's certificates, not one file: a copy of an earlier certificate is refused as well.

Every private key is written with mode 0600. Every operation is idempotent: what exists and
is still valid is left alone, so running a command twice changes nothing. Changes to the index
are serialised by a lock file, so a simulator issuing its fleet and a worker issuing its
identity at the same time do not lose each other's records.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coldchain.adapters.clock import SystemClock
from coldchain.core.errors import PkiError
from coldchain.core.ports import Clock
from coldchain.core.timestamps import parse_iso, to_canonical
from coldchain.core.topics import is_device_id

ADMIN_IDENTITY: Final = "coldchain-admin"
BROKER_IDENTITY: Final = "coldchain-broker"
DEFAULT_PROCESSOR: Final = "coldchain-worker-1"
RESERVED_IDENTITIES: Final = frozenset({ADMIN_IDENTITY, BROKER_IDENTITY, "coldchain-ca"})
CA_VALIDITY: Final = timedelta(days=3650)
LEAF_VALIDITY: Final = timedelta(days=825)

Kind = Literal["device", "processor", "service"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Paths of one identity's certificate and key, and of the CA that signed it."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """One serial in the index: whose, until when, and whether (from when) it is revoked."""

    name: str
    kind: Kind
    serial: int
    not_after: datetime
    revoked_at: datetime | None = None

    def revoked(self, now: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= now


class LocalPki:
    """The local CA, the certificates it issues and the index of every serial."""

    def __init__(self, directory: str | Path, clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self._clock = clock or SystemClock()
        self._cache: tuple[tuple[int, int, int], list[IssuedCertificate]] | None = None

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def index_file(self) -> Path:
        return self.directory / "index.json"

    def broker(self) -> Credentials:
        return Credentials(
            self.directory / "broker.crt", self.directory / "broker.key", self.ca_cert
        )

    def admin(self) -> Credentials:
        return Credentials(self.directory / "admin.crt", self.directory / "admin.key", self.ca_cert)

    def processor(self, name: str = DEFAULT_PROCESSOR) -> Credentials:
        folder = self.directory / "processors"
        return Credentials(folder / f"{name}.crt", folder / f"{name}.key", self.ca_cert)

    def device(self, device_id: str) -> Credentials:
        devices = self.directory / "devices"
        return Credentials(devices / f"{device_id}.crt", devices / f"{device_id}.key", self.ca_cert)

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    # -- queries -------------------------------------------------------------------------
    def certificates(self) -> list[IssuedCertificate]:
        """Every serial this CA issued to a device or a processor, oldest first."""
        try:
            status = self.index_file.stat()
        except FileNotFoundError:
            return []
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        if self._cache is None or self._cache[0] != stamp:  # another process may have written
            self._cache = (stamp, _read_index(self.index_file))
        return list(self._cache[1])

    def names(self, kind: Kind, now: datetime | None = None) -> list[str]:
        """Names of ``kind`` holding at least one certificate that is not revoked."""
        moment = now or self._clock.now()
        return sorted(
            {c.name for c in self.certificates() if c.kind == kind and not c.revoked(moment)}
        )

    def kind_of(self, name: str) -> Kind | None:
        for issued in self.certificates():
            if issued.name == name:
                return issued.kind
        return None

    # -- issuing -------------------------------------------------------------------------
    def init(self) -> list[Path]:
        """Create the CA, the broker, the admin and the default processor identity if missing.

        Returns:
            The files written (empty when everything was already there).
        """
        with self._locked():
            written: list[Path] = []
            if not (self.ca_cert.exists() and self.ca_key.exists()):
                self._create_ca()
                written += [self.ca_key, self.ca_cert]
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            written += self._issue(self.broker(), BROKER_IDENTITY, "service", server=True, san=san)
            written += self._issue(self.admin(), ADMIN_IDENTITY, "service", server=False)
            written += self._issue_named(DEFAULT_PROCESSOR, "processor")
            if written or not self.crl.exists():
                self._write_crl()
                written.append(self.crl)
            return written

    def issue_device(
        self,
        device_id: str,
        validity: timedelta = LEAF_VALIDITY,
        not_before: datetime | None = None,
    ) -> Credentials:
        """Issue (once) a device certificate whose CN is the device id.

        A re-issue (files missing, or the certificate about to expire) revokes every earlier
        certificate of the device: a copy of the old key must not outlive its replacement.

        Raises:
            PkiError: the id is not a legal device id, is reserved or a processor's, or there
                is no CA yet.
        """
        if not is_device_id(device_id):
            raise PkiError(f"{device_id!r} is not a device id (1-128 of A-Z a-z 0-9 _ -)")
        with self._locked():
            self._issue_named(device_id, "device", validity=validity, not_before=not_before)
        return self.device(device_id)

    def issue_processor(self, name: str) -> Credentials:
        """Issue (once) a processor identity: a worker connects with client id = ``name``.

        Raises:
            PkiError: the name is not legal, is reserved, or is a device's.
        """
        if not is_device_id(name):
            raise PkiError(f"{name!r} is not a processor name (1-128 of A-Z a-z 0-9 _ -)")
        with self._locked():
            self._issue_named(name, "processor")
        return self.processor(name)

    def rotate(self, device_id: str, grace: timedelta = timedelta(0)) -> IssuedCertificate:
        """Issue a new certificate for a device; earlier ones are revoked when ``grace`` ends.

        Returns:
            The new certificate's index entry.

        Raises:
            PkiError: the device has no certificate here.
        """
        with self._locked():
            if self.kind_of(device_id) != "device":
                raise PkiError(f"no certificate for device {device_id!r} in {self.directory}")
            credentials = self.device(device_id)
            credentials.cert.unlink(missing_ok=True)
            self._issue_named(device_id, "device", grace=grace)
            return self._current(device_id)

    def revoke(self, name: str) -> list[int]:
        """Revoke every certificate ever issued to a device or processor.

        Returns:
            The serial numbers revoked by this call (empty when all already were).

        Raises:
            PkiError: no certificate was ever issued to ``name`` here.
        """
        with self._locked():
            if self.kind_of(name) is None and self.device(name).cert.exists():
                self._adopt(name, "device", self.device(name).cert)
            entries = self.certificates()
            if not any(entry.name == name for entry in entries):
                raise PkiError(f"no certificate for {name!r} in {self.directory}")
            now = self._clock.now()
            revoked = [e.serial for e in entries if e.name == name and not e.revoked(now)]
            _write_index(
                self.index_file,
                [
                    _with_revocation(entry, now) if entry.serial in revoked else entry
                    for entry in entries
                ],
            )
            self._write_crl()
            return revoked

    def refresh_crl(self) -> bool:
        """Rewrite the CRL if a rotation's grace period has ended since it was written.

        Returns:
            Whether the CRL changed.
        """
        with self._locked():
            before = self.crl.read_bytes() if self.crl.exists() else b""
            listed = _crl_serials(before)
            due = {c.serial for c in self.certificates() if c.revoked(self._clock.now())}
            if listed == due and before:
                return False
            self._write_crl()
            return True

    # -- internals -----------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _current(self, name: str) -> IssuedCertificate:
        return [entry for entry in self.certificates() if entry.name == name][-1]

    def _issue_named(
        self,
        name: str,
        kind: Kind,
        *,
        validity: timedelta = LEAF_VALIDITY,
        not_before: datetime | None = None,
        grace: timedelta = timedelta(0),
    ) -> list[Path]:
        if name in RESERVED_IDENTITIES:
            raise PkiError(f"{name!r} is reserved for a service identity")
        held = self.kind_of(name)
        if held is not None and held != kind:
            raise PkiError(f"{name!r} is already a {held} identity; pick another name")
        target = self.device(name) if kind == "device" else self.processor(name)
        return self._issue(
            target, name, kind, server=False, validity=validity, not_before=not_before, grace=grace
        )

    def _create_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coldchain local CA")])
        now = self._clock.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_key(self.ca_key, key)
        _write_cert(self.ca_cert, cert)

    def _write_crl(self) -> None:
        """The CRL, signed by the CA, valid for a year: every serial revoked by now."""
        ca_cert, ca_key = self._load_ca()
        now = self._clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=365))
        )
        for entry in self.certificates():
            if entry.revoked(now) and entry.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(entry.serial)
                    .revocation_date(entry.revoked_at)
                    .build()
                )
        crl = builder.sign(ca_key, hashes.SHA256())
        _write_atomic(self.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)

    def _issue(
        self,
        target: Credentials,
        common_name: str,
        kind: Kind,
        *,
        server: bool,
        san: list[x509.GeneralName] | None = None,
        validity: timedelta = LEAF_VALIDITY,
        not_before: datetime | None = None,
        grace: timedelta = timedelta(0),
    ) -> list[Path]:
        if (
            target.cert.exists()
            and target.key.exists()
            and _still_valid(target.cert, self._clock.now())
        ):
            self._adopt(common_name, kind, target.cert)
            return []
        ca_cert, ca_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = not_before + timedelta(minutes=5) if not_before else self._clock.now()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_key(target.key, key)
        _write_cert(target.cert, cert)
        self._record(common_name, kind, cert, grace)
        return [target.key, target.cert]

    def _adopt(self, name: str, kind: Kind, cert_path: Path) -> None:
        """Index a certificate issued before the index existed (an older coldchain)."""
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        entries = self.certificates()
        if all(entry.serial != cert.serial_number for entry in entries):
            entries.append(
                IssuedCertificate(name, kind, cert.serial_number, cert.not_valid_after_utc)
            )
            _write_index(self.index_file, entries)

    def _record(self, name: str, kind: Kind, cert: x509.Certificate, grace: timedelta) -> None:
        """Add ``cert`` to the index; earlier certificates of ``name`` end after ``grace``."""
        revoke_at = self._clock.now() + grace
        earlier = self.certificates()
        entries = [
            _with_revocation(entry, revoke_at)
            if entry.name == name and (entry.revoked_at is None or entry.revoked_at > revoke_at)
            else entry
            for entry in earlier
        ]
        entries.append(IssuedCertificate(name, kind, cert.serial_number, cert.not_valid_after_utc))
        _write_index(self.index_file, entries)
        if grace <= timedelta(0) and entries[: len(earlier)] != earlier:
            self._write_crl()  # an earlier certificate of this name ends now

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
            key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        except FileNotFoundError:
            raise PkiError(f"no CA in {self.directory}; run 'coldchain pki init' first") from None
        except ValueError as exc:
            raise PkiError(f"the CA in {self.directory} cannot be read: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"the CA key in {self.directory} is not an EC key")
        return cert, key


def _with_revocation(entry: IssuedCertificate, at: datetime) -> IssuedCertificate:
    return IssuedCertificate(entry.name, entry.kind, entry.serial, entry.not_after, at)


def _read_index(path: Path) -> list[IssuedCertificate]:
    try:
        document: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise PkiError(f"the certificate index {path} cannot be read: {exc}") from exc
    return [
        IssuedCertificate(
            name=row["name"],
            kind=row["kind"],
            serial=int(row["serial"], 16),
            not_after=parse_iso(row["not_after"]),
            revoked_at=parse_iso(row["revoked_at"]) if row.get("revoked_at") else None,
        )
        for row in document["certificates"]
    ]


def _write_index(path: Path, entries: list[IssuedCertificate]) -> None:
    rows = [
        {
            "name": entry.name,
            "kind": entry.kind,
            "serial": f"{entry.serial:x}",
            "not_after": to_canonical(entry.not_after),
            "revoked_at": to_canonical(entry.revoked_at) if entry.revoked_at else None,
        }
        for entry in entries
    ]
    _write_atomic(path, json.dumps({"certificates": rows}, indent=1).encode(), 0o600)


def _crl_serials(pem: bytes) -> set[int]:
    if not pem:
        return set()
    return {revoked.serial_number for revoked in x509.load_pem_x509_crl(pem)}


def make_csr(device_id: str, directory: str | Path) -> tuple[Path, Path]:
    """A device key and a certificate signing request (CN = device id), for a CA elsewhere
    (AWS IoT signs it). The key is written 0600 and stays with the device; idempotent.

    Raises:
        PkiError: the id is not a legal device id.
    """
    if not is_device_id(device_id):
        raise PkiError(f"{device_id!r} is not a device id (1-128 of A-Z a-z 0-9 _ -)")
    folder = Path(directory)
    key_path, csr_path = folder / f"{device_id}.key", folder / f"{device_id}.csr"
    if key_path.exists() and csr_path.exists():
        return key_path, csr_path
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_atomic(csr_path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    return key_path, csr_path


def _still_valid(cert_path: Path, now: datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > now + timedelta(days=1)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, data, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file created with ``mode``, so a key is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    temporary.chmod(mode)
    temporary.replace(path)
