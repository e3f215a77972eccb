"""``tasks.deliver.deliver_one`` in its own process, for the ledger test that kills it.

Usage: ``python ledger_deliverer.py DB_URL ITEM_JSON`` with ``AIRFLOW_CONN_<ID>`` set.
Imports first, prints ``ready``, then waits for a line on stdin before delivering, so
the test controls when the attempt starts and can SIGKILL it mid-upload.
"""

from __future__ import annotations

import datetime as dt
import json
import sys


def main(argv: list[str]) -> int:
    from airflow.providers.sftp.hooks.sftp import SFTPHook  # noqa: F401  (warm the import)
    from airflow.sdk import ObjectStoragePath  # noqa: F401

    from cpr_abonnement.store.db import make_engine
    from cpr_abonnement.tasks.deliver import deliver_one
    from cpr_abonnement.tasks.payloads import DeliveryItem

    db_url, item = argv[0], DeliveryItem.from_xcom(json.loads(argv[1]))
    engine = make_engine(db_url)
    print("ready", flush=True)
    sys.stdin.readline()
    result = deliver_one(item, engine, now=dt.datetime(2026, 11, 26, 21, 5))
    print(json.dumps(result.to_xcom()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
