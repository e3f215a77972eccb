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
INIT = ROOT / "deploy" / "init.sh"
#: The filter database's roles and the .env variables holding their passwords.
ROLE_PASSWORDS = {"cprsub_api": "CPRSUB_DB_PASSWORD_API",
                  "cprsub_worker": "CPRSUB_DB_PASSWORD_WORKER",
                  "cprsub_keys": "CPRSUB_DB_PASSWORD_KEYS",
                  "cprsub_pickup": "CPRSUB_DB_PASSWORD_PICKUP",
                  "cprsub": "CPRSUB_FILTER_DB_PASSWORD"}
SERVICES = {"postgres", "redis", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-worker", "airflow-triggerer", "airflow-init",
            "sftp", "pickup", "cpr-proxy", "backup", "statsd-exporter", "prometheus",
            "grafana"}


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
    secrets = ("AIRFLOW_FERNET_KEY=", "AIRFLOW_JWT_SECRET=", "CPRSUB_DEV_SFTP_PASSWORD=",
               "AIRFLOW_API_SECRET_KEY=", "POSTGRES_PASSWORD=", "AIRFLOW_ADMIN_PASSWORD=",
               "CPRSUB_FILTER_DB_PASSWORD=", "CPRSUB_LOOKUP_KEY=",
               *(f"{v}=" for v in ROLE_PASSWORDS.values()))
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


#: Variables that hold a secret or a credential-bearing URL: compose must refuse to start
#: without them (``${VAR:?message}``), never fall back to a value written in the repo.
SECRET_VARIABLES = {"POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY",
                    "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "CPRSUB_FILTER_DB_PASSWORD",
                    "CPRSUB_DEV_SFTP_PASSWORD", "CPRSUB_LOOKUP_KEY", *ROLE_PASSWORDS.values()}


def test_no_default_passwords_in_the_compose_file(compose):
    """Issue 14, item 6: Postgres, the filter database and Airflow's admin come from .env
    with no working defaults; no literal password in the file."""
    text = (ROOT / "docker-compose.yml").read_text()
    for name in SECRET_VARIABLES:
        uses = re.findall(r"(?<!\$)\$\{" + name + r"(:?[?-][^}]*)?\}", text)
        assert uses, f"{name} is not used"
        assert all(u.startswith(":?") for u in uses), f"{name} has a default or none required"
    assert "airflow:airflow@" not in text and "cprsub:cprsub" not in text
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    init_sql = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert "PASSWORD :'password'" in init_sql and "'cprsub'" not in init_sql


def test_production_runs_the_fab_auth_manager_and_makes_the_roles(compose):
    """Issue 14, item 6: FAB (users and roles in the database), not SimpleAuthManager; the
    init step creates the roles from deploy/airflow_roles.py and the first admin."""
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
        "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager")
    assert not [k for k in env if "SIMPLE_AUTH" in k]
    init = compose["services"]["airflow-init"]
    assert init["command"] == ["/opt/airflow/deploy/init.sh"]
    assert "./deploy:/opt/airflow/deploy:ro" in init["volumes"]
    script = INIT.read_text()
    assert 'python "$here/airflow_roles.py"' in script
    assert "airflow users create --role Admin" in script
    # A generated password may begin with "-": only the joined form keeps it a value.
    assert '--password="$AIRFLOW_ADMIN_PASSWORD"' in script
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert "apache-airflow-providers-fab==3.10.2" in pins


