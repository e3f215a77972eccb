"""SSH public keys of pick-up accounts: parsing, the acceptance rule, fingerprints.

A key is given as one OpenSSH public key line (``<type> <base64> [comment]``, what
``ssh-keygen`` writes to ``*.pub``). It is parsed with ``cryptography``'s
``load_ssh_public_key`` (which also checks that the declared type matches the blob) and
accepted only if it is RSA of at least :data:`MIN_RSA_BITS` bits, ECDSA (NIST P-256,
P-384, P-521) or Ed25519; DSA (1024 bits, removed from OpenSSH), short RSA, OpenSSH
certificates, security-key types and anything unparsable are refused with an
:class:`~cpr_abonnement.errors.InvalidSshKey` saying why. The key is stored re-encoded
by ``cryptography`` (canonical type and base64), never as the raw text given, and the
comment only if it is printable: the stored parts become ``authorized_keys`` lines
(``cprsub pickup authorized-keys``), where a newline in a comment would inject a line.

The fingerprint is ``SHA256:`` and the unpadded base64 of the SHA-256 of the key blob,
as ``ssh-keygen -l`` and sshd's logs print it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_key,
)

from cpr_abonnement.errors import InvalidSshKey

MIN_RSA_BITS = 2048
#: The comment column's width (``ssh_key.comment``).
MAX_COMMENT = 200
#: Longest key line read (an RSA 16384-bit key is about 2,800 characters).
MAX_LINE = 8192
_PRINTABLE_COMMENT = re.compile(r"[\x20-\x7e\u00a0-\uffff]*")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_DSA_REFUSED = ("DSA keys (ssh-dss) are refused: 1024-bit DSA is no longer safe and OpenSSH "
                f"removed it; use ed25519 or RSA >= {MIN_RSA_BITS} bits")


@dataclass(frozen=True)
class SshKeyInfo:
    """An accepted key: type, canonical base64 blob, fingerprint, size, comment."""

    key_type: str
    key_data: str
    fingerprint: str
    bits: int
    comment: str = ""

    @property
    def line(self) -> str:
        """The ``authorized_keys`` line (no options): ``<type> <base64> [comment]``."""
        return " ".join(p for p in (self.key_type, self.key_data, self.comment) if p)


def fingerprint_of(blob: bytes) -> str:
    """``SHA256:<unpadded base64>`` of a key blob (``ssh-keygen -l``)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def normalise_fingerprint(value: str) -> str:
    """A fingerprint as ``ssh-keygen -l`` prints it (the ``SHA256:`` prefix may be left
    out); base64 is case-sensitive, so nothing else is changed."""
    text = str(value).strip()
    if not text.startswith("SHA256:"):
        text = "SHA256:" + text
    if not _FINGERPRINT.fullmatch(text):
        raise InvalidSshKey("an SSH key fingerprint is SHA256: followed by 43 base64 "
                            "characters, as `ssh-keygen -l -f KEY.pub` prints it")
    return text


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise InvalidSshKey(f"expected one OpenSSH public key line, got {len(lines)} "
                            "(give the .pub file of one key)")
    if len(lines[0]) > MAX_LINE:
        raise InvalidSshKey(f"the key line is longer than {MAX_LINE} characters")
    return lines[0]


def _bits_of(key: object, key_type: str) -> int:
    """The key's size if it is of an accepted kind; else the refusal saying why."""
    if isinstance(key, dsa.DSAPublicKey):
        raise InvalidSshKey(_DSA_REFUSED)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidSshKey(f"RSA key of {key.key_size} bits refused: at least "
                                f"{MIN_RSA_BITS} bits are required")
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    raise InvalidSshKey(f"key type {key_type} is not accepted (RSA >= {MIN_RSA_BITS} bits, "
                        "ECDSA or ed25519)")


def parse_public_key(text: str | bytes) -> SshKeyInfo:
    """The accepted key in one OpenSSH public key line, or :class:`InvalidSshKey`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSshKey("an SSH public key file is text (UTF-8)") from None
    parts = _one_line(text).split(None, 2)
    if len(parts) < 2:
        raise InvalidSshKey("not an OpenSSH public key line (<type> <base64> [comment])")
    declared, comment = parts[0], (parts[2].strip() if len(parts) > 2 else "")
    if declared == "ssh-dss":  # refused before parsing: cryptography deprecates DSA
        raise InvalidSshKey(_DSA_REFUSED)
    if "-cert-v01@openssh.com" in declared or declared.startswith("sk-"):
        raise InvalidSshKey(f"key type {declared[:40]!r} is not accepted (plain RSA >= "
                            f"{MIN_RSA_BITS} bits, ECDSA or ed25519 keys only)")
    try:
        key = load_ssh_public_key(f"{declared} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError, binascii.Error) as exc:
        raise InvalidSshKey(f"not a valid OpenSSH public key ({declared[:40]!r}: "
                            f"{type(exc).__name__})") from exc
    bits = _bits_of(key, declared)
    if len(comment) > MAX_COMMENT or not _PRINTABLE_COMMENT.fullmatch(comment):
        raise InvalidSshKey(f"the key comment must be printable and at most {MAX_COMMENT} "
                            "characters")
    key_type, key_data = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH
                                          ).decode("ascii").split(" ")[:2]
    return SshKeyInfo(key_type, key_data, fingerprint_of(base64.b64decode(key_data)), bits,
                      comment)
