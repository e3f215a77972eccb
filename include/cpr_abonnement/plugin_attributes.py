"""Airflow plugin attributes built when Airflow reads them, not when the plugin file is
imported (issue 16, item 3).

Airflow executes every file of the plugins folder in every process that loads plugins,
and that includes each task process: the Task SDK loads them before every task to find
listeners. Only the API server uses the subscription API's and the operator console's
``fastapi_apps`` and ``external_views``; built at import, they made every mapped
``deliver`` task import FastAPI, the SOAP stack, the subscription service and the
console, and build both apps, for nothing. Declared with :class:`BuiltOnRead`, a plugin
file costs a task process only its class statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BuiltOnRead(Generic[T]):
    """A class attribute whose value ``build()`` makes on its first read (from the class
    or an instance), once per process; every later read returns the same object, as a
    plain class attribute would (the API server mounts the very app it was given)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = functools.cache(build)

    def __get__(self, instance: object, owner: type | None = None) -> T:
        return self._build()
