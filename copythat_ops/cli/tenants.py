"""`copythat-ops tenants`: organizations: usage per tenant, row-level security isolation proof.

`tenants isolation` exits 3 when a table is not isolated, after printing the
report; 2 stays for bad input or a database before the tenancy revision.

Example:
    $ copythat-ops tenants usage
    $ copythat-ops tenants isolation
    $ copythat-ops tenants rls
    $ copythat-ops tenants policies
"""

from __future__ import annotations

import sys

from .lazy import library
from .output import Report

tenants = library("tenants")
tenancy = library("monitor.tenancy")
FAIL_EXIT = 3


def register(groups) -> None:
    """Add the `tenants` command group."""
    group = groups.add_parser("tenants", help="organizations: usage per tenant, row-level security isolation proof")
    commands = group.add_subparsers(dest="action", required=True)
    usage = commands.add_parser("usage", help="per organization: members, projects, jobs, failure rate, tokens, bytes (estimated), largest first")
    usage.set_defaults(run=lambda a: tenants.tenant_usage())
    isolation = commands.add_parser(
        "isolation", help=f"prove as copythat_app that no organization sees or writes another's rows (rolled back); exit {FAIL_EXIT} if one does"
    )
    isolation.set_defaults(run=run_isolation)
    rls = commands.add_parser("rls", help="row-level security of every table of schema public: tenant, enabled, forced, policies, primary key")
    rls.set_defaults(run=lambda a: tenancy.rls_status())
    policies = commands.add_parser("policies", help="the row-level security policies of schema public, with their expressions")
    policies.set_defaults(run=lambda a: tenancy.policies())


def run_isolation(args) -> object:
    report = tenants.tenant_isolation()
    leaking = report.loc[~report["ok"].astype(bool), "table"].tolist()
    print(f"isolation: {'FAILED on ' + ', '.join(leaking) if leaking else 'OK'} ({len(report)} tenant tables checked, nothing kept)", file=sys.stderr)
    return Report(report, exit_code=FAIL_EXIT if leaking else 0)
