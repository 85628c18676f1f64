"""The job actions on-call takes: requeue failed jobs, fail stuck ones, cancel pending ones.

Each is a dry run unless `apply=True`: the dry run shows the rows as they are and
as they would be, and locks and changes nothing. Applied, an action runs in one
transaction: it locks its rows with `FOR UPDATE SKIP LOCKED` (a row a worker
holds is skipped and reported, never waited on; a lock on a whole table is waited
on for engine.LOCK_TIMEOUT, then a LockWaitError names its holder), makes only its own status
transition, and writes an audit row (database role, OS user, time, job ids,
rows before and after) that `audit_log()` shows. Any failure rolls all of it back.

Example:
    >>> from copythat_ops import requeue_jobs
    >>> print(requeue_jobs(error_like="timeout"))
    dry run: would requeue 11 job(s): failed -> pending; run with apply=True to change them
    >>> requeue_jobs(error_like="timeout", apply=True).audit_id
    1
"""

from __future__ import annotations

import getpass
import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .. import validate
from ..engine import APP_NAME, LOCK_TIMEOUT, connection, explain_lock_waits, run_query
from ..errors import InputError, schema_required

COLUMNS = ["id", "project_id", "extraction_type", "status", "error_message", "created_at", "completed_at"]
CHANGED = ["status", "error_message", "completed_at"]
STUCK_AFTER = "30 min"
STUCK_REASON = "stuck in processing; failed by on-call"
LISTED = 20  # ids named in an error message


@dataclass(frozen=True)
class Transition:
    """What an action does: the only status it takes, the status it sets, and whether it stamps completed_at."""

    verb: str
    done: str
    source: str
    target: str
    completes: bool


TRANSITIONS = {
    "requeue": Transition("requeue", "requeued", "failed", "pending", completes=False),
    "fail_stuck": Transition("fail", "failed", "processing", "failed", completes=True),
    "cancel": Transition("cancel", "cancelled", "pending", "failed", completes=True),
}

# The rows as they are, then as the action makes them (error_message = :reason, NULL for a requeue).
_SELECT = """
    SELECT id,
           project_id,
           extraction_type,
           status,
           error_message,
           created_at,
           completed_at,
           CAST(:target AS varchar(50)) AS new_status,
           CAST(:reason AS text) AS new_error_message,
           CASE WHEN :completes THEN LOCALTIMESTAMP END AS new_completed_at
    FROM extraction_jobs
"""
_BY_ID = _SELECT + """
    WHERE id = ANY(:ids)
    ORDER BY id
"""
_MATCHING = _SELECT + """
    WHERE status = :source
      AND (CAST(:error_like AS text) IS NULL OR error_message ILIKE :error_like)
      AND (CAST(:project_id AS integer) IS NULL OR project_id = :project_id)
      AND (CAST(:since AS interval) IS NULL OR created_at >= LOCALTIMESTAMP - CAST(:since AS interval))
      AND (CAST(:older_than AS interval) IS NULL OR coalesce(updated_at, CAST(created_at AS timestamptz)) < now() - CAST(:older_than AS interval))
    ORDER BY created_at, id
    LIMIT :limit
"""
_LOCK = """
    SELECT id, project_id, extraction_type, status, error_message, created_at, completed_at
    FROM extraction_jobs
    WHERE id = ANY(:ids)
      AND status = :source
    ORDER BY id
    FOR UPDATE SKIP LOCKED
"""
_UPDATE = """
    UPDATE extraction_jobs
    SET status = :target,
        error_message = :reason,
        completed_at = CASE WHEN :completes THEN LOCALTIMESTAMP END,
        updated_at = now()
    WHERE id = ANY(:ids)
      AND status = :source
    RETURNING id, project_id, extraction_type, status, error_message, created_at, completed_at
"""
_AUDIT = """
    INSERT INTO job_action_audit (os_user, action, job_count, job_ids, skipped_job_ids, reason, "before", "after")
    VALUES (:os_user, :action, :job_count, :job_ids, :skipped_job_ids, :reason, CAST(:before AS jsonb), CAST(:after AS jsonb))
    RETURNING id
"""


