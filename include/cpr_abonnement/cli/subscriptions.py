"""``cprsub subscriber``, ``cprsub filters``, ``cprsub filter`` and ``filter-preview``.

``filters`` mirrors the SF6002 operations one to one and prints the result code the
reference service would return (``ADDED``, ``ALREADY_EXISTED``, ...), so scripts can
test for it. Every call is audited with the caller ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path

from cpr_abonnement import filters
from cpr_abonnement.cli.common import db_option, engine_of
from cpr_abonnement.delivery import modes
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.subscriptions.rules import AGREEMENT_SERVICES, DEFAULT_AGREEMENT_SERVICE


def _subscriber_command(subs: argparse._SubParsersAction, name: str, help: str,
                        handler, **defaults) -> argparse.ArgumentParser:
    """``cprsub subscriber NAME --uuid U [--db URL]``: every command on one IT system."""
    parser = subs.add_parser(name, help=help)
    db_option(parser)
    parser.add_argument("--uuid", required=True, help="the IT system's UserSystemUUID")
    parser.set_defaults(handler=handler, **defaults)
    return parser


def _system(parser: argparse.ArgumentParser) -> None:
    db_option(parser)
    parser.add_argument("--system", required=True, metavar="UUID",
                        help="the subscriber's UserSystemUUID")




def _when(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO timestamp") from None


def _filter_command(ops: argparse._SubParsersAction, ftype: FilterType, adding: bool) -> None:
    """``add-<type>`` / ``remove-<type>``; a bulk type takes many values or a file."""
    p = ops.add_parser(f"{'add' if adding else 'remove'}-{ftype.cli}",
                       help=ftype.add_operation if adding else ftype.remove_operation)
    _system(p)
    if ftype.bulk:
        (argument,) = ftype.arguments
        p.add_argument("values", nargs="*", metavar=argument.name.upper())
        p.add_argument("--from-file", type=Path,
                       help=f"one {argument.name.upper()} per line (bulk: one call)")
        p.set_defaults(handler=filters_bulk, ftype=ftype, adding=adding)
        return
    for argument in ftype.arguments:
        p.add_argument(argument.name, help=argument.help)
    p.set_defaults(handler=filters_one, ftype=ftype, adding=adding)


def register(sub: argparse._SubParsersAction) -> None:
    subs = sub.add_parser("subscriber", help="subscribers (IT systems)").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    add = _subscriber_command(subs, "add", "register an IT system", subscriber_add)
    add.add_argument("--name", required=True)
    add.add_argument("--serves", help="municipality / agreement party, e.g. '0851 Aalborg'")
    add.add_argument("--sftp-conn-id", help="Airflow connection id of the delivery target")
    add.add_argument("--remote-dir", default=".", help="directory on that SFTP server")
    add.add_argument("--service-agreement", action="append", default=[], metavar="UUID",
                     help="a ServiceAgreementUUID of the system (repeatable)")
    add.add_argument("--delivery", choices=modes.names(), default=modes.DEFAULT,
                     help=_modes_help())
    add.add_argument("--pickup-user", metavar="ACCOUNT",
                     help="pick-up login and folder name (default: the UUID)")
    add.add_argument("--ssh-key", action="append", default=[], type=Path, metavar="FILE.pub",
                     help="an SSH public key of the pick-up account (repeatable)")
    _identity_commands(subs)
    _delivery_commands(subs)
    upd = _subscriber_command(subs, "update", "re-point an IT system: name, serves, SFTP "
                              "connection, remote dir (only those given change)",
                              subscriber_update)
    upd.add_argument("--name")
    upd.add_argument("--serves")
    upd.add_argument("--sftp-conn-id", help="Airflow connection id of the push target")
    upd.add_argument("--remote-dir", help="directory on that SFTP server")
    upd.add_argument("--lookup-scope", choices=("all", "subscribed"),
                     help="whom its person look-ups (SF1520, REST) may find: all persons, "
                          "or those its own subscriptions select")
    _registration_commands(subs)
    ls = subs.add_parser("list", help="list subscribers")
    db_option(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=subscriber_list)
    for name, active in (("disable", False), ("enable", True)):
        _subscriber_command(subs, name, f"{name} deliveries to an IT system (filters are kept)",
                            subscriber_set_active, active=active)
    tok = _subscriber_command(subs, "token", "issue an API token for an IT system (shown "
                              "once)", subscriber_token)
    tok.add_argument("--label", default="api")
    adm = subs.add_parser("admin-token", help="issue an administrator API token")
    db_option(adm)
    adm.add_argument("--label", default="admin")
    adm.set_defaults(handler=admin_token)
    rev = subs.add_parser("revoke-token", help="revoke an API token at once (by its id, the "
                                               "part between the first two '_' of the token)")
    db_option(rev)
    rev.add_argument("token_id")
    rev.set_defaults(handler=revoke_token)

    flt = sub.add_parser("filters", help="a subscriber's filters (the SF6002 operations)")
    ops = flt.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ftype in filters.TYPES:
        for adding in (True, False):
            _filter_command(ops, ftype, adding)
    p = ops.add_parser("remove-all", help="RemoveAll for one filter group")
    _system(p)
    p.add_argument("--group", required=True, choices=[t.group for t in filters.TYPES])
    p.set_defaults(handler=filters_remove_all)
    p = ops.add_parser("import", help="load an IT system's filters from a saved SF6002 "
                                      "GetAllFiltersResponse or a PNR list (one transaction)")
    _system(p)
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="show what would change; change "
                                                          "nothing")
    p.set_defaults(handler=filters_import)
    p = ops.add_parser("get-all", help="GetAllFilters")
    _system(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--as-of", type=_when, metavar="T", help="filters in force at T (UTC)")
    p.set_defaults(handler=filters_get_all)

    flt_run = sub.add_parser("filter", help="thin an extract for every active subscriber")
    flt_run.add_argument("extract", type=Path)
    flt_run.add_argument("--out", type=Path, required=True, help="staging directory")
    db_option(flt_run)
    flt_run.add_argument("--as-of", type=_when, metavar="T",
                         help="filter snapshot instant (UTC) if the extract is new "
                              "(default: now; a processed extract keeps its snapshot)")
    flt_run.add_argument("--explain", action="store_true",
                         help="also write <file>.explain.csv per subscriber")
    flt_run.set_defaults(handler=filter_cmd)

    pre = sub.add_parser("filter-preview", help="what an IT system would have received "
                                                "from the last processed extracts with its "
                                                "current filters (figures only)")
    _system(pre)
    pre.add_argument("--days", type=int, default=10, help="extracts to look at (10)")
    pre.set_defaults(handler=filter_preview)



def _identity_commands(subs: argparse._SubParsersAction) -> None:
    """Certificates and service agreements: who may call SF6002 for a system."""
    p = _subscriber_command(subs, "add-certificate", "register a client certificate "
                            "(mutual TLS) for an IT system", subscriber_add_certificate)
    p.add_argument("--cert", required=True, type=Path, help="the certificate, PEM (or DER)")
    p = _subscriber_command(subs, "remove-certificate", "unregister a client certificate",
                            subscriber_remove_certificate)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--fingerprint", metavar="SHA256",
                       help="SHA-256 of the DER certificate, hex (colons allowed)")
    which.add_argument("--cert", type=Path, help="the certificate file, PEM (or DER)")
    for verb, handler in (("add", subscriber_add_agreement),
                          ("remove", subscriber_remove_agreement)):
        p = _subscriber_command(subs, f"{verb}-service-agreement",
                                f"{verb} a ServiceAgreementUUID of an IT system", handler)
        p.add_argument("--agreement", required=True, metavar="UUID")
    p = subs.choices["add-service-agreement"]
    p.add_argument("--service", choices=AGREEMENT_SERVICES, default=DEFAULT_AGREEMENT_SERVICE,
                   help="the service it is for: sf6002 (subscriptions, default) or sf1520 "
                   "(person look-ups); an agreement authorises calls to its own service only")


def _delivery_commands(subs: argparse._SubParsersAction) -> None:
    """Delivery mode and the pick-up account's SSH keys."""
    p = _subscriber_command(subs, "set-delivery", "switch an IT system between push and "
                            "pick-up", subscriber_set_delivery)
    p.add_argument("--delivery", required=True, choices=modes.names(), help=_modes_help())
    p.add_argument("--pickup-user", metavar="ACCOUNT",
                   help="pick-up login (default: the one it had, else the UUID)")
    p.add_argument("--sftp-conn-id", help="push: Airflow connection id of its SFTP server")
    p.add_argument("--remote-dir", help="push: directory on that SFTP server")
    p = _subscriber_command(subs, "add-ssh-key", "register an SSH public key for pick-up",
                            subscriber_add_ssh_key)
    p.add_argument("--key", required=True, type=Path, metavar="FILE.pub")
    p = _subscriber_command(subs, "remove-ssh-key", "unregister an SSH public key",
                            subscriber_remove_ssh_key)
    p.add_argument("--fingerprint", required=True, metavar="SHA256:...",
                   help="as `ssh-keygen -l -f KEY.pub` prints it")


