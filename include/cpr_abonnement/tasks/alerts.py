"""Failure alerts for data engineers, sent by the failing task itself.

Attached as ``on_failure_callback`` to every task (DAG-level failure callbacks have
been reported not to fire in Airflow 3.1/3.2), so a missing extract, a rejected
extract, a broken chain and a delivery that exhausted its retries each send one mail
naming the delivery day, the task, the subscriber (for deliveries) and the error, and
the same text to Slack when the Slack Incoming Webhook connection exists (Slack is
optional: most government deployments have mail only). PNR-shaped numbers are masked
before anything leaves the process. Each channel is tried on its own, so a Slack
outage never swallows the mail and vice versa. The subject says what is wrong (the day,
the file or subscriber, the short reason); the body links to the failed try's log in
Airflow's UI (``[api] base_url``) and to the runbook step to follow
(``CPRSUB_RUNBOOK_URL``, docs/operating.md), so the person on duty goes from the mail to
the log and the fix. The mail has a text/plain part beside the HTML one.

A new notifier is built per call: notifiers render their templates in place, so one
shared instance would repeat the first alert's subject. Our texts are wrapped in
``{% raw %}`` because error messages may contain braces.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from email.message import EmailMessage
from typing import Any

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import (
    ChainBroken,
    CprAbonnementError,
    DeltaRetired,
    DiskSpaceLow,
    ExtractRejected,
    ExtractRetired,
    ProductionDateGap,
    RunDateRefused,
)
from cpr_abonnement.records.reasons import clip, short_reason
from cpr_abonnement.settings import RUNBOOK, Settings
from cpr_abonnement.tasks.run_dates import delivery_day

log = logging.getLogger(__name__)


def _raw(text: str) -> str:
    return "{% raw %}" + text.replace("{% endraw %}", "") + "{% endraw %}"


#: How long a subject's reason may be: mail clients show about this much.
SUBJECT_REASON_CHARS = 100
#: Runbook step (its bold title in the runbook) per failing task.
RUNBOOK_STEPS = {
    "wait_for_extract": "Extract missing",
    "parse_and_validate": "Extract rejected",
    "deliver": "Delivery failed",
    "update_replica": "Replica update failed",
}


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    return isinstance(exc, kind) or isinstance(getattr(exc, "__cause__", None), kind)


def runbook_step(task_id: str, exc: BaseException | None) -> str | None:
    """The runbook step for a failure: by what went wrong where the error says it (a
    refused run date, a chain gap), else by the task that failed."""
    if _caused_by(exc, RunDateRefused):
        return "Run refused at once"
    if _caused_by(exc, ExtractRejected):  # the sensor rejects a broken file, too
        return "Extract rejected"
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


def _reason(error: str) -> str:
    """The short reason of an error text for a subject: its first line without the
    exception type and the quarantine path, and its first listed problem if any."""
    lines = [line.strip(" -") for line in error.splitlines() if line.strip(" -")]
    if not lines:
        return "unknown error"
    kind, _, message = lines[0].partition(": ")
    first = message if message and kind.isidentifier() else lines[0]
    for cut in ("; moved to ", ", moved to "):
        first = first.split(cut)[0]
    if len(lines) > 1:
        first += f": {lines[1]}"
    return clip(first, SUBJECT_REASON_CHARS)


def headline(task_id: str, subscriber: str | None, error: str, *, ours: bool) -> str:
    """What the subject says is wrong: for a delivery who and why; for our own errors
    (a rejected or missing extract, a gap, a refused run date) their message, which
    says it; for anything else which task failed and why."""
    if task_id == "deliver":
        reason = short_reason(error, SUBJECT_REASON_CHARS)
        return f"delivery to {subscriber or 'a subscriber'} failed: {reason}"
    if ours or "not received" in error:
        return _reason(error)
    return f"{task_id} failed: {_reason(error)}"


def compose(context: dict[str, Any], runbook: str = RUNBOOK) -> tuple[str, str]:
    """Subject and plain-text body of the alert for a failed task; ``runbook`` is the
    runbook's URL."""
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
    subject = f"[CPR Abonnement] {day}: {headline(ti.task_id, subscriber, error, ours=ours)}"
    lines = [
        f"Delivery day: {day}",
        f"Task:         {ti.task_id}" + (f" [{ti.map_index}]" if ti.map_index >= 0 else ""),
        f"Subscriber:   {subscriber}" if subscriber else None,
        f"DAG run:      {ti.dag_id} / {ti.run_id}",
        f"Try:          {ti.try_number}",
        f"Log:          {link}" if (link := log_link(ti)) else None,
        f"Runbook:      {runbook}, step \"{step}\"" if (step := runbook_step(ti.task_id, exc))
        else f"Runbook:      {runbook}",
        "",
        error,
    ]
    return subject, "\n".join(line for line in lines if line is not None)


def failure_alert(context: dict[str, Any]) -> None:
    """``on_failure_callback``: mail the data engineers (``CPRSUB_ALERT_EMAIL``) and,
    when its connection exists, post to Slack."""
    settings = Settings.from_env()
    subject, body = compose(context, settings.runbook_url)
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
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    message = EmailMessage()
    message["Subject"] = subject
    message["To"] = ", ".join(settings.alert_email)
    message.set_content(body)  # text/plain: what a terminal, a pager or a filter reads
    message.add_alternative(_html(body, log_link(context["ti"])), subtype="html")
    with SmtpHook(smtp_conn_id=settings.smtp_conn_id) as hook:
        message["From"] = hook.from_email or "airflow@localhost"
        # The provider's send_email_smtp builds an HTML-only message; its connected
        # client (host, TLS and login from the Airflow connection) sends ours.
        hook._smtp_client.send_message(message)


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
