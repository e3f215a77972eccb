"""Per-subscriber delta files and their ``.metadata`` companions (product.md §4).

Every active subscriber gets ``<out>/<UserSystemUUID>/D<YYMMDD>.L<task>`` also when
nothing matched (000 and 999 only: a missing file would break the subscriber's
production-date chain check), plus ``<name>.metadata`` in Serviceplatformen's XML
format (:func:`metadata`), for push and pick-up alike. Both are deterministic for a
given extract, filter snapshot and subscriber: the metadata holds no clock reading other
than the recorded first-processing time. Files are written under a temporary name and renamed,
so nobody ever reads half a file. (No fsync: this is staging; a crashed task is rerun
and rewrites the same bytes.)
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import uuid as uuidlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.naming import extract_name
from cpr_abonnement.extract.writer import DeltaStats, write_many
from cpr_abonnement.filters.selection import Selection
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions.recipient import Recipient

METADATA_SUFFIX = ".metadata"
FORMAT = "CPR change extract U12170-P (ISO-8859-1), thinned to the subscriber's filters"
#: Serviceplatformen's SFTP types namespace; readers index the root as ``ns2:Trigger``.
SFTP_TYPES_NS = "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"
#: Our own namespace for the provenance inside ``FileContentDescriptor``.
PROVENANCE_NS = "urn:cpr-abonnement-airflow:metadata:1"
#: Namespace of the UUID5 ``FileTransferUUID``s (fixed forever: changing it would give
#: re-delivered files new transfer ids).
FILE_TRANSFER_NAMESPACE = uuidlib.UUID("3c0f6a52-7d1b-5e8a-9a43-0c2d5b1e6f70")


@dataclass(frozen=True, slots=True)
class DeltaFile:
    """One written delta: where it is and what the metadata file says about it."""

    subscriber: str
    name: str
    path: str
    persons: int
    records: int
    nbytes: int
    sha256: str

    @property
    def metadata_path(self) -> str:
        return self.path + METADATA_SUFFIX


def file_name(index: ExtractIndex) -> str:
    """CPR's name for the extract: ``D<YYMMDD>.L<task number>`` from record 000."""
    start = index.start_record()
    return extract_name(start.dates()[0], start.task_number)


def _utc(t: dt.datetime) -> str:
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def file_transfer_uuid(extract_sha256: str, subscriber: str, name: str) -> str:
    """``FileTransferUUID``: unique per delivered file (extract, subscriber, file name)
    and the same on every re-delivery of it."""
    return str(uuidlib.uuid5(FILE_TRANSFER_NAMESPACE, f"{extract_sha256}/{subscriber}/{name}"))


def _elements(prefix: str, fields: list[tuple[str, object]], indent: str) -> str:
    return "".join(f"{indent}<{prefix}{tag}>{escape(str(value))}</{prefix}{tag}>\n"
                   for tag, value in fields)


def metadata(index: ExtractIndex, sub: Recipient, delta: DeltaFile, *,
             first_processed_at: dt.datetime, filters_as_of: dt.datetime,
             sender: str) -> bytes:
    """The ``.metadata`` of ``delta``: Serviceplatformen's ``ns2:Trigger`` document
    (serviceplatformen-compat.md §2), so clients written for the platform (spsftp reads
    ``["ns2:Trigger"]["FileDescriptor"]["Recipients"]`` and checks ``Sender``) accept it.

    ``Recipients`` is the subscriber's pick-up account (for push its UserSystemUUID);
    our provenance goes into ``FileContentDescriptor`` as elements of
    :data:`PROVENANCE_NS`. Written by hand, not by an XML library, so the bytes are
    fixed: same extract and subscriber, same bytes.
    """
    start = index.start_record()
    extract_sha256 = index.sha256 or ""
    descriptor = [
        ("FileName", delta.name),
        ("SizeInBytes", delta.nbytes),
        ("Sender", sender),
        ("SendersFileId", f"cprsub:{start.task_number}:{start.production_date}:{sub.uuid}"),
        ("Recipients", sub.metadata_recipient),
    ]
    provenance = [
        ("Format", FORMAT),
        ("Subscriber", sub.uuid),
        ("TaskNumber", start.task_number),
        ("ProductionDate", start.production_date),
        ("PreviousProductionDate", start.previous_date),
        ("Persons", delta.persons),
        ("Records", delta.records),
        ("SHA256", delta.sha256),
        ("ExtractSHA256", extract_sha256),
        ("FiltersAsOf", _utc(filters_as_of)),
        ("FirstProcessedAt", _utc(first_processed_at)),
    ]
    transfer = file_transfer_uuid(extract_sha256, sub.uuid, delta.name)
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ns2:Trigger xmlns:ns2="{SFTP_TYPES_NS}">\n'
        f"  <FileTransferUUID>{transfer}</FileTransferUUID>\n"
        "  <FileDescriptor>\n"
        + _elements("", descriptor, "    ")
        + "  </FileDescriptor>\n"
        f'  <FileContentDescriptor xmlns:cpr="{PROVENANCE_NS}">\n'
        + _elements("cpr:", provenance, "    ")
        + "  </FileContentDescriptor>\n"
        "</ns2:Trigger>\n"
    )
    return doc.encode("utf-8")


def _atomic_write(path: Path, data_writer) -> object:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            result = data_writer(fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def _files_at_once() -> int:
    """How many deltas one pass over the extract writes: half the descriptors this
    process may open (a common default is 1,024: two passes for 1,000 subscribers)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, soft // 2) if soft != resource.RLIM_INFINITY else 4096


def _write_batch(index: ExtractIndex, selections: list[np.ndarray], paths: list[Path]
                 ) -> list[DeltaStats]:
    """Write the deltas ``paths`` in one pass over the extract, each under a temporary
    name renamed when all are complete."""
    tmps = [path.with_name(f".{path.name}.tmp-{os.getpid()}") for path in paths]
    try:
        with ExitStack() as files:
            outs = [files.enter_context(open(tmp, "wb")) for tmp in tmps]
            stats = write_many(index, selections, outs)
        for tmp, path in zip(tmps, paths, strict=True):
            tmp.replace(path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return stats


def write_deltas(index: ExtractIndex, selection: Selection, subscribers: list[Recipient],
                 out_dir: Path, *, first_processed_at: dt.datetime,
                 filters_as_of: dt.datetime, sender: str | None = None) -> list[DeltaFile]:
    """Write every subscriber's delta and metadata; returns them in subscriber order.
    ``sender``: the metadata's ``Sender`` (default ``CPRSUB_SENDER_NAME``)."""
    name = file_name(index)
    sender = sender or Settings.from_env().platform_sender
    bounds = selection.bounds()
    paths = [out_dir / sub.uuid / name for sub in subscribers]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    stats: list[DeltaStats] = []
    step = _files_at_once()
    for at in range(0, len(subscribers), step):
        chosen = [selection.person[bounds[s] : bounds[s + 1]]
                  for s in range(at, min(at + step, len(subscribers)))]
        stats += _write_batch(index, chosen, paths[at : at + step])
    deltas = []
    for sub, path, st in zip(subscribers, paths, stats, strict=True):
        delta = DeltaFile(sub.uuid, name, str(path), st.persons, st.records, st.nbytes,
                          st.sha256)
        meta = metadata(index, sub, delta, first_processed_at=first_processed_at,
                        filters_as_of=filters_as_of, sender=sender)
        _atomic_write(Path(delta.metadata_path), lambda fh, meta=meta: fh.write(meta))
        deltas.append(delta)
    return deltas
