"""`copythat-ops db`: the embedded server, the URL in use, the connection check."""

from __future__ import annotations

from .. import embedded
from ..check import check_connection
from ..engine import database_url


def register(groups) -> None:
    """Add the `db` sub-commands."""
    db = groups.add_parser("db", help="the database: embedded server, URL, connection check")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start (or reuse) the embedded PostgreSQL")
    actions.add_parser("down", help="stop the embedded PostgreSQL")
    actions.add_parser("status", help="the embedded PostgreSQL's state")
    actions.add_parser("url", help="the URL in use, password masked").add_argument("--show-password", action="store_true", help="print the password too")
    actions.add_parser("check", help="connect and report provider, version, revision, latency")
    db.set_defaults(run=run)


def run(args) -> object:
    if args.action == "up":
        embedded.start()
        return embedded.status()
    if args.action == "down":
        return "stopped" if embedded.stop() else "the embedded PostgreSQL was not running"
    if args.action == "status":
        return embedded.status()
    if args.action == "url":
        return database_url().render_as_string(hide_password=not args.show_password)
    return check_connection()
