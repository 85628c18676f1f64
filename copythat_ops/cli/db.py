"""`copythat-ops db`: the embedded server, the URL in use, the connection check."""

from __future__ import annotations

import sys

from . import safety
from .output import Report

LIBPQ_HELP = (
    "print it in the form psql accepts (postgresql://, libpq options); the password is left out: "
    "give it to psql with PGPASSWORD=... or a ~/.pgpass line, or add --show-password"
)


def register(groups) -> None:
    """Add the `db` sub-commands."""
    db = groups.add_parser("db", help="the database: embedded server, URL, connection check")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start (or reuse) the embedded PostgreSQL")
    actions.add_parser("down", help="stop the embedded PostgreSQL")
    actions.add_parser("status", help="the database in use: the configured one (reachable, version, revision), else the embedded server")
    url = actions.add_parser("url", help="the URL in use, password masked")
    url.add_argument("--show-password", action="store_true", help="print the password too")
    url.add_argument("--libpq", action="store_true", help=LIBPQ_HELP)
    actions.add_parser("check", help="connect and report provider, version, revision, latency")
    safety.register_db(actions)
    db.set_defaults(run=run)


def run(args) -> object:
    if args.action in safety.DB_ACTIONS:
        return safety.run_db(args)
    from .. import embedded  # the library loads with the command: building the parser loads none of it
    from ..check import check_connection, database_status
    from ..config import libpq_url, mask_url
    from ..engine import database_url

    if args.action == "up":
        embedded.start()
        return embedded.status()
    if args.action == "down":
        return "stopped" if embedded.stop() else "the embedded PostgreSQL was not running"
    if args.action == "status":
        facts = database_status()
        return Report(facts, exit_code=1 if facts.get("reachable") is False else 0)
    if args.action == "url":
        url = database_url()
        if args.libpq:
            if url.password and not args.show_password:
                print("password left out: psql reads it from PGPASSWORD or ~/.pgpass (or use --show-password)", file=sys.stderr)
            return libpq_url(url, show_password=args.show_password)
        return url.render_as_string(hide_password=False) if args.show_password else mask_url(url)
    return check_connection()
