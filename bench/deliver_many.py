"""Benchmark: one delivery day for 1,000 push and 1,000 pick-up subscribers through the
real DAG.

    .venv/bin/python bench/deliver_many.py [--mode push|pickup|both] [--subscribers 1000]
                                           [--persons 20000]
    .venv/bin/python bench/deliver_many.py --scheduler [--subscribers 300] [--mode push]
                                           [--executor preloaded|local] [--noop]

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

``--scheduler`` runs the day as a deployment does instead: a fresh Airflow home under
bench/out/deliver-many-scheduler/, the real scheduler with the LocalExecutor, the DAG
processor and the API server as processes of their own on 127.0.0.1 (as ``airflow
standalone`` starts them; SQLite metadata database), one triggered run, and reports
trigger-to-success wall time, deliveries per second, the CPU-seconds per delivery of
each process tree (the executor's workers and their task processes apart from the
scheduler loop) and the peak memory. Defaults there: 300 push subscribers, and our
``PreloadedLocalExecutor`` (the task side imported before the workers are forked;
``--executor local``: Airflow's LocalExecutor as it comes).

``--scheduler --noop`` measures the floor the same way: instead of the daily DAG, a
no-op task mapped over as many items (``bench/noop_dag.py``: items as large as the
delivery items, a map index template, 8 at a time; no plugins), so the CPU per mapped
task that is Airflow's own stands beside the delivery's.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

OUT = Path(__file__).parent / "out" / "deliver-many"
LOGIN, PASSWORD = "bench", "bench-only-password"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAY = dt.date(2026, 11, 26)


MODES = {"push": ["push"], "pickup": ["pickup"], "both": ["push", "pickup"]}
#: Subscriber names start with these, so the ``deliver`` map index tells the mode.
NAME_PREFIX = {"push": "Bench push", "pickup": "Bench pick-up"}


def _setup(out: Path, modes: list[str], subscribers: int, persons: int,
           day: dt.date = DAY) -> None:
    from cpr_abonnement.extract.generator import generate
    from cpr_abonnement.reference import municipalities
    from cpr_abonnement.store.db import make_engine, upgrade
    from cpr_abonnement.subscriptions.service import SubscriptionService

    with open(out / "inbound" / f"D{day:%y%m%d}.L431101", "wb") as fh:
        generate(fh, production_date=day, persons=persons, seed=11)
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


def _delivered_folders(out: Path, mode: str) -> list[Path]:
    """Where each subscriber of ``mode`` got its files: its SFTP folder, or ``IN/`` of
    its pick-up account (named after its UUID)."""
    if mode == "push":
        return [p for p in (out / "sftp").iterdir() if p.is_dir()]
    return [p / "IN" for p in (out / "pickup").iterdir() if (p / "IN").is_dir()]


def _fresh(out: Path) -> None:
    """An empty installation folder: inbound, staging, quarantine, SFTP and pick-up roots."""
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("inbound", "staging", "quarantine", "sftp", "pickup"):
        (out / sub).mkdir(parents=True)


def _check_deliveries(out: Path, modes: list[str], day: dt.date = DAY
                      ) -> tuple[int, dict[str, int]]:
    """Ledger rows delivered for the day, and per mode the subscriber folders holding
    exactly the delivered file and its ``.metadata``."""
    from cpr_abonnement.records import ledger
    from cpr_abonnement.store.db import make_engine

    rows = ledger.entries(make_engine(os.environ["CPRSUB_DB_URL"]), "431101", day)
    delivered = sum(1 for e in rows if e.outcome in ledger.DELIVERED_OUTCOMES)
    return delivered, {mode: _complete_folders(_delivered_folders(out, mode))
                       for mode in modes}


# -- --scheduler: the real scheduler, DAG processor and API server --------------------------
SCHEDULED_OUT = OUT.with_name("deliver-many-scheduler")
#: The processes ``airflow standalone`` starts that a delivery run uses (no triggerer:
#: nothing in the DAG defers).
COMPONENTS = ("scheduler", "dag-processor", "api-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: ``--executor``: Airflow's LocalExecutor, or ours that imports the task side before
#: forking its workers (:mod:`cpr_abonnement.airflow_side.executor`).
EXECUTORS = {"local": "LocalExecutor",
             "preloaded": "cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor"}


def _scheduled_environment(out: Path, total: int, port: int, executor: str
                           ) -> dict[str, str]:
    """The installation's environment (the demo's, as ``airflow standalone`` gets it),
    with ``executor`` (a key of :data:`EXECUTORS`) and the API server on ``port`` of
    127.0.0.1."""
    from cpr_abonnement.dev.demo import environment

    return {
        **os.environ, **environment(out.resolve()),
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(2048, total)),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


def _start(env: dict[str, str], port: int, logs: Path) -> dict[str, subprocess.Popen]:
    """Start the components, each logging to a file of its own under ``logs``."""
    args = {"api-server": ["--host", "127.0.0.1", "--port", str(port)]}
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name in COMPONENTS:
        with open(logs / f"{name}.log", "wb") as log:
            procs[name] = subprocess.Popen([AIRFLOW, name, *args.get(name, [])], env=env,
                                           stdout=log, stderr=subprocess.STDOUT)
    return procs


def _metadata_query(env: dict[str, str], sql: str, *params) -> list[tuple]:
    import sqlite3

    path = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        return db.execute(sql, params).fetchall()


def _wait_until(what: str, ready, procs: dict[str, subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}"
                             + (f": {', '.join(dead)} exited (see its log)" if dead else ""))
        time.sleep(0.5)


def _execution_api_answers(port: int) -> bool:
    """The API server answers the execution API's health check (an open port is not
    enough: a loaded machine timed the first task's requests out before it answered)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health",
                                    timeout=30) as reply:
            return reply.status == 200
    except OSError:
        return False


