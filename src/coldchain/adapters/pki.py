"""A local certificate authority for the broker, the processor and every device (cryptography).

Layout under the PKI directory (default ``.coldchain/pki``, ignored by git)::

    ca.crt  ca.key                      the local CA (EC P-256, 10 years)
    broker.crt  broker.key              server certificate, SAN localhost and 127.0.0.1
    processor.crt  processor.key        the worker's client identity (CN coldchain-processor)
    devices/<id>.crt  devices/<id>.key  one client certificate per device, CN = device id

Every private key is written with mode 0600. Every operation is idempotent: what exists and
is still valid is left alone, so running a command twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coldchain.core.errors import PkiError
from coldchain.core.topics import is_device_id

PROCESSOR_IDENTITY: Final = "coldchain-processor"
RESERVED_IDENTITIES: Final = frozenset({PROCESSOR_IDENTITY, "coldchain-broker", "coldchain-ca"})
CA_VALIDITY: Final = timedelta(days=3650)
LEAF_VALIDITY: Final = timedelta(days=825)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Paths of one identity's certificate and key, and of the CA that signed it."""

    cert: Path
    key: Path
    ca: Path


class LocalPki:
    """The local CA and the certificates it issues."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def broker(self) -> Credentials:
        return Credentials(
            self.directory / "broker.crt", self.directory / "broker.key", self.ca_cert
        )

    def processor(self) -> Credentials:
        return Credentials(
            self.directory / "processor.crt", self.directory / "processor.key", self.ca_cert
        )

    def device(self, device_id: str) -> Credentials:
        devices = self.directory / "devices"
        return Credentials(devices / f"{device_id}.crt", devices / f"{device_id}.key", self.ca_cert)

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def revoked_file(self) -> Path:
        return self.directory / "revoked.txt"

    def init(self) -> list[Path]:
        """Create the CA, the broker and the processor certificates if missing.

        Returns:
            The files written (empty when everything was already there).
        """
        written: list[Path] = []
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coldchain local CA")])
            now = datetime.now(UTC)
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
            written += [self.ca_key, self.ca_cert]
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        written += self._issue(self.broker(), "coldchain-broker", server=True, san=san)
        written += self._issue(self.processor(), PROCESSOR_IDENTITY, server=False)
        if not self.crl.exists():
            self._write_crl()
            written.append(self.crl)
        return written

    def revoke(self, device_id: str) -> int:
        """Revoke a device's certificate: its serial joins the CRL the broker checks.

        Returns:
            The revoked serial number.

        Raises:
            PkiError: the device has no certificate here.
        """
        cert_path = self.device(device_id).cert
        if not cert_path.exists():
            raise PkiError(f"no certificate for {device_id!r} in {self.directory}")
        serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
        serials = self._revoked_serials()
        if serial not in serials:
            with self.revoked_file.open("a") as revoked:
                revoked.write(f"{serial} {device_id}\n")
        self._write_crl()
        return serial

    def _revoked_serials(self) -> set[int]:
        if not self.revoked_file.exists():
            return set()
        return {int(line.split()[0]) for line in self.revoked_file.read_text().splitlines() if line}

    def _write_crl(self) -> None:
        """The CRL, signed by the CA, valid for a year (rewritten on every revocation)."""
        ca_cert, ca_key = self._load_ca()
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=365))
        )
        for serial in sorted(self._revoked_serials()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        _write_atomic(self.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)

    def issue_device(
        self,
        device_id: str,
        validity: timedelta = LEAF_VALIDITY,
        not_before: datetime | None = None,
    ) -> Credentials:
        """Issue (once) a device certificate whose CN is the device id.

        Raises:
            PkiError: the id is not a legal device id, is reserved, or there is no CA yet.
        """
        if not is_device_id(device_id):
            raise PkiError(f"{device_id!r} is not a device id (1-128 of A-Z a-z 0-9 _ -)")
        if device_id in RESERVED_IDENTITIES:
            raise PkiError(f"{device_id!r} is reserved for a service identity")
        self._issue(
            self.device(device_id),
            device_id,
            server=False,
            validity=validity,
            not_before=not_before,
        )
        return self.device(device_id)

    def _issue(
        self,
        target: Credentials,
        common_name: str,
        *,
        server: bool,
        san: list[x509.GeneralName] | None = None,
        validity: timedelta = LEAF_VALIDITY,
        not_before: datetime | None = None,
    ) -> list[Path]:
        if target.cert.exists() and target.key.exists() and _still_valid(target.cert):
            return []
        ca_cert, ca_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = not_before + timedelta(minutes=5) if not_before else datetime.now(UTC)
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
        return [target.key, target.cert]

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


def _still_valid(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1)


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
