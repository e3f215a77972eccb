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
def accounts(keys_dir) -> dict[str, Account]:
    """``kommune-a`` logs in with RSA 3072 (like cpr_udtraek), ``kommune-b`` with ed25519."""
    made = {}
    for name, kind, bits in (("kommune-a", "rsa", 3072), ("kommune-b", "ed25519", None)):
        key = keys_dir / name
        made[name] = Account(name, key, keygen(key, kind, bits),
                             f"persons of {name}\n".encode() * 500)
    return made

