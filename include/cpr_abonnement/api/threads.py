"""The threads an API process runs its database calls on: as many as it has database
connections, handed out first come, first served.

The endpoints are ``async``; what touches the database is synchronous and runs on a
thread (the operations IT systems call, the person look-ups, a token not verified
moments ago). Under anyio's default of 40 threads per process, 20 concurrent look-ups were 20
threads contending for one GIL, answered out of turn: p99 74 ms against 49 ms on two
threads, at the same rate (one worker, ``bench/person_lookup.py``). More threads than
connections would only wait for one in the pool, so the pool's size
(``CPRSUB_API_DB_CONNECTIONS``) is the number of threads too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from starlette.datastructures import State

T = TypeVar("T")

#: One limiter per event loop (as anyio keeps its default one).
_LIMITER: RunVar[CapacityLimiter] = RunVar("cpr_abonnement_database_threads")


def _limiter(threads: int) -> CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(threads)
        _LIMITER.set(limiter)
        return limiter


async def in_thread(state: State, call: Callable[..., T], *args: object) -> T:
    """``call(*args)`` on one of the database threads of the app whose ``state`` this
    is, once one is free."""
    threads = state.settings.api_db_connections
    return await to_thread.run_sync(call, *args, limiter=_limiter(threads))
