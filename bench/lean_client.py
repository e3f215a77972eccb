"""A keep-alive HTTP/1.1 load client that costs little CPU, for benches on the server's
own two cores.

``httpx`` spends 1-2 ms of CPU per request in Python; on a 2-core machine that is CPU the
server under test does not get, and what capped earlier figures. Here every request is
encoded once before the clock starts, and a reply is read as its header block and then
exactly ``Content-Length`` bytes: nothing else is parsed. TLS (with a client
certificate) is the standard library's, as any client's.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np


def request(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> bytes:
    """One request's bytes, ready to write."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Result:
    seconds: float
    latencies: np.ndarray
    client_cpu: float  #: CPU seconds this process spent while the requests ran

    def report(self, name: str) -> None:
        p50, p99 = (np.percentile(self.latencies, q) * 1000 for q in (50, 99))
        n = len(self.latencies)
        print(f"{name:<34} {n:>6} ops  {n / self.seconds:>8.1f} ops/s  p50 {p50:>7.1f} ms  "
              f"p99 {p99:>7.1f} ms  (client CPU {self.client_cpu / n * 1000:.2f} ms/op)")


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, streams: list[Iterable[bytes]], context: ssl.SSLContext | None,
              seconds: float | None = None) -> Result:
    """One keep-alive connection per stream, sending its requests in turn (streams may
    share one iterator), until they run out or ``seconds`` have passed; every reply
    must be 200."""
    parts = urlsplit(url)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds if seconds else float("inf")

    async def client(stream: Iterable[bytes]) -> None:
        reader, writer = await asyncio.open_connection(
            parts.hostname, parts.port, ssl=context,
            server_hostname=parts.hostname if context else None)
        try:
            for data in stream:
                t = time.perf_counter()
                status = await _exchange(reader, writer, data)
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    raise RuntimeError(f"HTTP {status} from {url}")
                if t > deadline:
                    break
        finally:
            writer.close()

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(client(stream) for stream in streams))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return Result(elapsed, np.array(latencies), used)