def _cpu(pid: int) -> tuple[float, float]:
    """CPU-seconds of process ``pid`` itself, and of its descendants (the live ones and
    those reaped, which the kernel adds to their parent's children times)."""
    import psutil

    root = psutil.Process(pid)
    t = root.cpu_times()
    own, below = t.user + t.system, t.children_user + t.children_system
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            c = child.cpu_times()
            below += c.user + c.system + c.children_user + c.children_system
    return own, below


def _cpu_by_role(procs: dict[str, subprocess.Popen]) -> dict[str, float]:
    """CPU-seconds so far: the scheduler loop apart from its executor's workers and the
    task processes they fork; the other components with their whole process trees."""
    out = {}
    for name, proc in procs.items():
        own, below = _cpu(proc.pid)
        if name == "scheduler":
            out["scheduler"], out["executor + tasks"] = own, below
        else:
            out[name] = own + below
    return out


def _memory(procs: dict[str, subprocess.Popen]) -> tuple[float, float]:
    """Now: all components' summed proportional set size (shared pages split between
    the forks sharing them) and the largest resident set of one process, in MB."""
    import psutil

    pss = rss = 0.0
    for proc in procs.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    m = p.memory_full_info()
                    pss, rss = pss + m.pss, max(rss, m.rss)
    return pss / 2**20, rss / 2**20


@dataclasses.dataclass
class Watch:
    """What :func:`_run_until_done` saw: the run's end state, the CPU by role (and the
    clock) when the deliveries began (``filter_for_subscribers`` succeeded) and when the
    last ended, and the peak memory (:func:`_memory`)."""

    state: str = "absent"
    marks: dict[str, tuple[float, dict[str, float]]] = dataclasses.field(default_factory=dict)
    peak_pss: float = 0.0
    peak_rss: float = 0.0


