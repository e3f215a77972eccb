"""
### CPR Abonnement: daily thinning and delivery of the CPR change extract

One run per CPR delivery day (Mon-Fri except 5 June, 24 and 31 December and configured
closures), at `CPRSUB_DELIVERY_TIME` Danish time. The run's logical date is the delivery
day. No catch-up: after an outage or a backfill of old days the scheduler creates only
the latest due day's run; backfill missed days explicitly (the chain check flags them).

Manual runs: the logical date names the day. A run for a day after today fails at once
("delivery day D is in the future"), and so does a `delivery_day` param that differs
from the logical date (the param is for runs triggered without a logical date).

1. **wait_for_extract**: waits (reschedule mode) for `D<YYMMDD>.L<task>` in the inbound
   location; past the deadline it fails with "extract for <day> not received".
   A re-run takes the extract from staging, where it was archived when it left the
   inbound folder; once retention removed it there, the re-run fails at once saying how
   to bring it back.
2. **parse_and_validate**: structural rules, great-expectations suite, production-date
   chain. A bad extract is quarantined intact; a chain gap stops the run (param
   `allow_gap` accepts it once a data engineer has decided to). An accepted extract
   leaves the inbound folder (its staged copy is the archive); the same file arriving
   again is recognised and removed, a different one quarantined.
3. **filter_for_subscribers**: first the disk guard (the staging volume must hold the
   day's deltas, estimated from the last runs, plus `CPRSUB_DISK_RESERVE_PERCENT`), then
   thins the extract per active subscriber with the filter
   snapshot of the extract's first processing (a re-run reproduces the same bytes), which
   also decides each subscriber's delivery mode and target.
4. **deliver** (one mapped task per subscriber, named after it): atomic, verified,
   idempotent delivery of the delta and its `.metadata` by the subscriber's mode in the
   filter snapshot (push to its SFTP server, or pick-up: placed in its account's `IN/`),
   recorded in the ledger. Clear one subscriber's task to re-deliver to it alone. A
   pick-up file the subscriber already fetched and removed is not placed again
   (ALREADY_DELIVERED) unless the param `replace_pickup` lists its UUID.
   A push due inside the subscriber's service window is "up for reschedule" until the
   window ends (ledger: `WAITING`, "waiting for service window until …"), neither a
   failure nor a retry.
5. **report**: summary of the day; marks the extract processed when all were delivered;
   sends the day's metrics (docs/deployment-metrics.md).

Failures alert data engineers by mail (`CPRSUB_ALERT_EMAIL`) and, when its connection
exists, Slack (`cpr_abonnement_slack`). Runbook: docs/operating.md.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule, dag, task

from cpr_abonnement import DAILY_DAG_ID
from cpr_abonnement.settings import Settings
from cpr_abonnement.tasks.alerts import failure_alert
from cpr_timetable import CprDeliveryTimetable

DAG_ID = DAILY_DAG_ID
#: The DAG's shape as the deployment configures it (one source: Settings, which
#: ``cprsub health`` reads too). Task bodies read Settings again when they run.
SETTINGS = Settings.from_env()

#: Errors no retry can fix: fail at once (and alert) instead of backing off.
NO_RETRY = ExceptionRetryPolicy(rules=[
    RetryRule(exception="cpr_abonnement.errors.DeliveryConflict", action=RetryAction.FAIL,
              reason="a different file with the same name is already there"),
    RetryRule(exception="cpr_abonnement.errors.MissingDeliveryTarget",
              action=RetryAction.FAIL, reason="subscriber has no delivery target"),
    RetryRule(exception="cpr_abonnement.errors.DeliveryRefused", action=RetryAction.FAIL,
              reason="the target refused us (host key changed or credentials refused)"),
    RetryRule(exception="cpr_abonnement.errors.DeltaRetired", action=RetryAction.FAIL,
              reason="the delta was removed by retention: the filter step makes it again"),
])

#: The params' schemas name their JSON-Schema dialect. Without it jsonschema checks each
#: schema against the 2020-12 meta-schema (its vocabularies and dynamic references) every
#: time a param is resolved, which every task process does twice: 0.81 ms for the three
#: params against 0.22 with draft-07, which says all they need.
DRAFT_07 = {"$schema": "http://json-schema.org/draft-07/schema#"}


@dag(
    dag_id=DAG_ID,
    description="Each CPR delivery day: receive and validate the change extract, thin it "
                "per subscriber, deliver each subscriber its file (SFTP push or pick-up)",
    schedule=CprDeliveryTimetable(at=SETTINGS.delivery_time,
                                  extra_closures=SETTINGS.extra_closures),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the production-date chain is checked in order
    default_args={
        "owner": "cpr-abonnement",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=SETTINGS.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "on_failure_callback": failure_alert,
    },
    params={
        "allow_gap": Param(False, type="boolean", **DRAFT_07,
                           description="accept a gap in the production-date chain"),
        "delivery_day": Param(None, type=["null", "string"], **DRAFT_07,
                              description="YYYY-MM-DD, only for runs triggered without a "
                                          "logical date; with one it must be the same day, "
                                          "else the run fails at once"),
        "replace_pickup": Param([], type="array", items={"type": "string"}, **DRAFT_07,
                                description="UUIDs of pick-up subscribers whose files are "
                                            "placed again although they fetched and "
                                            "removed them (recorded in the ledger)"),
    },
    tags=["cpr", "delivery"],
    doc_md=__doc__,
)
def cpr_abonnement_daily():
    @task.sensor(poke_interval=SETTINGS.poke_seconds, mode="reschedule", retries=0,
                 timeout=(SETTINGS.deadline_hours + 24) * 3600)
    def wait_for_extract():
        from airflow.sdk import get_current_context

        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.waiting import poke

        return poke(get_current_context(), Settings.from_env(), dt.datetime.now(dt.UTC))

    @task(retries=0)
    def parse_and_validate(name: str) -> dict:
        from airflow.sdk import get_current_context

        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.daily import receive
        from cpr_abonnement.tasks.run_dates import delivery_day

        ctx = get_current_context()
        return receive(Settings.from_env(), delivery_day(ctx), name, task_engine(),
                       allow_gap=bool(ctx["params"]["allow_gap"])).to_xcom()

    @task(retries=1, retry_policy=ExceptionRetryPolicy(rules=[
        RetryRule(exception="cpr_abonnement.errors.ExtractConflict", action=RetryAction.FAIL,
                  reason="another file for this day was processed before"),
        RetryRule(exception="cpr_abonnement.errors.DiskSpaceLow", action=RetryAction.FAIL,
                  reason="the staging volume would fill up: alert now")]))
    def filter_for_subscribers(received: dict) -> list[str]:
        from airflow.sdk import get_current_context

        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.daily import filter_day
        from cpr_abonnement.tasks.payloads import ReceivedExtract

        ctx = get_current_context()
        # A past day processed for the first time (backfill, catch-up, late manual run)
        # uses the filters in force at the end of its data interval (product.md §3);
        # today's run uses "now". A day processed before keeps its recorded snapshot.
        end = ctx.get("data_interval_end")
        as_of = end if end is not None and end < dt.datetime.now(dt.UTC) else None
        items = filter_day(Settings.from_env(), ReceivedExtract.from_xcom(received),
                           task_engine(), as_of=as_of)
        return [item.to_wire() for item in items]  # one JSON text each: see to_wire

    @task(map_index_template="{{ subscriber_name }}", retries=SETTINGS.delivery_retries,
          retry_policy=NO_RETRY, max_active_tis_per_dagrun=8,
          execution_timeout=dt.timedelta(hours=1))
    def deliver(item: str) -> None:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowRescheduleException

        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.errors import ServiceWindowWait
        from cpr_abonnement.tasks import deliver as delivering
        from cpr_abonnement.tasks.payloads import DeliveryItem

        delivery, ctx = DeliveryItem.from_wire(item), get_current_context()
        ctx["subscriber_name"] = delivery.name  # the map index's name
        ctx["subscriber_uuid"] = delivery.subscriber  # the failure alert's contact notice
        replace = delivery.subscriber in (ctx["params"].get(delivering.REPLACE_PARAM) or [])
        try:
            # The outcome is the ledger's (report reads it there); nothing is returned, so
            # nothing is pushed to XCom: each push is an execution-API round trip per
            # subscriber, and a dict return was pushed three times (as multiple outputs).
            delivering.deliver_one(delivery, task_engine(), now=delivering.clock(),
                                   replace=replace)
        except ServiceWindowWait as wait:
            # Up for reschedule, not a failure or a retry: no worker slot is held and
            # the try number stays; the task runs again when the window has ended.
            raise AirflowRescheduleException(wait.until) from wait

    @task(retries=2, retry_policy=ExceptionRetryPolicy(rules=[
        RetryRule(exception="cpr_abonnement.errors.ReplicaChainGap", action=RetryAction.FAIL,
                  reason="an earlier day is not in the replica yet: alert now")]))
    def update_replica(received: dict) -> str:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException

        from cpr_abonnement.airflow_side.connections import replica_engine_of, task_engine
        from cpr_abonnement.errors import ReplicaNotLoaded
        from cpr_abonnement.tasks.payloads import ReceivedExtract
        from cpr_abonnement.tasks.replica import update_replica as apply_day

        ctx = get_current_context()
        try:
            applied = apply_day(ReceivedExtract.from_xcom(received),
                                replica_engine_of(task_engine()),
                                allow_gap=bool(ctx["params"]["allow_gap"]))
        except ReplicaNotLoaded as exc:  # no replica kept here (yet): nothing to do
            raise AirflowSkipException(str(exc)) from exc
        return applied.line()

    @task(trigger_rule="all_done", retries=0, on_failure_callback=None)
    def report(received: dict, items: list[str]) -> dict:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.tasks.daily import report as summarise_day
        from cpr_abonnement.tasks.payloads import DeliveryItem, ReceivedExtract

        if not received or items is None:
            raise AirflowFailException("nothing to report: the extract was not processed "
                                       "(see the failed task above)")
        summary = summarise_day(ReceivedExtract.from_xcom(received),
                                [DeliveryItem.from_wire(i) for i in items], task_engine(),
                                now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        # plugins/cpr_run_note.py copies this into the run's note.
        get_current_context()["ti"].xcom_push(key="run_note", value=summary.note())
        if summary.failed:
            # Already alerted by each failed delivery; fail the run so it shows red.
            raise AirflowFailException(f"{summary.summary}; not delivered: "
                                       f"{', '.join(summary.failed)}")
        return summary.to_xcom()

    received = parse_and_validate(wait_for_extract())
    update_replica(received)  # beside the deliveries: neither waits for the other
    items = filter_for_subscribers(received)
    report(received, items) << deliver.expand(item=items)


cpr_abonnement_daily()
