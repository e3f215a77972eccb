"""The console as Airflow's API server mounts it: behind Airflow's auth manager, no PNRs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from support.console import ODENSE, PNR, THU

PREFIX = "/cpr-console"
ROUTES = ["/deliveries", "/extracts", "/subscribers", "/health", "/api/deliveries",
          "/api/extracts", "/api/subscribers", "/api/health", "/plots/deliveries.svg",
          "/plots/deliveries.svg?metric=bytes", "/plots/extracts.svg", "/replica",
          "/api/replica"]
PNR_SHAPED = re.compile(r"(?<!\d)\d{10}(?!\d)")
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


@pytest.fixture
def airflow_app(airflow_db, console, monkeypatch):
    monkeypatch.setenv("CPRSUB_DB_URL", str(console.engine.url))
    from airflow.api_fastapi.app import create_app

    app = create_app(apps="core")
    # The plugin's app outlives a test: point it at this test's database and clock.
    (mounted,) = [r.app for r in app.routes if getattr(r, "path", "") == PREFIX]
    state = mounted.state.console
    for made in ("engine", "replica"):
        state.__dict__.pop(made, None)
    monkeypatch.setattr(state, "clock", lambda: NOW)
    with TestClient(app) as client:
        yield client


def _token(role: str | None) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="op", role=role))
    return {"Authorization": f"Bearer {jwt}"}


def test_anonymous_requests_are_refused_and_a_user_without_a_role_forbidden(airflow_app):
    for route in ROUTES:
        r = airflow_app.get(PREFIX + route)
        assert r.status_code == 401, (route, r.text)
        assert "Aalborg" not in r.text
        assert airflow_app.get(PREFIX + route, headers=_token(None)).status_code == 403


def test_a_viewer_sees_every_page_and_no_page_shows_a_full_pnr(airflow_app):
    headers = _token("VIEWER")
    for route in ROUTES:
        r = airflow_app.get(PREFIX + route, headers=headers)
        assert r.status_code == 200, (route, r.text[:300])
        assert PNR not in r.text and not PNR_SHAPED.search(r.text), route
    page = airflow_app.get(PREFIX + "/deliveries?failed=1", headers=headers).text
    assert f'data-subscriber="{ODENSE}"' in page and "Aalborg ESDH</th>" not in page
    cell = airflow_app.get(PREFIX + "/api/deliveries", headers=headers).json()
    (odense,) = [row for row in cell["rows"] if row["uuid"] == ODENSE]
    assert odense["cells"][THU.isoformat()]["state"] == "failed"
    svg = airflow_app.get(PREFIX + "/plots/deliveries.svg", headers=headers)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count('class="bar"') == 5  # 3 on Monday, 2 delivered on Thursday


def test_the_pages_are_listed_in_airflows_navigation(airflow_app):
    r = airflow_app.get("/api/v2/plugins", headers=_token("ADMIN"))
    views = [v for p in r.json()["plugins"] for v in p["external_views"]]
    ours = {v["name"]: v for v in views if v.get("category") == "CPR Abonnement"}
    assert set(ours) == {"Deliveries", "Extracts", "Subscribers", "Replica", "Health"}
    assert ours["Deliveries"]["href"] == PREFIX + "/deliveries"
    # One click from anywhere: the console's own entry at the sidebar's top level.
    (top,) = [v for v in views if v.get("nav_top_level")]
    assert (top["name"], top["href"]) == ("CPR", PREFIX + "/deliveries")
    assert top["icon"].startswith("data:image/svg+xml")


def test_the_api_docs_work_offline(airflow_app):
    """Swagger UI and ReDoc load their assets from this server, not a CDN."""
    for page, asset in (("docs", "swagger-ui-bundle.js"), ("redoc", "redoc.standalone.js")):
        html = airflow_app.get(f"/cpr-abonnement/{page}").text
        assert f"/cpr-abonnement/docs/assets/{asset}" in html
        assert "cdn." not in html and "fonts.googleapis" not in html
        assert airflow_app.get(f"/cpr-abonnement/docs/assets/{asset}").status_code == 200
    spec = airflow_app.get("/cpr-abonnement/openapi.json").json()
    text = spec["paths"]["/v1/AddPNRSubscription"]["post"]["description"]
    assert text.startswith("Subscribe your IT system") and "plugins/" not in spec["info"][
        "description"]