def test_people_and_it_systems_reach_airflow_only_through_the_tls_proxy(compose):
    """Issue 22 items 3 and 5: the API server publishes no port; cpr-proxy serves the IT
    systems' endpoints with mutual TLS on 8443 and the UI with TLS on 8080, and alert
    links point there; the default time zone is the schedule's."""
    services = compose["services"]
    assert "ports" not in services["airflow-apiserver"]
    published = [p for svc in services.values() for p in svc.get("ports", [])]
    assert not [p for p in published if p.startswith("8080") and p != "8080:8080"]
    assert services["cpr-proxy"]["ports"] == ["8443:8443", "8080:8080"]
    env = services["cpr-proxy"]["environment"]
    assert env["CPRSUB_API_PREFIX"] == "/cpr-abonnement" and env["CPRSUB_UI_PORT"] == "8080"
    templates = {p.name for p in (ROOT / "deploy/nginx/templates").iterdir()}
    assert templates == {"cpr-abonnement.conf.template", "airflow-ui.conf.template"}
    common = compose["x-airflow-common"]["environment"]
    assert common["AIRFLOW__API__BASE_URL"].startswith("${AIRFLOW_BASE_URL:-https://")
    assert common["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Europe/Copenhagen"


def test_health_checks_exercise_what_each_service_serves(compose):
    """Issue 22 item 6: SSH services answer a banner and key exchange, the proxy a TLS
    handshake on both servers and the API behind it (not a TCP connect, not nginx -t)."""
    services = compose["services"]
    for name, port in (("pickup", "2223"), ("sftp", "2222")):
        assert services[name]["healthcheck"]["test"] == [
            "CMD", "cprsub", "pickup", "probe", "--port", port]
    proxy = services["cpr-proxy"]["healthcheck"]["test"][1]
    assert "https://localhost:8443/" in proxy and "https://localhost:8080/" in proxy
    assert "nginx -t" not in proxy


def test_every_folder_the_workers_write_is_prepared_for_their_uid(compose):
    """Issue 22 item 1: the Airflow services run as AIRFLOW_UID:0; each folder of theirs
    that compose mounts or configures is made and handed to that uid by deploy/init.sh
    (the pick-up storage's .partial by the pick-up entrypoint)."""
    common = compose["x-airflow-common"]
    assert common["user"] == "${AIRFLOW_UID:-50000}:0"
    folders = [v.removeprefix("file://") for k, v in common["environment"].items()
               if k in ("CPRSUB_INBOUND", "CPRSUB_STAGING", "CPRSUB_QUARANTINE")]
    folders = [re.sub(r"\$\{[A-Z_]+:-file://([^}]+)\}", r"\1", f) for f in folders]
    assert sorted(folders) == ["/opt/cpr/inbound", "/opt/cpr/quarantine", "/opt/cpr/staging"]
    script = INIT.read_text()
    loop = re.search(r'for dir in (.*); do\n\s+install -d -o "\$uid" -g 0', script)
    assert loop, "init.sh hands its folders to AIRFLOW_UID:0"
    prepared = {d.strip('"').replace("$data", "/opt/cpr").replace("$logs", "/opt/airflow/logs")
                for d in loop.group(1).split()}
    assert set(folders) | {"/opt/airflow/logs"} <= prepared
    entrypoint = (ROOT / "deploy/pickup/entrypoint.sh").read_text()
    assert 'install -d -o "${AIRFLOW_UID:-50000}" -g 0 -m 0770 $srv/.partial' in entrypoint


#: Which filter-database passwords each service may see (issue 22, item 4): its own
#: role's, and the owner's only where migrations or pg_dump run. postgres gets the
#: owner's to create it on an empty volume (deploy/postgres-init.sh).
PASSWORDS_BY_SERVICE = {
    "airflow-apiserver": {"CPRSUB_DB_PASSWORD_API"},
    "airflow-scheduler": {"CPRSUB_DB_PASSWORD_WORKER"},
    "airflow-dag-processor": {"CPRSUB_DB_PASSWORD_WORKER"},
    "airflow-triggerer": {"CPRSUB_DB_PASSWORD_WORKER"},
    "airflow-worker": {"CPRSUB_DB_PASSWORD_WORKER"},
    "airflow-init": set(ROLE_PASSWORDS.values()),
    "pickup": {"CPRSUB_DB_PASSWORD_KEYS", "CPRSUB_DB_PASSWORD_PICKUP"},
    "backup": {"CPRSUB_FILTER_DB_PASSWORD"},
    "postgres": {"CPRSUB_FILTER_DB_PASSWORD"},
}


def _environment(compose: dict, name: str) -> dict[str, str]:
    """What the service's container is given (YAML merges resolved by the loader)."""
    env = compose["services"][name].get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def test_no_service_reads_the_whole_env_file(compose):
    """An env_file hands every container every password in .env: each service lists
    the variables it gets instead."""
    assert "env_file" not in compose["x-airflow-common"]
    assert [n for n, svc in compose["services"].items() if "env_file" in svc] == []


def test_each_service_gets_only_its_own_database_role(compose):
    for name in compose["services"]:
        env = _environment(compose, name)
        seen = {var for var in ROLE_PASSWORDS.values()
                if any("${" + var + ":" in value for value in env.values())}
        assert seen == PASSWORDS_BY_SERVICE.get(name, set()), name
    role_of = {"airflow-apiserver": "cprsub_api", "airflow-worker": "cprsub_worker",
               "airflow-scheduler": "cprsub_worker", "airflow-dag-processor": "cprsub_worker",
               "airflow-triggerer": "cprsub_worker", "airflow-init": "cprsub"}
    for name, role in role_of.items():
        env = _environment(compose, name)
        assert env["AIRFLOW_CONN_CPR_FILTER_DB"].startswith(f"postgresql://{role}:"), name
        if name != "airflow-init":  # `cprsub ...` in the container: the same role
            assert env["CPRSUB_DB_URL"] == env["AIRFLOW_CONN_CPR_FILTER_DB"], name
    pickup = _environment(compose, "pickup")
    assert pickup["CPRSUB_DB_URL"].startswith("postgresql://cprsub_pickup:")
    assert pickup["CPRSUB_KEYS_DB_URL"].startswith("postgresql://cprsub_keys:")
    assert _environment(compose, "backup")["CPRSUB_DB_URL"].startswith("postgresql://cprsub:")
    assert "AIRFLOW_CONN_CPR_FILTER_DB" not in _environment(compose, "sftp")


def test_airflow_init_migrates_as_owner_and_grants_the_roles():
    init = INIT.read_text()
    assert 'cprsub db upgrade --db "$AIRFLOW_CONN_CPR_FILTER_DB" --grant-roles' in init
    assert "CREATEROLE" in (ROOT / "deploy" / "postgres-init.sh").read_text()


def test_the_key_look_up_alone_gets_the_keys_role():
    """sshd's AuthorizedKeysCommand reads the keys role's URL from its file; the
    tracker runs without it, sshd without either."""
    entry = (ROOT / "deploy" / "pickup" / "entrypoint.sh").read_text()
    assert '"${CPRSUB_KEYS_DB_URL:-$CPRSUB_DB_URL}" > $etc/pickup.env' in entry
    assert "env -u CPRSUB_KEYS_DB_URL cprsub pickup track" in entry
    assert "exec env -u CPRSUB_DB_URL -u CPRSUB_KEYS_DB_URL cprsub pickup confine" in entry


def test_only_the_api_server_holds_the_look_up_key(compose):
    """The key that makes the look-up log's hashes readable is the API server's (it
    answers look-ups; operators run `cprsub replica lookups` there), no other service's."""
    holders = [name for name, service in compose["services"].items()
               if "CPRSUB_LOOKUP_KEY" in (service.get("environment") or {})]
    assert holders == ["airflow-apiserver"]
