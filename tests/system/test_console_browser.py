"""The operator console in a real browser (Playwright driving Debian's Chromium) against a
real ``airflow api-server``, after a rejected extract, its correction, a failed delivery
and a backfill (``dag.test()`` runs of past days).

Screenshots of every page go to ``var/screenshots/`` (git-ignored) for a human to look
at. Every request the browser makes outside 127.0.0.1 is blocked and counted: the
console and the API docs must work offline.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from support.deployment import ROOT, task_states
from support.servers import free_port

DAY_ISO = "2026-11-19"
EARLIER_ISO = "2026-11-18"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "var" / "screenshots"
USER, PASSWORD = "operator", "console-test-password"
ADMIN, ADMIN_PASSWORD = "shift-lead", "admin-test-password"
PNR_SHAPED = re.compile(r"(?<!\d)\d{10}(?!\d)")
ODENSE = "bbbbbbbb-0000-4000-8000-000000000002"
HERNING = "dddddddd-0000-4000-8000-000000000004"  # pick-up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium (scripts/test.sh installs it)"),
]


@pytest.fixture
def api_server_started(deployment, tmp_path):
    """``airflow api-server`` on a free port, on the deployment's metadata and filter
    databases, with two Simple auth manager users: a viewer and an admin. Started before the day
    is run, so its ~1 minute start-up overlaps ``dag.test()``; :func:`api_server` waits."""
    port = free_port()
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD, ADMIN: ADMIN_PASSWORD}))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
           "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                          "simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer,{ADMIN}:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    log_path = tmp_path / "api-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "api-server",
                                 "--host", "127.0.0.1", "--port", str(port), "--workers",
                                 "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()  # the test is over: no graceful drain of keep-alive connections
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def troubled_days(deployment, monkeypatch, tmp_path):
    """What an operator meets after a bad week, run today, weeks after the delivery days
    (a backfill): 18.11's first extract arrived truncated (rejected, quarantined) and its
    corrected copy was processed after; on 19.11 Odense's SFTP server was down, so its
    delivery failed. A pick-up subscriber gets files on both days."""
    import datetime as dt

    from support.deployment import add_pickup_subscriber

    add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    conn = json.loads(deployment.sftp.airflow_connection("cpr"))
    earlier, day = dt.date.fromisoformat(EARLIER_ISO), dt.date.fromisoformat(DAY_ISO)
    extract = deployment.extract(earlier)
    whole = extract.read_bytes()
    extract.write_bytes(whole[: whole.rindex(b"\n999") + 1])  # the 999 line lost
    assert task_states(deployment.run(earlier))["wait_for_extract"] == "failed"
    extract.write_bytes(whole)  # the corrected copy
    assert task_states(deployment.run(earlier))["parse_and_validate"] == "success"
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", json.dumps({**conn, "port": dead}))
    deployment.extract(day, previous=earlier)
    run = deployment.run(day)
    assert task_states(run)["deliver[Odense Sag]"] == "failed", task_states(run)
    return deployment


@pytest.fixture
def api_server(api_server_started, troubled_days):
    """The api-server's base URL once it answers (it was started before the run)."""
    proc, base, log_path = api_server_started
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/api/v2/version", timeout=2).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, "api-server did not start in 90 s"
        time.sleep(0.5)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        blocked: list[str] = []

        def offline(route):
            if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()
        context.route("**/*", offline)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page, blocked
        browser.close()


