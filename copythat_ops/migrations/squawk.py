"""Migration lint: every revision's offline SQL, upgrade and downgrade, checked by squawk.

squawk (the `squawk-cli` package, a real PostgreSQL migration linter) reads the
SQL exactly as `sql()` writes it for one revision, so it sees the
toolkit's own context: env.py's `SET lock_timeout` first, each revision in its
own `BEGIN ... COMMIT`, and the statements of an `autocommit_block` outside any
transaction (where squawk asks for `IF NOT EXISTS` guards and CONCURRENTLY).

A revision that must do something squawk flags says so, with the reason, in a
module-level dict of the revision file; lint passes it to squawk as its own
`-- squawk-ignore-file RULE` comment, so the rule is off for that revision only:

    SQUAWK_IGNORE = {"prefer-text-field": "the initial schema exactly as the setup guide gives it"}

Example:
    >>> from copythat_ops.migrations.squawk import lint
    >>> lint(["c1a36d61036a"]).empty      # passes: its squawk exceptions are justified in SQUAWK_IGNORE
    True
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import pandas as pd
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from ..errors import ConfigError, InputError, MigrationError
from .scripts import alembic_config
from .verbs import sql

COLUMNS = ["revision", "direction", "rule", "line", "message", "help", "statement"]
IGNORE_ATTRIBUTE = "SQUAWK_IGNORE"
DIRECTIONS = ("upgrade", "downgrade")
CONFIG = ".squawk.toml"  # beside alembic.ini
# A downgrade exists to remove what its upgrade added: squawk's rules against dropping
# (which break clients still using the object) are off for downgrades. `migrate downgrade`
# asks for --yes and says that data goes with them.
DOWNGRADE_DROPS = (
    "ban-drop-column",
    "ban-drop-constraint",
    "ban-drop-function",
    "ban-drop-index",
    "ban-drop-schema",
    "ban-drop-sequence",
    "ban-drop-table",
    "ban-drop-trigger",
    "ban-drop-type",
    "ban-drop-view",
)


def squawk_binary() -> str:
    """Return the path of the squawk executable (installed with the `squawk-cli` package).

    Example:
        >>> Path(squawk_binary()).name
        'squawk'
    """
    beside = Path(sysconfig.get_path("scripts")) / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if not found:
        raise ConfigError("squawk is not installed", fix="install the toolkit's dependencies: pip install -e . (squawk-cli ships the squawk binary)")
    return found


def revision_sql(revision: str, direction: str = "upgrade") -> str:
    """Return the offline SQL of one revision: its upgrade from the revision before, or its downgrade back to it.

    Example:
        >>> "CREATE INDEX CONCURRENTLY" in revision_sql("3ca76145171f")
        True
        >>> "DROP TABLE job_action_audit" in revision_sql("2e88296926d0", "downgrade")
        True
    """
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be upgrade or downgrade (got {direction!r})", params="direction")
    script = _revision(revision)
    before = _before(script)
    if direction == "upgrade":
        return sql(before, script.revision)
    return sql(script.revision, before or "base")


def ignored_rules(revision: str) -> dict[str, str]:
    """Return the squawk rules a revision turns off for itself, each with its reason (its `SQUAWK_IGNORE`).

    Example:
        >>> sorted(ignored_rules("c1a36d61036a"))[:2]
        ['prefer-bigint-over-int', 'prefer-identity']
    """
    script = _revision(revision)
    rules = getattr(script.module, IGNORE_ATTRIBUTE, None) or {}
    if not isinstance(rules, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in rules.items()):
        raise MigrationError(
            f"revision {script.revision}: {IGNORE_ATTRIBUTE} must map each squawk rule to the reason it does not apply",
            fix=f'write it like {IGNORE_ATTRIBUTE} = {{"prefer-text-field": "why this revision needs it"}} in {Path(script.path).name}',
        )
    return dict(rules)


def lint(revisions: list[str] | str | None = None, *, pg_version: str | None = None) -> pd.DataFrame:
    """Return squawk's findings on each revision's offline SQL, upgrade and downgrade (empty when all pass).

    Columns: revision, direction, rule, line (in that revision's `sql()` script),
    message, help, statement (the SQL line found). `revisions` defaults to every revision;
    `pg_version` (e.g. "15") lets squawk judge for that server version (default: its newest).

    Example:
        >>> list(lint(["c0db8df4a585"]).columns)
        ['revision', 'direction', 'rule', 'line', 'message', 'help', 'statement']
    """
    wanted = _selected(revisions)
    binary = squawk_binary()
    with tempfile.TemporaryDirectory(prefix="copythat-lint-") as folder:
        files: dict[str, tuple[str, str, list[str]]] = {}
        for script in wanted:
            ignores = sorted(ignored_rules(script.revision))
            for direction in DIRECTIONS:
                text = revision_sql(script.revision, direction)
                name = f"{script.revision}.{direction}.sql"
                rules = ignores + list(DOWNGRADE_DROPS if direction == "downgrade" else ())
                footer = "".join(f"\n-- squawk-ignore-file {rule}" for rule in rules)
                Path(folder, name).write_text(text + footer + "\n")
                files[name] = (script.revision, direction, text.splitlines())
        command = [binary, "--reporter", "json", "--no-assume-in-transaction"]
        config = _config()
        if config:
            command.append(f"--config={config}")
        if pg_version:
            command.append(f"--pg-version={pg_version}")
        done = subprocess.run([*command, *files], cwd=folder, capture_output=True, text=True, env=_squawk_env())
    return _findings(done, files)


def _findings(done: subprocess.CompletedProcess, files: dict) -> pd.DataFrame:
    try:
        found = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise MigrationError(f"squawk did not run ({detail[-1] if detail else f'exit {done.returncode}'})", fix="reinstall squawk-cli: pip install -e .") from None
    rows = []
    for item in found:
        revision, direction, lines = files[Path(item["file"]).name]
        line = int(item["line"]) + 1  # squawk counts lines from 0
        rows.append(
            {
                "revision": revision,
                "direction": direction,
                "rule": item["rule_name"],
                "line": line,
                "message": item["message"],
                "help": item.get("help") or "",
                "statement": lines[line - 1].strip() if 0 < line <= len(lines) else "",
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    order = {name: i for i, name in enumerate(dict.fromkeys(r for r, _, _ in files.values()))}
    frame["_order"] = frame["revision"].map(order)
    return frame.sort_values(["_order", "direction", "line", "rule"], ascending=[True, False, True, True]).drop(columns="_order").reset_index(drop=True)


def _config() -> str | None:
    found = Path(alembic_config().config_file_name).parent / CONFIG
    return str(found) if found.is_file() else None


def _squawk_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUAWK_")}
    env["NO_COLOR"] = "1"
    return env


def _script_directory() -> ScriptDirectory:
    try:
        return ScriptDirectory.from_config(alembic_config())
    except (CommandError, RevisionError) as exc:
        raise MigrationError(str(exc), fix="see `copythat-ops migrate history`") from None


def all_revisions() -> list[Script]:
    """Every revision, oldest first; a revision file that does not load is named with its error."""
    script = _script_directory()
    try:
        return list(reversed(list(script.walk_revisions())))
    except SyntaxError as exc:
        raise MigrationError(
            f"revision file {Path(exc.filename or '?').name} has a syntax error at line {exc.lineno} ({exc.msg})",
            fix="correct that line of the file (python -m py_compile FILE shows it), then run again",
        ) from None
    except (CommandError, RevisionError) as exc:
        raise MigrationError(str(exc), fix="see `copythat-ops migrate history`") from None


def _revision(revision: str) -> Script:
    by_id = {s.revision: s for s in all_revisions()}
    if revision in by_id:
        return by_id[revision]
    matches = [s for rev, s in by_id.items() if rev.startswith(revision)] if revision else []
    if len(matches) == 1:
        return matches[0]
    raise InputError(
        f"no migration revision '{revision}'",
        fix=f"name one of: {', '.join(by_id) or 'none'} (see `copythat-ops migrate history`)",
        params="revisions",
    )


def _selected(revisions: list[str] | str | None) -> list[Script]:
    every = all_revisions()
    if not revisions:
        return every
    names = [revisions] if isinstance(revisions, str) else list(revisions)
    chosen = {_revision(name).revision for name in names}
    return [s for s in every if s.revision in chosen]


def _before(script: Script) -> str | None:
    down = script.down_revision
    if down is None:
        return None
    if not isinstance(down, str):
        raise MigrationError(
            f"revision {script.revision} merges {', '.join(down)}; lint checks one step at a time",
            fix="lint the revisions it merges",
        )
    return down
