"""Metrics deployment (issue 22, item 7), checked without a Docker engine: the Grafana
dashboard queries only metrics that statsd-exporter's mapping makes out of names that are
really sent, and compose wires Airflow, statsd-exporter and Prometheus together.

"Really sent": ours and some of Airflow's as the daily run's dag.test sent them to a real
StatsD receiver (``support.metrics``, kept true by tests/system/test_metrics.py), the
rest of Airflow's from Airflow's own metrics registry (metrics_template.yaml, from which
its metrics documentation is generated), so a name Airflow renames on an upgrade fails
here. The mapping is read with statsd-exporter's glob rules: ``*`` is one dotted
segment, the first matching rule wins, ``action: drop`` discards.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from cpr_abonnement.tasks import metrics
from support.metrics import AIRFLOW_EMITTED, EMITTED_BY_THE_DAILY_RUN, PREFIX

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "deploy" / "metrics"
MAPPING = METRICS / "statsd-mapping.yml"
DASHBOARD = METRICS / "grafana" / "dashboards" / "cpr-abonnement.json"
#: Timers become histograms (the mapping's default): queried through these series.
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
#: A metric name in a PromQL expression (string literals removed first): ours and
#: Airflow's all carry one of these prefixes, which no PromQL function or label has.
QUERIED = re.compile(r"\b(?:airflow|cpr_abonnement)_\w+")
#: What statsd-exporter accepts as a glob match, a metric name and a label name
#: (its mapper's validation, so a typo fails here, not when the container starts).
GLOB = re.compile(r"^(\*|[a-zA-Z_][\w-]*)(\.\*|\.[a-zA-Z0-9_][\w-]*)*$")
PROM_NAME = re.compile(r"^[a-zA-Z_]\w*$")
LABEL = re.compile(r"^[a-zA-Z_]\w+$")


@cache
def rules() -> tuple[dict, ...]:
    return tuple(yaml.safe_load(MAPPING.read_text())["mappings"])


def matches(pattern: str, name: str) -> bool:
    """statsd-exporter's glob: as many dotted segments, ``*`` standing for any one."""
    want, got = pattern.split("."), name.split(".")
    return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got, strict=True))


def rule_for(name: str, kind: str) -> dict | None:
    """The rule that maps StatsD ``name`` of type ``kind``: the first that matches."""
    return next((r for r in rules() if matches(r["match"], name)
                 and r.get("match_metric_type", kind) == kind), None)


@cache
def airflow_registry() -> dict[str, str]:
    """Every StatsD name Airflow documents, each variable as ``x``, with its type: the
    name, and its legacy name where it has one (the name with dag, task, pool... in it),
    which plain StatsD gets beside it (``legacy_names_on``, the default)."""
    from importlib.resources import files

    registry = files("airflow._shared.observability.metrics") / "metrics_template.yaml"
    names = {}
    for m in yaml.safe_load(registry.read_text())["metrics"]:
        for name in {m["name"], m.get("legacy_name", "-")} - {"-"}:
            names[PREFIX + re.sub(r"\{\w+\}", "x", name)] = m["type"]
    return names


def emitted() -> dict[str, str]:
    """StatsD name -> type (gauge, counter, timer) of everything known to be sent."""
    return {**airflow_registry(), **AIRFLOW_EMITTED,
            **dict.fromkeys(EMITTED_BY_THE_DAILY_RUN, "gauge")}


def prometheus_names(name: str, kind: str) -> set[str]:
    """The Prometheus series statsd-exporter exports for a StatsD name (none: dropped)."""
    rule = rule_for(name, kind)
    if rule is not None and rule.get("action") == "drop":
        return set()
    base = rule["name"] if rule else re.sub(r"[^\w]", "_", name)
    return {base + s for s in HISTOGRAM_SERIES} if kind == "timer" else {base}


def exported() -> dict[str, set[str]]:
    """Prometheus series -> the StatsD names it comes from."""
    out: dict[str, set[str]] = {}
    for name, kind in emitted().items():
        for series in prometheus_names(name, kind):
            out.setdefault(series, set()).add(name)
    return out


def queried(dashboard: dict) -> dict[str, list[str]]:
    """Metric name -> the titles of the panels whose queries (``expr``) use it."""
    out: dict[str, list[str]] = {}

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                expr = re.sub(r'"[^"]*"', '""', target["expr"])
                found = QUERIED.findall(expr)
                assert found, f"panel {panel['title']!r} queries no metric: {expr}"
                for name in found:
                    out.setdefault(name, []).append(panel["title"])

    walk(dashboard["panels"])
    return out


