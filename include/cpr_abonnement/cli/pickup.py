"""``cprsub pickup ...``: the pick-up SFTP server and its production helpers.

* ``serve``: the embedded (asyncssh) pick-up server for one machine;
* ``authorized-keys ACCOUNT``: sshd's ``AuthorizedKeysCommand`` (prints the account's
  active keys, nothing for an unknown, disabled or push account);
* ``ingest-log FILE``: records downloads and removals from sshd's log in the ledger;
* ``confine --root DIR -- COMMAND``: runs sshd where nothing can be created beneath DIR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cpr_abonnement.cli.common import db_option, engine_of


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("pickup", help="the pick-up SFTP server (subscribers fetch files)")
    cmds = group.add_subparsers(dest="pickup_cmd", required=True, metavar="COMMAND")

    serve = cmds.add_parser("serve", help="run the embedded pick-up SFTP server (one machine)")
    db_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=2223)
    serve.add_argument("--root", type=Path, help="pick-up storage (default $CPRSUB_PICKUP_ROOT)")
    serve.add_argument("--host-key", type=Path, required=True,
                       help="host key file, created when missing and kept (clients pin it)")
    serve.set_defaults(handler=serve_cmd)

    keys = cmds.add_parser("authorized-keys",
                           help="print the keys of a pick-up account (sshd AuthorizedKeysCommand)")
    db_option(keys)
    keys.add_argument("account")
    keys.set_defaults(handler=authorized_keys_cmd)

    ingest = cmds.add_parser("ingest-log", help="record downloads/removals from sshd's log")
    db_option(ingest)
    ingest.add_argument("file", type=Path, help="sshd log (- for stdin)")
    ingest.add_argument("--root", type=Path,
                        help="pick-up storage, to tell complete downloads by file size")
    ingest.set_defaults(handler=ingest_log_cmd)

    sync = cmds.add_parser("sync-accounts",
                           help="create the system account and folder of each pick-up account")
    db_option(sync)
    sync.add_argument("--root", type=Path, required=True)
    sync.set_defaults(handler=sync_accounts_cmd)

    track = cmds.add_parser("track", help="collect internal-sftp's log from each account's "
                                          "dev/log, append it to a file, record it in the ledger")
    db_option(track)
    track.add_argument("--root", type=Path, required=True)
    track.add_argument("--log", type=Path, required=True)
    track.add_argument("--sync-every", type=float, default=0, metavar="SECONDS",
                       help="also make the Unix account of each pick-up account registered "
                            "or switched since, and track its log, this often (0: never; "
                            "an IT system onboarded for pick-up then needs a restart)")
    track.set_defaults(handler=track_cmd)

    probe = cmds.add_parser("probe", help="health check of an SSH server: banner and key "
                                          "exchange, no login (exit 0 answered, 1 not)")
    probe.add_argument("--host", default="127.0.0.1")
    probe.add_argument("--port", type=int, default=2223)
    probe.add_argument("--timeout", type=float, default=10.0)
    probe.set_defaults(handler=probe_cmd)

    confine = cmds.add_parser(
        "confine", help="run COMMAND (sshd) where, beneath --root, files can only be read, "
                        "listed and removed (Linux Landlock)")
    confine.add_argument("--root", type=Path, required=True)
    confine.add_argument("--allow-unconfined", action="store_true",
                         help="start COMMAND anyway on a kernel without Landlock (then "
                              "the housekeeping sweep is the only guard against strays)")
    confine.add_argument("command", nargs=argparse.REMAINDER,
                         help="-- then the command and its arguments")
    confine.set_defaults(handler=confine_cmd)


def serve_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.pickup.wiring import serve_from_database
    from cpr_abonnement.settings import Settings
    from cpr_abonnement.sshserver import run_until_interrupted

    root = args.root or Path(Settings.from_env().pickup_root)
    with serve_from_database(engine_of(args), root, host=args.host, port=args.port,
                             host_key_file=args.host_key) as server:
        print(f"pick-up SFTP on {server.host}:{server.port}, root {server.root}, host key "
              f"{server.host_key_line}", flush=True)
        return run_until_interrupted()


def authorized_keys_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.pickup.accounts import authorized_keys

    for line in authorized_keys(engine_of(args), args.account):
        print(line)
    return 0  # no keys: sshd refuses the key, which is the answer


def ingest_log_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.pickup.log import ingest

    engine = engine_of(args)
    if str(args.file) == "-":
        result = ingest(sys.stdin, engine, root=args.root)
    else:
        with args.file.open(encoding="utf-8", errors="replace") as lines:
            result = ingest(lines, engine, root=args.root)
    print(result.summary())
    return 0


def _refused(message: str) -> None:
    print(f"cprsub: refused: {message}", file=sys.stderr, flush=True)


def sync_accounts_cmd(args: argparse.Namespace) -> int:
    """Make each active pick-up account's Unix account and folder (a refused name is
    reported on stderr and skipped, :func:`~cpr_abonnement.pickup.unix.sync_accounts`)."""
    from cpr_abonnement.pickup.unix import sync_accounts

    for name in sync_accounts(args.root, engine_of(args), _refused):
        print(f"created pick-up account {name}")
    return 0


def track_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.pickup.log import SftpLogCollector, SftpLogIngester, ledger_recorder
    from cpr_abonnement.pickup.unix import active_accounts, sync_accounts
    from cpr_abonnement.sshserver import run_until_interrupted

    engine = engine_of(args)
    ingester = SftpLogIngester(ledger_recorder(engine), args.root)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a", encoding="utf-8") as out:
        def sink(line: str) -> None:
            out.write(line + "\n")
            out.flush()
            ingester.feed(line)

        with SftpLogCollector(args.root, active_accounts(engine), sink) as collector:
            if args.sync_every <= 0:
                return run_until_interrupted()
            while True:  # until the container stops it (SIGTERM)
                time.sleep(args.sync_every)
                for name in sync_accounts(args.root, engine, _refused):
                    print(f"created pick-up account {name}", flush=True)
                for name in set(active_accounts(engine)) - collector.accounts:
                    collector.listen(name)


def confine_cmd(args: argparse.Namespace) -> int:
    import os

    from cpr_abonnement.errors import ConfinementUnavailable
    from cpr_abonnement.pickup.confinement import confine

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("cprsub pickup confine: give the command after --", file=sys.stderr)
        return 2
    if not args.root.is_dir():
        print(f"cprsub pickup confine: the pick-up root {args.root} is not a folder",
              file=sys.stderr)
        return 2
    try:
        abi = confine(args.root)
        print(f"pick-up root {args.root} confined (Landlock ABI {abi}): read, list and "
              f"remove only", file=sys.stderr, flush=True)
    except ConfinementUnavailable as e:
        if not args.allow_unconfined:
            print(f"cprsub pickup confine: {e}", file=sys.stderr)
            return 1
        print(f"WARNING: {e}; starting unconfined as asked (--allow-unconfined)",
              file=sys.stderr, flush=True)
    os.execvp(command[0], command)


def probe_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.errors import SshProbeFailed
    from cpr_abonnement.sshserver import probe

    try:
        key = probe(args.host, args.port, timeout=args.timeout)
        print(f"{args.host}:{args.port} answers, host key {key}")
    except SshProbeFailed as exc:
        print(f"cprsub pickup probe: {exc}", file=sys.stderr)
        return 1
    return 0
