"""Every example in README.md and docs/*.md, run against a test database so none goes stale.

A page's examples are fenced blocks of these kinds:

- ```pycon (or ```python with `>>>` lines): doctest examples, checked as the docstrings'
  are (ELLIPSIS, NORMALIZE_WHITESPACE);
- ```console: `$ copythat-ops ...` lines, each run in a subprocess with the `copythat-ops`
  beside this Python; it must exit 0, or the N of a `# exit N` comment on its line, and
  the lines shown under it must appear in its output, in order (`...` stands for any text);
- ```console parallel: the same, for a block of commands that do not depend on one another
  (reads and dry runs): they run at once;
- ```text: not run (a file's layout, a sample of output, a command that needs `make`, psql
  or a real server); the test says which blocks it did not run;
- any other fence is refused, so no example is left out by accident.

Each page runs top to bottom, its Python and console blocks in the order they appear, in a
database of its own copied from one migrated to head and seeded as tests/test_docstrings.py
seeds it (same seed, same fixed time), with DATABASE_URL pointing at the copy, the working
directory a temporary folder holding a copy of alembic.ini, .squawk.toml and alembic/ (so a
new revision is written there), backups in that folder, and the Neon client talking to
tests/neon_fake.py. A page that changes data changes only its copy.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from examples import CHECKOUT, FLAGS, example_database, seeded_template
from sqlalchemy import URL, text

from copythat_ops import embedded
from copythat_ops.engine import dispose_engines

PAGES = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
CLI = Path(sys.executable).parent / "copythat-ops"
RUN, NOT_RUN = {"pycon", "python", "console"}, {"text"}
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*copythat-ops(?:\s|$)")
RESTORED = re.compile(r"(?:--database\s+|database=[\"'])(\w+)")
FENCE = re.compile(r"^(\s*)```(\S*)(?:[ \t]+(\S+))?\s*$")  # ```console parallel: see the module's docstring


@dataclass
class Block:
    page: Path
    line: int  # of the first line inside the fence, 1-based
    lang: str
    text: str
    option: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


@dataclass
class Command:
    line: int
    command: str
    exit_code: int
    expected: list[str]


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, in order."""
    found, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang, option, start = opening.group(1), opening.group(2), opening.group(3), i + 1
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        assert i < len(lines), f"{page.name}:{start}: a fence that is never closed"
        body = [line.removeprefix(indent) for line in lines[start:i]]
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", option))
        i += 1
    return found


def commands(block: Block) -> list[Command]:
    """The `$ ` lines of a console block, with the exit code each expects and the output shown under it."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            start, command = i, line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            code = EXIT.search(command)
            found.append(Command(block.line + start, command, int(code.group(1)) if code else 0, []))
        elif line.strip():
            assert found, f"{block.page.name}:{block.line + i}: output before any `$ ` command"
            found[-1].expected.append(line)
        i += 1
    return found


def _normal(line: str) -> str:
    return " ".join(line.split())


def missing_output(expected: list[str], output: str) -> str | None:
    """The first expected line not found (in order) in the output, else None."""
    got = [_normal(line) for line in output.splitlines()]
    at = 0
    for want in expected:
        want = _normal(want)
        if want == "...":
            continue
        pattern = re.compile(".*?".join(re.escape(part.strip()) for part in want.split("...")))
        while at < len(got) and not pattern.fullmatch(got[at]):
            at += 1
        if at == len(got):
            return want
        at += 1
    return None


BLOCKS = {page: blocks(page) for page in PAGES}
RUNNABLE = [page for page in PAGES if any(b.lang in RUN for b in BLOCKS[page])]
SHOWN_ONLY = [page for page in PAGES if any(b.lang in NOT_RUN for b in BLOCKS[page])]


def _name(page: Path) -> str:
    return str(page.relative_to(CHECKOUT))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_block_is_an_example_or_marked_as_not_run(page: Path):
    for block in BLOCKS[page]:
        assert block.lang in RUN | NOT_RUN, (
            f"{block.where}: ```{block.lang}: use ```pycon (>>> lines), ```console ($ copythat-ops lines), "
            "or ```text for what the suite cannot run"
        )
        if block.lang in ("pycon", "python"):
            assert ">>>" in block.text, f"{block.where}: a Python block without >>> lines; make it a doctest or ```text"
        assert block.option in (None, "parallel") and (block.option is None or block.lang == "console"), (
            f"{block.where}: ```{block.lang} {block.option}: the only option is ```console parallel"
        )
        if block.lang == "console":
            found = commands(block)
            assert found, f"{block.where}: a console block without a `$ ` command"
            for command in found:
                assert COMMAND.match(command.command), (
                    f"{block.page.name}:{command.line}: {command.command!r} does not run copythat-ops; "
                    "put it in a ```text block"
                )


def test_console_blocks_are_read_as_documented():
    block = Block(CHECKOUT / "docs" / "example.md", 10, "console", "\n".join([
        "$ copythat-ops jobs stuck --older-than 30  # exit 2",
        "error: --older-than 30 has no unit. Fix: ...",
        "$ copythat-ops db status \\",
        "    --format json",
    ]) + "\n")
    first, second = commands(block)
    assert (first.line, first.exit_code, first.expected) == (10, 2, ["error: --older-than 30 has no unit. Fix: ..."])
    assert (second.line, second.command, second.exit_code, second.expected) == (12, "copythat-ops db status  --format json", 0, [])
    output = "field   value\nsource  DATABASE_URL in the environment\nreachable  True\n"
    assert missing_output(["source DATABASE_URL in the environment", "...", "reachable ... True"], output) is None
    assert missing_output(["reachable True", "source ..."], output) == "source ..."  # in order
    assert missing_output(["reachable False"], output) == "reachable False"


def test_readme_links_to_every_page_and_each_link_exists():
    readme = (CHECKOUT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", readme))
    pages = {_name(page) for page in PAGES if page.parent.name == "docs"}
    assert linked <= pages | {link for link in linked if (CHECKOUT / link).exists()}, sorted(linked - pages)
    assert pages <= linked, f"pages the README does not link to: {sorted(pages - linked)}"


@pytest.mark.parametrize("page", SHOWN_ONLY, ids=_name)
def test_blocks_not_run_are_named(page: Path):
    shown = [b for b in BLOCKS[page] if b.lang in NOT_RUN]
    first = [f"line {b.line}: {b.text.strip().splitlines()[0][:60]!r}" if b.text.strip() else f"line {b.line}" for b in shown]
    pytest.skip(f"{_name(page)}: {len(shown)} ```text block(s) shown, not run: " + "; ".join(first))


@pytest.fixture(scope="module")
def template(server, db_url) -> URL:
    """The database every page starts from (tests/examples.py), as the docstrings' examples do."""
    return seeded_template(db_url)