def test_every_metric_the_dashboard_queries_comes_from_a_name_that_is_sent():
    dashboard = json.loads(DASHBOARD.read_text())
    used, available = queried(dashboard), exported()
    missing = {name: panels for name, panels in used.items() if name not in available}
    assert not missing, f"the dashboard queries metrics nothing sends: {missing}"
    ours = {n for n in used if n.startswith("cpr_abonnement_")}
    # Each of our day's values has a panel, and each panel of ours is fed by the run.
    assert {n for series in ours for n in available[series]} == EMITTED_BY_THE_DAILY_RUN
    assert "airflow_scheduler_heartbeat_total" in used and "airflow_ti_finish_total" in used


def test_the_dashboard_check_finds_a_metric_nothing_sends():
    """The counter-check: a misspelt metric, and one whose rule drops it, are caught."""
    for expr in ('cpr_abonnement_day_subscriber{outcome="failed"}', "airflow_ti_finish"):
        bad = {"panels": [{"title": "typo", "targets": [{"expr": expr}]}]}
        assert set(queried(bad)) - set(exported()) == {expr.split("{")[0]}


def test_the_mapping_is_valid_and_each_rule_maps_something_that_is_sent():
    sent = emitted()
    for rule in rules():
        assert GLOB.match(rule["match"]), rule["match"]
        assert PROM_NAME.match(rule["name"]), rule["name"]
        assert all(LABEL.match(k) for k in rule.get("labels", {})), rule
        if rule["match"] == PREFIX + metrics.REPLICA_LAG:
            continue  # reserved: sent once the replica exists
        fed = {n: k for n, k in sent.items() if rule_for(n, k) is rule}
        assert fed, f"rule {rule['match']} maps nothing that is sent (or an earlier rule wins)"
        kinds = set(fed.values())
        if rule.get("action") != "drop":
            assert rule["name"].endswith("_total") == (kinds == {"counter"}), (rule, kinds)


def test_each_of_our_names_has_its_own_rule():
    names = {*EMITTED_BY_THE_DAILY_RUN, PREFIX + metrics.REPLICA_LAG}
    for name in names:
        rule = rule_for(name, "gauge")
        assert rule is not None and rule["name"].startswith("cpr_abonnement_"), name
    by_outcome = {o: rule_for(PREFIX + metrics.SUBSCRIBERS.format(outcome=o), "gauge")
                  for o in metrics.OUTCOMES}
    assert len({id(r) for r in by_outcome.values()}) == 1  # one metric, label outcome
    assert next(iter(by_outcome.values()))["labels"] == {"outcome": "$1"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_sends_airflows_statsd_to_the_exporter_that_prometheus_scrapes(compose):
    env = compose["x-airflow-common"]["environment"]
    services = compose["services"]
    exporter = services["statsd-exporter"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in exporter["command"])
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "true"
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert flags["statsd.listen-udp"] == ":" + env["AIRFLOW__METRICS__STATSD_PORT"]
    assert env["AIRFLOW__METRICS__STATSD_PREFIX"] + "." == PREFIX
    mounted = {v.split(":")[1]: v.split(":")[0] for v in exporter["volumes"]}
    assert mounted[flags["statsd.mapping-config"]] == "./deploy/metrics/statsd-mapping.yml"
    for name in ("airflow-scheduler", "airflow-worker", "airflow-triggerer",
                 "airflow-dag-processor", "airflow-apiserver"):
        assert "statsd-exporter" in services[name]["depends_on"], name

    scrape = yaml.safe_load((METRICS / "prometheus.yml").read_text())["scrape_configs"]
    targets = [t for job in scrape for c in job["static_configs"] for t in c["targets"]]
    assert targets == ["statsd-exporter" + flags["web.listen-address"]]
    prometheus = services["prometheus"]
    assert "./deploy/metrics/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in \
        prometheus["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in prometheus["ports"])

    grafana = services["grafana"]
    assert grafana["profiles"] == ["grafana"]  # optional
    assert all(p.startswith("127.0.0.1:") for p in grafana["ports"])
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    provisioned = yaml.safe_load((METRICS / "grafana" / "provisioning" / "dashboards"
                                  / "cpr-abonnement.yml").read_text())
    folder = provisioned["providers"][0]["options"]["path"]
    assert f"./deploy/metrics/grafana/dashboards:{folder}:ro" in grafana["volumes"]
