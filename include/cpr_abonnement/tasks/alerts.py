"""Failure alerts for data engineers, sent by the failing task itself.

Attached as ``on_failure_callback`` to every task (DAG-level failure callbacks have
been reported not to fire in Airflow 3.1/3.2), so a missing extract, a rejected
extract, a broken chain and a delivery that exhausted its retries each send one mail
naming the delivery day, the task, the subscriber (for deliveries) and the error, and
the same text to Slack when the Slack Incoming Webhook connection exists (Slack is
optional: most government deployments have mail only). PNR-shaped numbers are masked
before anything leaves the process. Each channel is tried on its own, so a Slack
outage never swallows the mail and vice versa. Each alert links to the failed try's log
in Airflow's UI (``[api] base_url``) and names the runbook step to follow (docs/operating.md), so
the person on duty goes from the mail to the log and the fix.

A new notifier is built per call: notifiers render their templates in place, so one
shared instance would repeat the first alert's subject. Our texts are wrapped in
``{% raw %}`` because error messages may contain braces.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import (
    ChainBroken,
    CprAbonnementError,
    DeltaRetired,
    DiskSpaceLow,
    ExtractRetired,
    ProductionDateGap,
    RunDateRefused,
)
from cpr_abonnement.settings import Settings
from cpr_abonnement.tasks.run_dates import delivery_day

log = logging.getLogger(__name__)


def _raw(text: str) -> str:
    return "{% raw %}" + text.replace("{% endraw %}", "") + "{% endraw %}"


#: The runbook a newcomer opens from an alert: docs/operating.md, "Operating the daily DAG".
RUNBOOK = "docs/operating.md#operating-the-daily-dag"
#: Runbook step (its bold title in the runbook) per failing task.
RUNBOOK_STEPS = {
    "wait_for_extract": "Extract missing",
    "parse_and_validate": "Extract rejected",
    "deliver": "Delivery failed",
}


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    return isinstance(exc, kind) or isinstance(getattr(exc, "__cause__", None), kind)


def runbook_step(task_id: str, exc: BaseException | None) -> str | None:
    """The runbook step for a failure: by what went wrong where the error says it (a
    refused run date, a chain gap), else by the task that failed."""
    if _caused_by(exc, RunDateRefused):
        return "Run refused at once"
    if _caused_by(exc, ChainBroken) or _caused_by(exc, ProductionDateGap):
        return "Gap in the chain"
    if _caused_by(exc, ExtractRetired):
        return "Extract removed by retention"
    if _caused_by(exc, DiskSpaceLow):
        return "Disk space"
    if _caused_by(exc, DeltaRetired):
        return "Delta removed by retention"
    return RUNBOOK_STEPS.get(task_id)


def log_link(ti: Any) -> str | None:
    """The failed try's log in Airflow's UI (``[api] base_url``), as Airflow builds it."""
    return getattr(ti, "log_url", None)


def compose(context: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of the alert for a failed task."""
    ti = context["ti"]
    try:
        day = str(delivery_day(context))
    except ValueError:
        day = "unknown day"
    subscriber = context.get("subscriber_name") or getattr(ti, "rendered_map_index", None)
    exc = context.get("exception")
    error = scrub(f"{type(exc).__name__}: {exc}" if exc else "unknown error")
    # A sensor timeout says nothing about the extract; our own errors (a rejected file, a
    # refused run date, also when re-raised as AirflowFailException) say what happened
    # and must not be reworded into "not received".
    ours = _caused_by(exc, CprAbonnementError)
    if ti.task_id == "wait_for_extract" and "not received" not in error and not ours:
        error = f"extract for {day} not received ({error})"
    what = f"{ti.task_id}" + (f" for {subscriber}" if subscriber else "")
    subject = f"[CPR Abonnement] {day}: {what} failed"
    lines = [
        f"Delivery day: {day}",
        f"Task:         {ti.task_id}" + (f" [{ti.map_index}]" if ti.map_index >= 0 else ""),
        f"Subscriber:   {subscriber}" if subscriber else None,
        f"DAG run:      {ti.dag_id} / {ti.run_id}",
        f"Try:          {ti.try_number}",
        f"Log:          {link}" if (link := log_link(ti)) else None,
        f"Runbook:      {RUNBOOK}, step \"{step}\"" if (step := runbook_step(ti.task_id, exc))
        else f"Runbook:      {RUNBOOK}",
        "",
        error,
    ]
    return subject, "\n".join(line for line in lines if line is not None)


def failure_alert(context: dict[str, Any]) -> None:
    """``on_failure_callback``: mail the data engineers (``CPRSUB_ALERT_EMAIL``) and,
    when its connection exists, post to Slack."""
    subject, body = compose(context)
    settings = Settings.from_env()
    contact = _contact_notice(settings, context)
    if contact:
        body += f"\n\nContact person: {contact}"
    log.error("ALERT %s\n%s", subject, body)
    for channel in (_mail, _slack):
        try:
            channel(settings, subject, body, context)
        except Exception:  # an alert channel failing must not silence the others
            log.exception("could not send the alert via %s", channel.__name__.strip("_"))


def _contact_notice(settings: Settings, context: dict[str, Any]) -> str | None:
    """For a failed delivery: mail the subscriber's contact person once its deliveries
    have failed ``CPRSUB_SUBSCRIBER_NOTICE_DAYS`` delivery days
    (:mod:`~cpr_abonnement.onboarding.notices`); what the engineers' alert says about
    it, or None for other tasks. Never lets the alert itself fail."""
    uuid = context.get("subscriber_uuid")
    if not uuid:
        return None
    try:
        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.onboarding import notices
        from cpr_abonnement.onboarding.readiness import send_mail

        engine = task_engine()
        found = notices.state(engine, uuid)
        if found is None or not found.contact_email:
            return "none registered (cprsub subscriber register), so not notified"
        days = len(found.failed_days)
        if found.already_notified:
            return f"{found.contact_email} was notified earlier in this run of failures"
        if not found.due(settings.subscriber_notice_days):
            return (f"not notified yet ({days} of {settings.subscriber_notice_days} failed "
                    "delivery day(s) before the contact person is told)")
        send_mail(settings.smtp_conn_id, found.contact_email, *notices.compose(found))
        notices.record(engine, uuid, found, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        return f"{found.contact_email} notified ({days} failed delivery day(s))"
    except Exception as exc:
        log.exception("could not notify the subscriber's contact person")
        return f"notice could not be sent ({type(exc).__name__})"


def _mail(settings: Settings, subject: str, body: str, context: dict[str, Any]) -> None:
    if not settings.alert_email:
        log.warning("CPRSUB_ALERT_EMAIL is not set: no alert mail")
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(to=list(settings.alert_email), subject=_raw(subject),
                 html_content=_raw(_html(body, log_link(context["ti"]))),
                 smtp_conn_id=settings.smtp_conn_id)(context)


def _html(body: str, link: str | None) -> str:
    """The mail's HTML: the text as it is, and the log as a link one can click."""
    text = f"<pre>{html.escape(body)}</pre>"
    if link:
        text += f'<p><a href="{html.escape(link, quote=True)}">Open the task log</a></p>'
    return text


def _slack(settings: Settings, subject: str, body: str, context: dict[str, Any]) -> None:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(settings.slack_conn_id)
    except AirflowNotFoundException:
        return  # no Slack in this deployment
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    SlackWebhookNotifier(slack_webhook_conn_id=settings.slack_conn_id,
                         text=_raw(_slack_escape(f"*{subject}*\n```\n{body}\n```")))(context)


def _slack_escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup; error messages may contain them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