def _registration_commands(subs: argparse._SubParsersAction) -> None:
    """The registration as one document (issue 15)."""
    p = subs.add_parser("register", help="create or update an IT system from its "
                                         "registration document (YAML or JSON)")
    db_option(p)
    p.add_argument("file", type=Path, metavar="FILE.yaml")
    p.set_defaults(handler=subscriber_register)
    p = subs.add_parser("show", help="an IT system as its registration document")
    db_option(p)
    p.add_argument("uuid", metavar="UUID")
    p.add_argument("--format", choices=["yaml", "json"], default="yaml")
    p.set_defaults(handler=subscriber_show)
    p = subs.add_parser("check", help="is the IT system ready to be served? (mails its "
                                      "contact person when it is; exit 0 ready, 1 not)")
    db_option(p)
    p.add_argument("uuid", metavar="UUID")
    p.set_defaults(handler=subscriber_check)




def _service(args: argparse.Namespace):
    from cpr_abonnement.subscriptions.outcomes import CallTrail
    from cpr_abonnement.subscriptions.service import SubscriptionService

    return SubscriptionService(engine_of(args), caller=f"cli:{getpass.getuser()}",
                               trail=CallTrail("cli"))










def subscriber_add(args: argparse.Namespace) -> int:
    info = _service(args).add_subscriber(args.uuid, args.name, serves=args.serves,
                                         sftp_conn_id=args.sftp_conn_id,
                                         remote_dir=args.remote_dir,
                                         service_agreements=args.service_agreement,
                                         delivery_mode=args.delivery,
                                         pickup_account=args.pickup_user,
                                         ssh_keys=[k.read_bytes() for k in args.ssh_key])
    print(f"ADDED {info.uuid} {info.name}")
    return 0


