"""Every third-party module the package imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "copythat_ops"


def imported_modules() -> dict[str, str]:
    """Top-level modules imported anywhere in the package (also inside functions), with one file that does."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in project["dependencies"]}


def test_every_imported_third_party_module_is_declared():
    distributions = packages_distributions()
    wanted = declared()
    missing = []
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module == "copythat_ops":
            continue
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & wanted:
            missing.append(f"{module} ({where}; distribution {', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