def test_operator_console_in_the_browser(api_server, browser_page):
    page, blocked = browser_page
    base = api_server

    # Anonymous: the console and its JSON refuse.
    for path in ("/cpr-console/deliveries", "/cpr-console/api/deliveries"):
        assert page.request.get(base + path).status == 401, path

    _log_in(page, base, USER, PASSWORD)

    # The Deliveries page inside Airflow's UI: one click on the sidebar's entry.
    page.get_by_role("link", name="CPR", exact=True).click()
    page.wait_for_url(re.compile(r"/plugin/cpr-console$"))
    frame = page.frame_locator("iframe")
    failed = frame.locator(f'tr[data-subscriber="{ODENSE}"] td[data-day="{DAY_ISO}"]')
    for _ in range(30):  # page back to the test's delivery day, as an operator would
        shown = frame.locator("#days").inner_text()
        if failed.count():
            break
        frame.get_by_role("link", name="older").click()
        frame.locator("#days").filter(has_not_text=shown).wait_for()
    failed.wait_for()
    assert "failed" in failed.get_attribute("class")
    text = failed.inner_text()
    assert "FAILED" in text and "2 tries" in text and "push" in text
    # Why, and what to do next, in the cell; and one summary line over the table.
    assert "connection sftp_odense" in failed.locator(".reason").inner_text()
    assert "runbook" in text
    assert "Clear" not in text  # a viewer may not clear (see the admin below)
    summary = frame.locator("#summary").inner_text()
    assert summary.startswith("19.11.2026: 3 of 4 delivered — Odense Sag FAILED: "), summary
    # The backfill: the pick-up files of days weeks ago became available only now, so
    # they are waiting, not late (lateness counts from availability).
    for iso in (EARLIER_ISO, DAY_ISO):
        waiting = frame.locator(f'tr[data-subscriber="{HERNING}"] td[data-day="{iso}"]')
        assert "not yet picked up" in waiting.inner_text()
        assert waiting.get_attribute("class") == "ok", iso
    # One bar per subscriber and day with persons in its file: none for Vejle (empty
    # file) and Odense on 19.11 (failed); bytes count Vejle's empty files too.
    assert frame.locator("#plot-persons svg rect.bar").count() == 5
    assert frame.locator("#plot-bytes svg rect.bar").count() == 7
    page.screenshot(path=str(SHOTS / "console-deliveries.png"), full_page=True)
    page.locator('[data-testid="nav-sidebar"]').screenshot(path=str(SHOTS / "sidebar.png"))
    frame.locator("#plot-persons").screenshot(path=str(SHOTS / "console-volume-plot.png"))
    # Readable on a 1,440 × 900 screen: the page inside Airflow's frame needs no
    # horizontal scrolling.
    frames = [f for f in page.frames
              if urlparse(f.url).path.startswith("/cpr-console/deliveries")]
    deliveries_url = frames[0].url if frames else ""
    assert frames and all(f.evaluate("document.documentElement.scrollWidth <= "
                                     "document.documentElement.clientWidth") for f in frames)
    html = frame.locator("body").inner_html()
    assert not PNR_SHAPED.search(html)

    # The cell links to the failed task instance, whose page opens on its log.
    link = failed.locator("a.log")
    assert link.get_attribute("target") == "_top"  # the whole window, not the frame
    href = link.get_attribute("href")
    assert re.fullmatch(r"/dags/cpr_abonnement_daily/runs/[^/]+/tasks/deliver/mapped/\d+",
                        href), href
    page.goto(base + href)
    page.get_by_text(re.compile(r"Odense Sag")).first.wait_for()
    page.get_by_text("Log message source details").wait_for()  # the log panel filled in
    page.screenshot(path=str(SHOTS / "console-task-log.png"), full_page=True)

    # Extracts: the GX results per expectation and the size plot.
    page.goto(f"{base}/cpr-console/extracts")
    row = page.locator('#extracts tr[data-file="D261119.L431101"]')
    assert "accepted" in row.inner_text()
    gx = row.locator("td.gx")
    assert gx.inner_text().strip() == "7/7 passed"  # the details on demand:
    gx.locator("summary").click()
    assert "passed: ExpectColumnValuesToBeUnique on persons.pnr" in gx.inner_text()
    # The truncated arrival of 18.11 stays listed under its corrected copy, with the
    # rule it broke and where it was kept.
    earlier = page.locator('#extracts tr[data-file="D261118.L431101"]')
    assert earlier.count() == 2
    accepted, rejected = earlier.nth(0).inner_text(), earlier.nth(1).inner_text()
    assert "accepted" in accepted and "processed" in accepted
    assert "rejected" in rejected and "received again later" in rejected
    assert "999" in rejected and "quarantine" in rejected
    assert page.locator("#plot-size svg circle.point").count() == 2
    assert page.locator("#timeline span.processed").count() == 2
    page.screenshot(path=str(SHOTS / "console-extracts.png"), full_page=True)
    assert not PNR_SHAPED.search(page.content())

    page.goto(f"{base}/cpr-console/subscribers")
    odense = page.locator(f'tr[data-subscriber="{ODENSE}"]').inner_text()
    assert "added change-code A21" in odense and "{" not in odense  # sentences, not JSON
    assert "contact: none registered" in odense and "readiness: not checked" in odense
    page.screenshot(path=str(SHOTS / "console-subscribers.png"), full_page=True)

    page.goto(f"{base}/cpr-console/health")
    assert "UNHEALTHY" in page.locator("#verdict").inner_text()
    # The failed day stays a reason until delivered: who, why, what to do, and its log.
    problems = page.locator("#problems").inner_text()
    assert (f"still not delivered for {DAY_ISO}: Odense Sag" in problems
            and "connection sftp_odense" in problems
            and 'runbook step "Delivery failed"' in problems), problems
    log = page.locator("#undelivered a.log").get_attribute("href")
    assert re.fullmatch(r"/dags/cpr_abonnement_daily/runs/[^/]+/tasks/deliver/mapped/\d+",
                        log), log
    assert page.locator("#undelivered .clear").count() == 0
    assert "replica not loaded" in page.locator("#replica").inner_text()
    page.screenshot(path=str(SHOTS / "console-health.png"), full_page=True)

    # The replica's page: none kept here yet, and it says how to start one.
    page.goto(f"{base}/cpr-console/replica")
    assert "cprsub replica load" in page.locator("#replica-state").inner_text()
    page.screenshot(path=str(SHOTS / "console-replica.png"), full_page=True)

    # Airflow in its dark theme (here: the system's preference, which Airflow follows
    # by default): the console inside it turns dark too.
    page.emulate_media(color_scheme="dark")
    page.goto(f"{base}/plugin/cpr-console")
    page.frame_locator("iframe").locator("#matrix").wait_for()
    (console,) = [f for f in page.frames
                  if urlparse(f.url).path.startswith("/cpr-console/deliveries")]
    console.wait_for_function("document.documentElement.classList.contains('dark')")
    background = console.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(16, 20, 24)", background
    page.screenshot(path=str(SHOTS / "console-deliveries-dark.png"), full_page=True)
    page.emulate_media(color_scheme="light")

    # The subscription API's docs render from local assets.
    page.goto(f"{base}/cpr-abonnement/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    page.get_by_text("AddPNRSubscription").first.wait_for()
    page.screenshot(path=str(SHOTS / "api-docs.png"))
    assert blocked == []

    # An admin, who may clear, is told to clear the failed task to deliver again.
    context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
    admin = context.new_page()
    _log_in(admin, base, ADMIN, ADMIN_PASSWORD)
    admin.goto(deliveries_url)
    cell = admin.locator(f'tr[data-subscriber="{ODENSE}"] td[data-day="{DAY_ISO}"]')
    assert cell.locator(".clear").inner_text() == "Clear it there (shift+C) to deliver again"
    admin.goto(f"{base}/cpr-console/health")
    assert admin.locator("#undelivered .clear").count() == 1
    context.close()


def _log_in(page, base: str, user: str, password: str) -> None:
    """Through Airflow's own login form."""
    page.goto(f"{base}/auth/login")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))
