"""A package's face that loads its modules on first use, so importing the package costs nothing until a name is used.

Example:
    >>> face_getattr, _ = lazy_face("copythat_ops", {"validate"}, {"database_name": "validate"})
    >>> face_getattr("database_name")("copythat")      # imports copythat_ops.validate now
    'copythat'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_face(package: str, modules: set[str], names: dict[str, str]) -> tuple[Callable, Callable]:
    """Return `__getattr__` and `__dir__` for `package`: its `modules` imported when first named, each of `names` taken from its module."""

    def __getattr__(name: str):
        if name in modules:
            return importlib.import_module(f".{name}", package)
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | modules | set(names))

    return __getattr__, __dir__
