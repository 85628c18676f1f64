"""Restore drills: restore the newest backup into a scratch database, check it is whole, time it, and keep the result.

A backup that was never restored is not a backup. `drill()` takes the newest
backup of the database, of any kind (a pg_dump file of `backups()`, a Neon
snapshot, a Neon backup branch of `neon.snapshot()`), or the one given. A file
is restored into a scratch database on the same server and verified against
what `backup()` counted in the very snapshot it dumped; a Neon snapshot or
backup branch is restored into a new branch and verified against a branch of
its source as of the backup's point in Neon's history. Both check the revision, and each
table's row count and checksum over its primary keys (`dumps.CHECKSUM`: a sum
of hashes, order-independent, one pass without a sort). It measures how long the
restore took (`rto_seconds`, the recovery time) and how old the backup was when
the drill ran (`rpo_seconds`: what a restore would lose now), records the result
in the history table `copythat_history.drills` (`drills()` reads it back; health's
`last_drill` judges the newest), marks the backup's figures file so that retention
keeps the newest backup that passed, and drops the scratch database whatever
happens.

The scratch database is `SOURCE_drill_HOST_PID_XXXX` (the Neon branches:
`drill-HOST-PID-XXXX-restored | -reference`): a drill killed half-way leaves one
whose run the next drill can tell is gone; it is dropped then (a
`LeftoverWarning` says so), while one of another machine is only named.

Example:
    >>> from copythat_ops.recovery import backup, drill
    >>> taken = backup()
    >>> report = drill()
    >>> report.attrs["status"], report.attrs["backup"] == taken["path"].name
    ('passed', True)
"""

from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ..config import mask_text
from ..engine import connection, database_url, dispose_engines, get_engine, run_query
from ..errors import ConnectError, CopythatError, InputError
from . import dumps
from .dumps import LeftoverWarning
from .pgtools import HOST, host_tag, mark, parse_mark, run_is_alive

SCHEMA = "copythat_history"
REVISION = "7d1e5c0a9b3f"
COLUMNS = ["schema", "table", "expected_rows", "rows", "expected_checksum", "checksum", "ok", "problem"]
HISTORY_COLUMNS = ["id", "source", "backup", "backup_kind", "backup_taken_at", "revision", "started_at", "restore_seconds",
                   "verify_seconds", "rpo_seconds", "status", "tables_checked", "tables_failed", "detail", "host"]  # fmt: skip
# SOURCE_drill_HOST_PID_XXXX: the scratch database of a run, which the next run can tell is gone.
_SCRATCH = re.compile(r"^(?P<source>.*)_drill_(?P<host>[0-9a-f]{6})_(?P<pid>\d+)_[0-9a-f]{4}$")


class DrillNotRecorded(UserWarning):
    """A drill ran but its result could not be written to the history (the drills revision is missing, or the history database is away)."""


def scratch_name(source: str) -> str:
    """Return the name of a new scratch database for a drill of `source`: `SOURCE_drill_HOST_PID_XXXX`, at most 63 characters.

    Example:
        >>> bool(_SCRATCH.match(scratch_name("copythat")))
        True
    """
    tail = f"_drill_{host_tag()}_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    return source[: 63 - len(tail)] + tail


