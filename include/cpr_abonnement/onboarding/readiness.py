"""Readiness of an IT system before go-live (``cprsub subscriber check U``).

Checks, each naming what to fix when it fails:

* **delivery** — push: a real SFTP session over the subscriber's Airflow connection
  (pinned host key, its credentials), writing and removing a probe file in its folder;
  pick-up: the account is active and has at least one SSH key (logging in needs the
  subscriber's private key, which we never have, so the login itself is not tried);
* **certificate** — a registered client certificate valid for at least
  :data:`CERTIFICATE_MARGIN_DAYS` more days;
* **service agreement** — at least one registered;
* **filters** — at least one filter in force (without one the system receives nobody).

When all pass, the contact person of the registration is mailed that the subscription
is ready (the alert mail's SMTP connection, ``CPRSUB_SMTP_CONN_ID``) and the audit
records it. The checks are pure functions of what was read; the SFTP probe and the
mail are the I/O at the edges.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import posixpath
import secrets
from dataclasses import dataclass

from cpr_abonnement.delivery import modes

CERTIFICATE_MARGIN_DAYS = 30
PROBE_PREFIX = ".cprsub-readiness-"


@dataclass(frozen=True)
class Check:
    """One readiness check: passed, or what to fix."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def certificate_check(not_afters: list[dt.datetime], now: dt.datetime) -> Check:
    """At least one certificate valid ``CERTIFICATE_MARGIN_DAYS`` days from ``now``."""
    if not not_afters:
        return Check("certificate", False, "no client certificate registered: add the IT "
                     "system's certificate (certificates: in the registration)")
    latest = max(not_afters)
    if latest < now + dt.timedelta(days=CERTIFICATE_MARGIN_DAYS):
        return Check("certificate", False, f"the latest certificate expires {latest:%Y-%m-%d}, "
                     f"within {CERTIFICATE_MARGIN_DAYS} days: register its successor")
    return Check("certificate", True, f"valid until {latest:%Y-%m-%d}")


def agreement_check(agreements: tuple[str, ...]) -> Check:
    if not agreements:
        return Check("service agreement", False, "none registered: add the "
                     "ServiceAgreementUUID (service_agreements: in the registration)")
    return Check("service agreement", True, ", ".join(agreements))


def filter_check(count: int) -> Check:
    if count < 1:
        return Check("filters", False, "no filter in force: the system would receive "
                     "nobody; add its filters (cprsub filters ..., or filters import)")
    return Check("filters", True, f"{count} filter(s) in force")


def pickup_check(keys: int, account: str | None) -> Check:
    if not account or keys < 1:
        return Check("delivery", False, f"pick-up account {account or '-'} has no SSH key: "
                     "add the IT system's public key (delivery.ssh_keys)")
    return Check("delivery", True, f"pick-up account {account} with {keys} SSH key(s) "
                 "(login not tried: it needs the system's private key)")


def read_connections_as_airflows_cli() -> None:
    """Outside a task, find Airflow connections where Airflow's own CLI finds them: the
    environment, a secrets backend, then the metadata database. The Task SDK's hooks,
    run outside a task and outside Airflow's servers, look in the environment only
    (``ensure_secrets_backend_loaded``'s fallback chain), so a connection stored with
    ``airflow connections add`` (as compose deployments store them) was "not found".
    Airflow's servers mark themselves the same way; inside a task the execution API's
    backend still comes first, so this changes nothing there."""
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")


def probe_push(conn_id: str, folder: str) -> Check:
    """A real SFTP session over ``conn_id``: write and remove a probe file in ``folder``."""
    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import AuthenticationException, BadHostKeyException, SSHException

    probe = posixpath.join(folder, PROBE_PREFIX + secrets.token_hex(8))
    read_connections_as_airflows_cli()
    try:
        hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=1)
        with hook.get_managed_conn() as sftp:
            with sftp.open(probe, "wb") as fh:
                fh.write(b"CPR Abonnement readiness probe\n")
            sftp.remove(probe)
    except BadHostKeyException:
        return Check("delivery", False, f"connection {conn_id}: the server's host key is "
                     "not the pinned one: check delivery.host_key with the supplier")
    except AuthenticationException:
        return Check("delivery", False, f"connection {conn_id}: the credentials were "
                     "refused: fix the connection's login and password")
    except (SSHException, EOFError, OSError) as exc:
        return Check("delivery", False, f"connection {conn_id}: could not write and remove "
                     f"a probe file in {folder} ({type(exc).__name__}: {exc}): check host, "
                     "port, folder and its permissions")
    except Exception as exc:  # no such connection, a malformed one
        return Check("delivery", False, f"connection {conn_id} is not usable "
                     f"({type(exc).__name__}): create it (delivery.login/password_env)")
    return Check("delivery", True, f"connection {conn_id}: probe file written and removed "
                 f"in {folder}")


def ready_mail(name: str, uuid: str, contact: str) -> tuple[str, str]:
    """Subject and HTML body of the "ready" notice to the contact person."""
    subject = f"CPR Abonnement: {name} is ready"
    body = (f"<p>Dear {html.escape(contact)},</p><p>the CPR change subscription of IT "
            f"system {html.escape(name)} ({uuid}) is ready: its delivery target, "
            "certificate, service agreement and filters have been checked. Files are "
            "delivered from the next delivery day.</p><p>CPR Abonnement</p>")
    return subject, body


def send_mail(smtp_conn_id: str, to: str, subject: str, body: str) -> None:
    """Send through the alert mail's Airflow SMTP connection."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, subject=subject, html_content=body)


def delivery_check(info) -> Check:
    """Whether files can reach ``info`` by its mode: a pick-up account with a key, a
    push server that answers, or a folder to drop them in."""
    spec = modes.get(info.delivery_mode)
    if spec.has_account:
        return pickup_check(len(info.ssh_keys), info.pickup_account)
    if spec.needs_connection:
        if not info.sftp_conn_id:
            return Check("delivery", False, "no SFTP connection: register delivery")
        return probe_push(info.sftp_conn_id, info.remote_dir)
    return Check("delivery", True, f"{spec.label}: {info.remote_dir}")


def check_subscriber(svc, uuid: str, *, smtp_conn_id: str, now: dt.datetime
                     ) -> tuple[list[Check], bool]:
    """Run every check for ``uuid``; when all pass, mail the contact person (the
    registration's) and audit it. Returns the checks and whether the mail went."""
    info = svc.subscriber(uuid)
    delivery = delivery_check(info)
    checks = [delivery, certificate_check([c.not_after for c in info.certificates], now),
              agreement_check(info.service_agreements), filter_check(svc.count_filters(uuid))]
    contact = svc.registration_document(uuid).get("contact") or {}
    if not contact.get("email"):
        checks.append(Check("contact", False, "no contact person: register the document "
                            "with contact (name, email, phone)"))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        svc.record_readiness(uuid, f"NOT READY: {', '.join(failed)}")
        return checks, False
    send_mail(smtp_conn_id, contact["email"], *ready_mail(info.name, uuid, contact["name"]))
    svc.record_readiness(uuid, f"READY: contact {contact['email']} mailed")
    return checks, True
