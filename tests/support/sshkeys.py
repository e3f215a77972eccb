"""Synthetic SSH public keys for the pick-up tests (generated, never real ones)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def public_line(private_key, comment: str = "test@cprsub") -> str:
    """``<type> <base64> <comment>``, as ``ssh-keygen`` writes a ``.pub`` file."""
    blob = private_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    return f"{blob.decode()} {comment}".strip()


def ed25519_line(comment: str = "test@cprsub") -> str:
    return public_line(ed25519.Ed25519PrivateKey.generate(), comment)


def rsa_line(bits: int = 2048, comment: str = "test@cprsub") -> str:
    return public_line(rsa.generate_private_key(65537, bits), comment)


def ecdsa_line(comment: str = "test@cprsub") -> str:
    return public_line(ec.generate_private_key(ec.SECP256R1()), comment)


def dsa_line() -> str:
    return public_line(dsa.generate_private_key(1024))
