"""`copythat-ops notebooks run`, as `make run` and cron use it: real papermill runs against the test database."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re

import nbformat
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from copythat_ops import engine
from copythat_ops.cli import main
from copythat_ops.engine import dispose_engines
from copythat_ops.runbooks import notebooks

RUN_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z(-\d+)?$")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def runs(folder) -> list:
    return sorted(p for p in folder.iterdir() if RUN_NAME.match(p.name))


def exit_code(argv: list[str]) -> int:
    """What the command exits with: main's return value, or argparse's exit for a flag it refuses."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def code_notebook(path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {path.stem}")] + [nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(notebook, path)


def test_a_run_writes_a_dated_folder_of_reports_and_ends_with_the_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COPYTHAT_BACKUP_DIR", str(tmp_path / "backups"))  # notebook 04's backup stays out of the checkout
    before = {p.name: digest(p) for p in notebooks()}
    code = main(["--format", "json", "notebooks", "run", "--output-dir", str(tmp_path), "-p", "03:TOP", "3", "-p", "SINCE", "3 days"])
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)  # one JSON document, nothing else on stdout
    summary = document["summary"]
    assert [row["status"] for row in document["notebooks"]] == ["ok"] * len(before)
    (folder,) = runs(tmp_path)
    assert summary["reports"] == str(folder / "index.html")
    for name in before:
        stem = name.removesuffix(".ipynb")
        assert (folder / name).exists() and (folder / f"{stem}.html").exists()
        assert re.search(rf"^  {stem} +ok +\d+\.\d s$", err, re.M), err  # a progress line per notebook
    # the summary: masked database, revision, verdict with the checks that are not OK, jobs
    password = make_url(os.environ["DATABASE_URL"]).password
    assert summary["verdict"] in ("OK", "UNKNOWN", "WARN", "CRIT")  # UNKNOWN: e.g. pg_stat_statements not installed here
    assert summary["revision"] == summary["head"]
    assert 0 < summary["failure_rate"] < 1 and summary["stuck_jobs"] > 0  # the demo data has failed and stuck jobs
    assert all(re.match(r"^\w+ (WARN|CRIT|UNKNOWN): ", p) for p in summary["problems"]), summary["problems"]
    index = (folder / "index.html").read_text()
    assert f"Health: {summary['verdict']}" in index and 'href="03_monitoring.html"' in index
    assert not password or password not in out + err + index
    # the reports: code hidden, charts inline as PNG, readable tables, no external scripts
    report = (folder / "03_monitoring.html").read_text()
    assert "monitor.health(" not in report and "data:image/png;base64," in report
    assert "<script src=" not in report and ">nan<" not in report and ">NaT<" not in report
    assert "no rows" in report  # an empty table says so (no blocked queries here)
    alts = [html.unescape(alt) for alt in re.findall(r'<img alt="([^"]*)"', report)]
    assert len(alts) == report.count("<img ") >= 3 and all(alt and not alt.startswith("Chart") for alt in alts), alts  # each chart described
    assert any(alt.startswith("Connections: by state: ") for alt in alts) and any(alt.startswith("Cache hit ratio: ") for alt in alts)
    assert f"Database: {summary['database']}" in report  # the database the notebook used, masked
    shown = html.unescape(re.sub(r"<[^>]+>", "", report))
    assert not re.search(r"\[['\d]", shown) and "Checks: connection_headroom, " in shown  # no raw Python list: words
    jobs = (folder / "02_jobs.html").read_text()
    assert ">nan<" not in jobs and ">NaT<" not in jobs and "{&#x27;id&#x27;" not in jobs and "{'id'" not in jobs  # no dict reprs
    # -p reached the notebooks that have the parameter, and only them
    injected = {p.stem: [c.source for c in nbformat.read(p, as_version=4).cells if "injected-parameters" in c.metadata.get("tags", [])]
                for p in folder.glob("*.ipynb")}  # fmt: skip
    assert "TOP = 3" in injected["03_monitoring"][0] and "SINCE" not in injected["03_monitoring"][0]
    assert 'SINCE = "3 days"' in injected["02_jobs"][0]
    assert injected["01_connect_and_migrate"] == []
    assert {p.name: digest(p) for p in notebooks()} == before  # the sources are never modified


