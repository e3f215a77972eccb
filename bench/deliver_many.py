"""Benchmark: one delivery day for 1,000 push and 1,000 pick-up subscribers through the
real DAG.

    .venv/bin/python bench/deliver_many.py [--mode push|pickup|both] [--subscribers 1000]
                                           [--persons 20000]

Sets up a fresh installation under bench/out/deliver-many/ (Airflow on SQLite, the
filter database, the embedded SFTP server for push, the pick-up root), registers
``--subscribers`` subscribers per mode (``both``: that many pushed to over SFTP *and*
that many picking up) with one municipality filter each (round robin over the real
municipality codes), and runs ``cpr_abonnement_daily`` for one delivery day with
``dag.test()``: every mapped ``deliver`` task runs, one after the other, in this
process. Then it checks that every subscriber has its file, its ``.metadata`` and a
ledger row, and prints the time per task and per delivery of each mode side by side
(from Airflow's task instances, told apart by their map index name) and the peak RSS.
Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

OUT = Path(__file__).parent / "out" / "deliver-many"
LOGIN, PASSWORD = "bench", "bench-only-password"
DAY = dt.date(2026, 11, 26)


MODES = {"push": ["push"], "pickup": ["pickup"], "both": ["push", "pickup"]}
#: Subscriber names start with these, so the ``deliver`` map index tells the mode.
NAME_PREFIX = {"push": "Bench push", "pickup": "Bench pick-up"}


def _setup(modes: list[str], subscribers: int, persons: int) -> None:
    from cpr_abonnement.extract.generator import generate
    from cpr_abonnement.reference import municipalities
    from cpr_abonnement.subscriptions.db import make_engine, upgrade
    from cpr_abonnement.subscriptions.service import SubscriptionService

    with open(OUT / "inbound" / f"D{DAY:%y%m%d}.L431101", "wb") as fh:
        generate(fh, production_date=DAY, persons=persons, seed=11)
    engine = make_engine(os.environ["CPRSUB_DB_URL"])
    upgrade(engine)
    svc = SubscriptionService(engine, caller="bench", clock=lambda: dt.datetime(2026, 1, 1))
    codes = sorted(municipalities())
    for m, mode in enumerate(modes):
        for i in range(subscribers):
            uid = str(uuid.UUID(int=m * subscribers + i + 1))
            name = f"{NAME_PREFIX[mode]} {i + 1}"
            if mode == "push":
                svc.add_subscriber(uid, name, sftp_conn_id="sftp_bench", remote_dir=f"/{uid}")
            else:
                svc.add_subscriber(uid, name, delivery_mode="pickup")
            svc.add_municipality(uid, codes[i % len(codes)])


def _mode_of(ti) -> str:
    """``deliver[push]`` or ``deliver[pickup]`` for a mapped delivery, else the task id."""
    if ti.task_id != "deliver":
        return ti.task_id
    name = ti.rendered_map_index or ""
    mode = next((m for m, prefix in NAME_PREFIX.items() if name.startswith(prefix)), "?")
    return f"deliver[{mode}]"


def _task_times() -> list[tuple[str, int, float, float]]:
    """(task, instances, summed duration, wall from first start to last end) per task;
    ``deliver`` split by delivery mode."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    rows: dict[str, list] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == "cpr_abonnement_daily"):
            r = rows.setdefault(_mode_of(ti), [0, 0.0, ti.start_date, ti.end_date])
            r[0] += 1
            r[1] += ti.duration or 0.0
            r[2] = min(r[2], ti.start_date) if ti.start_date else r[2]
            r[3] = max(r[3], ti.end_date) if ti.end_date else r[3]
    return [(task, n, total, (last - first).total_seconds())
            for task, (n, total, first, last) in rows.items()]


def _complete_folders(folders: list[Path]) -> int:
    """Folders holding exactly one delivered file and its ``.metadata``."""
    return sum(1 for p in folders
               if len(list(p.glob("*.metadata"))) == 1 and len(list(p.iterdir())) == 2)


def _delivered_folders(mode: str) -> list[Path]:
    """Where each subscriber of ``mode`` got its files: its SFTP folder, or ``IN/`` of
    its pick-up account (named after its UUID)."""
    if mode == "push":
        return [p for p in (OUT / "sftp").iterdir() if p.is_dir()]
    return [p / "IN" for p in (OUT / "pickup").iterdir() if (p / "IN").is_dir()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=sorted(MODES), default="both",
                    help="delivery mode(s) of the subscribers (both: N of each, one run)")
    ap.add_argument("--subscribers", type=int, default=1000, help="N, per mode")
    ap.add_argument("--persons", type=int, default=20_000)
    args = ap.parse_args()
    modes = MODES[args.mode]
    total = args.subscribers * len(modes)

    from cpr_abonnement.dev.demo import environment, run_dag

    shutil.rmtree(OUT, ignore_errors=True)
    for sub in ("inbound", "staging", "quarantine", "sftp", "pickup"):
        (OUT / sub).mkdir(parents=True)
    os.environ.update(environment(OUT.resolve()))
    os.environ["AIRFLOW__CORE__MAX_MAP_LENGTH"] = str(max(2048, total))
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    _setup(modes, args.subscribers, args.persons)

    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
    from cpr_abonnement.subscriptions import ledger
    from cpr_abonnement.subscriptions.db import make_engine

    with EmbeddedSftpServer(OUT / "sftp", {LOGIN: PASSWORD}) as sftp:
        os.environ["AIRFLOW_CONN_SFTP_BENCH"] = sftp.airflow_connection(LOGIN)
        t, cpu = time.perf_counter(), time.process_time()
        run = run_dag(DAY)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu

    rows = ledger.entries(make_engine(os.environ["CPRSUB_DB_URL"]), "431101", DAY)
    delivered = [e for e in rows if e.outcome in ledger.DELIVERED_OUTCOMES]
    complete = {mode: _complete_folders(_delivered_folders(mode)) for mode in modes}
    print(f"run {run.state} in {wall:.1f} s: {args.subscribers:,} subscribers x "
          f"{'/'.join(modes)}, {args.persons:,} persons; ledger {len(delivered):,} "
          f"delivered; folders with file + .metadata: "
          + ", ".join(f"{mode} {n:,}" for mode, n in complete.items()))
    print(f"process CPU {cpu:.1f} s over the run ({cpu / total:.3f} s per delivery, "
          f"wall {wall / total:.3f} s per delivery; includes the embedded push server, "
          f"which runs in this process)")
    print(f"{'task':<24}{'instances':>10}{'sum s':>10}{'wall s':>10}{'mean s':>10}")
    for task, n, spent, span in sorted(_task_times(), key=lambda r: r[0]):
        print(f"{task:<24}{n:>10,}{spent:>10.1f}{span:>10.1f}{spent / n:>10.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    ok = (run.state == "success" and len(delivered) == total
          and all(n == args.subscribers for n in complete.values()))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
