"""Overlapping and killed uploads of the same file to a real SFTP server.

A zombie or re-queued ``deliver`` task, a task cleared while still running, or two runs
of the same day upload the same file at the same time. Whatever happens to either of
them (finishes, is killed, has its temporary file removed), the file under the final
name must at every moment be absent or byte-identical to ours, and a later delivery
must succeed and leave no temporary files behind.

The uploaders are separate processes (tests/delivery/sftp_uploader.py), so they really
run in parallel and one can be killed with SIGKILL; a watcher thread reads the final
file on the server's disk throughout.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from cpr_abonnement.delivery import sftp_push
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from support.sshd import openssh_server

pytestmark = pytest.mark.slow

UPLOADER = Path(__file__).with_name("sftp_uploader.py")
SIZE = 10 << 20
CONN_ID = "sftp_race"


@dataclass
class Target:
    """Where the uploads go: the connection, the remote folder, and that folder on disk."""

    connection: str
    remote_dir: str
    local_dir: Path


@pytest.fixture(params=["embedded", "openssh"])
def target(request, tmp_path, monkeypatch) -> Iterator[Target]:
    if request.param == "embedded":
        with EmbeddedSftpServer(tmp_path / "root", {"cpr": "pw"}) as server:
            conn = server.airflow_connection("cpr")
            remote = "/in/subscriber-a"
            local = tmp_path / "root" / "in" / "subscriber-a"
            monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn)
            yield Target(conn, remote, local)
    else:
        with openssh_server(tmp_path / "sshd") as server:
            local = tmp_path / "inbound" / "subscriber-a"
            monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", server["connection"])
            yield Target(server["connection"], str(local), local)


@pytest.fixture
def files(tmp_path) -> list[Path]:
    """A 10 MB data file (long enough to overlap two uploads: the first still reads its
    upload back after the second has started) and its metadata."""
    data = tmp_path / "out" / "D261126.L431101"
    data.parent.mkdir()
    data.write_bytes(random.Random(20261126).randbytes(SIZE))
    meta = data.with_name(data.name + ".metadata")
    meta.write_text('{"persons": 0}\n')
    return [data, meta]


class Uploader:
    """A delivery in a child process, started on :meth:`go`; see sftp_uploader.py."""

    def __init__(self, target: Target, files: list[Path]) -> None:
        include = Path(sftp_push.__file__).resolve().parents[2]
        env = {**os.environ, f"AIRFLOW_CONN_{CONN_ID.upper()}": target.connection,
               "PYTHONPATH": os.pathsep.join([str(include), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, str(UPLOADER), CONN_ID, target.remote_dir, *map(str, files)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def result(self) -> dict:
        out, _ = self.proc.communicate(timeout=180)
        lines = out.strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            return {"error": "crashed", "exit": self.proc.returncode}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.002)


def temporaries(folder: Path, name: str) -> list[Path]:
    """The hidden temporary files of ``name`` (any attempt, old or new naming)."""
    if not folder.exists():
        return []
    return [p for p in folder.iterdir()
            if p.name.startswith(f".{name}.") and p.name.endswith(".part")
            and not p.name.startswith(f".{name}.metadata")]


def largest_temporary(folder: Path, name: str) -> int:
    sizes = []
    for p in temporaries(folder, name):
        with suppress(FileNotFoundError):  # renamed or removed meanwhile
            sizes.append(p.stat().st_size)
    return max(sizes, default=0)


def first_difference(seen: bytes, expected: bytes, block: int = 1 << 16) -> int:
    for start in range(0, min(len(seen), len(expected)), block):
        a, b = seen[start:start + block], expected[start:start + block]
        if a != b:
            return start + next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                                min(len(a), len(b)))
    return min(len(seen), len(expected))


@contextmanager
def watching(final: Path, expected: bytes) -> Iterator[list[str]]:
    """Read ``final`` on the server's disk over and over; collect every wrong sight of it."""
    want = hashlib.sha256(expected).hexdigest()
    wrong: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen = final.read_bytes()
            except FileNotFoundError:
                continue
            if hashlib.sha256(seen).hexdigest() != want:
                wrong.append(f"{len(seen)} bytes, first wrong byte at "
                             f"{first_difference(seen, expected)}")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield wrong
    finally:
        stop.set()
        thread.join(30)


def start_second_when_first_is_three_quarters_done(first: Uploader, second: Uploader,
                                                   target: Target, name: str) -> None:
    first.go()
    wait_until(lambda: largest_temporary(target.local_dir, name) >= SIZE * 3 // 4
               or not first.running(), "the first upload is three quarters done")
    if not first.running():
        pytest.fail("the first upload ended before the second could overlap it")
    second.go()