def test_keep_deletes_the_oldest_runs_only(tmp_path, capsys):
    for name in ("2020-01-01T0000Z", "2020-01-02T0000Z", "2020-01-02T0000Z-2"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes").mkdir()
    code = main(["notebooks", "run", "--output-dir", str(tmp_path), "--notebook", "01", "--keep", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    kept = [p.name for p in runs(tmp_path)]
    # the run ends with its summary on stdout, the time measured against the 60 s target
    assert re.search(r"^notebooks  1 ok in \d+\.\d s \((target: under|over the target of) 60 s\)$", out, re.M), out
    assert out.rstrip().endswith(f"reports    {tmp_path / kept[1] / 'index.html'}")
    assert kept[0] == "2020-01-02T0000Z-2" and len(kept) == 2 and (tmp_path / kept[1] / "01_connect_and_migrate.html").exists()
    assert (tmp_path / "notes").is_dir()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--notebook", "09"], "error: no notebook '09'. Fix: name one by number or name: 01_connect_and_migrate, 02_jobs, 03_monitoring"),
        (["-p", "NOPE", "1"], "error: no selected notebook has a parameter 'NOPE'. Fix: use one they have (01_connect_and_migrate: TARGET; 02_jobs: SINCE,"),
        (["--notebook", "03", "-p", "03:NOPE", "1"], "error: 03_monitoring has no parameter 'NOPE'. Fix: use one of its parameters: LONG_RUNNING_SECONDS, TOP"),
        (["--notebook", "03", "-p", "02:SINCE", "1d"], "error: parameter '02:SINCE' is for 02_jobs, which this run does not include"),
        (["-p", "SINCE", "3 dayz"], "error: parameter SINCE '3 dayz' is not a duration. Fix: give e.g. 30s, 30min, 2h, 1 day or 00:30:00"),
        (["-p", "02:STUCK_AFTER", "30"], "error: parameter STUCK_AFTER 30 has no unit. Fix: give a unit, e.g. 30min or 30s"),
        (["--notebook", "03", "-p", "TOP", "many"], "error: parameter TOP must be a whole number, not 'many'. Fix: give a whole number"),
        (["--notebook", "03", "-p", "TOP", "-3"], "error: parameter TOP -3 is out of range. Fix: give a whole number at least 0"),
        (["-p", "SIZE_LIMIT", "lots"], "error: parameter SIZE_LIMIT 'lots' is not a size. Fix: give a size with a unit, e.g. 10 GB"),
        (["-p", "ON_NEON", "maybe"], "error: parameter ON_NEON must be True or False, not 'maybe'. Fix: give True or False"),
        (["--keep", "0"], "error: --keep 0 is out of range. Fix: give a whole number at least 1"),
        (["--output-dir", "/proc/x"], "error: cannot write reports to /proc/x ("),
    ],
)
def test_bad_input_is_one_line_with_a_fix_and_runs_nothing(tmp_path, capsys, args, message):
    args = args if "--output-dir" in args else [*args, "--output-dir", str(tmp_path)]
    assert exit_code(["notebooks", "run", *args]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err
    assert "Fix: " in err and not re.search(r"\w(Error|Exception)\b", err)  # no exception name
    assert out == "" and list(tmp_path.iterdir()) == []


def test_an_output_folder_under_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["notebooks", "run", "--output-dir", str(blocker / "reports")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write reports to {blocker / 'reports'} (Not a directory). Fix: give --output-dir a folder you can write to"), err


def test_a_failing_notebook_gets_its_report_with_the_failing_cell_and_the_run_exits_1(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    code_notebook(folder / "01_broken.ipynb", "hidden = 'setup code'", "1 / 0", "print('never')")
    code_notebook(folder / "02_fine.ipynb", "print('fine')")
    code_notebook(folder / "03_refused.ipynb", "from copythat_ops.errors import ConfigError\nraise ConfigError('the plan is missing', fix='write the plan first')")
    code = main(["notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1
    (run,) = runs(tmp_path / "out")
    assert f"error: notebook 01_broken failed at cell 2: ZeroDivisionError: division by zero. Fix: open {run / '01_broken.html'}" in err
    # the library's own error: its fix once, no exception name
    assert f"error: notebook 03_refused failed at cell 1: the plan is missing. Fix: write the plan first (the failing cell: {run / '03_refused.html'})" in err
    page = (run / "01_broken.html").read_text()
    broken = re.sub(r"<[^>]+>", "", page)  # the page's text
    assert "1 / 0" in broken and "ZeroDivisionError" in broken  # the failing cell, with its code
    assert "setup code" not in broken  # the other cells' code stays hidden
    # the page starts with the error; the traceback is folded away under it
    main_text = " ".join(broken[broken.index("This notebook failed"):].split())
    assert main_text.startswith("This notebook failed at cell 2: ZeroDivisionError: division by zero"), main_text[:200]
    assert main_text.index("This notebook failed") < main_text.index("01_broken")  # before the notebook's title
    assert re.search(r"<details><summary>Traceback</summary>.*?ZeroDivisionError.*?</details>", page, re.S)
    assert "An Exception was encountered at" not in broken  # papermill's banner pointing down, replaced by the error itself
    refused = " ".join(re.sub(r"<[^>]+>", "", (run / "03_refused.html").read_text()).split())
    assert "This notebook failed at cell 1: the plan is missing Fix: write the plan first" in refused
    assert "fine" in (run / "02_fine.html").read_text()
    assert "This notebook failed" not in (run / "02_fine.html").read_text()
    assert "notebooks  1 ok, 2 failed (01_broken, 03_refused) in " in out  # the summary names them too
    index = (run / "index.html").read_text()
    assert "1 ok, 2 failed (01_broken, 03_refused)" in index and "<td>01_broken</td><td>failed</td>" in index


def test_charts_in_a_report_carry_alt_text(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Charts\n## Connections"),
        nbformat.v4.new_code_cell("import pandas as pd\nfrom copythat_ops import charts\n"
                                  "charts.connections_chart(pd.DataFrame({'state': ['idle', 'active'], 'application_name': ['api', 'worker'], 'connections': [3, 1]}))"),
        nbformat.v4.new_code_cell("charts.connections_chart(pd.DataFrame(columns=['state', 'application_name', 'connections']))"),
        nbformat.v4.new_markdown_cell("## Queue depth"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\nplt.close(fig)\nfig"),
    ], metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}), folder / "01_charts.ipynb")  # fmt: skip
    assert main(["notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    (run,) = runs(tmp_path / "out")
    page = (run / "01_charts.html").read_text()
    images = re.findall(r"<img\b[^>]*>", page)
    alts = [html.unescape(re.search(r'alt="([^"]*)"', img)[1]) if 'alt="' in img else None for img in images]
    assert alts == [
        "Connections: by state: horizontal bars of connections for idle, active. by application: horizontal bars of connections for api, worker.",
        "Connections: by state: no connections. by application: no connections.",
        "Queue depth: lines.",  # a figure without a title: named by its section
    ]


def test_fail_on_crit_exits_3_when_the_database_is_critical(db_url, monkeypatch, capsys, tmp_path):
    """A sequence 99.5 % used is CRIT: the run that cron makes pages."""
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE tickets (id serial PRIMARY KEY)"))
        conn.execute(text("SELECT setval('tickets_id_seq', 2137000000)"))
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    dispose_engines()
    try:
        code = main(["--format", "json", "notebooks", "run", "--notebook", "03", "--fail-on", "crit", "--output-dir", str(tmp_path)])
    finally:
        dispose_engines()
    out, err = capsys.readouterr()
    summary = json.loads(out)["summary"]
    assert code == 3, err
    assert summary["verdict"] == "CRIT"
    assert any(p.startswith("sequences CRIT: ") and "tickets_id_seq" in p for p in summary["problems"])
    assert summary["failure_rate"] is None and summary["revision"] is None  # no schema here: said, not a crash



def test_the_embedded_database_is_named_once_on_the_terminal_not_in_every_report(server, tmp_path, monkeypatch, capsys):
    if server.data_dir is None:
        pytest.skip("the test server is not the embedded one")
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("COPYTHAT_EMBEDDED_DIR", str(server.data_dir))
    monkeypatch.setattr(engine, "_announced", False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    code_notebook(folder / "01_where.ipynb", "import copythat_ops\nprint('database:', copythat_ops.database_url().database)")
    dispose_engines()
    try:
        code = main(["notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / "out")])
    finally:
        dispose_engines()
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("using the embedded PostgreSQL") == 1, err
    (run,) = runs(tmp_path / "out")
    report = (run / "01_where.html").read_text()
    assert "database: copythat" in report and "using the embedded PostgreSQL" not in report


def test_tables_are_readable():
    """What display.table does to the notebooks' tables, as a reader sees the HTML."""
    import pandas as pd

    from copythat_ops.display import table

    def cells(styled) -> list[str]:
        return [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", styled.to_html(), re.S)]

    # a dict (the seed's result) is a field / value table, each number written by its field's name
    seed = {"projects": 200, "jobs": 100000, "seconds": 1.3912, "jobs_per_second": 71834.2, "connect_ms": 4.4, "tls": False}
    assert cells(table(seed)) == ["projects", "200", "jobs", "100,000", "seconds", "1.4 s", "jobs_per_second", "71,834.20",
                                  "connect_ms", "4.4 ms", "tls", "False"]  # fmt: skip
    frame = pd.DataFrame({
        "status": ["OK", "CRIT", "WARN"], "size_bytes": [2048, None, 3 * 1024**3], "failure_rate": [0.0853, float("nan"), 1.0],
        "last_seen": pd.to_datetime(["2026-11-25 03:12:09.5", None, "2026-11-24 00:00:00.0"], utc=True), "detail": ["x" * 300, None, "short"],
    })  # fmt: skip
    styled = table(frame)
    assert styled.data["status"].tolist() == ["CRIT", "WARN", "OK"]  # the worst rows first
    text = cells(styled)
    assert text[:5] == ["CRIT", "", "", "", ""]  # missing values are blank, never nan / NaT / None
    assert text[5:9] == ["WARN", "3,221,225,472", "100.0 %", "2026-11-24 00:00:00 UTC"] and text[11:14] == ["2,048", "8.5 %", "2026-11-25 03:12:09 UTC"]
    assert "white-space: normal" in styled.to_html() and "max-width: 36em" in styled.to_html()  # long text wraps
    assert re.search(r'class="[^"]* when" >2026-11-25 03:12:09 UTC<', styled.to_html())  # dates do not (td.when: nowrap)
    assert re.search(r"td\.when \{\s*white-space: nowrap;", styled.to_html())
    assert "no rows" in table(frame.iloc[0:0]).to_html()
    assert cells(table(pd.DataFrame({"job_ids": [[2936, 15385]], "jobs": [15385]}))) == ["2936, 15385", "15,385"]  # ids keep their digits
