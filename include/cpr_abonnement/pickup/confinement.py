"""Confine the pick-up SFTP server so that nothing can be created beneath the pick-up root.

OpenSSH's internal-sftp allow-list works per request type, and ``open`` is one type
whatever its flags, while Unix permissions cannot tell creating a name from removing
one: with permissions and ``-p`` alone an account could create an empty file in its own
``IN/``. Linux's Landlock can tell them apart (``MAKE_REG`` and ``REMOVE_FILE`` are
separate rights) and binds every descendant of the process that asked for it,
root included, across ``chroot`` and ``exec``. So sshd is started inside a Landlock
domain in which, beneath the pick-up root, files and folders may be read, listed and
removed, and nothing may be created, written, truncated, renamed into or linked. Outside
the root everything stays as it was: sshd writes its pid file and log, the
``AuthorizedKeysCommand`` reads the filter database.

Landlock grants rights beneath the folders named in rules and denies the *handled*
rights everywhere else. There is no "everything but this folder", so each sibling of
each folder on the way from ``/`` to the root is granted in full, and the root itself
gets no rule. A folder that appears next to that path later (a new top-level folder)
is covered by nothing: a confined sshd cannot create files there, which it never does.

The delivery (another process, not confined) keeps writing into the root as before.
"""

from __future__ import annotations

import ctypes
import enum
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cpr_abonnement.errors import ConfinementUnavailable

# Syscall numbers are shared by every architecture since Linux 5.13 (the unified table).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULESET_VERSION = 1 << 0   # landlock_create_ruleset flag: ask for the ABI version
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38


class Access(enum.IntFlag):
    """``LANDLOCK_ACCESS_FS_*`` (uapi/linux/landlock.h), with the ABI that added each."""

    WRITE_FILE = 1 << 1
    REMOVE_DIR = 1 << 4
    MAKE_CHAR = 1 << 6
    MAKE_DIR = 1 << 7
    MAKE_REG = 1 << 8
    MAKE_SOCK = 1 << 9
    MAKE_FIFO = 1 << 10
    MAKE_BLOCK = 1 << 11
    MAKE_SYM = 1 << 12
    REFER = 1 << 13      # ABI 2: rename or link across folders
    TRUNCATE = 1 << 14   # ABI 3


#: What a confined process may not do beneath the root (on ABI 1 without REFER and
#: TRUNCATE: renames across folders then fail for other reasons (``-p`` has no
#: ``rename``), and truncation needs a writable open or ``setstat``, both refused).
DENIED_BENEATH_ROOT = {
    1: Access.WRITE_FILE | Access.REMOVE_DIR | Access.MAKE_CHAR | Access.MAKE_DIR
    | Access.MAKE_REG | Access.MAKE_SOCK | Access.MAKE_FIFO | Access.MAKE_BLOCK
    | Access.MAKE_SYM,
}
DENIED_BENEATH_ROOT[2] = DENIED_BENEATH_ROOT[1] | Access.REFER
DENIED_BENEATH_ROOT[3] = DENIED_BENEATH_ROOT[2] | Access.TRUNCATE
#: Rights that make sense on a file (a rule on a file with folder rights is refused).
FILE_RIGHTS = Access.WRITE_FILE | Access.TRUNCATE


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def abi_version() -> int:
    """Landlock's ABI version here, 0 when the kernel has none or it is disabled."""
    try:
        return _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_RULESET_VERSION))
    except OSError:
        return 0


def granted_elsewhere(root: Path) -> Iterator[Path]:
    """Every sibling of every folder on the way from ``/`` to ``root`` (not ``root``,
    not its ancestors): the places where the confined process keeps all its rights."""
    on_the_way = [root, *root.parents]
    for folder in reversed(on_the_way[1:]):
        for entry in folder.iterdir():
            if entry in on_the_way:
                continue
            # A rule follows a link to its target: a link to the root, into it or to
            # one of its folders would grant the root everything.
            target = entry.resolve()
            if target in on_the_way or root in target.parents:
                continue
            yield entry


def confine(root: Path) -> int:
    """Put this process (and all it will start) in a Landlock domain that allows only
    reading, listing and removing beneath ``root``. Returns the ABI version used.
    Irreversible for the process: call it right before ``exec``."""
    root = root.resolve(strict=True)
    abi = abi_version()
    if abi < 1:
        raise ConfinementUnavailable(
            "this kernel has no Landlock (Linux >= 5.13 with landlock in the lsm= list): "
            "the pick-up server cannot be confined", root=str(root))
    handled = DENIED_BENEATH_ROOT[min(abi, 3)]
    ruleset = _syscall(_CREATE_RULESET, ctypes.byref(ctypes.c_uint64(handled)),
                       ctypes.c_size_t(8), ctypes.c_uint32(0))
    try:
        for place in granted_elsewhere(root):
            _grant(ruleset, place, handled)
        # Required unless the caller has CAP_SYS_ADMIN (a container's root has not).
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def _grant(ruleset: int, place: Path, handled: int) -> None:
    try:
        fd = os.open(place, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # vanished, or a dangling link: nothing to grant
    try:
        allowed = handled if stat.S_ISDIR(os.fstat(fd).st_mode) else handled & FILE_RIGHTS
        if allowed:
            rule = _PathBeneath(allowed_access=allowed, parent_fd=fd)
            _syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                     ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)
