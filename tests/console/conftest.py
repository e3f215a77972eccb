"""A filter database holding a few days of deliveries, checks and filter history."""

from __future__ import annotations

import pytest

from support.console import Console, build_console


@pytest.fixture
def console(tmp_path, monkeypatch) -> Console:
    built = build_console(tmp_path, monkeypatch)
    yield built
    built.engine.dispose()
