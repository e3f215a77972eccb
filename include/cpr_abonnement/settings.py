"""Deployment settings, from environment variables with embedded defaults.

The only module that reads ``CPRSUB_*`` variables (the demo sets them for its child
processes). Read at call time, not at import, so a process (or a test) that changes
its environment is seen by the next :meth:`Settings.from_env`.

Locations are URLs so the same code serves one machine and a cluster: ``file:///...``
for a local or shared folder, ``sftp://<airflow conn id>/<dir>`` for the inbound SFTP
directory, any fsspec URL Airflow's ``ObjectStoragePath`` supports for staging.

===============================  ===================================================
``CPRSUB_INBOUND``               where extracts arrive (default ``$AIRFLOW_HOME/cpr/inbound``)
``CPRSUB_STAGING``               per-run work files shared by workers (``.../cpr/staging``)
``CPRSUB_QUARANTINE``            bad extracts, kept intact (``.../cpr/quarantine``)
``CPRSUB_TASK_NUMBER``           expected CPR task number (default: any)
``CPRSUB_DELIVERY_TIME``         local run time on delivery days (``21:00``)
``CPRSUB_EXTRACT_DEADLINE_HOURS`` hours after the run time before "extract missing" (6)
``CPRSUB_POKE_SECONDS``          how often the sensor looks for the extract (300)
``CPRSUB_RETRY_DELAY_SECONDS``   first retry delay of a failed task, doubled per try (60)
``CPRSUB_DELIVERY_RETRIES``      retries of one subscriber's delivery (4)
``CPRSUB_SETTLE_SECONDS``        how long an inbound file must stay unchanged (size and
                                 mtime, seen across pokes) before it counts as complete
                                 and is taken or, when broken, quarantined (600). ``0``
                                 takes a file on first sight: only for demos and tests
                                 that write the file before the run
``CPRSUB_EXTRA_CLOSURES``        extra closure dates, comma-separated (``--MM-DD``/dates)
``CPRSUB_ALERT_EMAIL``           comma-separated recipients of failure alerts
``CPRSUB_SMTP_CONN_ID``          Airflow SMTP connection for alerts (``smtp_default``)
``CPRSUB_SLACK_CONN_ID``         Slack Incoming Webhook connection; alerts go to Slack
                                 too when it exists (``cpr_abonnement_slack``)
``CPRSUB_DB_URL``                filter database URL (else, in Airflow, the connection
                                 ``cpr_filter_db``; on the command line ``$CPRSUB_HOME``)
``CPRSUB_DB_PASSWORD_API``, ``_WORKER``, ``_KEYS``, ``_PICKUP``
                                 passwords ``cprsub db upgrade --grant-roles`` gives the
                                 database roles ``cprsub_api`` ... (unset: a new role is
                                 made NOLOGIN, an existing one keeps its password)
``CPRSUB_HOME``                  folder of the command line's default ``filters.db`` (``var``)
``CPRSUB_API_MAX_BODY_BYTES``    largest request body the subscription API reads
                                 (16 MiB: a bulk call of 1,000,000 PNRs fits)
``CPRSUB_API_CLIENT_CERT_HEADER`` header carrying the client certificate a TLS proxy
                                 verified (URL-escaped PEM; none: TLS ends at our server)
``CPRSUB_API_TRUSTED_PROXIES``   addresses (CIDRs, comma-separated) that header is read from
``CPRSUB_PICKUP_ROOT``           pick-up storage: ``<root>/<account>/IN/`` per pick-up
                                 subscriber, served by the pick-up SFTP server
                                 (``$AIRFLOW_HOME/cpr/pickup``)
``CPRSUB_SENDER_NAME``           ``Sender`` in every ``.metadata`` (``CPR Abonnement on
                                 Airflow``); readers such as spsftp check it
``CPRSUB_PICKUP_ALERT_DAYS``     delivery days a pick-up subscriber may leave a file
                                 un-downloaded before health and the run note flag it (3)
``CPRSUB_PICKUP_RETENTION_DAYS`` days a file stays in ``IN/`` before housekeeping removes
                                 it (30)
``CPRSUB_SUBSCRIBER_NOTICE_DAYS`` delivery days of failed deliveries after which the
                                 subscriber's contact person gets one notice (2)
===============================  ===================================================
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from cpr_abonnement import delivery_calendar
from cpr_abonnement.delivery_calendar import DeliveryCalendar


def _home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))


def _split(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


def _url(name: str, default: Path) -> str:
    return os.environ.get(name) or f"file://{default}"


#: The variable naming the filter database (quoted in error messages).
DB_URL_VARIABLE = "CPRSUB_DB_URL"


def db_url() -> str | None:
    """``CPRSUB_DB_URL``, or None when unset. A function of its own, not a
    :class:`Settings` field, so a bad value elsewhere never stops the command line from
    reaching the database."""
    return os.environ.get(DB_URL_VARIABLE) or None


#: The CPR replica's own database (cpr_abonnement.replica.database); unset: the filter
#: database holds the replica.
REPLICA_DB_URL_VARIABLE = "CPRSUB_REPLICA_DB_URL"


def replica_db_url() -> str | None:
    """``CPRSUB_REPLICA_DB_URL``, or None when unset (as :func:`db_url`)."""
    return os.environ.get(REPLICA_DB_URL_VARIABLE) or None


#: The database roles of the filter database (store/roles.py) and the variables that
#: hold their passwords.
ROLE_PASSWORD_VARIABLES = {
    "cprsub_api": "CPRSUB_DB_PASSWORD_API",
    "cprsub_worker": "CPRSUB_DB_PASSWORD_WORKER",
    "cprsub_keys": "CPRSUB_DB_PASSWORD_KEYS",
    "cprsub_pickup": "CPRSUB_DB_PASSWORD_PICKUP",
}


def role_passwords() -> dict[str, str | None]:
    """Each database role's password from its variable, None when unset or empty (so
    ``--grant-roles`` leaves an existing role's password alone rather than blanking it)."""
    return {role: os.environ.get(var) or None for role, var in ROLE_PASSWORD_VARIABLES.items()}


