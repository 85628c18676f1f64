"""Backups and drills as health sees them: how old the newest backup is, and whether the last restore drill passed.

`backup_status()` reads the newest pg_dump backup of the monitored database in
the backup folder of this machine (`recovery.backup_dir()`; nothing is removed,
nothing written) and the newest drill recorded in `copythat_history.drills`
(`recovery.drill()`). `checks()` turns them into health's `backup_age` and
`last_drill` rows. Where NEON_API_KEY and NEON_PROJECT_ID are set, the project's
newest Neon snapshot or backup branch (`db backup --neon`) counts as a backup too
(the newest of them is judged).

A database with no backup at all is judged only when it is not local (see
`config.is_local`): a production database never backed up WARNs, while the
embedded or a localhost development database says "not judged" and stays OK, so
a fresh `make run` is not flagged for a backup nobody asked for. Once a local
database has a backup, it is judged like any other.

Example:
    >>> from copythat_ops import monitor
    >>> from copythat_ops.monitor.backups import backup_status
    >>> backup_status().columns.tolist()[:3]
    ['database', 'local', 'folder']
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.engine import Engine

from ..config import is_local
from ..errors import CopythatError
from .history import SCHEMA, history_url, read_history
from .snapshot import query, snapshot

CHECKS = ("backup_age", "last_drill")
DRILLS_REVISION = "7d1e5c0a9b3f"
COLUMNS = ["database", "local", "folder", "host", "backup", "backup_taken_at", "backup_age_hours", "backup_drilled",
           "neon_backup", "neon_backup_taken_at", "neon_note",
           "drills_recorded", "last_drill_at", "last_drill_status", "last_drill_backup", "last_drill_detail", "last_drill_rto_seconds"]  # fmt: skip


def backup_status(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return one row on the monitored database's newest backup (in this machine's backup folder) and newest recorded drill.

    Columns: database, local, folder, host, backup (file, None when none), backup_taken_at,
    backup_age_hours, backup_drilled ("passed" / "failed" / None), drills_recorded (None when
    the drills revision is missing), last_drill_at, last_drill_status, last_drill_backup,
    last_drill_detail, last_drill_rto_seconds.

    Example:
        >>> row = backup_status().iloc[0]
        >>> row["backup"] is None or row["backup"].endswith(".dump")
        True
    """
    from ..recovery.dumps import backup_dir, newest_backup
    from ..recovery.pgtools import HOST

    with snapshot(engine) as snap:
        facts = query("SELECT current_database() AS database, now() AS now", name="backups.facts").iloc[0]
        database, now = str(facts["database"]), pd.Timestamp(facts["now"]).to_pydatetime()
        newest = newest_backup(database)
        neon_snap, neon_note = _newest_neon_backup()
        drill, recorded = _last_drill(database)
        row = {
            "database": database,
            "local": is_local(snap.conn.engine.url),
            "folder": str(backup_dir()),
            "host": HOST,
            "backup": None if newest is None else newest["file"],
            "backup_taken_at": None if newest is None else pd.Timestamp(newest["taken_at"]),
            "backup_age_hours": None if newest is None else round((now - newest["taken_at"]).total_seconds() / 3600, 2),
            "backup_drilled": None if newest is None else newest["drilled"],
            "neon_backup": None if neon_snap is None else neon_snap["label"],
            "neon_backup_taken_at": None if neon_snap is None else neon_snap["taken_at"],
            "neon_note": neon_note,
            "drills_recorded": recorded,
            "last_drill_at": None if drill is None else pd.Timestamp(drill["started_at"]),
            "last_drill_status": None if drill is None else drill["status"],
            "last_drill_backup": None if drill is None else drill["backup"],
            "last_drill_detail": None if drill is None else drill["detail"],
            "last_drill_rto_seconds": None if drill is None else drill["restore_seconds"],
        }
    return pd.DataFrame([row], columns=COLUMNS)


def _newest_neon_backup() -> tuple[dict | None, str]:
    """The project's newest Neon snapshot or backup branch when NEON_API_KEY and NEON_PROJECT_ID are set, and a note when they could not be read."""
    from ..recovery.neon import API_KEY_VAR, PROJECT_VAR, Neon, setting

    if not (setting(API_KEY_VAR) and setting(PROJECT_VAR)):
        return None, ""
    try:
        neon = Neon(timeout=5, retries=1)
        snapshots, branches = neon.snapshots(), neon.backup_branches()
    except CopythatError as exc:
        return None, f"Neon backups not read ({exc.problem})"
    found = [{"label": f"Neon snapshot {row['id']}", "taken_at": pd.Timestamp(row["created_at"])} for _, row in snapshots.head(1).iterrows()]
    found += [{"label": f"Neon backup branch {row['name']} ({row['id']})", "taken_at": pd.Timestamp(row["taken_at"])} for _, row in branches.head(1).iterrows()]
    if not found:
        return None, "no Neon snapshot or backup branch in the project"
    return max(found, key=lambda backup: backup["taken_at"]), ""