def drill(source: str | os.PathLike | None = None, *, url: URL | str | None = None, folder: str | os.PathLike | None = None, record: bool = True) -> pd.DataFrame:
    """Restore a backup into a scratch database (or Neon branch), verify it, drop it; return one row per table checked.

    `source` chooses the backup; by default the newest of any kind: the pg_dump files of the
    database at `url` (default: the configured one) in `folder` (default `backup_dir()`) and, where
    NEON_API_KEY and NEON_PROJECT_ID are set, the project's Neon snapshots and backup branches
    (`neon.snapshot()`, `db backup --neon`). A kind asks for the newest of it: "pg_dump",
    "neon_snapshot", "neon_branch", or "neon" (snapshot or backup branch); "neon:ID" names a Neon
    snapshot or branch (id or name), "neon_snapshot:ID" / "neon_branch:ID" one of that kind;
    anything else is a backup file.

    A pg_dump file is restored into a scratch database on the server of `url` and verified against
    the figures `backup()` wrote beside it: the revision and, per table, rows and the primary-key
    checksum (`expected_*` columns: at backup time; the others: as restored). A backup without
    figures (made by an earlier version) fails the drill: nothing says what it should hold. A Neon
    snapshot is restored into a new branch, a backup branch into a new child branch of it; either is
    verified against a branch of its source as of the backup's point (Neon's history: two
    independent ways back to the same moment; at the LSN, else at the end of the whole second Neon
    stamps the time with, so a write in that second shows as a difference), and both branches are
    deleted after. A branch without a compute gets one (`Neon.read_write_endpoint`): the restore
    time counts until the restored data can be connected to. `record=False` leaves the history and
    the figures file alone.

    Columns: schema, table, expected_rows, rows, expected_checksum, checksum, ok, problem.
    `.attrs`: status ("passed" / "failed"), source (the database), backup (file name, snapshot or branch
    id), backup_kind (pg_dump, neon_snapshot, neon_branch), backup_taken_at, revision, expected_revision,
    rto_seconds (the restore), verify_seconds, rpo_seconds (the backup's age when the drill started),
    scratch_database (dropped or deleted), detail, drill_id (the history row, None when not recorded).
    A failed verification is a result, not an error; a backup that cannot be restored is an error
    (ConfigError / InputError / NeonError) and is recorded as failed first.

    Example:
        >>> taken = dumps.backup()
        >>> report = drill(record=False)
        >>> bool(report["ok"].all()), report.attrs["rto_seconds"] > 0, report.attrs["backup_kind"]
        (True, True, 'pg_dump')
    """
    target = database_url() if url is None else get_engine(url).url
    kind, chosen = _source(source, target, folder)
    if kind != PG_DUMP:
        return _drill_neon(kind, chosen, target, record)
    path = chosen
    started_at = datetime.now(UTC)
    figures = dumps.backup_figures(path)
    taken_at = _taken_at(path, figures)
    attrs = {
        "status": "failed", "source": target.database, "backup": path.name, "backup_kind": PG_DUMP, "backup_taken_at": taken_at,
        "revision": None, "expected_revision": (figures or {}).get("revision", _named_revision(path)),
        "rto_seconds": None, "verify_seconds": None, "rpo_seconds": round((started_at - taken_at).total_seconds(), 3),
        "scratch_database": None, "detail": "", "drill_id": None,
    }  # fmt: skip
    leftover_scratch(target)
    scratch = scratch_name(target.database)
    attrs["scratch_database"] = scratch
    frame = pd.DataFrame(columns=COLUMNS)
    try:
        started = time.perf_counter()
        try:
            dumps.restore(path, database=scratch, url=target)
        except CopythatError as exc:
            attrs["detail"] = f"the restore failed: {exc.problem}"
            _finish(attrs, frame, started_at, path, record, target)
            raise
        attrs["rto_seconds"] = round(time.perf_counter() - started, 3)
        dumps._admin(target, f'COMMENT ON DATABASE "{scratch}" IS :note', {"note": mark("drill", f"of {path.name}")})
        checked = time.perf_counter()
        revision, restored = _restored(target.set(database=scratch))
        attrs["verify_seconds"] = round(time.perf_counter() - checked, 3)
        attrs["revision"] = revision
        frame = _compare(figures, restored)
        problems = []
        if figures is None:
            problems.append(f"no figures were recorded with this backup ({dumps.figures_path(path).name} is missing): only backups taken by backup() can be verified")
        if revision != attrs["expected_revision"]:
            problems.append(f"revision {revision or 'none'} restored, {attrs['expected_revision'] or 'none'} at backup time")
        bad = frame[~frame["ok"]]
        if len(bad):
            problems.append(f"{len(bad)} of {len(frame)} tables differ: " + "; ".join(f"{r.schema}.{r.table} {r.problem}" for r in bad.head(3).itertuples())
                            + (f"; and {len(bad) - 3} more" if len(bad) > 3 else ""))  # fmt: skip
        attrs["status"] = "failed" if problems else "passed"
        attrs["detail"] = "; ".join(problems) or f"{len(frame)} tables match (rows and primary-key checksums) at revision {revision or 'none'}"
    finally:
        _drop_scratch(target, scratch)
    _finish(attrs, frame, started_at, path, record, target)
    return frame


