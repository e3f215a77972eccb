"""The daily DAG's ``update_replica`` task: the day's validated extract applied to the
CPR replica (:mod:`cpr_abonnement.replica.updating`), beside the deliveries and
independent of them: a failed replica update stops no delivery, a failed delivery no
replica update; each has its own alert.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement.extract import index_store
from cpr_abonnement.replica.state import CHANGE
from cpr_abonnement.replica.updating import Applied, apply_extract
from cpr_abonnement.staging import local_copy, staged
from cpr_abonnement.tasks.payloads import ReceivedExtract

log = logging.getLogger(__name__)


def update_replica(received: ReceivedExtract, engine: Engine, *, allow_gap: bool) -> Applied:
    """Apply the staged extract, read by the index ``parse_and_validate`` saved (the
    file proved to be the one validated, by its SHA-256)."""
    with tempfile.TemporaryDirectory(prefix="cprsub-replica-") as scratch:
        extract = local_copy(staged(received.extract), Path(scratch))
        local_copy(staged(received.extract + index_store.SUFFIX), Path(scratch))
        index = index_store.load(extract, expect_sha256=received.sha256)
        return apply_extract(engine, extract, index, kind=CHANGE,
                             file_name=received.file_name, allow_gap=allow_gap)