def _last_drill(database: str) -> tuple[dict | None, int | None]:
    """The newest drill of `database` and how many are recorded; (None, None) when the drills table is missing."""
    if history_url() is None:
        exists = query(f"SELECT to_regclass('{SCHEMA}.drills') IS NOT NULL AS found ORDER BY found", name="backups.drills_table")["found"].iloc[0]
        if not exists:
            return None, None
    try:
        found = read_history(
            f"""
            SELECT started_at, status, backup, detail, restore_seconds, count(*) OVER () AS recorded
            FROM {SCHEMA}.drills
            WHERE source = :source
            ORDER BY started_at DESC, id DESC
            LIMIT 1
            """,
            {"source": database},
            name="last_drill",
        )
    except Exception:  # a separate history database without the drills table (MigrationError) or away
        return None, None
    if found.empty:
        return None, 0
    return found.iloc[0].to_dict(), int(found["recorded"].iloc[0])


def checks(t: dict) -> list[dict]:
    """Health's `backup_age` and `last_drill` rows by the thresholds `t` (backup_warn_hours, backup_crit_days, drill_warn_days).

    Example:
        >>> [row["check"] for row in checks({"backup_warn_hours": 26, "backup_crit_days": 8, "drill_warn_days": 30})]
        ['backup_age', 'last_drill']
    """
    s = backup_status().iloc[0]
    where = f"{s['folder']} on host {s['host']}"
    has_snapshot = s["neon_backup"] is not None and not pd.isna(s["neon_backup"])
    unjudged = s["backup"] is None and not has_snapshot and bool(s["local"])
    warn_h, crit_d, drill_d = t["backup_warn_hours"], t["backup_crit_days"], t["drill_warn_days"]
    take = f"take one now (copythat-ops db backup) and schedule it daily; or set COPYTHAT_BACKUP_DIR to the folder the scheduled backups go to"
    note = f"; {s['neon_note']}" if s["neon_note"] else ""
    snapshot_hours = round((datetime.now(UTC) - pd.Timestamp(s["neon_backup_taken_at"]).to_pydatetime()).total_seconds() / 3600, 2) if has_snapshot else None
    ages = [a for a in (s["backup_age_hours"], snapshot_hours) if a is not None and not pd.isna(a)]
    if not ages:
        backup = _row("backup_age", "OK" if unjudged else "WARN", None, f"warn >= {warn_h} h, crit >= {crit_d} days",
                      f"no backup of {s['database']} in {where}" + note + ("; not judged: a local database" if unjudged else ""), take)  # fmt: skip
    else:
        age = min(ages)
        status = "CRIT" if age >= crit_d * 24 else "WARN" if age >= warn_h else "OK"
        newest = f"{s['neon_backup']}, {_hours(age)} old" if age == snapshot_hours else f"{s['backup']}, {_hours(age)} old, in {where}"
        backup = _row("backup_age", status, age, f"warn >= {warn_h} h, crit >= {crit_d} days",
                      f"newest: {newest}" + note, take + ("; or check the project's backup schedule (copythat-ops db snapshot schedule)" if has_snapshot else ""))  # fmt: skip
    threshold = f"warn: none passed in {drill_d} days, or the last failed"
    drill_fix = "run a restore drill: copythat-ops db drill (it restores the newest backup into a scratch database and checks it)"
    if s["drills_recorded"] is None or pd.isna(s["drills_recorded"]):
        drill = _row("last_drill", "OK" if unjudged else "WARN", None, threshold,
                     f"no drill history: {SCHEMA}.drills is missing" + ("; not judged: a local database with no backup" if unjudged else ""),
                     f"apply revision {DRILLS_REVISION} (copythat-ops migrate upgrade), then {drill_fix}")  # fmt: skip
    elif s["last_drill_at"] is None or pd.isna(s["last_drill_at"]):
        drill = _row("last_drill", "OK" if unjudged else "WARN", None, threshold,
                     f"no drill of {s['database']} recorded: no backup of it was ever restored and checked" + ("; not judged: a local database with no backup" if unjudged else ""),
                     drill_fix)  # fmt: skip
    else:
        days = round((datetime.now(UTC) - pd.Timestamp(s["last_drill_at"]).to_pydatetime()).total_seconds() / 86400, 2)
        failed = s["last_drill_status"] != "passed"
        status = "WARN" if failed or days >= drill_d else "OK"
        said = f"last drill {s['last_drill_status']} {days:g} days ago on {s['last_drill_backup']}"
        said += f": {s['last_drill_detail']}" if failed else f" (restored in {s['last_drill_rto_seconds']:.1f} s)" if pd.notna(s["last_drill_rto_seconds"]) else ""
        drill = _row("last_drill", status, days, threshold, said,
                     "read the failed drill (copythat-ops db drills), fix the backup, and drill again" if failed else drill_fix)  # fmt: skip
    return [backup, drill]


def _row(check: str, status: str, value, threshold: str, detail: str, action: str) -> dict:
    return {"check": check, "status": status, "value": value, "threshold": threshold, "detail": detail, "action": action if status != "OK" else ""}


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 72 else f"{hours / 24:.1f} days"