PG_DUMP, NEON_SNAPSHOT, NEON_BRANCH = "pg_dump", "neon_snapshot", "neon_branch"
NEON = "neon"  # either Neon kind
KINDS = (PG_DUMP, NEON_SNAPSHOT, NEON_BRANCH)
# drill-HOST-PID-XXXX: the scratch branches of a Neon drill, which the next drill can tell are gone.
_SCRATCH_BRANCH = re.compile(r"^drill-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{4}(?:-(?:restored|reference))?$")


class NeonNotConsidered(UserWarning):
    """The newest backup was chosen without the Neon project's snapshots and backup branches (its API could not be read)."""


def _source(source, target: URL, folder) -> tuple[str, object]:
    """(kind, what to drill): a Path for pg_dump, a dict of the Neon snapshot / branch (with a `client`) otherwise."""
    head, _, name = (source or "").partition(":") if isinstance(source, str) else ("", "", "")
    if source is not None and (head not in (NEON, NEON_SNAPSHOT, NEON_BRANCH) and source != PG_DUMP):
        return PG_DUMP, _chosen(source, target, folder)
    if source == PG_DUMP:
        return PG_DUMP, _chosen(None, target, folder)
    from .neon import API_KEY_VAR, PROJECT_VAR, Neon, setting

    wanted = (head,) if head in (NEON_SNAPSHOT, NEON_BRANCH) else (NEON_SNAPSHOT, NEON_BRANCH)
    if source is None:  # the newest of any kind; Neon's only where it is configured
        candidates = []
        listed = dumps.backups(folder)
        mine = listed[listed["database"] == target.database]
        if not mine.empty:
            path = Path(mine["path"].iloc[0])
            candidates.append((_taken_at(path, dumps.backup_figures(path)), PG_DUMP, path))
        if setting(API_KEY_VAR) and setting(PROJECT_VAR):
            try:
                candidates += [(item["taken_at"], item["kind"], item) for item in _neon_backups(Neon(), wanted)[:1]]
            except CopythatError as exc:
                warnings.warn(f"the Neon project's snapshots and backup branches were not considered ({exc.problem}); drilling the newest backup file",
                              NeonNotConsidered, stacklevel=3)
        if not candidates:
            where = dumps.backup_dir(folder)
            raise InputError(
                f"no backup of database {target.database} in {where}" + (" nor in the Neon project" if setting(API_KEY_VAR) and setting(PROJECT_VAR) else "") + " to drill",
                fix="take one first with backup() (`copythat-ops db backup`), or name a backup file",
                params="source",
            )
        taken_at, kind, chosen = max(candidates, key=lambda c: c[0])
        return kind, chosen
    client = Neon()
    name = name or None
    found = _neon_backups(client, wanted, name)
    if not found:
        branch = "branch" if name else "backup branch"  # a branch named may be any branch; the newest is of the backup branches
        what = {(NEON_SNAPSHOT,): "Neon snapshot", (NEON_BRANCH,): f"Neon {branch}"}.get(wanted, f"Neon snapshot or {branch}")
        raise InputError(
            f"no {what} {name} in project {client.project_id}" if name else f"no {what} in project {client.project_id} to drill",
            fix=("name one listed by `copythat-ops db snapshot list` (snapshots) or Neon().branches()" if name else
                 "take one with `copythat-ops db snapshot create` (a snapshot) or `copythat-ops db backup --neon` (a backup branch)"),
            params="source",
        )
    return found[0]["kind"], found[0]


def _neon_backups(client, kinds: tuple[str, ...], name: str | None = None) -> list[dict]:
    """The project's Neon snapshots and backup branches of `kinds`, newest first (only `name`, an id or name, when given)."""
    found = []
    if NEON_SNAPSHOT in kinds:
        for snap in client.snapshots().to_dict("records"):
            if name and name not in (snap["id"], snap["name"]):
                continue
            at = pd.Timestamp(_given(snap.get("timestamp")) or snap["created_at"])
            found.append({"kind": NEON_SNAPSHOT, "id": str(snap["id"]), "taken_at": _utc(at), "parent_id": str(snap["source_branch_id"]),
                          "lsn": _given(snap.get("lsn")), "client": client})
    if NEON_BRANCH in kinds:
        if name:  # a branch named: any branch but the default one and a drill's own scratch
            branches = client.branches()
            branches = branches[((branches["id"] == name) | (branches["name"] == name)) & ~branches["default"] & branches["parent_id"].notna()]
            branches = branches[~branches["name"].astype(str).str.match(_SCRATCH_BRANCH.pattern)]
        else:
            branches = client.backup_branches()
        for row in branches.to_dict("records"):
            stamped = _given(row.get("parent_timestamp")) or row["created_at"]
            found.append({"kind": NEON_BRANCH, "id": str(row["id"]), "name": row["name"], "taken_at": _utc(pd.Timestamp(stamped)),
                          "parent_id": str(row["parent_id"]), "lsn": _given(row.get("parent_lsn")), "client": client})
    return sorted(found, key=lambda item: item["taken_at"], reverse=True)


