"""``cprsub health`` and ``cprsub api serve``: the service as a monitor and the IT systems
see it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from cpr_abonnement.cli.common import db_option, engine_of


def register(sub: argparse._SubParsersAction) -> None:
    health = sub.add_parser("health", help="was the last due delivery day delivered to all? "
                                           "(exit 0 healthy, 1 not; see --exit-code)")
    db_option(health)
    health.add_argument("--json", action="store_true")
    health.add_argument("--exit-code", action="store_true",
                        help="monitoring plugin exit codes: 0 OK, 1 WARNING (late pick-ups, "
                             "certificates near expiry), 2 CRITICAL (not healthy), 3 UNKNOWN "
                             "(the filter database cannot be read)")
    health.add_argument("--grace-hours", type=float,
                        help="hours after the run time (CPRSUB_DELIVERY_TIME) before a day "
                             "counts as due (default 8)")
    health.set_defaults(handler=health_cmd)

    api = sub.add_parser("api", help="the subscription REST API").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    srv = api.add_parser("serve", help="run the API (REST and SF6002 SOAP) on its own (uvicorn)")
    db_option(srv)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8765)
    srv.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate (chain)")
    srv.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key")
    srv.add_argument("--client-ca", type=Path, metavar="PEM",
                     help="CA(s) client certificates must be signed by: mutual TLS, "
                          "required for every connection")
    srv.add_argument("--client-cert-header", metavar="NAME",
                     help="behind a TLS-terminating proxy: the header carrying the verified "
                          "client certificate as URL-escaped PEM (nginx "
                          "$ssl_client_escaped_cert)")
    srv.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR",
                     help="address(es) the certificate header is accepted from (repeatable)")
    srv.add_argument("--workers", type=int, default=1, metavar="N",
                     help="server processes (default 1; about one per core: one process "
                          "runs Python on one core at a time)")
    srv.set_defaults(handler=api_serve)


def health_cmd(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from cpr_abonnement.health import check

    # Delivery time and closures: CPRSUB_DELIVERY_TIME, CPRSUB_EXTRA_CLOSURES, as the DAG.
    try:
        state = check(engine_of(args), now=dt.datetime.now(dt.UTC),
                      grace_hours=args.grace_hours)
    except SQLAlchemyError as exc:  # a monitor must tell "down" from "cannot tell"
        print(f"UNKNOWN: the filter database cannot be read ({type(exc).__name__})")
        return 3 if args.exit_code else 2
    if args.json:
        print(json.dumps(state.to_dict(), indent=2))
    else:
        print(f"{'HEALTHY' if state.healthy else 'UNHEALTHY'}: delivery day "
              f"{state.delivery_day}, {state.delivered}/{state.subscribers} subscriber(s) "
              f"delivered" + "".join(f"\n  - {p}" for p in state.problems)
              + "".join(f"\n  late pick-up: {p}" for p in state.late_pickups)
              + "".join(f"\n  certificate: {c}" for c in state.expiring_certificates)
              + "".join(f"\n  storage: {v}" for v in state.storage)
              + f"\n  {state.replica}")
    if not args.exit_code:
        return 0 if state.healthy else 1
    if not state.healthy:
        return 2
    return 1 if state.late_pickups or state.expiring_certificates else 0


def api_serve(args: argparse.Namespace) -> int:
    """Serve the app through its factory, configured by environment variables (those
    the Airflow API server mount reads too), so that ``--workers`` processes each
    build their own app, engine and pool from the same settings."""
    import uvicorn

    from cpr_abonnement.api.soap import ClientCertificates
    from cpr_abonnement.api.tls import ServerTls, server_options
    from cpr_abonnement.settings import export_api_settings

    tls_args = (args.tls_cert, args.tls_key, args.client_ca)
    if any(tls_args) and not all(tls_args):
        print("cprsub: --tls-cert, --tls-key and --client-ca go together", file=sys.stderr)
        return 2
    if bool(args.client_cert_header) != bool(args.trusted_proxy):
        print("cprsub: --client-cert-header and --trusted-proxy go together", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("cprsub: --workers must be at least 1", file=sys.stderr)
        return 2
    ClientCertificates.parse(args.client_cert_header, args.trusted_proxy)  # refuse bad ones
    options = server_options(ServerTls(*tls_args) if all(tls_args) else None)
    export_api_settings(db=args.db, client_cert_header=args.client_cert_header,
                        trusted_proxies=args.trusted_proxy,
                        client_ca=str(args.client_ca) if args.client_ca else None)
    app = "cpr_abonnement.api.app:create_app"
    if args.workers == 1:
        uvicorn.run(app, factory=True, host=args.host, port=args.port, **options)
        return 0
    from cpr_abonnement.api import workers

    return workers.serve(uvicorn.Config(app, factory=True, host=args.host, port=args.port,
                                        **options), args.workers)
