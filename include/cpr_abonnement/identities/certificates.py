"""Client certificates as the registry knows them: the SHA-256 fingerprint of the DER
encoding, the subject and the expiry.

The fingerprint is what identifies a caller: the TLS layer (or the proxy) proves the
caller holds the key of a certificate the CA signed; the registry says which IT system
that certificate belongs to. Transports compute it with :func:`fingerprint` from the
DER bytes they got in the handshake (``ssl.SSLSocket.getpeercert(binary_form=True)``)
or with :func:`parse_certificate` from a PEM a proxy forwarded.

Every SOAP call (SF6002, SF1520) asks which IT system a fingerprint belongs to,
whether that system is active and which service agreements it has. :data:`registrations`
remembers the answer
for :data:`REGISTRATION_SECONDS` (issue 16: the two queries were a fifth of a SOAP
call's database work). A change made through
:class:`~cpr_abonnement.subscriptions.service.SubscriptionService` in this process
(certificate or agreement removed or added, system disabled) empties it at once
(:func:`forget_registrations`); one made by another process (the CLI, another API
server) takes effect within that lifetime, as for API tokens.

>>> normalise_fingerprint("AB:" * 31 + "CD") == "ab" * 31 + "cd"
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from cpr_abonnement.errors import InvalidCertificate
from cpr_abonnement.identities.memory import TimedMemory
from cpr_abonnement.settings import Settings

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_PEM_BEGIN = b"-----BEGIN"
#: The subject column's width (``certificate.subject``).
MAX_SUBJECT = 500


@dataclass(frozen=True)
class CertificateInfo:
    """A registered (or about to be registered) client certificate."""

    sha256: str
    subject: str
    #: Naive UTC, as every stored timestamp.
    not_after: dt.datetime


def fingerprint(der: bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER encoding."""
    return hashlib.sha256(der).hexdigest()


def normalise_fingerprint(value: str) -> str:
    """64 hex digits, lowercased; colons and spaces (``openssl x509 -fingerprint``) dropped."""
    text = re.sub(r"[\s:]", "", str(value)).lower()
    if not _FINGERPRINT.fullmatch(text):
        raise InvalidCertificate("a certificate fingerprint is 64 hexadecimal digits "
                                 "(SHA-256 of the DER certificate)")
    return text


def _load(data: bytes) -> x509.Certificate:
    """The one certificate in ``data`` (PEM, other PEM blocks such as a key ignored; or DER)."""
    try:
        if _PEM_BEGIN in data:
            found = x509.load_pem_x509_certificates(data)
        else:
            found = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise InvalidCertificate(
            "not a certificate: no PEM 'BEGIN CERTIFICATE' block or DER certificate "
            f"could be read ({type(exc).__name__})") from exc
    if len(found) != 1:
        raise InvalidCertificate(f"the file holds {len(found)} certificates; give the IT "
                                 "system's client certificate alone (no chain)")
    return found[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def parse_certificate(data: bytes | str, *, now: dt.datetime | None = None,
                      issuers: Sequence[x509.Certificate] | None = None) -> CertificateInfo:
    """The fingerprint, subject and expiry of a client certificate (PEM or DER).

    Refused with :class:`InvalidCertificate`: no certificate, several, a CA certificate
    (it cannot identify one IT system), one expired at ``now`` (naive UTC; default
    the process clock), or, when ``issuers`` (the client CA the TLS end trusts) is
    given, one that none of them signed: the handshake would refuse it, so the
    registration could never be used.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    cert = _load(raw)
    if _is_ca(cert):
        raise InvalidCertificate("a CA certificate cannot identify an IT system; give "
                                 "the client certificate")
    if issuers is not None and not any(_issued_by(cert, ca) for ca in issuers):
        raise InvalidCertificate(
            f"the certificate's issuer ({cert.issuer.rfc4514_string()[:200]}) is not the "
            "configured client CA (CPRSUB_CLIENT_CA): the TLS handshake would refuse it")
    not_after = cert.not_valid_after_utc.replace(tzinfo=None)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not_after <= now:
        raise InvalidCertificate(f"the certificate expired at {not_after.isoformat()} UTC")
    return CertificateInfo(fingerprint(cert.public_bytes(Encoding.DER)),
                           cert.subject.rfc4514_string()[:MAX_SUBJECT], not_after)


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def client_ca(path: str | None) -> tuple[x509.Certificate, ...] | None:
    """The CA certificates in the PEM bundle at ``path`` (the one nginx's
    ``ssl_client_certificate`` and ``cprsub api serve --client-ca`` trust); None when
    no bundle is configured, so the caller can say the issuer went unchecked."""
    if not path:
        return None
    file = Path(path)
    try:
        return _bundle(str(file), file.stat().st_mtime_ns)
    except (OSError, ValueError) as exc:
        raise InvalidCertificate(f"the client CA bundle {path} (CPRSUB_CLIENT_CA) cannot "
                                 f"be read: {type(exc).__name__}") from exc


def configured_client_ca() -> tuple[x509.Certificate, ...] | None:
    """The deployment's client CA (``CPRSUB_CLIENT_CA``), None when not configured."""
    return client_ca(Settings.from_env().client_ca)


#: Said when a certificate is registered with no client CA to check its issuer against.
UNCHECKED_ISSUER = ("no client CA configured (CPRSUB_CLIENT_CA): the certificate's issuer "
                    "was not checked against the CA the TLS end trusts")


@lru_cache(maxsize=4)
def _bundle(path: str, _mtime_ns: int) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(Path(path).read_bytes()))


#: How long a certificate's registration read from the database is trusted in memory.
REGISTRATION_SECONDS = 2.0
#: Bound on remembered registrations (the memory is emptied when it is reached).
MAX_REGISTRATIONS = 10_000


@dataclass(frozen=True)
class Registered:
    """What the SOAP services' authorisation needs of a current certificate's IT system."""

    owner: str
    active: bool
    #: Its current agreements as (ServiceAgreementUUID in canonical form, service):
    #: an agreement authorises calls to its own service only (``sf6002``, ``sf1520``).
    agreements: frozenset[tuple[str, str]]


#: Registrations of certificates read recently, by key (database, fingerprint).
registrations: TimedMemory[Registered] = TimedMemory(lambda: REGISTRATION_SECONDS,
                                                     MAX_REGISTRATIONS)


def forget_registrations() -> None:
    """A certificate, service agreement or IT system changed in this process: the next
    SF6002 call reads the registry again. Call after the change is committed."""
    registrations.forget()
