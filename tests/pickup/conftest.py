"""Pick-up fixtures: client keys for two accounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.pickup import Account, keygen


@pytest.fixture
def keys_dir(tmp_path) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    return d


@pytest.fixture
def account_names() -> tuple[str, str]:
    return "kommune-a", "kommune-b"


@pytest.fixture
def accounts(keys_dir, account_names) -> dict[str, Account]:
    """The first logs in with RSA 3072 (like cpr_udtraek), the second with ed25519."""
    made = {}
    for name, kind, bits in zip(account_names, ("rsa", "ed25519"), (3072, None),
                                strict=True):
        key = keys_dir / name
        made[name] = Account(name, key, keygen(key, kind, bits),
                             f"persons of {name}\n".encode() * 500)
    return made

