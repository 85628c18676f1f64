"""Plans: what an upgrade or downgrade to a target would do, and the revisions applied or pending.

Example:
    >>> upgrade_plan().steps        # at head: nothing to apply
    ()
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import URL

from ..errors import MigrationError
from .scripts import alembic_config, current, explained, revision_name, script_directory



def history(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every revision, oldest first: revision, down_revision, description, is_head, applied.

    Example:
        >>> history()[["revision", "applied"]].head(1).to_dict("records")
        [{'revision': 'c1a36d61036a', 'applied': True}]
    """
    script = script_directory()
    at = current(url=url)
    applied = set()
    if at:
        for head in at.split(", "):
            applied.update(r.revision for r in script.iterate_revisions(head, "base"))
    rows = [
        {
            "revision": rev.revision,
            "down_revision": rev.down_revision if isinstance(rev.down_revision, str | None) else ", ".join(rev.down_revision),
            "description": rev.doc,
            "is_head": rev.is_head,
            "applied": rev.revision in applied,
        }
        for rev in reversed(list(script.walk_revisions()))
    ]
    return pd.DataFrame(rows, columns=["revision", "down_revision", "description", "is_head", "applied"])


def pending(target: str = "head", *, url: URL | str | None = None) -> pd.DataFrame:
    """Return the revisions `upgrade(target)` would apply, in that order (the columns of `history()`).

    Example:
        >>> list(pending().columns)[:2]
        ['revision', 'down_revision']
    """
    frame = history(url=url)
    at = current(url=url)
    try:
        todo = {r.revision for r in script_directory().iterate_revisions(target, at.split(", ")[0] if at else "base")}
    except (CommandError, RevisionError) as exc:
        raise explained(exc) from None
    return frame[frame["revision"].isin(todo)].reset_index(drop=True)


@dataclass(frozen=True)
class MigrationPlan:
    """What `upgrade` or `downgrade` to a target would do: where the database is, where it lands, each revision on the way.

    `steps` lists (revision, description) in the order they run: oldest first for
    an upgrade, newest first for a downgrade. Empty steps: nothing to do.

    Example:
        >>> plan = MigrationPlan("downgrade", "-1", "c0db8df4a585", "3ca76145171f", (("c0db8df4a585", "Extraction jobs record when they last changed state"),))
        >>> print(plan.summary())
        Would downgrade from c0db8df4a585 to 3ca76145171f, reverting 1 revision (newest first):
          c0db8df4a585  Extraction jobs record when they last changed state
    """

    action: str
    target: str
    current: str | None
    lands_on: str | None
    steps: tuple[tuple[str, str], ...]

    def summary(self, *, done: bool = False) -> str:
        """Return the plan in words: the revision the database lands on and each revision applied or reverted, or "nothing to do".

        Example:
            >>> MigrationPlan("upgrade", "head", "c0db8df4a585", "c0db8df4a585", ()).summary()
            'Nothing to do: the database is already at c0db8df4a585.'
        """
        if not self.steps:
            return f"Nothing to do: the database is already at {revision_name(self.current)}."
        verb, ing, order = {
            "upgrade": ("upgrade", "applying", "oldest first"),
            "downgrade": ("downgrade", "reverting", "newest first"),
        }[self.action]
        head = "Upgrading" if done and self.action == "upgrade" else "Downgrading" if done else f"Would {verb}"
        count = len(self.steps)
        lines = [f"{head} from {revision_name(self.current)} to {revision_name(self.lands_on)}, {ing} {count} revision{'s' if count > 1 else ''} ({order}):"]
        width = max(len(rev) for rev, _ in self.steps)
        lines += [f"  {rev:<{width}}  {doc}" for rev, doc in self.steps]
        return "\n".join(lines)

_RELATIVE = re.compile(r"^(?P<anchor>.*?)(?P<sign>[+-])(?P<steps>\d+)$")


def _chain(script: ScriptDirectory) -> list:
    """The revisions, oldest first; the history must be one line (no branches to merge)."""
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"the migration scripts have {len(heads)} heads ({', '.join(heads)})",
            fix="merge them into one: alembic merge heads -m 'merge', then run again",
        )
    return list(reversed(list(script.walk_revisions())))


