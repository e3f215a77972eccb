"""Our own metrics per delivery day, sent through Airflow's metrics facade.

Operators watch Airflow in Prometheus and Grafana (docs/deployment-metrics.md): Airflow
sends its own metrics over StatsD to the ``statsd-exporter`` service, and these are sent
the same way, so one mapping file (``deploy/metrics/statsd-mapping.yml``) and one
dashboard cover both.

Why the facade (``airflow.sdk.observability.stats``) and not a client of our own: the
task runner initialises it in every task process from the ``[metrics]`` settings
(``statsd_on`` / ``otel_on``, host, port, ``statsd_prefix``, allow and block lists, the
name handler), so ours go where Airflow's go, with the same prefix, and are switched
off with them. Where it is not initialised (a task run in-process, ``dag.test``) it
sends nothing.

Why gauges: each value belongs to one delivery day and is set again, not added to, when
the day is re-run, so a re-run never counts a subscriber twice. Why the label value in
the dotted name (``….subscribers.delivered``): plain StatsD has no tags (Airflow drops
them unless ``statsd_influxdb_enabled``); the exporter's mapping turns the segment into
the label ``outcome``.

Emitting never fails a task: a metric that cannot be sent is logged and left out. The
values are counts, sizes and times only: no subscriber, file or person is named.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

#: Every name we send (Airflow puts ``statsd_prefix``, ``airflow.``, before it), with
#: what it measures. docs/deployment-metrics.md and the dashboard test read this.
SUBSCRIBERS = "cpr_abonnement.day.subscribers.{outcome}"
PERSONS_DELIVERED = "cpr_abonnement.day.persons_delivered"
BYTES_DELIVERED = "cpr_abonnement.day.bytes_delivered"
DEADLINE_MARGIN = "cpr_abonnement.extract.deadline_margin_seconds"
LATE_PICKUPS = "cpr_abonnement.pickup.late_subscribers"
#: Reserved for the CPR replica (product.md §8): how far its data is behind the newest
#: processed extract. Not sent yet; the mapping and the docs already name it, so the
#: dashboard panel that will show it needs no rename.
REPLICA_LAG = "cpr_abonnement.replica.lag_seconds"

#: The ``outcome`` of a subscriber's delivery of the day: has its file (``DELIVERED``,
#: ``ALREADY_DELIVERED``), waits for its service window to end (``WAITING``), or
#: anything else (failed, conflict, started and died, not attempted).
DELIVERED, WAITING, FAILED = "delivered", "waiting", "failed"
OUTCOMES = (DELIVERED, WAITING, FAILED)


def gauge(name: str, value: float) -> None:
    """Set gauge ``name`` through Airflow's facade; never raises (a metric is not worth
    a failed delivery day), logs what could not be sent."""
    try:
        from airflow.sdk.observability import stats

        stats.gauge(name, value)
    except Exception:  # whatever the metrics backend raises
        log.warning("metric %s not sent", name, exc_info=True)


def outcome_of(ledger_outcome: str | None) -> str:
    """Which of :data:`OUTCOMES` a ledger outcome (None: no ledger row) counts as.

    The ledger (SQLAlchemy models) is imported here, not with the module: the sensor's
    pokes import this module for :func:`extract_arrived` and need none of it."""
    from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES
    from cpr_abonnement.records.ledger import WAITING as LEDGER_WAITING

    if ledger_outcome in DELIVERED_OUTCOMES:
        return DELIVERED
    return WAITING if ledger_outcome == LEDGER_WAITING else FAILED


def day_delivered(deliveries: Iterable[tuple[str | None, int, int | None]], *,
                  late_pickups: int) -> dict[str, float]:
    """Send the day's delivery metrics from the report task; returns what was sent.

    ``deliveries`` has one ``(ledger outcome, persons, data file bytes)`` per subscriber
    the day's run filtered for (outcome None: no ledger row). Persons and bytes count
    the delivered files only, as the ledger has them (a re-run that finds the file
    already there counts it again, as delivered for the day, not twice).
    """
    counts = dict.fromkeys(OUTCOMES, 0)
    persons = size = 0
    for outcome, n, nbytes in deliveries:
        kind = outcome_of(outcome)
        counts[kind] += 1
        if kind == DELIVERED:
            persons += n
            size += nbytes or 0
    values: dict[str, float] = {SUBSCRIBERS.format(outcome=k): v for k, v in counts.items()}
    values |= {PERSONS_DELIVERED: persons, BYTES_DELIVERED: size, LATE_PICKUPS: late_pickups}
    for name, value in values.items():
        gauge(name, value)
    return values


def extract_arrived(*, deadline: dt.datetime, arrived: dt.datetime) -> float:
    """Send how long before its deadline the day's extract arrived (negative: after
    it), from the sensor that found it complete; returns the margin in seconds.

    ``arrived`` is when this service first saw the file (the sensor's observation),
    so a re-run of the day sends the same margin, not the time of the re-run.
    """
    margin = (deadline - arrived).total_seconds()
    gauge(DEADLINE_MARGIN, margin)
    return margin


def late_pickups(count: int) -> None:
    """Send how many pick-up subscribers are late in fetching their files (the
    housekeeping DAG's daily check; the report task sends it too)."""
    gauge(LATE_PICKUPS, count)