def subscriber_update(args: argparse.Namespace) -> int:
    done = _service(args).update_subscriber(args.uuid, name=args.name, serves=args.serves,
                                            sftp_conn_id=args.sftp_conn_id,
                                            remote_dir=args.remote_dir,
                                            lookup_scope=args.lookup_scope)
    info = done.info
    what = f": {', '.join(done.changed)}" if done.changed else ""
    print(f"{'UPDATED' if done.changed else 'UNCHANGED'} {info.uuid} {info.name}{what} "
          f"({_delivery_line(info)})")
    return 0


def subscriber_register(args: argparse.Namespace) -> int:
    from cpr_abonnement.onboarding.push_connection import ensure_push_connection
    from cpr_abonnement.onboarding.registration import read_document

    doc = read_document(args.file.read_bytes())
    service = _service(args)
    service.check_register(doc)  # before the connection is written: no rollback undoes it
    outside = [ensure_push_connection(doc.push)] if doc.push and doc.push.login else []
    done = service.register(doc, also_changed=[c for c in outside if c])
    print(f"{done.result} {done.uuid}")
    for change in done.changes:
        print(f"  {change}")
    return 0


def subscriber_show(args: argparse.Namespace) -> int:
    document = _service(args).registration_document(args.uuid)
    if args.format == "json":
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        import yaml

        print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return 0