@pytest.fixture(scope="module")
def embedded_dir(tmp_path_factory):
    """Where an example would start the embedded server: never the checkout's."""
    folder = tmp_path_factory.mktemp("docs-embedded") / "pgdata"
    yield folder
    if (folder / "postmaster.pid").exists():
        embedded.stop(folder)


class Runner(doctest.DocTestRunner):
    """A doctest runner that lets go of pooled connections before each example, as a new statement in a
    fresh session would hold none: a Neon branch (a TEMPLATE copy in tests/neon_fake.py) needs its parent
    database free of other sessions."""

    def report_start(self, out, test, example):
        dispose_engines()
        super().report_start(out, test, example)


def run_command(command: Command, where: str, env: dict[str, str], cwd: Path) -> str | None:
    """Run one console command; a description of what went wrong, else None."""
    done = subprocess.run(
        ["bash", "-c", command.command], cwd=cwd, env=env, capture_output=False, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    if done.returncode != command.exit_code:
        return f"{where}: `{command.command}` exited {done.returncode}, expected {command.exit_code}:\n{done.stdout}"
    gone = missing_output(command.expected, done.stdout)
    if gone is not None:
        return f"{where}: `{command.command}` did not print {gone!r}; it printed:\n{done.stdout}"
    return None


@pytest.mark.parametrize("page", RUNNABLE, ids=_name)
def test_page_examples_hold(page: Path, server, template, embedded_dir, monkeypatch, tmp_path):
    runner = Runner(optionflags=FLAGS)
    parser = doctest.DocTestParser()
    globs: dict = {"__name__": "__docs__"}
    report: list[str] = []
    ran = failed = 0
    with example_database(server, template, embedded_dir, monkeypatch, tmp_path) as url:
        env = {**os.environ, "PATH": f"{CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
        try:
            for block in BLOCKS[page]:
                if block.lang in ("pycon", "python"):
                    test = parser.get_doctest(block.text, globs, block.where, str(page), block.line - 1)
                    test.globs = globs  # one namespace per page, as one docstring's examples share one
                    runner.run(test, out=report.append, clear_globs=False)
                    ran += len(test.examples)
                elif block.lang == "console":
                    dispose_engines()  # the commands may drop or rename what this process holds open
                    found = commands(block)
                    with ThreadPoolExecutor(max_workers=len(found) if block.option == "parallel" else 1) as pool:
                        problems = list(pool.map(lambda c: run_command(c, f"{page.name}:{c.line}", env, tmp_path), found))
                    ran += len(found)
                    for problem in filter(None, problems):
                        failed += 1
                        report.append(problem + "\n")
        finally:
            dispose_engines()
            named = set(RESTORED.findall(page.read_text()))  # the databases the page's restores create
            for name in [n for n in _databases(server) if n.startswith(f"{url.database}_") or n in named]:
                server.drop_database(url.set(database=name))
    assert ran, f"{_name(page)}: no example ran"
    assert runner.failures == 0 and failed == 0, "".join(report)


def _databases(server) -> list[str]:
    with server.engine.connect() as conn:
        return list(conn.execute(text("SELECT datname FROM pg_database")).scalars())
