"""Answers read from the filter database moments ago, trusted for a short lifetime.

The subscription API asks the same questions on every call of a keep-alive client
(which principal a token stands for, which IT system a certificate belongs to). Both
answers are kept in a :class:`TimedMemory`: a change made through this process empties
the affected entries at once, one made by another process counts within the lifetime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TimedMemory(Generic[V]):
    """Found answers by key, each for ``lifetime()`` seconds (read at each store, so a
    module constant stays adjustable), at most ``limit`` of them (emptied when full).

    Only found answers are kept: something registered a moment ago works at once. A
    lookup that started before :meth:`forget` never stores its (possibly older) answer
    after it: each store checks the generation read before asking the database.
    """

    def __init__(self, lifetime: Callable[[], float], limit: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime, self._limit = lifetime, limit
        #: Seconds on a clock that never goes back; a test sets its own to age answers
        #: without waiting for them to expire.
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._generation = 0

    def get(self, key: Hashable) -> V | None:
        """The remembered answer, or None when there is none or it is too old."""
        found = self._entries.get(key)
        return found[1] if found is not None and found[0] > self.clock() else None

    def lookup(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The remembered answer, else ``load()``'s, remembered when found."""
        with self._lock:
            generation = self._generation
        found = self.get(key)
        if found is not None:
            return found
        answer = load()
        if answer is not None:
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= self._limit:
                        self._entries.clear()
                    self._entries[key] = (self.clock() + self._lifetime(), answer)
        return answer

    def forget(self, drop: Callable[[V], bool] | None = None) -> None:
        """Forget the answers ``drop`` picks (all without it); lookups under way do not
        store theirs afterwards."""
        with self._lock:
            self._generation += 1
            self._entries = {} if drop is None else {
                k: v for k, v in self._entries.items() if not drop(v[1])}