@dataclass(frozen=True, eq=False, repr=False)
class ActionResult:
    """What a job action did, or would do: the rows before and after, and the audit row it wrote.

    `skipped` holds the ids a worker held (or changed) while the action ran: they were left alone.

    Example:
        >>> result = cancel_jobs([402], reason="duplicate upload")
        >>> result.summary()
        'dry run: would cancel 1 job(s): pending -> failed; run with apply=True to change them'
    """

    action: str
    applied: bool
    before: pd.DataFrame
    after: pd.DataFrame
    audit_id: int | None
    skipped: tuple[int, ...] = ()

    def summary(self) -> str:
        """Return one line saying what happened (or would happen).

        Example:
            >>> requeue_jobs([489], apply=True).summary()
            'requeued 1 job(s): failed -> pending; audit row 1'
        """
        t = TRANSITIONS[self.action]
        count = len(self.after)
        if not self.applied:
            line = (
                f"dry run: would {t.verb} {count} job(s): {t.source} -> {t.target}; run with apply=True to change them"
                if count
                else f"dry run: no {t.source} job matches; nothing to {t.verb}"
            )
        elif count:
            line = f"{t.done} {count} job(s): {t.source} -> {t.target}; audit row {self.audit_id}"
        else:
            line = f"no job {t.done}; nothing changed"
        if self.skipped:
            line += f"; skipped {len(self.skipped)} job(s) a worker holds or changed meanwhile: {_listed(self.skipped)}"
        return line

    def changes(self) -> pd.DataFrame:
        """Return one row per job: its id, project, type, created_at, and each changed column before and after.

        Example:
            >>> list(requeue_jobs([489]).changes().columns)[-2:]
            ['completed_at', 'new_completed_at']
        """
        frame = self.before[["id", "project_id", "extraction_type", "created_at"]].copy()
        for column in CHANGED:
            frame[column] = self.before[column]
            frame[f"new_{column}"] = self.after[column]
        return frame

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"ActionResult({self.summary()!r})"

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self.changes().to_html(index=False)


def requeue_jobs(
    job_ids: int | Iterable[int] | None = None,
    *,
    error_like: str | None = None,
    since: str | None = None,
    project_id: int | None = None,
    limit: int | None = None,
    apply: bool = False,
    engine: Engine | None = None,
) -> ActionResult:
    """Put failed jobs back to pending, clearing error_message and completed_at (a dry run unless `apply=True`).

    Choose the jobs by id, or by filters: `error_like` (an ILIKE pattern; text without
    `%` matches anywhere in the message), `since` (created within this long, e.g. "2h"),
    `project_id`, and `limit` (oldest first). Ids that do not exist or are not failed
    raise InputError naming them, and nothing changes.

    Example:
        >>> requeue_jobs(error_like="HTTP 40", project_id=2).summary()
        'dry run: would requeue 5 job(s): failed -> pending; run with apply=True to change them'
    """
    filters = {"error_like": error_like, "since": since, "project_id": project_id, "limit": limit}
    if job_ids is not None and any(v is not None for v in filters.values()):
        raise InputError("requeue takes job ids or filters, not both", fix="give job_ids alone, or error_like / since / project_id / limit")
    if job_ids is None and all(v is None for v in filters.values()):
        raise InputError(
            "requeue needs job ids or a filter (without one it would requeue every failed job)",
            fix="give job_ids, or error_like / since / project_id / limit; the dry run shows what would change",
        )
    if job_ids is not None:
        return _act("requeue", _job_ids(job_ids), apply=apply, engine=engine)
    if error_like is not None and (not isinstance(error_like, str) or not error_like.strip()):
        raise InputError(f"error_like must be a non-empty text, not {error_like!r}", fix="give part of the error message, e.g. 'timeout'")
    return _act(
        "requeue",
        filters={
            "error_like": None if error_like is None else error_like if "%" in error_like else f"%{error_like}%",
            "since": None if since is None else validate.duration(since, name="since"),
            "project_id": None if project_id is None else validate.number(project_id, name="project_id", minimum=1, integer=True),
            "limit": _limit(limit),
        },
        apply=apply,
        engine=engine,
    )


def fail_stuck_jobs(
    older_than: str = STUCK_AFTER,
    reason: str = STUCK_REASON,
    *,
    limit: int | None = None,
    apply: bool = False,
    engine: Engine | None = None,
) -> ActionResult:
    """Mark jobs processing for more than `older_than` (default 30 min, since their last change of state) failed with `reason`.

    Oldest first; `limit` caps how many. A dry run unless `apply=True`.

    Example:
        >>> fail_stuck_jobs("2h").summary()
        'dry run: would fail 1 job(s): processing -> failed; run with apply=True to change them'
    """
    age = validate.duration(older_than, name="older_than")
    if not age:
        raise InputError(f"older_than {older_than!r} is zero: every processing job would count as stuck", fix="give e.g. '30 min' or '2h'")
    filters = {"older_than": age, "limit": _limit(limit)}
    return _act("fail_stuck", filters=filters, reason=_reason(reason), apply=apply, engine=engine)


def cancel_jobs(job_ids: int | Iterable[int], *, reason: str, apply: bool = False, engine: Engine | None = None) -> ActionResult:
    """Mark pending jobs failed with `reason`, so no worker picks them up (a dry run unless `apply=True`).

    Ids that do not exist or are not pending raise InputError naming them, and nothing changes.

    Example:
        >>> cancel_jobs([402, 452], reason="customer deleted the upload").summary()
        'dry run: would cancel 2 job(s): pending -> failed; run with apply=True to change them'
    """
    return _act("cancel", _job_ids(job_ids), reason=_reason(reason), apply=apply, engine=engine)