def _position(script: ScriptDirectory, chain: list, name: str) -> int:
    """Where `name` (a revision id or prefix, head, heads or base) is in the chain: 0 for base, 1 for the first revision."""
    if name in ("base", ""):
        return 0
    if name in ("head", "heads"):
        return len(chain)
    try:
        revision = script.get_revision(name)
    except (CommandError, RevisionError) as exc:
        raise explained(exc) from None
    if revision is None:
        raise explained(CommandError(f"No such revision or branch '{name}'"))
    return [r.revision for r in chain].index(revision.revision) + 1


def _plan(action: str, target: str, url: URL | str | None) -> MigrationPlan:
    cfg = alembic_config(url)
    script = script_directory(cfg)
    chain = _chain(script)
    ids = [r.revision for r in chain]
    at = current(url=url)
    if at is not None and at not in ids:
        raise MigrationError(
            f"the database is at revision {at}, which these migration scripts do not have (it was migrated by a newer copythat-ops, or by other scripts)",
            fix="update this checkout (git pull) to a version that has that revision, then run again",
        )
    now = ids.index(at) + 1 if at else 0
    target = str(target).strip()
    relative = _RELATIVE.match(target)
    if relative:
        anchor = relative["anchor"]
        start = now if anchor == "" else _position(script, chain, anchor)
        to = start + (1 if relative["sign"] == "+" else -1) * int(relative["steps"])
    else:
        to = _position(script, chain, target)
    where = f"the database is at {revision_name(at)}"
    if to < 0:
        raise MigrationError(
            f"{action} {target} goes past base: " + (f"{where}, {now} revision(s) above base" if now else "no revision is applied"),
            fix=f"go down at most {now} step(s): `copythat-ops migrate downgrade -{now}` or `copythat-ops migrate downgrade base` (base drops every table)"
            if now
            else "nothing is applied, so there is nothing to downgrade; `copythat-ops migrate upgrade` applies every revision",
        )
    if to > len(chain):
        raise MigrationError(
            f"{action} {target} goes past head: {where}, head is {ids[-1]} ({len(chain) - now} revision(s) to apply)",
            fix="upgrade to head: `copythat-ops migrate upgrade`" + (" (nothing to apply: the database is at head)" if now == len(chain) else ""),
        )
    lands_on = ids[to - 1] if to else None
    if action == "downgrade" and to > now:
        raise MigrationError(
            f"downgrade {target} would go forward: {revision_name(lands_on)} is ahead of the database ({where}); downgrade only reverts",
            fix=f"to apply it, run `copythat-ops migrate upgrade {lands_on}`",
        )
    if action == "upgrade" and to < now:
        raise MigrationError(
            f"upgrade {target} would go back: {revision_name(lands_on)} is older than the database's revision ({where}); upgrade only applies",
            fix=f"to revert to it, run `copythat-ops migrate downgrade {lands_on or 'base'}` (without --yes it shows what would be reverted and dropped)",
        )
    span = chain[now:to] if action == "upgrade" else list(reversed(chain[to:now]))
    return MigrationPlan(action, target, at, lands_on, tuple((r.revision, r.doc) for r in span))


def upgrade_plan(target: str = "head", *, url: URL | str | None = None) -> MigrationPlan:
    """Return what `upgrade(target)` would apply; raise MigrationError naming the fix for a target that is unknown, older or past head.

    Example:
        >>> upgrade_plan().steps        # at head: nothing to apply
        ()
    """
    return _plan("upgrade", target, url)


def downgrade_plan(target: str, *, url: URL | str | None = None) -> MigrationPlan:
    """Return what `downgrade(target)` would revert; raise MigrationError naming the fix for a target that is unknown, past base or ahead.

    `target`: a revision id or a unique prefix of one, `base`, or a relative step such as `-1`.

    Example:
        >>> plan = downgrade_plan("-1")     # describes; changes nothing
        >>> plan.lands_on == history()["revision"].iloc[-2]
        True
    """
    return _plan("downgrade", target, url)
