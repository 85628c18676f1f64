"""`notebooks run` hands every notebook exactly the database it resolved, whatever the folders: real kernels, real databases."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest

from copythat_ops import runbooks
from copythat_ops.cli import main
from copythat_ops.config import ENV_FILE_VAR, REPLICA_URL_VAR, URL_VAR, mask_url
from copythat_ops.engine import dispose_engines
from copythat_ops.errors import ConfigError

RUN_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z(-\d+)?$")


def code_notebook(path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {path.stem}")] + [nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(notebook, path)


def outputs(path) -> str:
    """Every text a notebook's cells printed or showed."""
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")) + output.get("evalue", ""))
    return "\n".join(texts)


@pytest.fixture
def databases(server):
    """Two databases on the test server, A and B, A reached with a password where the server asks for one."""
    a, b = server.create_database("nb_a"), server.create_database("nb_b")
    yield server.password_url.set(database=a.database), b
    dispose_engines()
    server.drop_database(a)
    server.drop_database(b)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A project folder away from the notebooks, as a user has one; the session's own database forgotten."""
    project = tmp_path / "project"
    project.mkdir()
    for name in (URL_VAR, REPLICA_URL_VAR, ENV_FILE_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(project)
    dispose_engines()
    yield project
    dispose_engines()


def test_every_notebook_and_its_children_use_the_database_of_the_folders_env(databases, elsewhere, tmp_path, capsys):
    a, b = databases
    (elsewhere / ".env").write_text(
        f"{URL_VAR}={a.render_as_string(hide_password=False)}\n{REPLICA_URL_VAR}={b.render_as_string(hide_password=False)}\n"
    )
    folder = tmp_path / "notebooks"  # the kernels start here, where no .env is found
    folder.mkdir()
    code_notebook(
        folder / "01_where.ipynb",
        "from copythat_ops.engine import run_query\nimport copythat_ops\n"
        "print('current:', run_query('SELECT current_database() AS d')['d'][0])\n"
        "print('replica:', copythat_ops.database_url(replica=True).database)",
        # a child process of the notebook, in yet another folder
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'import copythat_ops; print(\"child:\", copythat_ops.database_url().database)'],"
        " cwd='/', capture_output=True, text=True, check=True).stdout)",
    )
    code = main(["--format", "json", "notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    (run,) = [p for p in (tmp_path / "out").iterdir() if RUN_NAME.match(p.name)]
    printed = outputs(run / "01_where.ipynb")
    assert f"current: {a.database}" in printed and f"replica: {b.database}" in printed and f"child: {a.database}" in printed, printed
    # what the run and the report say is the database the notebook used, masked
    document = json.loads(out)
    assert document["summary"]["database"] == mask_url(a)
    assert document["summary"]["connected"].startswith(f"{a.database} on ") and "every notebook" in document["summary"]["connected"]
    assert document["notebooks"][0]["database"] == mask_url(a)
    report = (run / "01_where.html").read_text()
    assert f"Database: {mask_url(a)}" in report
    index = (run / "index.html").read_text()
    assert mask_url(a) in index and f"{a.database} on " in index
    password = a.password
    if password:
        everything = out + err + printed + report + index + (run / "01_where.ipynb").read_text()
        assert password not in everything
        assert all(password not in json.dumps(cell.get("source", "")) for cell in nbformat.read(run / "01_where.ipynb", as_version=4).cells)


def test_a_notebook_that_connects_elsewhere_stops_the_run(databases, elsewhere, tmp_path, capsys):
    a, b = databases
    (elsewhere / ".env").write_text(f"{URL_VAR}={a.render_as_string(hide_password=False)}\n")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    other = b.render_as_string(hide_password=False)
    code_notebook(folder / "01_elsewhere.ipynb", f"import os\nos.environ['DATABASE_URL'] = {other!r}\nimport copythat_ops\ncopythat_ops.database_url().database")
    code_notebook(folder / "02_next.ipynb", "print('ran')")
    code = main(["notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: notebook 01_elsewhere used {mask_url(b)} ({b.database} on "), err
    assert f"not the run's database {mask_url(a)} ({a.database} on " in message and "the run stopped there" in message
    assert "Fix: let the run choose the database" in message and not re.search(r"\w(Error|Exception)\b", message)
    (run,) = [p for p in (tmp_path / "out").iterdir() if RUN_NAME.match(p.name)]
    assert not (run / "02_next.ipynb").exists()  # nothing ran after it
    index = (run / "index.html").read_text()
    assert "stopped, 1 not run" in index and "01_elsewhere used" in index and "not checked: the run stopped" in index
    assert "the one 0 of 2 notebooks reported" in index
    report = (run / "01_elsewhere.html").read_text()
    assert "This notebook failed at the run&#x27;s database check" in report or "This notebook failed at the run's database check" in report


def test_the_kernels_check_refuses_a_database_other_than_the_runs(databases, elsewhere, monkeypatch, capsys):
    """What the cell put first in each notebook does when the kernel reaches another database than the run resolved."""
    a, b = databases
    monkeypatch.setenv(URL_VAR, a.render_as_string(hide_password=False))
    expected = runbooks.database_identity()
    assert expected["database"] == a.database and expected["url"] == mask_url(a)
    monkeypatch.setenv(runbooks.RUN_DATABASE_VAR, json.dumps(expected))
    assert runbooks.notebook_database() == expected  # the run's database: shown, accepted
    assert f"Database: {mask_url(a)} ({a.database} on " in capsys.readouterr().out
    monkeypatch.setenv(URL_VAR, b.render_as_string(hide_password=False))
    with pytest.raises(ConfigError) as caught:
        runbooks.notebook_database()
    assert str(caught.value).startswith(f"this notebook uses {mask_url(b)} ({b.database} on ")
    assert f"not the run's database {mask_url(a)} ({a.database} on " in str(caught.value)
    # the same URL reaching another server (a tunnel, a DNS change): what differs is named
    monkeypatch.setenv(runbooks.RUN_DATABASE_VAR, json.dumps({**runbooks.database_identity(), "system_identifier": "1"}))
    with pytest.raises(ConfigError, match=r"\): system_identifier \d+ instead of 1\. Fix: "):
        runbooks.notebook_database()


def test_the_kernels_get_the_resolved_database_and_nothing_to_search(databases, elsewhere, tmp_path):
    """The environment a kernel starts with: DATABASE_URL as resolved, no replica the run did not resolve, an env file named."""
    a, _ = databases
    (elsewhere / ".env").write_text(f"{URL_VAR}={a.render_as_string(hide_password=False)}\n")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    code_notebook(
        folder / "01_env.ipynb",
        "import os\nfrom pathlib import Path\n"
        "print('env file:', Path(os.environ['COPYTHAT_ENV_FILE']).resolve() == Path.cwd().parent / 'project' / '.env')\n"
        "print('replica set:', 'DATABASE_REPLICA_URL' in os.environ)",
    )
    run = runbooks.run_notebooks(tmp_path / "out", folder=folder)
    printed = outputs(run.folder / "01_env.ipynb")
    assert "env file: True" in printed and "replica set: False" in printed, printed
    assert URL_VAR not in os.environ and ENV_FILE_VAR not in os.environ  # the command's own environment is left as it was
