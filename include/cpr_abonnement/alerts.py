"""Failure alerts for data engineers, sent by the failing task itself.

Attached as ``on_failure_callback`` to every task (DAG-level failure callbacks have
been reported not to fire in Airflow 3.1/3.2), so a missing extract, a rejected
extract, a broken chain and a delivery that exhausted its retries each send one mail
naming the delivery day, the task, the subscriber (for deliveries) and the error.
PNR-shaped numbers are masked before anything leaves the process.

A new ``SmtpNotifier`` is built per call: the notifier renders its templates in place,
so one shared instance would repeat the first alert's subject. Our texts are wrapped
in ``{% raw %}`` because error messages may contain braces.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from cpr_abonnement.settings import Settings

log = logging.getLogger(__name__)


def _raw(text: str) -> str:
    return "{% raw %}" + text.replace("{% endraw %}", "") + "{% endraw %}"


def compose(context: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of the alert for a failed task."""
    from cpr_abonnement.pipeline import delivery_day, scrub  # not at DAG parse time

    ti = context["ti"]
    try:
        day = str(delivery_day(context))
    except ValueError:
        day = "unknown day"
    subscriber = context.get("subscriber_name") or getattr(ti, "rendered_map_index", None)
    exc = context.get("exception")
    error = scrub(f"{type(exc).__name__}: {exc}" if exc else "unknown error")
    if ti.task_id == "wait_for_extract" and "not received" not in error:
        error = f"extract for {day} not received ({error})"
    what = f"{ti.task_id}" + (f" for {subscriber}" if subscriber else "")
    subject = f"[CPR Abonnement] {day}: {what} failed"
    lines = [
        f"Delivery day: {day}",
        f"Task:         {ti.task_id}" + (f" [{ti.map_index}]" if ti.map_index >= 0 else ""),
        f"Subscriber:   {subscriber}" if subscriber else None,
        f"DAG run:      {ti.dag_id} / {ti.run_id}",
        f"Try:          {ti.try_number}",
        "",
        error,
    ]
    return subject, "\n".join(line for line in lines if line is not None)


def failure_alert(context: dict[str, Any]) -> None:
    """``on_failure_callback``: mail the data engineers (``CPRSUB_ALERT_EMAIL``)."""
    subject, body = compose(context)
    log.error("ALERT %s\n%s", subject, body)
    settings = Settings.from_env()
    if not settings.alert_email:
        log.warning("CPRSUB_ALERT_EMAIL is not set: alert only logged")
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(to=list(settings.alert_email), subject=_raw(subject),
                 html_content=_raw(f"<pre>{html.escape(body)}</pre>"),
                 smtp_conn_id=settings.smtp_conn_id)(context)
