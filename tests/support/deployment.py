"""A deployment of the daily DAG for tests: folders, filter DB, SFTP and SMTP servers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pendulum

from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.extract.generator import generate
from support.smtp import Inbox

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "cpr_abonnement_daily"
SUBSCRIBERS = {  # uuid: (name, connection id, filter)
    "aaaaaaaa-0000-4000-8000-000000000001": ("Aalborg ESDH", "sftp_aalborg", ("kom", "851")),
    "bbbbbbbb-0000-4000-8000-000000000002": ("Odense Sag", "sftp_odense", ("code", "A21")),
    "cccccccc-0000-4000-8000-000000000003": ("Vejle Tom", "sftp_vejle", None),
}


#: The pick-up subscriber some tests add beside the push ones.
PICKUP_UUID = "dddddddd-0000-4000-8000-000000000004"
PICKUP_ACCOUNT = "herning-sag"


def add_pickup_subscriber(deployment: Deployment, monkeypatch, tmp_path: Path) -> Path:
    """Register the pick-up subscriber (municipality 657) with its storage under
    ``tmp_path``; returns its account's ``IN/`` folder."""
    from cpr_abonnement.subscriptions.service import SubscriptionService
    from support.sshkeys import ed25519_line

    root = tmp_path / "pickup"
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(root))
    svc = SubscriptionService(deployment.engine, caller="test",
                              clock=lambda: dt.datetime(2026, 1, 1))
    svc.add_subscriber(PICKUP_UUID, "Herning Sag", delivery_mode="pickup",
                       pickup_account=PICKUP_ACCOUNT, ssh_keys=[ed25519_line()])
    svc.add_municipality(PICKUP_UUID, "657")
    return root / PICKUP_ACCOUNT / "IN"


@dataclass
class Deployment:
    root: Path
    inbound: Path
    staging: Path
    quarantine: Path
    sftp_root: Path
    engine: object
    inbox: Inbox
    sftp: EmbeddedSftpServer

    def extract(self, day: dt.date, *, persons: int = 400, seed: int = 3,
                previous: dt.date | None = None) -> Path:
        path = self.inbound / f"D{day:%y%m%d}.L431101"
        with open(path, "wb") as fh:
            generate(fh, production_date=day, persons=persons, seed=seed,
                     previous_date=previous)
        return path

    def delivered(self, uuid: str) -> dict[str, bytes]:
        folder = self.sftp_root / uuid
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.is_dir() \
            else {}

    def run(self, day: dt.date, **conf):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(DAG_ID).test(logical_date=pendulum.datetime(day.year, day.month,
                                                                       day.day, tz="UTC"),
                                        run_conf=conf or None)


def task_states(run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as s:
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index}]"):
                str(ti.state) for ti in run.get_task_instances(session=s)}




def run_note(run) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.get(DagRun, run.id).note or ""