def export_api_settings(*, db: str | None, client_cert_header: str | None,
                        trusted_proxies: list[str] | tuple[str, ...],
                        client_ca: str | None = None) -> None:
    """Hand ``cprsub api serve``'s options to the server processes it starts
    (``--workers``): each builds its app from these variables, as the Airflow API
    server's mount does. ``--client-ca`` is also the CA a certificate registered
    through that server must come from, unless ``CPRSUB_CLIENT_CA`` says otherwise."""
    if db:
        os.environ[DB_URL_VARIABLE] = db
    if client_ca:
        os.environ.setdefault("CPRSUB_CLIENT_CA", client_ca)
    if client_cert_header:
        os.environ["CPRSUB_API_CLIENT_CERT_HEADER"] = client_cert_header
        os.environ["CPRSUB_API_TRUSTED_PROXIES"] = ",".join(trusted_proxies)


def cli_home() -> Path:
    """``CPRSUB_HOME``: where the command line keeps its default ``filters.db``."""
    return Path(os.environ.get("CPRSUB_HOME", "var"))


#: The runbook in this repository, docs/operating.md, "Operating the daily DAG": the
#: default of ``Settings.runbook_url`` and what the log's failure line names.
RUNBOOK_FILE = "docs/operating.md"
RUNBOOK_ANCHOR = "#operating-the-daily-dag"
RUNBOOK = RUNBOOK_FILE + RUNBOOK_ANCHOR