def subscriber_check(args: argparse.Namespace) -> int:
    from cpr_abonnement.onboarding.readiness import check_subscriber
    from cpr_abonnement.settings import Settings

    checks, mailed = check_subscriber(
        _service(args), args.uuid, smtp_conn_id=Settings.from_env().smtp_conn_id,
        now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    for c in checks:
        print(c.line())
    print("READY: the contact person was mailed" if mailed else
          "NOT READY: fix the checks marked FAIL")
    return 0 if mailed else 1


def _modes_help() -> str:
    return "; ".join(f"{spec.name}: {spec.help}" for spec in modes.specs()) \
        + f" (default {modes.DEFAULT})"


def _delivery_line(s) -> str:
    fields = " ".join(f"{name}={value}" for name, value in modes.target_fields(s))
    return f"{s.delivery_mode} {fields}"


def subscriber_list(args: argparse.Namespace) -> int:
    subs = _service(args).subscribers()
    if args.json:
        print(json.dumps([s.to_json() for s in subs], indent=2))
        return 0
    for s in subs:
        state = "active" if s.active else "DISABLED"
        print(f"{s.uuid}  {state:8}  {s.name}  {_delivery_line(s)}")
        for k in s.ssh_keys:
            print(f"    ssh key {k.fingerprint}  {k.key_type} {k.bits}  {k.comment}".rstrip())
        for agreement, service in s.agreement_services:
            print(f"    service agreement {agreement}  {service}")
        for c in s.certificates:
            print(f"    certificate {c.sha256}  expires {c.not_after:%Y-%m-%d %H:%M} UTC  "
                  f"{c.subject}")
    return 0


def subscriber_add_certificate(args: argparse.Namespace) -> int:
    done = _service(args).add_certificate(args.uuid, args.cert.read_bytes())
    print(done.result.value)
    if done.warning:
        print(f"cprsub: warning: {done.warning}", file=sys.stderr)
    return 0


def subscriber_remove_certificate(args: argparse.Namespace) -> int:
    from cpr_abonnement.identities.certificates import parse_certificate

    sha256 = args.fingerprint or parse_certificate(
        args.cert.read_bytes(), now=dt.datetime(1970, 1, 1)).sha256  # expired ones too
    print(_service(args).remove_certificate(args.uuid, sha256).result.value)
    return 0


def subscriber_add_agreement(args: argparse.Namespace) -> int:
    done = _service(args).add_service_agreement(args.uuid, args.agreement, args.service)
    print(done.result.value)
    if done.warning:
        print(f"cprsub: warning: {done.warning}", file=sys.stderr)
    return 0


def subscriber_remove_agreement(args: argparse.Namespace) -> int:
    print(_service(args).remove_service_agreement(args.uuid, args.agreement).result.value)
    return 0


def subscriber_set_delivery(args: argparse.Namespace) -> int:
    info = _service(args).set_delivery(args.uuid, args.delivery,
                                       pickup_account=args.pickup_user,
                                       sftp_conn_id=args.sftp_conn_id,
                                       remote_dir=args.remote_dir)
    print(f"{info.delivery_mode.upper()} {info.uuid} {_delivery_line(info)}")
    return 0


def subscriber_add_ssh_key(args: argparse.Namespace) -> int:
    print(_service(args).add_ssh_key(args.uuid, args.key.read_bytes()).result.value)
    return 0


def subscriber_remove_ssh_key(args: argparse.Namespace) -> int:
    print(_service(args).remove_ssh_key(args.uuid, args.fingerprint).result.value)
    return 0


def subscriber_set_active(args: argparse.Namespace) -> int:
    info = _service(args).set_active(args.uuid, args.active)
    print(f"{'ENABLED' if info.active else 'DISABLED'} {info.uuid} {info.name}")
    return 0


def subscriber_token(args: argparse.Namespace) -> int:
    from cpr_abonnement.identities.credentials import Role, issue

    print(issue(engine_of(args), role=Role.SUBSCRIBER, label=args.label,
                subscriber_uuid=args.uuid, issued_by=f"cli:{getpass.getuser()}"))
    return 0


def admin_token(args: argparse.Namespace) -> int:
    from cpr_abonnement.identities.credentials import Role, issue

    print(issue(engine_of(args), role=Role.ADMIN, label=args.label,
                issued_by=f"cli:{getpass.getuser()}"))
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    from cpr_abonnement.identities.credentials import revoke

    done = revoke(engine_of(args), args.token_id)
    print("REVOKED" if done else "NOT_FOUND (unknown or already revoked)")
    return 0 if done else 1


def filters_bulk(args: argparse.Namespace) -> int:
    svc = _service(args)
    values = list(args.values)
    if args.from_file:
        values += [ln.strip() for ln in args.from_file.read_text().splitlines() if ln.strip()]
    if not values:
        print(f"cprsub: give {args.ftype.arguments[0].name.upper()}s or --from-file",
              file=sys.stderr)
        return 2
    if len(values) == 1 and not args.from_file:
        return _print_outcome(args, svc, values)
    bulk = (svc.add_many if args.adding else svc.remove_many)(args.system, args.ftype, values)
    for key, n in sorted(bulk.counts.items()):
        print(f"{key} {n}")
    return 1 if "REJECTED" in bulk.counts else 0


def filters_one(args: argparse.Namespace) -> int:
    return _print_outcome(args, _service(args), [getattr(args, a.name)
                                                 for a in args.ftype.arguments])


def _print_outcome(args: argparse.Namespace, svc, raw: list) -> int:
    outcome = (svc.add if args.adding else svc.remove)(args.system, args.ftype, *raw)
    if outcome.warning:
        print(f"cprsub: warning: {outcome.warning}", file=sys.stderr)
    print(outcome.result.value)
    return 0


def filters_remove_all(args: argparse.Namespace) -> int:
    print(f"REMOVED {_service(args).remove_all(args.system, args.group)}")
    return 0


def filters_import(args: argparse.Namespace) -> int:
    from cpr_abonnement.cpr_number import scrub
    from cpr_abonnement.onboarding.importing import parse_filters

    plan = parse_filters(args.file.read_bytes())
    done = _service(args).import_filters(args.system, plan, dry_run=args.dry_run)
    for n, result in enumerate(done.results, 1):
        if result.startswith("REJECTED"):
            print(f"item {n}: {scrub(result)}")
    prefix = "DRY RUN (nothing changed): " if args.dry_run else ""
    print(prefix + ", ".join(f"{k} {v}" for k, v in sorted(done.counts.items())))
    return 1 if "REJECTED" in done.counts else 0


def filters_get_all(args: argparse.Namespace) -> int:
    fs = _service(args).get_all_filters(args.system, args.as_of)
    if args.json:
        print(json.dumps(fs.to_dict(), indent=2))
        return 0
    print(f"filters of {fs.subscriber_uuid} in force at {fs.as_of.isoformat()} UTC:")
    for ftype in sorted(filters.TYPES, key=lambda t: t.bulk):  # long lists last
        print(f"  {ftype.summary(fs.listings[ftype.listing])}")
    if fs.empty:
        print("  no filters: this subscriber receives no persons (files with 000 and 999 only)")
    return 0


def filter_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.filter_step import filter_extract

    result = filter_extract(args.extract, engine_of(args), args.out, as_of=args.as_of,
                            explain=args.explain)
    rec = result.extract
    state = "first processing" if rec.new else (
        f"processed before at {rec.first_processed_at:%Y-%m-%d %H:%M:%S} UTC")
    print(f"{rec.file_name}: {result.persons:,} persons, {state}; filters as of "
          f"{rec.filters_as_of.isoformat()} UTC")
    width = max((len(s.name) for s in result.subscribers), default=10)
    for sub, f in zip(result.subscribers, result.files, strict=True):
        print(f"  {sub.name:<{width}}  {sub.uuid}  {f.persons:>9,} persons "
              f"{f.records:>10,} records  {f.path}")
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
    print(f"{len(result.files)} subscriber file(s) written ({timing})")
    return 0


def filter_preview(args: argparse.Namespace) -> int:
    from cpr_abonnement.preview import preview
    from cpr_abonnement.settings import Settings

    days = preview(engine_of(args), Settings.from_env(), args.system, days=args.days,
                   as_of=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    print(f"{args.system}: last {len(days)} processed extract(s) with the filters in force "
          "now (no files written)")
    for day in days:
        print(f"  {day.line()}")
    return 0




