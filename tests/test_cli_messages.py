"""What `copythat-ops` says when something is wrong: one line `error: <what>. Fix: <how>`, in flags, never an exception name."""

from __future__ import annotations

import argparse
import json
import re

import pandas as pd
import pytest
from sqlalchemy import text

import copythat_ops
import copythat_ops.monitor
from copythat_ops import jobs, migrations
from copythat_ops.cli import COMMANDS, parser
from copythat_ops.cli import args as cli_args
from copythat_ops.cli.failures import plain_failure
from copythat_ops.cli.output import emit
from copythat_ops.engine import get_engine, run_query
from copythat_ops.errors import InputError
from copythat_ops.seed import seed_database
from test_cli import run

EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning)\b")
DURATION_TYPES = {cli_args.duration, cli_args.positive_duration, cli_args.duration_or_none, cli_args.since}
DURATION_WORDS = ("older", "since", "freq", "window", "duration", "timeout", "interval", "bucket", "age")
TIMES = {(("monitor", "trends"), "--since")}  # named like a duration, but a point in time (a deploy's)


def one_line_error(result) -> str:
    """The stderr of a refused command: exit 2, one line, a fix, no exception name or usage dump."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ". Fix: " in lines[0], result.stderr
    assert not EXCEPTION_NAME.search(result.stderr) and "Traceback" not in result.stderr
    return lines[0]


def options(node: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()):
    """(command path, action) for every option of every command."""
    node = node or parser()
    for action in node._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, (*path, name))
        else:
            yield path, action


DURATION_OPTIONS = sorted(
    {(path, max(a.option_strings, key=len)) for path, a in options() if a.option_strings and a.type in DURATION_TYPES}
)


def test_every_option_that_takes_a_duration_checks_it():
    """An option named like a duration but read as plain text would accept `30` again."""
    named = {
        (path, max(a.option_strings, key=len))
        for path, a in options()
        if any(set(DURATION_WORDS) & set(option.lstrip("-").split("-")) for option in a.option_strings)
    }
    assert named - TIMES <= set(DURATION_OPTIONS), named - TIMES - set(DURATION_OPTIONS)
    assert (("jobs", "stuck"), "--older-than") in DURATION_OPTIONS and (("seed",), "--window") in DURATION_OPTIONS


@pytest.mark.parametrize(("path", "flag"), DURATION_OPTIONS, ids=[" ".join((*p, f)) for p, f in DURATION_OPTIONS])
def test_a_bare_number_is_refused_by_every_duration_option(path, flag):
    line = one_line_error(run(*path, flag, "30"))
    assert line == f"error: {flag} 30 has no unit. Fix: give a unit, e.g. 30min or 30s"


@pytest.mark.parametrize("given", [["--older-than", "-5min"], ["--older-than=-5min"]])
def test_a_negative_duration_is_refused_naming_the_flag(given):
    line = one_line_error(run("jobs", "stuck", *given))
    assert line == "error: --older-than -5min is negative. Fix: give a positive duration, e.g. 5min"


def test_python_names_the_parameter():
    with pytest.raises(InputError, match=r"^older_than '5' has no unit\. Fix: give a unit, e.g\. 5min or 5s$"):
        jobs.stuck_jobs(older_than="5")
    with pytest.raises(InputError, match=r"^timeout '30' has no unit"):
        run_query("SELECT 1", timeout="30")


ARGPARSE_ERRORS = [
    (["jobs", "requeue", "--id", "abc"], "error: --id must be a whole number, not abc. Fix: give a whole number of at least 1"),
    (["--format", "xml", "db", "check"], "error: unknown --format 'xml'. Fix: use one of: table, csv, json"),
    (["db", "check", "--format", "xml"], "error: unknown --format 'xml'. Fix: use one of: table, csv, json"),
    (["dbx", "check"], "error: unknown command 'dbx'. Fix: use one of: db, migrate, jobs, tokens, tenants, seed, monitor, notebooks, serve (see copythat-ops --help)"),
    (["jobs", "explode"], "error: unknown command 'jobs explode'. Fix: use one of:"),
    (["monitor", "cancel", "abc"], "error: PID must be a whole number, not abc. Fix:"),
    (["monitor", "indexes", "fancy"], "error: unknown view 'fancy'. Fix: use one of: usage, unused, duplicate, invalid, missing"),
    (["jobs", "cancel", "--id", "4"], "error: copythat-ops jobs cancel needs --reason. Fix: usage: copythat-ops jobs cancel"),
    (["jobs"], "error: copythat-ops jobs needs a command. Fix: give one of: summary"),
    (["db", "check", "--verbose"], "error: copythat-ops db check does not take --verbose. Fix: see copythat-ops db check --help"),
    (["jobs", "summary", "--by", "colour"], "error: unknown --by 'colour'. Fix: use one of: status, extraction_type, project"),
]


@pytest.mark.parametrize(("argv", "says"), ARGPARSE_ERRORS, ids=[" ".join(a) for a, _ in ARGPARSE_ERRORS])
def test_argparse_errors_are_one_line_with_a_fix(argv, says):
    assert one_line_error(run(*argv)).startswith(says)


@pytest.fixture(scope="module")
def seeded(db_url):
    migrations.upgrade("head", url=db_url)
    seed_database(400, 6, seed=2, window="2 days", engine=get_engine(db_url))
    return db_url


def test_summary_by_the_same_column_twice_counts_once(seeded):
    result = run("--format", "json", "jobs", "summary", "--by", "status", "status", url=seeded)
    assert result.returncode == 0, result.stderr
    rows = pd.DataFrame(json.loads(result.stdout))
    assert list(rows.columns[:2]) == ["status", "jobs"] and rows["jobs"].sum() == 400 and rows["status"].is_unique
    frame = jobs.job_summary(by=["status", "extraction_type", "status"], engine=get_engine(seeded))
    assert list(frame.columns[:3]) == ["status", "extraction_type", "jobs"] and frame["jobs"].sum() == 400


def test_library_errors_speak_in_flags(seeded):
    line = one_line_error(run("jobs", "requeue", "--id", "1", "--error-like", "timeout", url=seeded))
    assert "--id alone" in line and "--error-like" in line and "--project-id" in line
    assert "job_ids" not in line and "error_like" not in line and "project_id" not in line


def test_library_functions_are_pointed_to_as_commands(seeded):
    line = one_line_error(run("monitor", "cancel", "99999999", url=seeded))
    assert "`copythat-ops monitor activity long-running`" in line and "`copythat-ops monitor connections idle`" in line
    assert not re.search(r"\w\(\)", line)  # no Python call like long_running_queries()


def test_every_command_a_message_points_to_exists():
    for function, command in COMMANDS.items():
        assert callable(getattr(copythat_ops, function, None) or getattr(copythat_ops.monitor, function)), function
        parser().parse_args([w.replace("PID", "1") for w in command.split()[1:]])


def test_a_folder_that_cannot_be_written_is_named_with_its_flag(seeded):
    line = one_line_error(run("notebooks", "run", "--output-dir", "/proc/x", url=seeded))
    assert "/proc/x" in line and "--output-dir" in line.split(". Fix: ")[1]
    debug = run("notebooks", "run", "--output-dir", "/proc/x", url=seeded, env={"COPYTHAT_DEBUG": "1"})
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line


def test_database_failures_are_told_plainly_with_the_url_masked(server, seeded):
    engine = get_engine(server.password_url.set(database=seeded.database))
    with pytest.raises(Exception) as timed_out:
        run_query("SELECT pg_sleep(2)", engine=engine, timeout="100ms")
    message, code = plain_failure(timed_out.value, {}, {})
    assert code == 1 and message.startswith("a query on ") and "ran past its time limit" in message and ". Fix: " in message
    with engine.connect() as conn, pytest.raises(Exception) as lost:
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    message, code = plain_failure(lost.value, {}, {})
    assert message.startswith("cannot connect to ") and "copythat-ops db check" in message
    for said in (plain_failure(timed_out.value, {}, {})[0], message):
        assert not EXCEPTION_NAME.search(said)
        if server.password_url.password:
            assert server.password_url.password not in said


def test_file_and_unexpected_failures_are_plain_lines():
    missing = FileNotFoundError(2, "No such file or directory", "/nowhere/reports")
    assert plain_failure(missing, {"output_dir": "/nowhere/reports"}, {"output_dir": "--output-dir"}) == (
        "cannot use /nowhere/reports: does not exist. Fix: give --output-dir a path that exists or can be created",
        2,
    )
    message, code = plain_failure(KeyError("bucket"), {}, {})
    assert code == 1 and message.startswith("unexpected failure: 'bucket'. Fix: run again with COPYTHAT_DEBUG=1")
    assert not EXCEPTION_NAME.search(message)


def test_table_output_is_readable_and_fits_the_terminal(seeded):
    with get_engine(seeded).begin() as conn:
        conn.execute(text("CREATE TABLE counters (id serial PRIMARY KEY, note text)"))
        conn.execute(text("SELECT setval('counters_id_seq', 2146484000)"))  # 99.95 % of INTEGER
    result = run("monitor", "health", url=seeded, env={"COLUMNS": "100"})
    assert result.returncode == 3, result.stderr
    assert "e+0" not in result.stdout and not re.search(r"\bnan\b", result.stdout, re.I) and "None" not in result.stdout  # "tenant" holds "nan"
    assert "2,146,484,000" in result.stdout or "counters_id_seq" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100, result.stdout
    narrow = run("monitor", "health", url=seeded, env={"COLUMNS": "60"})  # too narrow for the columns: a block per check
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60, narrow.stdout
    assert re.search(r"^check +sequences$", narrow.stdout, re.M) and "counters_id_seq" in narrow.stdout


def test_emit_writes_numbers_and_gaps_readably(capsys):
    value = {"max_value": 2.146484e09, "checked": None, "ratio": float("nan"), "when": pd.NaT}
    emit(value)
    out = capsys.readouterr().out
    assert "2,146,484,000" in out and not re.search(r"e\+|nan|NaT|None", out)
    emit(value, "json")  # strict JSON: NaN is not JSON, null is
    assert json.loads(capsys.readouterr().out) == {"max_value": 2146484000.0, "checked": None, "ratio": None, "when": None}