@dataclass(frozen=True)
class Settings:
    inbound: str
    staging: str
    quarantine: str
    task_number: str | None
    delivery_time: str
    deadline_hours: float
    settle_seconds: float
    extra_closures: tuple[str, ...]
    alert_email: tuple[str, ...]
    smtp_conn_id: str
    slack_conn_id: str
    api_max_body_bytes: int = 16 * 1024 * 1024
    #: Where an alert's runbook link points (CPRSUB_RUNBOOK_URL): the operators' own
    #: copy of docs/operating.md (a wiki, the repository's web view); by default the
    #: file in this checkout or image, which exists wherever the code does.
    runbook_url: str = (Path(__file__).resolve().parents[2] / RUNBOOK_FILE).as_uri() \
        + RUNBOOK_ANCHOR
    #: Database calls an API process runs at once: its threads for them
    #: (cpr_abonnement.api.threads) and, on PostgreSQL, the connections it keeps open.
    api_db_connections: int = 4
    poke_seconds: float = 300.0
    retry_delay_seconds: float = 60.0
    delivery_retries: int = 4
    api_client_cert_header: str | None = None
    api_trusted_proxies: tuple[str, ...] = ()
    #: PEM bundle of the CA(s) IT systems' client certificates are issued by.
    client_ca: str | None = None
    pickup_root: str = ""
    platform_sender: str = "CPR Abonnement on Airflow"
    pickup_alert_days: int = 3
    pickup_retention_days: int = 30
    subscriber_notice_days: int = 2
    #: How long each copy of CPR data lives (docs/data-lifecycle.md says why).
    staging_retention_days: float = 30.0
    delta_grace_days: float = 3.0
    quarantine_retention_days: float = 90.0
    #: Free space kept on the staging volume beyond what a day needs, in percent.
    disk_reserve_percent: float = 5.0
    #: The secret the look-up log's PNR hashes are keyed with (CPRSUB_LOOKUP_KEY); no
    #: look-up is answered without it. Kept out of the repr, as any secret.
    lookup_key: str | None = field(default=None, repr=False)
    #: SF1520 PersonBaseDataExtended's ServiceUUID (what clients put in their
    #: InvocationContext; serviceplatformen-compat.md §4 says why it is a setting).
    sf1520_service_uuid: str = "e6be2436-bf35-4df2-83fe-925142825dc2"
    #: How many delivery days the replica may lag behind the newest processed extract
    #: before ``cprsub health`` calls it unhealthy.
    replica_lag_days: int = 1
    #: How long the look-up log keeps a row (CPRSUB_LOOKUP_LOG_DAYS): five years, for a
    #: citizen's access request and the authorities' own accountability.
    lookup_log_days: float = 1826.0

    @classmethod
    def from_env(cls) -> Settings:
        base = _home() / "cpr"
        return cls(
            inbound=_url("CPRSUB_INBOUND", base / "inbound"),
            staging=_url("CPRSUB_STAGING", base / "staging"),
            quarantine=_url("CPRSUB_QUARANTINE", base / "quarantine"),
            task_number=os.environ.get("CPRSUB_TASK_NUMBER") or None,
            delivery_time=os.environ.get("CPRSUB_DELIVERY_TIME", "21:00"),
            deadline_hours=float(os.environ.get("CPRSUB_EXTRACT_DEADLINE_HOURS", "6")),
            settle_seconds=float(os.environ.get("CPRSUB_SETTLE_SECONDS", "600")),
            extra_closures=_split(os.environ.get("CPRSUB_EXTRA_CLOSURES", "")),
            alert_email=_split(os.environ.get("CPRSUB_ALERT_EMAIL", "")),
            smtp_conn_id=os.environ.get("CPRSUB_SMTP_CONN_ID", "smtp_default"),
            slack_conn_id=os.environ.get("CPRSUB_SLACK_CONN_ID", "cpr_abonnement_slack"),
            runbook_url=os.environ.get("CPRSUB_RUNBOOK_URL") or cls.runbook_url,
            lookup_key=os.environ.get("CPRSUB_LOOKUP_KEY") or None,
            sf1520_service_uuid=os.environ.get("CPRSUB_SF1520_SERVICE_UUID")
            or cls.sf1520_service_uuid,
            replica_lag_days=int(os.environ.get("CPRSUB_REPLICA_LAG_DAYS",
                                                cls.replica_lag_days)),
            lookup_log_days=float(os.environ.get("CPRSUB_LOOKUP_LOG_DAYS",
                                                 cls.lookup_log_days)),
            api_max_body_bytes=int(os.environ.get("CPRSUB_API_MAX_BODY_BYTES",
                                                  cls.api_max_body_bytes)),
            api_db_connections=int(os.environ.get("CPRSUB_API_DB_CONNECTIONS",
                                                  cls.api_db_connections)),
            poke_seconds=float(os.environ.get("CPRSUB_POKE_SECONDS", cls.poke_seconds)),
            retry_delay_seconds=float(os.environ.get("CPRSUB_RETRY_DELAY_SECONDS",
                                                     cls.retry_delay_seconds)),
            delivery_retries=int(os.environ.get("CPRSUB_DELIVERY_RETRIES",
                                                cls.delivery_retries)),
            api_client_cert_header=os.environ.get("CPRSUB_API_CLIENT_CERT_HEADER") or None,
            api_trusted_proxies=_split(os.environ.get("CPRSUB_API_TRUSTED_PROXIES", "")),
            client_ca=os.environ.get("CPRSUB_CLIENT_CA") or None,
            pickup_root=os.environ.get("CPRSUB_PICKUP_ROOT") or str(base / "pickup"),
            platform_sender=os.environ.get("CPRSUB_SENDER_NAME") or cls.platform_sender,
            pickup_alert_days=int(os.environ.get("CPRSUB_PICKUP_ALERT_DAYS",
                                                 cls.pickup_alert_days)),
            pickup_retention_days=int(os.environ.get("CPRSUB_PICKUP_RETENTION_DAYS",
                                                     cls.pickup_retention_days)),
            subscriber_notice_days=int(os.environ.get("CPRSUB_SUBSCRIBER_NOTICE_DAYS",
                                                      cls.subscriber_notice_days)),
            staging_retention_days=float(os.environ.get("CPRSUB_STAGING_RETENTION_DAYS",
                                                        cls.staging_retention_days)),
            delta_grace_days=float(os.environ.get("CPRSUB_DELTA_GRACE_DAYS",
                                                  cls.delta_grace_days)),
            quarantine_retention_days=float(os.environ.get(
                "CPRSUB_QUARANTINE_RETENTION_DAYS", cls.quarantine_retention_days)),
            disk_reserve_percent=float(os.environ.get("CPRSUB_DISK_RESERVE_PERCENT",
                                                      cls.disk_reserve_percent)),
        )

    def calendar(self) -> DeliveryCalendar:
        """The delivery calendar the DAG's timetable uses: the packaged closures plus
        ``CPRSUB_EXTRA_CLOSURES`` (health checks and anything else judging "which day
        was due" must use this one, or they disagree with the schedule)."""
        return DeliveryCalendar.default(extra=self.extra_closures)

    def run_time(self, day: dt.date) -> dt.datetime:
        """When delivery day ``day`` runs (``CPRSUB_DELIVERY_TIME``, Danish time)."""
        return delivery_calendar.run_time(day, self.delivery_time)

    def extract_deadline(self, day: dt.date) -> dt.datetime:
        """When a missing extract for ``day`` becomes an alert: the run time plus
        ``CPRSUB_EXTRACT_DEADLINE_HOURS``."""
        return delivery_calendar.extract_deadline(day, self.delivery_time, self.deadline_hours)
