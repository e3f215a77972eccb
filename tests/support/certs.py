"""A test PKI made in the test: a CA, client certificates (as OCES/FOCES function
certificates would be registered per IT system) and a server certificate for 127.0.0.1.

Everything is generated with ``cryptography`` (EC P-256: fast), never read from disk.
Use the ``test_ca`` fixture (``from support.certs import test_ca``) or :class:`TestCA`::

    client = test_ca.client("Aalborg ESDH")
    cert_path, key_path = client.write(tmp_path, "aalborg")
    server = test_ca.server()            # SAN 127.0.0.1 and localhost
    test_ca.write(tmp_path)              # the CA certificate, for --client-ca / verify=
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str, organisation: str = "CPR Abonnement test") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the DER encoding (what the registry stores)."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.pem`` (certificate) and ``<stem>.key`` (key) in ``directory``."""
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


class TestCA:
    """A self-signed CA that issues client and server certificates."""

    __test__ = False

    def __init__(self, name: str = "CPR Abonnement test CA") -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()))
        self.issued = Issued(cert, key)

    @property
    def pem(self) -> bytes:
        return self.issued.pem

    def write(self, directory: Path, stem: str = "ca") -> Path:
        path = directory / f"{stem}.pem"
        path.write_bytes(self.pem)
        return path

    def _issue(self, subject: x509.Name, usage: x509.ObjectIdentifier,
               san: list[x509.GeneralName] | None, days: int) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(self.issued.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return Issued(builder.sign(self.issued.key, hashes.SHA256()), key)

    def client(self, common_name: str, *, organisation: str = "CPR Abonnement test",
               days: int = 7) -> Issued:
        """A client (function) certificate, e.g. one IT system's."""
        return self._issue(_name(common_name, organisation), ExtendedKeyUsageOID.CLIENT_AUTH,
                           None, days)

    def server(self, host: str = "127.0.0.1") -> Issued:
        """A server certificate for ``host`` (an IP address or a DNS name) and localhost."""
        try:
            first: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            first = x509.DNSName(host)
        return self._issue(_name(host), ExtendedKeyUsageOID.SERVER_AUTH,
                           [first, x509.DNSName("localhost")], 7)


@pytest.fixture(scope="session")
def test_ca() -> TestCA:
    """One CA per test session (key generation is the slow part)."""
    return TestCA()
