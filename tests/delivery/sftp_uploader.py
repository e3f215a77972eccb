"""One delivery in its own process, for the concurrency and kill tests.

Usage: ``python sftp_uploader.py CONN_ID REMOTE_DIR FILE...`` with ``AIRFLOW_CONN_<ID>``
set. The slow imports and nothing else happen first; the process then prints ``ready``
and waits for a line on stdin before it connects and uploads, so a test can start the
upload at a moment of its choosing (while another uploader is half-way) and kill it
with SIGKILL at another. The result is one JSON line on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from airflow.providers.sftp.hooks.sftp import SFTPHook  # noqa: F401  (warm the import)

    from cpr_abonnement.delivery import sftp_push
    from cpr_abonnement.errors import DeliveryError

    conn_id, remote_dir, *files = argv
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        outcomes = sftp_push.deliver(conn_id, remote_dir, [Path(f) for f in files],
                                    subscriber="S")
    except DeliveryError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        return 1
    print(json.dumps({"already_there": [o.already_there for o in outcomes]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
