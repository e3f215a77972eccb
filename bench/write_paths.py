"""Benchmark: ways to write the filter step's deltas (issue 16, item 1).

    .venv/bin/python bench/write_paths.py EXTRACT [--subscribers 40] [--share 0.01]

Writes the same subscribers' deltas (each a random ``--share`` of the extract's persons,
one with none) four ways, rounds interleaved so a busy machine slows all alike, and
prints the median seconds per way. Every way must give the bytes and SHA-256 of
``write_persons``, which is checked before timing:

- ``gather``: ``write_persons`` (since issue 16: one pass over the extract in 32 MB
  windows read with ``preadv``, each delta's runs joined per window, hashed, written;
  before it, runs gathered from a map of the file into 8 MB blocks);
- ``copy_file_range`` / ``sendfile``: the kernel copies each run from the source file,
  the hash reads the run from the map;
- ``writev``: the kernel gathers up to 1,024 runs from the map per call.

Runs are mostly one person (~1.3 kB), so the kernel-side ways pay a system call per run.

Measured 2026-11-28 on the shared 2-core VM (load 5-6), 200,000-person extract (257 MB)
from ``bench/filter_day.py --persons 200000``:

- this script, 40 deltas (103 MB): gather 0.80 s, copy_file_range 1.96 s, sendfile
  1.69 s, writev 0.76 s (medians of 3 interleaved rounds; writev's range 0.60-0.95 s
  spans gather's 0.74-0.82 s);
- the whole write stage (``deltas.write_deltas``, two writer threads), 100 subscribers
  each 1% of the persons (358 MB), each way in its own process, A/B interleaved, 5 runs
  each after a warm-up, medians: gather 2.1-2.6 s against copy_file_range 4.3 s,
  sendfile 5.0 s, writev 3.6 s, and ``b"".join`` of the runs 2.8 s (gather 2.4 s in that
  pairing); whole-process CPU ratio gather/other 0.78, 0.72, 0.86, 0.97. Peak RSS
  408 MiB for gather, 392 MiB for the kernel-side ways (the two 8 MB blocks);
- profile of the gather path (one thread, 200 subscribers, 718 MB): ``write()`` 1.71 s
  (0.42 GB/s, what the floor pays too), gathering 1.47 s, SHA-256 0.75 s.

So no way wins: today's gather stays. Kernel-side copies lose 2x for want of large runs.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.writer import copy_runs, spans_of, trailer, write_persons

IOV = 1024


def _runs(index: ExtractIndex, persons: np.ndarray) -> tuple[list[int], list[int], int]:
    starts, ends, records = copy_runs(index, spans_of(index, persons))
    return starts.tolist(), ends.tolist(), records


def _write_start(index: ExtractIndex, out):
    """Write the 000 record (flushed, so runs written by file descriptor follow it) and
    return the SHA-256 that has hashed it."""
    start = index.start_record()
    head = start.raw + start.terminator
    out.write(head)
    out.flush()
    return hashlib.sha256(head)


def _kernel_copy(copy: Callable[[int, int, int, int], int]):
    """A writer where ``copy(src_fd, out_fd, offset, count)`` moves each run."""
    def write(index: ExtractIndex, persons: np.ndarray, out, view: memoryview) -> str:
        starts, ends, records = _runs(index, persons)
        digest = _write_start(index, out)
        with open(index.path, "rb") as src:
            for a, b in zip(starts, ends, strict=True):
                digest.update(view[a:b])
                done = a
                while done < b:
                    done += copy(src.fileno(), out.fileno(), done, b - done)
        out.seek(os.lseek(out.fileno(), 0, os.SEEK_CUR))
        tail = trailer(index, records)
        out.write(tail)
        digest.update(tail)
        return digest.hexdigest()
    return write


def _writev(index: ExtractIndex, persons: np.ndarray, out, view: memoryview) -> str:
    starts, ends, records = _runs(index, persons)
    digest = _write_start(index, out)
    batch: list[memoryview] = []
    for a, b in zip(starts, ends, strict=True):
        batch.append(view[a:b])
        digest.update(batch[-1])
        if len(batch) == IOV:
            os.writev(out.fileno(), batch)
            batch.clear()
    if batch:
        os.writev(out.fileno(), batch)
    batch.clear()
    out.seek(os.lseek(out.fileno(), 0, os.SEEK_CUR))
    tail = trailer(index, records)
    out.write(tail)
    digest.update(tail)
    return digest.hexdigest()


def _gather(index: ExtractIndex, persons: np.ndarray, out, view: memoryview) -> str:
    return write_persons(index, persons, out).sha256


WAYS = {
    "gather": _gather,
    "copy_file_range": _kernel_copy(lambda s, o, off, n: os.copy_file_range(s, o, n, off)),
    "sendfile": _kernel_copy(lambda s, o, off, n: os.sendfile(o, s, off, n)),
    "writev": _writev,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("extract", type=Path)
    ap.add_argument("--subscribers", type=int, default=40)
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    index = scan(args.extract)
    n = len(index.persons)
    rng = np.random.default_rng(3)
    selections = [np.array([], dtype=np.int64), np.array([0, n - 1])] + [
        np.unique(rng.choice(n, int(n * args.share), replace=False))
        for _ in range(args.subscribers - 2)]
    with open(index.path, "rb") as src, mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ) as mm, \
            tempfile.TemporaryDirectory() as tmp:
        view = memoryview(mm)
        path = Path(tmp) / "delta"

        def run(way: str, persons: np.ndarray) -> str:
            with open(path, "wb") as out:
                return WAYS[way](index, persons, out, view)

        for p in selections[:3]:
            reference = run("gather", p), path.read_bytes()
            for way in WAYS:
                if (run(way, p), path.read_bytes()) != reference:
                    raise SystemExit(f"{way}: bytes or SHA-256 differ from write_persons")
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(args.rounds):
            for way in WAYS:
                t = time.perf_counter()
                for p in selections:
                    run(way, p)
                times[way].append(time.perf_counter() - t)
        view.release()
    written = sum(int(index.span_nbytes[spans_of(index, p)].sum()) for p in selections)
    for way, secs in times.items():
        med = statistics.median(secs)
        print(f"{way:>16} median {med:6.3f} s  {written / med / 1e9:5.2f} GB/s  "
              f"(min {min(secs):.3f}, max {max(secs):.3f})")


if __name__ == "__main__":
    main()