def _given(value):
    """A value of a listing, None when it is missing (None, NaN, NaT or empty)."""
    return None if value is None or value == "" or (not isinstance(value, str) and pd.isna(value)) else value


def _utc(at: pd.Timestamp) -> datetime:
    return (at.tz_localize(UTC) if at.tzinfo is None else at.tz_convert(UTC)).to_pydatetime()


def _drill_neon(kind: str, backup: dict, target: URL, record: bool) -> pd.DataFrame:
    """Drill a Neon snapshot (restored into a new branch) or backup branch (a new child branch of it) against a branch of
    its source as of the backup's point; both scratch branches are deleted whatever happens."""
    from . import pitr

    client = backup["client"]
    started_at = datetime.now(UTC)
    taken_at = backup["taken_at"]
    when = "the snapshot's time" if kind == NEON_SNAPSHOT else "the branch's point"
    attrs = {
        "status": "failed", "source": target.database, "backup": backup["id"], "backup_kind": kind, "backup_taken_at": taken_at,
        "revision": None, "expected_revision": None, "rto_seconds": None, "verify_seconds": None,
        "rpo_seconds": round((started_at - taken_at).total_seconds(), 3), "scratch_database": None, "detail": "", "drill_id": None,
    }  # fmt: skip
    _leftover_branches(client)
    scratch = f"drill-{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    attrs["scratch_database"] = f"{scratch}-restored"
    made: list[str] = []
    frame = pd.DataFrame(columns=COLUMNS)
    stage = "the restore"
    try:
        started = time.perf_counter()
        dispose_engines()  # hold no idle connection to a branch Neon copies
        # each branch is noted before its operations are waited on: one whose operation fails is deleted too
        if kind == NEON_SNAPSHOT:
            restored = client.restore_snapshot(backup["id"], name=f"{scratch}-restored", wait=False)
            operations = restored.pop("operations", [])
        else:  # a backup branch is restored the way Neon restores one: a new branch of it, with a compute
            answer = client.create_branch(f"{scratch}-restored", parent_id=backup["id"], endpoint=True, wait=False)
            restored, operations = answer["branch"], answer.get("operations", [])
        made.append(restored["id"])
        client.wait(operations)
        restored_url = pitr.branch_url(restored["id"], client=client, url=target)  # gives it a compute when it has none
        _reachable(restored_url)
        attrs["rto_seconds"] = round(time.perf_counter() - started, 3)
        stage = f"the reference branch (of {backup['parent_id']} as of {when})"
        # at the backup's LSN when Neon gives one; else at the end of the second its time is stamped with (Neon's times are whole seconds)
        end_of_second = taken_at.replace(microsecond=0) + timedelta(seconds=1) - timedelta(microseconds=1)
        point = {"parent_lsn": backup["lsn"]} if backup.get("lsn") else {"parent_timestamp": end_of_second.isoformat().replace("+00:00", "Z")}
        answer = client.create_branch(f"{scratch}-reference", parent_id=backup["parent_id"], wait=False, **point)
        reference = answer["branch"]
        made.append(reference["id"])
        client.wait(answer.get("operations", []))
        checked = time.perf_counter()
        stage = "the verification"
        revision, found = _restored(restored_url)
        expected_revision, expected = _restored(pitr.branch_url(reference["id"], client=client, url=target))
        attrs["verify_seconds"] = round(time.perf_counter() - checked, 3)
        attrs["revision"], attrs["expected_revision"] = revision, expected_revision
        frame = _compare({"tables": expected}, found)
        problems = []
        if revision != expected_revision:
            problems.append(f"revision {revision or 'none'} restored, {expected_revision or 'none'} at {when}")
        bad = frame[~frame["ok"]]
        if len(bad):
            problems.append(f"{len(bad)} of {len(frame)} tables differ: " + "; ".join(f"{r.schema}.{r.table} {r.problem}" for r in bad.head(3).itertuples())
                            + (f"; and {len(bad) - 3} more" if len(bad) > 3 else ""))  # fmt: skip
        attrs["status"] = "failed" if problems else "passed"
        attrs["detail"] = "; ".join(problems).replace("at backup time", f"at {when}") or (
            f"{len(frame)} tables match (rows and primary-key checksums) a branch as of {when}, at revision {revision or 'none'}")
    except CopythatError as exc:
        attrs["detail"] = attrs["detail"] or f"{stage} failed: {exc.problem}"
        frame.attrs.update(attrs)
        if record:
            attrs["drill_id"] = frame.attrs["drill_id"] = _record(attrs, frame, started_at, target)
        raise
    finally:
        dispose_engines()  # no session of ours on a branch being deleted
        for branch_id in made:
            try:
                client.delete_branch(branch_id)
            except CopythatError as exc:
                warnings.warn(f"the drill's Neon branch {branch_id} could not be deleted ({exc.problem}); the next drill deletes it", LeftoverWarning, stacklevel=3)
        dispose_engines()
    frame.attrs.update(attrs)
    if record:
        attrs["drill_id"] = frame.attrs["drill_id"] = _record(attrs, frame, started_at, target)
    return frame


