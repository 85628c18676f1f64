"""Benchmark of the CLI's start-up (not a test): `copythat-ops --help`, `db url` and `db status` against `alembic --help`.

Every command is a fresh process, as a user runs it. The commands run in
turn, round after round (each round in a new order), so a drift of the
machine's speed touches them all alike; a round ends with the ratio of each
to that round's `alembic --help`. Printed: each command's median and best
time, and the median of its ratios to `alembic --help`.
Targets: `--help` no slower than `alembic --help`, `db url` and `db status`
under 1.5 times it.

`db url` and `db status` read DATABASE_URL: --url (or DATABASE_URL), else an
embedded PostgreSQL started in a temporary folder, migrated to head, stopped
and removed at the end. The commands run in an empty temporary folder (no .env).

    .venv/bin/python benchmarks/startup.py                     # an embedded server of its own
    .venv/bin/python benchmarks/startup.py --runs 30 --url "$DATABASE_URL"
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BASELINE = "alembic --help"
COMMANDS = {
    BASELINE: [str(BIN / "alembic"), "--help"],
    "copythat-ops --help": [str(BIN / "copythat-ops"), "--help"],
    "copythat-ops db url": [str(BIN / "copythat-ops"), "db", "url"],
    "copythat-ops db status": [str(BIN / "copythat-ops"), "db", "status"],
}
TARGETS = {"copythat-ops --help": ("<=", 1.0), "copythat-ops db url": ("<", 1.5), "copythat-ops db status": ("<", 1.5)}


def run_once(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from start to exit of one run of `command`; a failing run stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    return seconds


def measure(runs: int, env: dict[str, str], cwd: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each command's times over `runs` rounds, and its ratio to the baseline in each round."""
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    ratios: dict[str, list[float]] = {name: [] for name in COMMANDS}
    order = list(COMMANDS)
    for name in order:  # warm-up: the operating system's file cache, Python's bytecode cache
        run_once(COMMANDS[name], env, cwd)
    rng = random.Random(0)
    for _ in range(runs):
        rng.shuffle(order)
        this_round = {name: run_once(COMMANDS[name], env, cwd) for name in order}
        for name, seconds in this_round.items():
            times[name].append(seconds)
            ratios[name].append(seconds / this_round[BASELINE])
    return times, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds: each command this many times (default 15)")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"), help="the database for db url / db status (default: DATABASE_URL, else an embedded server of its own)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="copythat-startup-"))
    workdir = folder / "work"
    workdir.mkdir()
    data_dir = folder / "pgdata"
    env = {name: value for name, value in os.environ.items() if not name.startswith("COPYTHAT_")}
    env["COPYTHAT_EMBEDDED_DIR"] = str(data_dir)  # a command that would start the embedded server starts this one
    started_server = False
    try:
        if args.url:
            env["DATABASE_URL"] = args.url
        else:
            from copythat_ops import embedded, migrations

            url = embedded.start(data_dir)
            started_server = True
            migrations.upgrade(url=url)
            env["DATABASE_URL"] = url.render_as_string(hide_password=False)
        times, ratios = measure(args.runs, env, workdir)
    finally:
        if started_server:
            embedded.stop(data_dir)
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{args.runs} rounds, each command a fresh process, in a new order each round; shared machine, figures vary run to run")
    print(f"{'command':<24} {'median s':>9} {'min s':>7} {'/ alembic':>10}  target")
    for name in COMMANDS:
        ratio = statistics.median(ratios[name])
        target = TARGETS.get(name)
        if target is None:
            verdict = ""
        else:
            sign, bound = target
            verdict = f"{sign} {bound:.1f}: {'met' if (ratio <= bound if sign == '<=' else ratio < bound) else 'missed'}"
        print(f"{name:<24} {statistics.median(times[name]):9.3f} {min(times[name]):7.3f} {ratio:10.2f}  {verdict}")


if __name__ == "__main__":
    main()
