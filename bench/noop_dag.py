"""The floor for ``bench/deliver_many.py --scheduler --noop``: Airflow's own cost of one
mapped task, with what ``deliver`` needs from Airflow and nothing of ours.

One upstream task returns ``BENCH_NOOP_ITEMS`` items as large as the filter step's
delivery items and carried the same way (about 600 bytes of JSON text each); one task
mapped over them, named by a map index template, at most 8 at a time per run (as
``deliver``), does nothing and returns nothing. Scheduled daily without catch-up, so
unpausing it creates one run, as the benchmark starts the daily DAG. The benchmark
copies this file alone into a DAGs folder of its own, with an empty plugins folder.
"""

from __future__ import annotations

import json
import os

import pendulum
from airflow.sdk import dag, task

ITEMS = int(os.environ.get("BENCH_NOOP_ITEMS", "100"))


@dag(dag_id="bench_noop", schedule="@daily", catchup=False,
     start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), max_active_runs=1)
def bench_noop():
    @task
    def items() -> list[str]:
        return [json.dumps({"name": f"no-op {i + 1}", "pad": "x" * 560})
                for i in range(ITEMS)]

    @task(map_index_template="{{ item_name }}", max_active_tis_per_dagrun=8)
    def noop(item: str) -> None:
        from airflow.sdk import get_current_context

        get_current_context()["item_name"] = json.loads(item)["name"]

    noop.expand(item=items())


bench_noop()
