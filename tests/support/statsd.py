"""A real StatsD server on 127.0.0.1 (UDP) that keeps what it receives, and Airflow's
metrics facades pointed at it.

It reads the StatsD line protocol as statsd-exporter does (``name:value|type``, several
lines to a datagram, ``|@rate`` and ``|#tags`` after the type), including the rule a
Python client leans on for negative gauges: a gauge value with a sign is a change of
the current value (``0|g`` then ``-5|g`` sets -5).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StatsdReceiver:
    """Everything received: gauges (current values), counters (sums), timers (samples)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.lines: list[str] = []
        self.gauges: dict[str, float] = {}
        self.counters: dict[str, float] = {}
        self.timers: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="statsd", daemon=True)

    def __enter__(self) -> StatsdReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            for line in data.decode("ascii").splitlines():
                if line:
                    self._take(line)

    def _take(self, line: str) -> None:
        name, _, rest = line.partition(":")
        value, kind, *extra = rest.split("|")
        rate = next((float(e[1:]) for e in extra if e.startswith("@")), 1.0)
        with self._lock:
            self.lines.append(line)
            if kind == "g":
                base = self.gauges.get(name, 0.0) if value[0] in "+-" else 0.0
                self.gauges[name] = base + float(value)
            elif kind == "c":
                self.counters[name] = self.counters.get(name, 0.0) + float(value) / rate
            elif kind in ("ms", "h", "d"):
                self.timers.setdefault(name, []).append(float(value))
            else:
                raise AssertionError(f"not a StatsD line: {line!r}")

    def names(self) -> set[str]:
        """Every metric name received so far."""
        with self._lock:
            return {*self.gauges, *self.counters, *self.timers}

    def wait_for(self, *names: str, timeout: float = 5.0) -> set[str]:
        """Wait until each of ``names`` has arrived (UDP is delivered asynchronously);
        returns every name received."""
        deadline = time.monotonic() + timeout
        while not set(names) <= self.names() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.names()


@contextmanager
def airflow_metrics_to(monkeypatch, prefix: str = "airflow") -> Iterator[StatsdReceiver]:
    """A receiver, with ``[metrics]`` set to send StatsD to it (as docker-compose.yml
    sets it for statsd-exporter) and both of Airflow's facades re-initialised from that.

    A worker's task process initialises the Task SDK's facade itself
    (``task_runner.main``), and the scheduler Airflow core's; ``dag.test`` runs both in
    this process, where they were set up (or not) before the settings changed, so this
    does what those processes do at their start. Both are switched off again after.
    """
    from airflow._shared.observability.metrics import stats as core_stats
    from airflow.observability.metrics import stats_utils as core_factory
    from airflow.sdk._shared.observability.metrics import stats as task_stats
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics import stats_utils as task_factory

    facades = ((task_stats, task_factory), (core_stats, core_factory))
    with StatsdReceiver() as receiver:
        for key, value in {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1",
                           "STATSD_PORT": str(receiver.port), "STATSD_PREFIX": prefix}.items():
            monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
        for stats, factory in facades:
            stats.initialize(factory=factory.get_stats_factory(), export_legacy_names=True)
        try:
            yield receiver
        finally:
            for stats, _ in facades:
                stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