def audit_log(limit: int = 50, *, engine: Engine | None = None) -> pd.DataFrame:
    """Return the latest applied job actions, newest first.

    Columns: id, performed_at, database_user, os_user, action, job_count, job_ids,
    skipped_job_ids, reason, before, after (the rows, as lists of dicts).

    Example:
        >>> _ = cancel_jobs([402], reason="duplicate upload", apply=True)
        >>> audit_log(5)[["action", "job_count"]]
           action  job_count
        0  cancel          1
    """
    with schema_required("the job actions"):
        return run_query(
            """
            SELECT id,
                   performed_at,
                   database_user,
                   os_user,
                   action,
                   job_count,
                   job_ids,
                   skipped_job_ids,
                   reason,
                   "before",
                   "after"
            FROM job_action_audit
            ORDER BY id DESC
            LIMIT :limit
            """,
            {"limit": validate.number(limit, name="limit", minimum=1, integer=True)},
            name="job_actions.audit_log",
            engine=engine,
        )


def _act(
    action: str,
    ids: list[int] | None = None,
    *,
    filters: dict | None = None,
    reason: str | None = None,
    apply: bool,
    engine: Engine | None,
) -> ActionResult:
    t = TRANSITIONS[action]
    params = {"target": t.target, "reason": reason, "completes": t.completes, "source": t.source}
    with schema_required("the job actions"):
        if ids is not None:
            candidates = run_query(_BY_ID, {**params, "ids": ids}, name=f"job_actions.{action}", engine=engine)
            _refuse_unfit(t, ids, candidates)
        else:
            filters = {"error_like": None, "project_id": None, "since": None, "older_than": None, "limit": None, **filters}
            candidates = run_query(_MATCHING, {**params, **filters}, name=f"job_actions.{action}", engine=engine)
        if not apply or candidates.empty:
            after = candidates[COLUMNS].assign(**{c: candidates[f"new_{c}"] for c in CHANGED})
            return ActionResult(action, apply, _tidy(candidates[COLUMNS]), _tidy(after), audit_id=None)
        wanted = candidates["id"].tolist()
        waits = explain_lock_waits(f"job_actions.{action}", _LOCK + _UPDATE + _AUDIT, engine=engine, read_only=False)
        with waits, connection(engine) as conn, conn.begin():
            conn.execute(text("SELECT set_config('statement_timeout', '30s', true), set_config('lock_timeout', :lock, true)"), {"lock": LOCK_TIMEOUT})
            before = _tidy(_rows(conn, _LOCK, {"ids": wanted, "source": t.source}, name=f"job_actions.{action}.lock"))
            locked = before["id"].tolist()
            skipped = tuple(sorted(set(wanted) - set(locked)))
            if not locked:
                return ActionResult(action, True, before, before, audit_id=None, skipped=skipped)
            after = _tidy(_rows(conn, _UPDATE, {**params, "ids": locked}, name=f"job_actions.{action}.update"))
            audit_id = conn.scalar(
                text(f"/* {APP_NAME}:job_actions.{action}.audit */ {_AUDIT}"),
                {
                    "os_user": _os_user(),
                    "action": action,
                    "job_count": len(locked),
                    "job_ids": locked,
                    "skipped_job_ids": list(skipped),
                    "reason": reason,
                    "before": before.to_json(orient="records", date_format="iso"),
                    "after": after.to_json(orient="records", date_format="iso"),
                },
            )
    return ActionResult(action, True, before, after, audit_id=audit_id, skipped=skipped)


def _rows(conn: Connection, sql: str, params: dict, *, name: str) -> pd.DataFrame:
    result = conn.execute(text(f"/* {APP_NAME}:{name} */ {sql}"), params)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by id, timestamps as datetimes even when all are NULL."""
    return frame.astype({"created_at": "datetime64[us]", "completed_at": "datetime64[us]"}).sort_values("id", ignore_index=True)


def _refuse_unfit(t: Transition, ids: list[int], found: pd.DataFrame) -> None:
    status = dict(zip(found["id"].tolist(), found["status"].tolist(), strict=True))
    unfit = [f"{i} ({status.get(i, 'does not exist')})" for i in ids if status.get(i) != t.source]
    if unfit:
        raise InputError(
            f"cannot {t.verb} job(s) {_listed(unfit)}: {t.verb} takes {t.source} jobs only; nothing was changed",
            fix="leave those ids out and run again",
        )


def _listed(items: Iterable) -> str:
    items = [str(i) for i in items]
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


def _job_ids(job_ids: int | Iterable[int]) -> list[int]:
    given = list(job_ids) if isinstance(job_ids, Iterable) and not isinstance(job_ids, str) else [job_ids]
    if not given:
        raise InputError("no job ids given", fix="give one or more job ids")
    ids = []
    for value in given:
        try:
            whole = value if isinstance(value, bool) else operator.index(value)  # numpy and pandas integers too
        except TypeError:
            raise InputError(f"job id {value!r} is not a whole number", fix="give job ids such as 42") from None
        ids.append(validate.number(whole, name="job id", minimum=1, integer=True))
    return list(dict.fromkeys(ids))


def _limit(limit: int | None) -> int | None:
    return None if limit is None else validate.number(limit, name="limit", minimum=1, integer=True)


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(f"reason must be a non-empty text, not {reason!r}", fix="say why, e.g. 'duplicate upload'", params="reason")
    return reason.strip()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return f"uid {os.getuid()}"
