"""An inbound directory on an SFTP server (``sftp://<Airflow conn id>/<dir>``).

Host, credentials and the pinned host key live in the Airflow connection. One connect
attempt per call: the sensor's next poke, or the task's retry, is the retry.
"""

from __future__ import annotations

from pathlib import Path

from cpr_abonnement.inbound.base import InboundLocation, Observation

#: The directory inside the inbound directory that quarantined files are moved to.
QUARANTINE_DIR = "quarantine"
#: Where a processed extract goes when the account may not delete it.
PROCESSED_DIR = "processed"


class SftpFolder(InboundLocation):
    def __init__(self, conn_id: str, directory: str) -> None:
        self.conn_id = conn_id
        self.directory = directory

    def _hook(self):
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        return SFTPHook(ssh_conn_id=self.conn_id, conn_retry_attempts=1)

    def _path(self, name: str) -> str:
        return f"{self.directory.rstrip('/')}/{name}"

    def list_files(self) -> list[str]:
        return sorted(self._hook().list_directory(self.directory))

    def observe(self, name: str, tail_bytes: int) -> Observation:
        with self._hook().get_managed_conn() as c, c.open(self._path(name), "rb") as fh:
            st = fh.stat()
            fh.seek(max(0, (st.st_size or 0) - tail_bytes))
            return Observation(st.st_size or 0, float(st.st_mtime or 0), fh.read(tail_bytes))

    def fetch(self, name: str, local: Path) -> None:
        self._hook().retrieve_file(self._path(name), str(local), prefetch=False)

    def remove(self, name: str) -> None:
        """Delete it; where the account may not delete (as CPR's upload accounts often
        may not), move it into ``<dir>/processed/``, out of the listing, and say so."""
        import logging

        from cpr_abonnement.delivery.files import ensure_dir

        with self._hook().get_managed_conn() as sftp:
            try:
                sftp.remove(self._path(name))
            except OSError:
                processed = self._path(PROCESSED_DIR)
                ensure_dir(sftp, processed)
                sftp.rename(self._path(name), f"{processed}/{name}")
                logging.getLogger(__name__).warning(
                    "%s may not be deleted on %s: moved into %s; its retention is the "
                    "SFTP server's", name, self.conn_id, processed)

    def quarantine(self, name: str, local: Path) -> None:
        """Copy it to ``local``, then move it into ``<dir>/quarantine/`` on the server
        under the same name (CPR's upload account may not delete)."""
        from cpr_abonnement.delivery.files import ensure_dir

        with self._hook().get_managed_conn() as sftp:
            source = self._path(name)
            sftp.get(source, str(local))
            quarantined = self._path(QUARANTINE_DIR)
            ensure_dir(sftp, quarantined)
            sftp.rename(source, f"{quarantined}/{local.name}")