@dataclasses.dataclass(frozen=True)
class Workload:
    """The DAG a ``--scheduler`` run unpauses: the task whose success begins the mapped
    phase, the mapped task, and the DAGs and plugins folders (None: the repository's)."""

    dag_id: str
    upstream: str
    mapped: str
    dags: Path | None = None
    plugins: Path | None = None

    def phase_sql(self) -> str:
        """Counts the mapped phase's marks from the task instances."""
        return (f"select sum(task_id = '{self.upstream}' and state = 'success'), "
                f"sum(task_id = '{self.mapped}' and state in ('success', 'failed', "
                f"'upstream_failed', 'skipped')) from task_instance")


DELIVERIES = Workload("cpr_abonnement_daily", "filter_for_subscribers", "deliver")
NOOP_DAG = Path(__file__).with_name("noop_dag.py")


def _noop_workload(out: Path) -> Workload:
    """The floor: ``bench/noop_dag.py`` alone in a DAGs folder, and no plugins."""
    dags, plugins = out / "noop-dags", out / "noop-plugins"
    dags.mkdir()
    plugins.mkdir()
    shutil.copy(NOOP_DAG, dags / NOOP_DAG.name)
    return Workload("bench_noop", "items", "noop", dags, plugins)


def _run_until_done(env, procs, total: int, timeout: float,
                    work: Workload = DELIVERIES) -> Watch:
    """Poll the DAG's one run to its end (the scheduler creates it at the unpause)."""
    deadline, seen = time.monotonic() + timeout, Watch()
    while True:
        state = _metadata_query(env, "select state from dag_run")
        filtered, delivered = _metadata_query(env, work.phase_sql())[0]
        for mark, reached in (("deliveries begin", filtered), ("deliveries end",
                                                                (delivered or 0) >= total)):
            if reached and mark not in seen.marks:
                seen.marks[mark] = (time.monotonic(), _cpu_by_role(procs))
        pss, rss = _memory(procs)
        seen.peak_pss, seen.peak_rss = max(seen.peak_pss, pss), max(seen.peak_rss, rss)
        seen.state = state[0][0] if state else "absent"
        if seen.state in ("success", "failed"):
            return seen
        if time.monotonic() > deadline:
            seen.state = f"still {seen.state} after {timeout:.0f} s"
            return seen
        time.sleep(0.5)


def _cpu_table(spans: dict[str, dict[str, float]], total: int, unit: str = "delivery"
               ) -> None:
    """CPU-seconds per delivery by role, one column per span of the run."""
    print(f"{'CPU-s per ' + unit:<22}" + "".join(f"{name:>22}" for name in spans))
    roles = next(iter(spans.values()))
    for role in [*roles, "all components"]:
        cells = [sum(v.values()) if role == "all components" else v[role]
                 for v in spans.values()]
        print(f"{role:<22}" + "".join(f"{c / total:>22.3f}" for c in cells))


#: An execution-API request in the API server's access log: method and path, the task
#: instance's id (a UUID) and the run id put aside.
ACCESS_LINE = re.compile(r"method=(\w+) path=/execution/(\S+)")
_IDS = re.compile(r"/[0-9a-f]{8}-[0-9a-f-]{27}|/(scheduled|manual)__[^/]+")


def _api_calls(log: Path, mapped: str, total: int) -> None:
    """Print the execution-API requests per mapped task, by kind, from the API server's
    access log: each is a round trip the task's supervisor makes and the API server
    serves. All requests are divided by the mapped tasks: the upstream tasks' own few
    are in, so the figure is a little high (kinds rarer than one per ten: "other")."""
    calls = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        if m := ACCESS_LINE.search(line):
            calls[f"{m[1]} {_IDS.sub('/…', m[2])}"] += 1
    frequent = {k: n for k, n in calls.items() if n >= total / 10}
    frequent["other"] = calls.total() - sum(frequent.values())
    print(f"execution-API calls per {mapped} task: {calls.total() / total:.2f} ("
          + ", ".join(f"{k} {n / total:.2f}" for k, n in sorted(frequent.items()))
          + ")")


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _due_day() -> dt.date:
    """The day whose run the scheduler creates once the DAG is unpaused: the latest due
    delivery day (the DAG does not catch up). That run is the benchmark's trigger: a
    manual run's day comes from the timetable too, and the scheduled run for the same
    day would be created beside it."""
    import pendulum

    from cpr_abonnement.dev.demo import REPO
    from cpr_abonnement.settings import Settings

    sys.path.insert(0, str(REPO / "plugins"))
    from cpr_timetable import CprDeliveryTimetable

    settings = Settings.from_env()
    return CprDeliveryTimetable(at=settings.delivery_time, extra_closures=settings.
                                extra_closures).latest_due(pendulum.now("UTC"))