def _reachable(url: URL) -> None:
    """Connect once (the restored data can be reached: the end of the restore time); a refusal is a ConnectError."""
    engine = get_engine(url)
    try:
        with connection(engine) as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _leftover_branches(client) -> None:
    """Delete the scratch branches of earlier Neon drills of this machine whose run is gone; name those of other machines."""
    for row in client.branches().itertuples():
        named = _SCRATCH_BRANCH.match(str(row.name))
        if not named:
            continue
        if named["host"] != host_tag():
            warnings.warn(f"the Neon branch {row.name} ({row.id}) is a drill's of another machine; when that drill is over, delete it", LeftoverWarning, stacklevel=3)
            continue
        if run_is_alive(int(named["pid"])):
            continue
        client.delete_branch(row.id)
        warnings.warn(f"deleted the Neon branch {row.name} ({row.id}) left by an interrupted drill (pid {named['pid']}, gone)", LeftoverWarning, stacklevel=3)


def _finish(attrs: dict, frame: pd.DataFrame, started_at: datetime, path: Path, record: bool, target: URL) -> None:
    frame.attrs.update(attrs)
    if not record:
        return
    dumps.record_drill(path, status=attrs["status"], at=started_at)
    attrs["drill_id"] = frame.attrs["drill_id"] = _record(attrs, frame, started_at, target)


def summary(report: pd.DataFrame) -> str:
    """One line on a drill: passed or failed, the backup, RTO and RPO, and what differed.

    Example:
        >>> summary(_example())
        'drill passed: db__abc__20261130T120000Z.dump restored in 1.5 s (RTO); it was 2.0 h old (RPO); 3 tables match (rows and primary-key checksums) at revision abc'
    """
    a = report.attrs
    restored = f"restored in {a['rto_seconds']:.1f} s (RTO)" if a.get("rto_seconds") is not None else "not restored"
    return f"drill {a['status']}: {a['backup']} {restored}; it was {_age(a['rpo_seconds'])} old (RPO); {a['detail']}"


def _example() -> pd.DataFrame:
    frame = pd.DataFrame(columns=COLUMNS)
    frame.attrs.update({"status": "passed", "backup": "db__abc__20261130T120000Z.dump", "rto_seconds": 1.5, "rpo_seconds": 7200.0,
                        "detail": "3 tables match (rows and primary-key checksums) at revision abc"})  # fmt: skip
    return frame


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _chosen(source, target: URL, folder) -> Path:
    if source is not None:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"no backup file {path}", fix="name a file listed by backups() (`copythat-ops db backups`)", params="source")
        return path
    listed = dumps.backups(folder)
    mine = listed[listed["database"] == target.database]
    if mine.empty:
        where = dumps.backup_dir(folder)
        raise InputError(
            f"no backup of database {target.database} in {where} to drill",
            fix="take one first with backup() (`copythat-ops db backup`), or name a backup file",
            params="source",
        )
    return Path(mine["path"].iloc[0])