def assert_a_later_delivery_succeeds_and_cleans_up(target: Target, files: list[Path]) -> None:
    again = sftp_push.deliver(CONN_ID, target.remote_dir, files, subscriber="S")
    assert [o.sha256 for o in again] == [sftp_push.sha256_file(f)[0] for f in files]
    for f in files:
        assert (target.local_dir / f.name).read_bytes() == f.read_bytes()
    assert sorted(p.name for p in target.local_dir.iterdir()) == sorted(f.name for f in files)


def test_two_overlapping_uploads_never_show_a_wrong_final_file(target, files):
    name, expected = files[0].name, files[0].read_bytes()
    first, second = Uploader(target, files), Uploader(target, files)
    with watching(target.local_dir / name, expected) as wrong:
        start_second_when_first_is_three_quarters_done(first, second, target, name)
        results = [first.result(), second.result()]
    assert wrong == []
    assert all("error" not in r for r in results), results
    # exactly one of them put the data file in place; the other found it there
    assert sorted(r["already_there"][0] for r in results) == [False, True]
    assert (target.local_dir / name).read_bytes() == expected
    assert_a_later_delivery_succeeds_and_cleans_up(target, files)


def test_an_overlapping_uploader_killed_mid_upload_leaves_no_corrupt_file(target, files):
    name, expected = files[0].name, files[0].read_bytes()
    final = target.local_dir / name
    first, second = Uploader(target, files), Uploader(target, files)
    with watching(final, expected) as wrong:
        start_second_when_first_is_three_quarters_done(first, second, target, name)
        wait_until(lambda: final.exists() or not second.running(),
                   "the first upload renamed its file into place")
        second.kill()
        first.result()
    assert wrong == []
    assert not final.exists() or final.read_bytes() == expected
    assert_a_later_delivery_succeeds_and_cleans_up(target, files)


def test_an_uploader_killed_mid_upload_leaves_nothing_under_the_final_name(target, files):
    name = files[0].name
    uploader = Uploader(target, files)
    uploader.go()
    wait_until(lambda: largest_temporary(target.local_dir, name) >= SIZE * 2 // 5,
               "the upload is two fifths done")
    uploader.kill()
    assert not (target.local_dir / name).exists()
    assert temporaries(target.local_dir, name), "the killed upload left its temporary file"
    assert_a_later_delivery_succeeds_and_cleans_up(target, files)


def test_an_upload_whose_temporary_file_is_removed_fails_and_is_retried(target, files):
    """What another uploader's clean-up does to a live upload: it fails, nothing corrupt."""
    name = files[0].name
    uploader = Uploader(target, files)
    uploader.go()
    wait_until(lambda: largest_temporary(target.local_dir, name) >= SIZE * 2 // 5,
               "the upload is two fifths done")
    for part in temporaries(target.local_dir, name):
        part.unlink()
    result = uploader.result()
    assert result.get("error") == "DeliveryError", result
    assert not (target.local_dir / name).exists()
    assert_a_later_delivery_succeeds_and_cleans_up(target, files)


def test_clean_up_removes_only_abandoned_temporaries_of_the_file(target, files):
    """Before the final file is in place only files untouched for an hour are removed:
    never a live attempt's, never another file's, never the final file."""
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    name = files[0].name
    target.local_dir.mkdir(parents=True)
    hour_ago = time.time() - sftp_push.STALE_TEMPORARY_SECONDS - 60
    abandoned = [f".{name}.0123456789abcdef.part", f".{name}.part"]
    kept = [f".{name}.fedcba9876543210.part",  # live: written just now
            f".{name}.metadata.0123456789abcdef.part", f".{name}x.part", name, "notes.txt"]
    for entry in abandoned + kept:
        (target.local_dir / entry).write_bytes(b"\0" * 10)
        if entry != kept[0]:
            os.utime(target.local_dir / entry, (hour_ago, hour_ago))
    with SFTPHook(ssh_conn_id=CONN_ID).get_managed_conn() as sftp:
        now = sftp.stat(f"{target.remote_dir}/{kept[0]}").st_mtime
        left = sftp_push.remove_temporaries(
            sftp, target.remote_dir, name,
            untouched_before=now - sftp_push.STALE_TEMPORARY_SECONDS)
        assert sorted(p.name for p in target.local_dir.iterdir()) == sorted(kept)
        assert left == 1  # the live one: the final sweep must list the folder again
        # An attempt's own temporary file is never another's leftover, however old.
        (target.local_dir / abandoned[0]).write_bytes(b"\0" * 10)
        os.utime(target.local_dir / abandoned[0], (hour_ago, hour_ago))
        assert sftp_push.remove_temporaries(sftp, target.remote_dir, name,
                                            ours=abandoned[0]) == 0
        assert sorted(p.name for p in target.local_dir.iterdir()) == sorted(
            [abandoned[0], *kept[1:]])
        sftp_push.remove_temporaries(sftp, target.remote_dir, name)  # final file verified
        assert sorted(p.name for p in target.local_dir.iterdir()) == sorted(kept[1:])
