"""The metric names the daily run sends over StatsD, as tests/system/test_metrics.py
receives them from a real run; tests/deploy/test_metrics_deploy.py holds the
statsd-exporter mapping and the Grafana dashboard to them."""

from __future__ import annotations

from cpr_abonnement.tasks import metrics

#: Airflow's ``statsd_prefix`` (docker-compose.yml sets the same).
PREFIX = "airflow."

#: Ours, all gauges: a successful daily run sends exactly these (the late pick-up check
#: of the housekeeping DAG sends LATE_PICKUPS too).
EMITTED_BY_THE_DAILY_RUN = frozenset(PREFIX + n for n in (
    *(metrics.SUBSCRIBERS.format(outcome=o) for o in metrics.OUTCOMES),
    metrics.PERSONS_DELIVERED, metrics.BYTES_DELIVERED, metrics.DEADLINE_MARGIN,
    metrics.LATE_PICKUPS))

#: Airflow's own, that dag.test makes Airflow send for the daily run in
#: tests/system/test_metrics.py (one delivery fails, so the report and the run do),
#: with their StatsD types.
AIRFLOW_EMITTED = {
    "airflow.ti.finish.cpr_abonnement_daily.deliver.success": "counter",
    "airflow.ti.finish.cpr_abonnement_daily.deliver.failed": "counter",
    "airflow.ti.finish.cpr_abonnement_daily.report.failed": "counter",
    "airflow.dagrun.duration.failed.cpr_abonnement_daily": "timer",
    "airflow.dag.cpr_abonnement_daily.deliver.duration": "timer",
}
