"""``cprsub pickup confine``: beneath the pick-up root a confined process (root included)
may read, list and remove, and create, write, rename or link nothing; elsewhere it
keeps its rights. Real Landlock in a real child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpr_abonnement.pickup.confinement import abi_version, granted_elsewhere

INCLUDE = Path(__file__).resolve().parents[2] / "include"
CLI = "import sys; from cpr_abonnement.cli import main; sys.exit(main(sys.argv[1:]))"

needs_landlock = pytest.mark.skipif(abi_version() < 1, reason="this kernel has no Landlock")

#: Each line tries one thing beneath the root and prints what happened.
PROBE = r"""
import os, sys
root, outside = sys.argv[1], sys.argv[2]
inbox = os.path.join(root, "acct", "IN")
def attempt(name, action):
    try:
        action()
        print(name, "allowed")
    except PermissionError:
        print(name, "refused")
attempt("read", lambda: open(os.path.join(inbox, "delivered")).read())
attempt("list", lambda: os.listdir(inbox))
attempt("create", lambda: open(os.path.join(inbox, "new"), "x").close())
attempt("write", lambda: open(os.path.join(inbox, "delivered"), "a").close())
attempt("truncate", lambda: os.truncate(os.path.join(inbox, "delivered"), 0))
attempt("mkdir", lambda: os.mkdir(os.path.join(inbox, "sub")))
attempt("symlink", lambda: os.symlink("/etc/passwd", os.path.join(inbox, "link")))
attempt("hardlink", lambda: os.link(os.path.join(inbox, "delivered"),
                                    os.path.join(inbox, "hard")))
attempt("rename", lambda: os.rename(os.path.join(inbox, "delivered"),
                                    os.path.join(inbox, "renamed")))
attempt("fifo", lambda: os.mkfifo(os.path.join(inbox, "fifo")))
attempt("rmdir", lambda: os.rmdir(os.path.join(root, "acct", "empty")))
attempt("create outside", lambda: open(os.path.join(outside, "fine"), "x").close())
attempt("remove", lambda: os.remove(os.path.join(inbox, "delivered")))
"""


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@needs_landlock
def test_beneath_the_root_only_read_list_and_remove(tmp_path):
    root, outside = tmp_path / "pickup", tmp_path / "elsewhere"
    (root / "acct" / "IN").mkdir(parents=True)
    (root / "acct" / "empty").mkdir()
    (root / "acct" / "IN" / "delivered").write_bytes(b"data")
    outside.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "pickup", "confine", "--root", str(root), "--",
         sys.executable, "-c", PROBE, str(root), str(outside)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(INCLUDE)})
    assert done.returncode == 0, done.stderr
    assert "confined (Landlock ABI" in done.stderr
    outcome = dict(line.rsplit(" ", 1) for line in done.stdout.splitlines())
    assert outcome == {
        "read": "allowed", "list": "allowed", "create": "refused", "write": "refused",
        "truncate": "refused", "mkdir": "refused", "symlink": "refused",
        "hardlink": "refused", "rename": "refused", "fifo": "refused", "rmdir": "refused",
        "create outside": "allowed", "remove": "allowed"}
    assert _tree(root) == {"acct": None, "acct/IN": None, "acct/empty": None}
    assert (outside / "fine").exists()


def test_links_to_the_root_or_its_folders_get_no_rule(tmp_path):
    """A rule follows a link: granting one that leads to the root (or above it) would
    grant the root everything, so such links are left out."""
    root = tmp_path / "srv" / "pickup"
    root.mkdir(parents=True)
    (tmp_path / "srv" / "logs").mkdir()
    (tmp_path / "srv" / "to-root").symlink_to(root)
    (tmp_path / "srv" / "to-srv").symlink_to(tmp_path / "srv")
    (tmp_path / "srv" / "into-root").symlink_to(root / "acct")
    granted = set(granted_elsewhere(root))
    assert tmp_path / "srv" / "logs" in granted
    assert not granted & {root, tmp_path / "srv", tmp_path, tmp_path / "srv" / "to-root",
                          tmp_path / "srv" / "to-srv", tmp_path / "srv" / "into-root"}
    assert Path("/etc") in granted or not Path("/etc").exists()


def test_without_landlock_it_refuses_unless_told_to_run_unconfined(tmp_path):
    """A kernel without Landlock (simulated: the ABI probe answers 0) stops the start with
    the reason; ``--allow-unconfined`` starts the command with a warning."""
    fake = ("import cpr_abonnement.pickup.confinement as c; c.abi_version = lambda: 0; "
            "import sys; from cpr_abonnement.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(INCLUDE)}
    base = [sys.executable, "-c", fake, "pickup", "confine", "--root", str(tmp_path)]
    refused = subprocess.run([*base, "--", "echo", "started"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert refused.returncode == 1
    assert "no Landlock" in refused.stderr and "started" not in refused.stdout
    allowed = subprocess.run([*base, "--allow-unconfined", "--", "echo", "started"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert allowed.returncode == 0 and allowed.stdout == "started\n"
    assert "WARNING" in allowed.stderr and "unconfined" in allowed.stderr


def test_a_missing_root_or_command_is_a_usage_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(INCLUDE)}
    base = [sys.executable, "-c", CLI, "pickup", "confine"]
    missing = subprocess.run([*base, "--root", str(tmp_path / "absent"), "--", "true"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    no_command = subprocess.run([*base, "--root", str(tmp_path), "--"], capture_output=True,
                                text=True, timeout=60, env=env)
    assert no_command.returncode == 2 and "give the command" in no_command.stderr
