"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / ".venv" / "share" / "compose-spec" / "compose_spec.json"
SERVICES = {"postgres", "redis", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-worker", "airflow-triggerer", "airflow-init",
            "sftp", "pickup", "cpr-proxy"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_valid_against_the_compose_specification(compose):
    assert SCHEMA.exists(), "scripts/test.sh fetches the Compose JSON schema"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose, schema)


def test_services_and_health_checks(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        if name != "airflow-init":  # one-shot
            assert "healthcheck" in svc, f"{name} has no health check"
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "cpr-data:/opt/cpr" in services["airflow-triggerer"]["volumes"]
    assert "cpr-data:/opt/cpr" in services["airflow-worker"]["volumes"]


def test_every_image_tag_is_pinned(compose):
    images = [s["image"] for s in compose["services"].values() if "image" in s]
    from_lines = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    for image in images + from_lines:
        _name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{image} is not pinned"
    assert from_lines == ["apache/airflow:3.3.2-python3.11"]


def test_env_example_names_every_variable_compose_uses():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))  # $${X}: expanded in the container
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used <= example, f"missing from .env.example: {sorted(used - example)}"
    secrets = ("AIRFLOW_FERNET_KEY=", "AIRFLOW_JWT_SECRET=", "CPRSUB_DEV_SFTP_PASSWORD=")
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(secrets):
            assert line.endswith("="), f"a secret is committed: {line.split('=')[0]}"


def test_proxy_terminates_mutual_tls_and_is_the_only_trusted_header_source(compose):
    """Issue 12, item 5: nginx in front of the API server; the app trusts its address."""
    proxy = compose["services"]["cpr-proxy"]
    assert proxy["networks"]["default"]["ipv4_address"] == "172.28.0.10"
    env = compose["x-airflow-common"]["environment"]
    assert env["CPRSUB_API_TRUSTED_PROXIES"] == "172.28.0.10/32"
    assert env["CPRSUB_API_CLIENT_CERT_HEADER"] == "X-SSL-Client-Cert"
    template = (ROOT / "deploy/nginx/templates/cpr-abonnement.conf.template").read_text()
    assert "ssl_verify_client      on;" in template
    assert "X-SSL-Client-Cert $ssl_client_escaped_cert;" in template
