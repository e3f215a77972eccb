"""Fixtures of the filter-database tests."""

from __future__ import annotations

import pytest

from cpr_abonnement.cli import main


@pytest.fixture
def cli(db_url, capsys):
    """``cprsub`` in this process against the test database (upgraded first): each call
    gives (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--db", db_url, *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err
    assert run("db", "upgrade")[0] == 0
    return run
