"""Schema comparison: the models against the database, the catalog's columns, and what to do when they differ.

Example:
    >>> schema_status()["ok"]
    True
"""

from __future__ import annotations

import pandas as pd
from alembic.migration import MigrationContext
from sqlalchemy.engine import URL

from ..engine import connection, get_engine, run_query
from .plans import pending
from .scripts import current, heads, revision_name, script_directory



def check(*, url: URL | str | None = None) -> list[str]:
    """Return the differences between the models and the database, one readable line each (empty when they agree), like `alembic check`.

    Example:
        >>> check()
        []
    """
    from alembic.autogenerate import compare_metadata

    from ..models import Base

    engine = get_engine(url)
    with connection(engine) as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_server_default": True, "target_metadata": Base.metadata})
        diffs = compare_metadata(ctx, Base.metadata)
    return [_describe(d) for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]


def schema_status(*, url: URL | str | None = None) -> dict:
    """Return whether the database matches the models, and if not, why and the fix.

    Keys: ok, current, head, pending (revisions not applied), differences (readable
    lines), problem and fix (None when ok). A database behind head needs
    `migrate upgrade`; one at head that still differs needs a new migration.

    Example:
        >>> schema_status()["ok"]
        True
    """
    at = current(url=url)
    head = ", ".join(heads())
    todo = pending(url=url) if at is None or at in {r.revision for r in script_directory().walk_revisions()} else None
    differences = check(url=url)
    status = {"ok": False, "current": at, "head": head, "pending": [], "differences": differences, "problem": None, "fix": None}
    if todo is None:
        status["problem"] = f"the database is at revision {at}, which these migration scripts do not have, so the models here are older than it"
        status["fix"] = "update this checkout (git pull) to the version that made that revision, then check again"
    elif len(todo):
        status["pending"] = [f"{r.revision}  {r.description}" for r in todo.itertuples()]
        status["problem"] = (
            f"the database is behind: it is at {revision_name(at)} and head is {head}, {len(todo)} revision(s) not applied "
            f"({', '.join(todo['revision'])})" + ("; the differences listed are what they add" if differences else "")
        )
        status["fix"] = "run `copythat-ops migrate upgrade` (see the plan with `copythat-ops migrate pending`), then `copythat-ops migrate check` again"
    elif differences:
        status["problem"] = f"the database is at head ({head}) but the models differ from it in {len(differences)} place(s)"
        status["fix"] = "write a migration for those changes (alembic revision --autogenerate -m '...'), review it, then `copythat-ops migrate upgrade`"
    else:
        status["ok"] = True
    return status


def _describe(diff: tuple) -> str:
    """One autogenerate difference as a line a person reads: what, where, in the models or the database."""
    kind = diff[0]
    models, database = "in the models, not in the database", "in the database, not in the models"
    if kind in ("add_table", "remove_table"):
        return f"table {diff[1].name}: {models if kind == 'add_table' else database}"
    if kind in ("add_column", "remove_column"):
        column = diff[3]
        return f"column {diff[2]}.{column.name} ({_column(column)}): {models if kind == 'add_column' else database}"
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        unique = "unique index" if index.unique else "index"
        return f"{unique} {index.name} on {index.table.name} ({', '.join(_names(index.expressions))}): {models if kind == 'add_index' else database}"
    if kind in ("add_fk", "remove_fk"):
        fk = diff[1]
        target = fk.elements[0].target_fullname.rsplit(".", 1)[0] if fk.elements else "?"
        columns = ", ".join(e.target_fullname.rsplit(".", 1)[-1] for e in fk.elements)
        return (
            f"foreign key {fk.name or '(unnamed)'} {fk.table.name}({', '.join(fk.column_keys)}) -> {target}({columns}): "
            f"{models if kind == 'add_fk' else database}"
        )
    if kind in ("add_constraint", "remove_constraint"):
        constraint = diff[1]
        label = type(constraint).__name__.replace("Constraint", "").lower() or "constraint"
        return f"{label} constraint {constraint.name or '(unnamed)'} on {constraint.table.name}: {models if kind == 'add_constraint' else database}"
    if kind.startswith("modify_"):
        _, _, table, column, _, old, new = diff
        what = {"modify_type": "type", "modify_nullable": "nullable", "modify_default": "default", "modify_comment": "comment"}.get(kind, kind[7:])
        if kind == "modify_nullable":
            old, new = ("NULL allowed" if v else "NOT NULL" for v in (old, new))
        elif kind == "modify_type":
            old, new = (_type(t) for t in (old, new))
        elif kind == "modify_default":
            old, new = (_default(d) or "none" for d in (old, new))
        return f"column {table}.{column} {what}: {old} in the database, {new} in the models"
    if kind in ("add_table_comment", "remove_table_comment"):
        return f"comment on table {diff[1].name}: {'differs' if kind == 'add_table_comment' else database}"
    return f"{kind.replace('_', ' ')}: " + ", ".join(str(getattr(part, "name", part)) for part in diff[1:] if part is not None)


def _type(type_) -> str:
    from sqlalchemy.dialects import postgresql

    try:
        return type_.compile(dialect=postgresql.dialect())
    except Exception:  # a type this dialect cannot render: its class name is still readable
        return type(type_).__name__


def _default(default) -> str | None:
    if default is None:
        return None
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


def _column(column) -> str:
    parts = [_type(column.type), "NULL allowed" if column.nullable else "NOT NULL"]
    if column.server_default is not None:
        parts.append(f"default {_default(column.server_default)}")
    return ", ".join(parts)


def _names(expressions) -> list[str]:
    return [getattr(e, "name", None) or str(e) for e in expressions]


def schema_columns(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every column of the public schema's tables as the catalog has it.

    Columns: table_name, column_name, data_type, nullable, column_default, position.

    Example:
        >>> schema_columns().query("table_name == 'projects'")["column_name"].tolist()
        ['id', 'name', 'description', 'created_at', 'updated_at', 'organization_id']
    """
    return run_query(
        """
        SELECT c.relname AS table_name,
               a.attname AS column_name,
               format_type(a.atttypid, a.atttypmod) AS data_type,
               NOT a.attnotnull AS nullable,
               pg_get_expr(d.adbin, d.adrelid) AS column_default,
               a.attnum AS position
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p')
          AND c.relname <> 'alembic_version'
          AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
        """,
        name="schema_columns",
        engine=get_engine(url),
    )