def _taken_at(path: Path, figures: dict | None) -> datetime:
    if figures and figures.get("taken_at"):
        return datetime.fromisoformat(figures["taken_at"]).astimezone(UTC)
    match = dumps._NAME.match(path.name)
    if match:
        return datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _named_revision(path: Path) -> str | None:
    match = dumps._NAME.match(path.name)
    if not match or match["revision"] == "base":
        return None
    return match["revision"].replace("+", ", ")


def _restored(scratch: URL) -> tuple[str | None, list[dict]]:
    """The revision and the figures of the restored database, read in one REPEATABLE READ transaction."""
    engine = get_engine(scratch)
    try:
        with connection(engine) as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                conn.execute(text("SELECT set_config('statement_timeout', :s, true)"), {"s": dumps.FIGURES_TIMEOUT})
                heads = MigrationContext.configure(conn).get_current_heads()
                found = dumps.table_figures(conn)
    finally:
        engine.dispose()
    return ", ".join(heads) or None, found


def _compare(figures: dict | None, restored: list[dict]) -> pd.DataFrame:
    expected = {(t["schema"], t["table"]): t for t in (figures or {}).get("tables", [])}
    found = {(t["schema"], t["table"]): t for t in restored}
    rows = []
    for key in sorted(set(expected) | set(found)):
        want, got = expected.get(key), found.get(key)
        problem = ""
        if figures is None:
            problem = "nothing to compare with"
        elif want is None:
            problem = "not in the backup's figures"
        elif got is None:
            problem = "missing from the restore"
        elif want["rows"] != got["rows"]:
            problem = f"{got['rows']} rows restored, {want['rows']} at backup time"
        elif want["checksum"] != got["checksum"]:
            problem = "primary keys differ (checksum)"
        rows.append({
            "schema": key[0], "table": key[1],
            "expected_rows": None if want is None else want["rows"], "rows": None if got is None else got["rows"],
            "expected_checksum": None if want is None else want["checksum"], "checksum": None if got is None else got["checksum"],
            "ok": not problem, "problem": problem,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["ok"] = frame["ok"].astype(bool)
    return frame


def _record(attrs: dict, frame: pd.DataFrame, started_at: datetime, target: URL) -> int | None:
    """Write the drill into copythat_history.drills (of COPYTHAT_HISTORY_URL's database, else the drilled one); None with a warning when it cannot."""
    from ..monitor.history import history_engine

    try:
        engine = history_engine() or get_engine(target)
        found = run_query(
            f"""
            INSERT INTO {SCHEMA}.drills (source, backup, backup_kind, backup_taken_at, revision, started_at, restore_seconds, verify_seconds,
                                        rpo_seconds, status, tables_checked, tables_failed, detail, host)
            VALUES (:source, :backup, :backup_kind, :backup_taken_at, :revision, :started_at, :restore_seconds, :verify_seconds,
                    :rpo_seconds, :status, :tables_checked, :tables_failed, :detail, :host)
            RETURNING id
            """,
            {key: attrs[key] for key in ("source", "backup", "backup_kind", "backup_taken_at", "revision", "verify_seconds", "rpo_seconds", "status", "detail")}
            | {"restore_seconds": attrs["rto_seconds"], "started_at": started_at, "tables_checked": len(frame), "tables_failed": int((~frame["ok"]).sum()), "host": HOST},
            name="recovery.drill_record",
            engine=engine,
            read_only=False,
            timeout="10s",
        )
    except (CopythatError, DBAPIError) as exc:  # the drill's result stands; where it could not be kept is said
        reason = exc.problem if isinstance(exc, CopythatError) else mask_text(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
        missing = "drills" in reason and ("does not exist" in reason or "relation" in reason)
        fix = f"apply revision {REVISION} (copythat-ops migrate upgrade) to the history's database" if missing else "check the history database is reachable"
        warnings.warn(f"the drill's result was not recorded in {SCHEMA}.drills ({reason}); {fix}", DrillNotRecorded, stacklevel=3)
        return None
    return int(found["id"].iloc[0])


def drills(*, source: str | None = None, limit: int = 100, engine=None) -> pd.DataFrame:
    """Return the recorded drills of the database (default: the configured one's name), newest first.

    Columns: id, source, backup, backup_kind, backup_taken_at, revision, started_at,
    restore_seconds (RTO), verify_seconds, rpo_seconds, status, tables_checked, tables_failed, detail, host.

    Example:
        >>> drills().columns.tolist()[:4]
        ['id', 'source', 'backup', 'backup_kind']
    """
    from ..monitor.history import history_engine
    from ..validate import number

    number(limit, name="limit", minimum=1, integer=True)
    name = source or (database_url().database if engine is None else engine.url.database)
    engine = engine or history_engine() or get_engine()
    columns = ", ".join(HISTORY_COLUMNS)
    try:
        return run_query(
            f"""
            SELECT {columns}
            FROM {SCHEMA}.drills
            WHERE source = :source
            ORDER BY started_at DESC, id DESC
            LIMIT :limit
            """,
            {"source": name, "limit": int(limit)},
            name="recovery.drills",
            engine=engine,
        )
    except Exception as exc:
        if "drills" in str(getattr(exc, "orig", exc)) and "does not exist" in str(getattr(exc, "orig", exc)):
            from ..errors import MigrationError

            raise MigrationError(
                f"no drill history in database {engine.url.database}: {SCHEMA}.drills does not exist",
                fix=f"apply revision {REVISION} (copythat-ops migrate upgrade)",
            ) from None
        raise


def leftover_scratch(server: URL | str | None = None) -> list[dict]:
    """Find scratch databases of earlier drills of this database whose run is over: drop those of this machine, name the others.

    Returns one dict per leftover: database, pid, host, action ("dropped", "left: another host"); a `LeftoverWarning` says what was done.

    Example:
        >>> leftover_scratch()
        []
    """
    target = database_url() if server is None else get_engine(server).url
    found = run_query(
        """
        SELECT d.datname,
               shobj_description(d.oid, 'pg_database') AS note
        FROM pg_database AS d
        WHERE d.datname LIKE '%\\_drill\\_%'
        ORDER BY d.datname
        """,
        name="recovery.drill_leftovers",
        engine=get_engine(target),
    )
    leftovers = []
    for row in found.itertuples():
        named = _SCRATCH.match(row.datname)
        if not named or not target.database.startswith(named["source"]) or row.datname == target.database:
            continue
        note = parse_mark(row.note)
        if note is not None and note["what"] in ("drill", "restore"):
            pid, host, alive = note["pid"], note["host"], run_is_alive(note["pid"], note["host"], note["since"])
        else:
            mine = named["host"] == host_tag()
            pid, host = int(named["pid"]), HOST if mine else f"tagged {named['host']}"
            alive = run_is_alive(pid) if mine else None
        if alive:
            continue
        entry = {"database": row.datname, "pid": pid, "host": host, "action": None}
        if alive is False:
            _drop_scratch(target, row.datname)
            entry["action"] = "dropped"
            warnings.warn(f"dropped the drill's scratch database {row.datname} left by an interrupted run (pid {pid} on host {host}, gone)", LeftoverWarning, stacklevel=2)
        else:
            entry["action"] = "left: another host"
            warnings.warn(
                f"the drill's scratch database {row.datname} was made by pid {pid} on host {host}; when that run is over, drop it: DROP DATABASE \"{row.datname}\" WITH (FORCE)",
                LeftoverWarning,
                stacklevel=2,
            )
        leftovers.append(entry)
    return leftovers


def _drop_scratch(target: URL, scratch: str) -> None:
    try:
        dumps._drop(target, scratch)
    except (CopythatError, DBAPIError) as exc:
        if isinstance(exc, (ConnectError, DBAPIError)):
            warnings.warn(
                f"the drill's scratch database {scratch} could not be dropped now ({mask_text(str(exc).splitlines()[0])}); the next drill drops it, "
                f'or drop it yourself: DROP DATABASE "{scratch}" WITH (FORCE)',
                LeftoverWarning,
                stacklevel=3,
            )
            return
        raise
    finally:
        dispose_engines()
