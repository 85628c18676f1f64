"""`copythat-ops serve`: the application's HTTP face: /api/v1/db-test, /api/v1/health and Prometheus /metrics."""

from __future__ import annotations

from .args import positive_duration, whole
from .lazy import library

app = library("api.app", TOKEN_VAR="COPYTHAT_SERVE_TOKEN")
database = library("database", POOL_SIZE=5, MAX_OVERFLOW=10, POOL_TIMEOUT=5.0)


def register(groups) -> None:
    """Add the `serve` command."""
    serve = groups.add_parser(
        "serve",
        help="the application's HTTP face: /api/v1/db-test, /api/v1/health and Prometheus /metrics",
        description=(
            "Serve the database's HTTP face under uvicorn until interrupted. It binds 127.0.0.1 unless --host says "
            f"otherwise; another address requires a bearer token in the environment variable {app.TOKEN_VAR} "
            "(never on the command line), which every request must then send as Authorization: Bearer TOKEN."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; another needs $%s)" % app.TOKEN_VAR)
    serve.add_argument("--port", type=whole(0), default=8000, help="TCP port (default 8000)")
    serve.add_argument("--targets", metavar="FILE", help="targets file of named database URLs for /metrics?target=NAME")
    serve.add_argument("--pool-size", type=whole(1), default=database.POOL_SIZE, help=f"connections kept open (default {database.POOL_SIZE})")
    serve.add_argument("--max-overflow", type=whole(0), default=database.MAX_OVERFLOW, help=f"extra connections under load (default {database.MAX_OVERFLOW})")
    serve.add_argument(
        "--pool-timeout", type=positive_duration, default=f"{database.POOL_TIMEOUT:g}s",
        help=f"how long a request waits for a free connection before HTTP 503 'pool exhausted' (default {database.POOL_TIMEOUT:g}s)",
    )  # fmt: skip
    serve.set_defaults(run=run)


def run(args) -> str:
    from datetime import timedelta

    from ..validate import duration

    app.serve(
        args.host,
        args.port,
        targets_file=args.targets,
        pool_size=args.pool_size,
        max_overflow=args.max_overflow,
        pool_timeout=duration(args.pool_timeout, name="--pool-timeout") / timedelta(seconds=1),
    )
    return "stopped"