def _scheduled(modes: list[str], subscribers: int, persons: int, *, timeout: float,
               out: Path = SCHEDULED_OUT, executor: str = "preloaded",
               noop: bool = False) -> int:
    """``--scheduler``: one triggered run of the day under the real components (with
    ``noop``: of the no-op floor instead, :func:`_noop_workload`)."""
    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer

    total, port = subscribers * len(modes), _free_port()
    _fresh(out)
    work = _noop_workload(out) if noop else DELIVERIES
    env = _scheduled_environment(out, total, port, executor)
    if noop:
        env.update(AIRFLOW__CORE__DAGS_FOLDER=str(work.dags),
                   AIRFLOW__CORE__PLUGINS_FOLDER=str(work.plugins),
                   BENCH_NOOP_ITEMS=str(total))
    os.environ.update(env)
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env)
    day = _due_day()
    if not noop:
        _setup(out, modes, subscribers, persons, day)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    with EmbeddedSftpServer(out / "sftp", {LOGIN: PASSWORD}) as sftp:
        env["AIRFLOW_CONN_SFTP_BENCH"] = sftp.airflow_connection(LOGIN)
        procs = _start(env, port, out / "logs")
        try:
            _wait_until("the DAG to be parsed", lambda: _metadata_query(
                env, "select 1 from serialized_dag where dag_id = ?", work.dag_id),
                procs, 300)
            _wait_until("the API server", lambda: _execution_api_answers(port), procs, 300)
            # The trigger: unpaused, the scheduler creates the latest due day's run.
            before, self_before = _cpu_by_role(procs), time.process_time()
            subprocess.run([AIRFLOW, "dags", "unpause", work.dag_id], check=True,
                           capture_output=True, env=env)
            seen = _run_until_done(env, procs, total, timeout, work)
            after, self_cpu = _cpu_by_role(procs), time.process_time() - self_before
        finally:
            _stop(procs)
    (start, end), = _metadata_query(
        env, "select julianday(start_date), julianday(end_date) from dag_run")
    wall = max(((end or start) - start) * 86400, 1e-9)  # no end: timed out
    print(f"executor {EXECUTORS[executor]}")
    if noop:
        print(f"run {seen.state}, no-op floor ({NOOP_DAG.name}, no plugins), scheduler "
              f"start to success {wall:.1f} s: {total:,} mapped tasks, "
              f"{total / wall:.2f} per s")
        delivered, complete = total, {}
    else:
        delivered, complete = _check_deliveries(out, modes, day)
        print(f"run {seen.state} for {day}, scheduler start to success {wall:.1f} s: "
              f"{total:,} deliveries ({'/'.join(modes)}, {persons:,} persons), "
              f"{total / wall:.2f} deliveries/s; ledger {delivered:,} delivered; folders "
              f"with file + .metadata: "
              + ", ".join(f"{mode} {n:,}" for mode, n in complete.items()))
    _api_calls(out / "logs" / "api-server.log", work.mapped, total)
    spans = {"whole run": {r: after[r] - before[r] for r in after}}
    if len(seen.marks) == 2:
        (t0, begin), (t1, end_) = seen.marks["deliveries begin"], seen.marks["deliveries end"]
        spans["mapped phase"] = {r: end_[r] - begin[r] for r in end_}
        print(f"mapped phase ({work.upstream} done to the last {work.mapped}, polled every "
              f"0.5 s): {t1 - t0:.1f} s, {total / (t1 - t0):.2f} {work.mapped} tasks/s")
    _cpu_table(spans, total, "no-op task" if noop else "delivery")
    print(f"this process (embedded SFTP server, polling): {self_cpu:.1f} CPU-s")
    print(f"peak memory: components' summed PSS {seen.peak_pss:,.0f} MB, largest process "
          f"RSS {seen.peak_rss:,.0f} MB (logs: {out / 'logs'})")
    state = seen.state
    ok = state == "success" and delivered == total and all(
        n == subscribers for n in complete.values())
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=sorted(MODES),
                    help="delivery mode(s) of the subscribers (both: N of each, one run); "
                         "default both, with --scheduler push")
    ap.add_argument("--subscribers", type=int,
                    help="N, per mode; default 1000, with --scheduler 300")
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--scheduler", action="store_true",
                    help="the real scheduler, DAG processor and API server, one trigger")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="with --scheduler: give up on the run after this many seconds")
    ap.add_argument("--executor", choices=sorted(EXECUTORS), default="preloaded",
                    help="with --scheduler: Airflow's LocalExecutor, or ours that imports "
                         "the task side before forking its workers (default)")
    ap.add_argument("--noop", action="store_true",
                    help="with --scheduler: the floor, a no-op task mapped over as many "
                         "items instead of the deliveries (bench/noop_dag.py)")
    ap.add_argument("--out", type=Path, default=SCHEDULED_OUT,
                    help="with --scheduler: the installation's folder (emptied first)")
    args = ap.parse_args()
    modes = MODES[args.mode or ("push" if args.scheduler else "both")]
    args.subscribers = args.subscribers or (300 if args.scheduler else 1000)
    if args.scheduler:
        return _scheduled(modes, args.subscribers, args.persons, timeout=args.timeout,
                          out=args.out, executor=args.executor, noop=args.noop)
    total = args.subscribers * len(modes)

    from cpr_abonnement.dev.demo import environment, run_dag

    _fresh(OUT)
    os.environ.update(environment(OUT.resolve()))
    os.environ["AIRFLOW__CORE__MAX_MAP_LENGTH"] = str(max(2048, total))
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)
    _setup(OUT, modes, args.subscribers, args.persons)

    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer

    with EmbeddedSftpServer(OUT / "sftp", {LOGIN: PASSWORD}) as sftp:
        os.environ["AIRFLOW_CONN_SFTP_BENCH"] = sftp.airflow_connection(LOGIN)
        t, cpu = time.perf_counter(), time.process_time()
        run = run_dag(DAY)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu

    delivered, complete = _check_deliveries(OUT, modes)
    print(f"run {run.state} in {wall:.1f} s: {args.subscribers:,} subscribers x "
          f"{'/'.join(modes)}, {args.persons:,} persons; ledger {delivered:,} "
          f"delivered; folders with file + .metadata: "
          + ", ".join(f"{mode} {n:,}" for mode, n in complete.items()))
    print(f"process CPU {cpu:.1f} s over the run ({cpu / total:.3f} s per delivery, "
          f"wall {wall / total:.3f} s per delivery; includes the embedded push server, "
          f"which runs in this process)")
    print(f"{'task':<24}{'instances':>10}{'sum s':>10}{'wall s':>10}{'mean s':>10}")
    for task, n, spent, span in sorted(_task_times(), key=lambda r: r[0]):
        print(f"{task:<24}{n:>10,}{spent:>10.1f}{span:>10.1f}{spent / n:>10.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    ok = (run.state == "success" and delivered == total
          and all(n == args.subscribers for n in complete.values()))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
