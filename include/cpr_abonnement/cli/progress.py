"""Progress on stderr for long runs, only when a person is watching (a TTY) or asked."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def reporter(
    label: str, unit: str, *, enabled: bool | None = None
) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback printing at most twice a second, or None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        pct = f"{100 * done / total:5.1f}%" if total else ""
        print(f"\r{label}: {pct} {done:,}/{total:,} {unit}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return progress
