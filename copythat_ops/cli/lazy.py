"""The library modules a command calls, imported when it runs: building the parser loads none of them.

Every command, `--help` too, builds the whole parser first; were the command
modules to import the library at the top, each would pay for pandas, Alembic,
pyarrow and matplotlib before it starts. A command module names a library
module with `library(...)` instead: it is imported on the first use of one of
its names. The constants the parser needs (a default, the names in a help text)
are given to `library` and read without importing anything;
tests/test_startup.py checks that each equals the module's own.

Example:
    >>> validate = library("validate")
    >>> validate.database_name("copythat")              # imports copythat_ops.validate
    'copythat'
    >>> dumps = library("recovery.dumps", BACKUP_DIR_VAR="COPYTHAT_BACKUP_DIR")
    >>> dumps.BACKUP_DIR_VAR                            # given: nothing imported
    'COPYTHAT_BACKUP_DIR'
"""

from __future__ import annotations

import importlib


class Library:
    """`copythat_ops.<name>`, imported on the first use of one of its names; `constants` answer without importing it."""

    def __init__(self, name: str, constants: dict[str, object]) -> None:
        self.module_name = f"copythat_ops.{name}"
        self.constants = constants

    def __getattr__(self, name: str) -> object:
        if name in self.constants:
            return self.constants[name]
        return getattr(importlib.import_module(self.module_name), name)

    def __repr__(self) -> str:
        return f"<{self.module_name}, imported on first use>"


def library(name: str, **constants: object) -> Library:
    """Return the library module `copythat_ops.<name>`, to be imported when first used; `constants` are read without it."""
    return Library(name, constants)
