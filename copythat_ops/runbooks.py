"""The curated notebooks, executed headless with papermill, each leaving an executed copy and an HTML report.

A run writes into a dated folder of its own (`build/reports/2026-11-25T0312Z/`):
per notebook the executed `.ipynb` and a self-contained `.html` (code hidden,
charts inline, each with its description as alt text; a failed notebook's page
starts with the error and its fix), and an `index.html` with the verdict at the
top and a link to each report. Nothing in an earlier run's folder is ever changed.

The run resolves the database once and hands exactly that one to every kernel,
whatever folder the kernel starts in; each notebook shows the database it
connected to, and one that used another stops the run.

Example:
    >>> from copythat_ops.runbooks import notebooks, select_notebooks
    >>> [p.name for p in notebooks()][:1]
    ['01_connect_and_migrate.ipynb']
    >>> [p.stem for p in select_notebooks(["03"])]
    ['03_monitoring']
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from .config import ENV_FILE_VAR, REPLICA_URL_VAR, URL_VAR, mask_text, mask_url
from .errors import ConfigError, CopythatError, InputError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPORTS_DIR = Path("build/reports")
RUN_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z(-\d+)?$")
COLUMNS = ["notebook", "status", "seconds", "report", "executed", "error", "database"]
SEVERITY = ("OK", "UNKNOWN", "WARN", "CRIT")  # best to worst, as monitor.health ranks them
TARGET_SECONDS = 60  # all curated notebooks with their reports, on the embedded database with demo data
# What a run hands each kernel besides DATABASE_URL: the database it resolved, as database_identity() saw it
# (no password), for the kernel to compare with the one it connects to.
RUN_DATABASE_VAR = "COPYTHAT_RUN_DATABASE"
DATABASE_MIME = "application/vnd.copythat.database+json"  # a notebook's report of the database it used
CHECK_TAG = "copythat-database"  # the cell a run puts before a notebook's code: the database it uses, checked
END_TAG = "copythat-database-end"  # and after it: still the same database
INJECTED_TAGS = {"injected-parameters", CHECK_TAG, END_TAG}
_INJECTED_NOTE = "# Put here by `copythat-ops notebooks run` (not in the notebook's source): "
CHECK_SOURCE = (
    _INJECTED_NOTE + "the database this notebook uses, checked against the run's\n"
    "from copythat_ops import runbooks\n\nrunbooks.describe_figures()\nrunbooks.notebook_database();"
)
END_SOURCE = _INJECTED_NOTE + "still the run's database at the end\nfrom copythat_ops import runbooks\n\nrunbooks.notebook_database(end=True);"
# JupyterLab's look, without the scripts it would fetch from a CDN (MathJax, require.js, mermaid, widgets):
# a report is one file that opens offline.
REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
{%- if resources.copythat_failure %}
<div class="copythat-failure" role="alert" style="border-left: 6px solid #C44E52; background: #f8d0d0; padding: 0.6em 1em; margin: 1em 0;">
<p><strong>This notebook failed at {{ resources.copythat_failure.where | escape_html }}:</strong> {{ resources.copythat_failure.message | escape_html }}</p>
{%- if resources.copythat_failure.fix %}
<p><strong>Fix:</strong> {{ resources.copythat_failure.fix | escape_html }}</p>
{%- endif %}
<p>The failing cell is below, with its code; the traceback is folded under "Traceback".</p>
</div>
{%- endif %}
{%- endblock body_header -%}
{% block error scoped -%}
<div class="jp-RenderedText jp-OutputArea-output copythat-error" data-mime-type="application/vnd.jupyter.stderr">
<p><strong>{{ output.ename | escape_html }}</strong>: {{ output.evalue | escape_html }}</p>
<details><summary>Traceback</summary>
{{ super() }}
</details>
</div>
{%- endblock error %}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}" alt="{{ output | get_metadata('alt', 'image/png') | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width={{ width | escape_html }}{%- endif %}
{%- set height=output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height={{ height | escape_html }}{%- endif %}
>
</div>
{%- endblock data_png %}
"""


@dataclass(frozen=True)
class Run:
    """What one run of the notebooks left: its folder, the index page, one row per notebook, and the summary."""

    folder: Path
    index: Path
    results: pd.DataFrame
    summary: dict

    @property
    def failed(self) -> pd.DataFrame:
        """The notebooks that failed (empty when all ran)."""
        return self.results[self.results["status"] != "ok"]


def notebooks(folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """Return the curated notebooks, in run order.

    Example:
        >>> all(p.suffix == ".ipynb" for p in notebooks())
        True
    """
    folder = Path(folder)
    found = sorted(folder.glob("[0-9]*.ipynb")) if folder.is_dir() else []
    if not found:
        raise ConfigError(
            f"notebook folder {folder} {'holds no numbered notebooks' if folder.is_dir() else 'does not exist'}",
            fix="run from a checkout of copythat-ops, or give a folder of notebooks named like 01_name.ipynb",
        )
    return found


def select_notebooks(names: Iterable[str] | None = None, folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """Return the notebooks named by number prefix ("03"), stem ("03_monitoring") or file name; all of them for None.

    Example:
        >>> [p.name for p in select_notebooks(["02_jobs", "01"])]
        ['01_connect_and_migrate.ipynb', '02_jobs.ipynb']
    """
    available = notebooks(folder)
    if names is None:
        return available
    chosen = set()
    for name in names:
        match = _match(name, available)
        if match is None:
            raise InputError(
                f"no notebook {name!r}",
                fix=f"name one by number or name: {', '.join(p.stem for p in available)}",
            )
        chosen.add(match)
    return [p for p in available if p in chosen]


def notebook_parameters(path: str | Path) -> dict[str, str]:
    """Return the names a run may set in a notebook (its `parameters` cell) with their defaults as written.

    Example:
        >>> notebook_parameters(NOTEBOOK_DIR / "01_connect_and_migrate.ipynb")
        {'TARGET': '"head"'}
    """
    import papermill

    return {name: spec["default"] for name, spec in papermill.inspect_notebook(str(path)).items()}


def parameter_value(text: str) -> object:
    """Return a parameter given as text as the Python value it spells (a number, True, None, a list), else the text.

    Example:
        >>> [parameter_value(v) for v in ("30", "2.5", "False", "None", "24h")]
        [30, 2.5, False, None, '24h']
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def checked_parameter(name: str, value: object, default: str) -> object:
    """Return `value` for the notebook parameter `name` once it is the kind of value its `default` (as written) is, else raise InputError.

    A default that is a duration ("7 days") takes a duration, a size ("10 GB") a size, a whole
    number a whole number (not negative when the default is not), a float a number, True/False
    True or False (also spelled true/false/yes/no); a number given for a text default becomes text;
    a None default takes anything, true/false read as True/False (not as text, which would count as true).

    Example:
        >>> checked_parameter("SINCE", "3 days", '"7 days"'), checked_parameter("TARGET", 5, '"head"')
        ('3 days', '5')
        >>> checked_parameter("SINCE", "3 dayz", '"7 days"')
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: parameter SINCE '3 dayz' is not a duration. Fix: give e.g. 30s, 30min, 2h, 1 day or 00:30:00
    """
    from . import validate

    example = parameter_value(default) if isinstance(default, str) else default
    shown = f"parameter {name}"
    if isinstance(example, bool):
        word = value.strip().lower() if isinstance(value, str) else None
        if word in _BOOL_WORDS:
            return _BOOL_WORDS[word]
        if not isinstance(value, bool):
            raise InputError(f"{shown} must be True or False, not {value!r}", fix="give True or False")
    elif isinstance(example, int | float):
        validate.number(value, name=shown, minimum=0 if example >= 0 else float("-inf"), integer=isinstance(example, int))
    elif isinstance(example, str):
        if _is_duration(example):
            validate.duration(value, name=shown, positive=True)
        elif _is_size(example):
            from .monitor.forecast import parse_size

            try:
                parse_size(value, name=shown)
            except InputError:
                raise InputError(f"{shown} {value!r} is not a size", fix="give a size with a unit, e.g. 10 GB or 512 MB") from None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif example is None and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _is_duration(example: str) -> bool:
    from . import validate

    try:
        return validate.duration(example) > timedelta(0)
    except InputError:
        return False


def _is_size(example: str) -> bool:
    from .monitor.forecast import parse_size

    try:
        return bool(re.search(r"[A-Za-z]", example)) and parse_size(example) > 0
    except InputError:
        return False


def run_summary() -> dict:
    """Return what a run found: database (masked), revision, head, verdict, problems, job failure rate and stuck jobs.

    `verdict` is the worst status of `monitor.health()` with its default
    thresholds; `problems` lists its checks that are not OK. `failure_rate`
    (failed / finished jobs, 0-1) and `stuck_jobs` (as `stuck_jobs()` counts
    them) are None when the database has no jobs table yet.

    Example:
        >>> sorted(run_summary())
        ['database', 'failure_rate', 'head', 'problems', 'revision', 'stuck_jobs', 'verdict']
    """
    from . import migrations, monitor
    from .engine import database_url
    from .jobs import job_summary, stuck_jobs

    summary = {"database": mask_url(database_url()), "revision": None, "head": ", ".join(migrations.heads()),
               "verdict": "UNKNOWN", "problems": [], "failure_rate": None, "stuck_jobs": None}  # fmt: skip
    try:
        summary["revision"] = migrations.current()
        report = monitor.health()
        summary["verdict"] = monitor.verdict(report)
        bad = report[report["status"] != "OK"]
        summary["problems"] = [f"{row.check} {row.status}: {row.detail}" for row in bad.itertuples()]
    except (CopythatError, SQLAlchemyError) as exc:
        summary["problems"] = [f"could not check the database: {_one_line(exc)}"]
        return summary
    try:
        counts = job_summary(by="status")
        finished = counts["completed"].sum() + counts["failed"].sum()
        summary["failure_rate"] = round(float(counts["failed"].sum() / finished), 4) if finished else 0.0
        summary["stuck_jobs"] = len(stuck_jobs())
    except (CopythatError, SQLAlchemyError):
        pass  # no jobs table yet: the revision line says the database needs migrating
    return summary


def summary_text(summary: Mapping) -> str:
    """Return a run's summary as the lines printed at the end of `make run` and shown at the top of index.html.

    Example:
        >>> print(summary_text({"database": "postgresql://u:***@h/db", "revision": "abc", "head": "abc", "verdict": "OK",
        ...                     "problems": [], "failure_rate": 0.085, "stuck_jobs": 3, "notebooks": "3 ok", "seconds": 14.2}))
        database   postgresql://u:***@h/db
        revision   abc (head)
        health     OK
        jobs       8.5 % of finished jobs failed, 3 stuck
        notebooks  3 ok in 14.2 s (target: under 60 s)
    """
    if summary.get("stopped"):
        summary = {**summary, "revision": "not checked: the run stopped", "head": None}
    revision = summary.get("revision") or "none (run copythat-ops migrate upgrade)"
    if summary.get("revision") and summary.get("head"):
        revision += " (head)" if summary["revision"] == summary["head"] else f" (head is {summary['head']}: run copythat-ops migrate upgrade)"
    if summary.get("stopped"):
        jobs = "not checked: the run stopped"
    elif summary.get("failure_rate") is None:
        jobs = "no jobs table"
    else:
        jobs = f"{summary['failure_rate'] * 100:.1f} % of finished jobs failed, {summary['stuck_jobs']} stuck"
    lines = [("database", summary["database"])]
    if summary.get("connected"):
        lines.append(("", summary["connected"]))
    lines += [("revision", revision), ("health", summary["verdict"])]
    lines += [("", f"- {problem}") for problem in summary.get("problems", [])]
    lines.append(("jobs", jobs))
    if "notebooks" in summary:
        target = "target: under" if summary["seconds"] < TARGET_SECONDS else "over the target of"
        lines.append(("notebooks", f"{summary['notebooks']} in {summary['seconds']:.1f} s ({target} {TARGET_SECONDS} s)"))
    if "reports" in summary:
        lines.append(("reports", summary["reports"]))
    return "\n".join(f"{label:<10} {value}".rstrip() if label else f"{'':<10} {value}" for label, value in lines)


def run_notebooks(
    output_dir: str | Path = REPORTS_DIR,
    *,
    notebooks: Iterable[str] | None = None,
    parameters: Mapping[str, object] | None = None,
    keep: int | None = None,
    show_code: bool = False,
    folder: str | Path = NOTEBOOK_DIR,
    progress: Callable[[str, str, float], None] | None = None,
) -> Run:
    """Execute the notebooks top to bottom into a new dated folder under `output_dir`; return the Run.

    `notebooks` selects by number or name (all by default). `parameters` maps
    a name to its value for every selected notebook that has it, or
    "03:NAME" to a value for one notebook; a name no selected notebook has, or a
    value not of its default's kind (`checked_parameter`), is an error before anything runs.
    `keep` deletes the oldest run folders
    beyond that many. The reports hide code unless `show_code`, except the cell
    that failed. One failing notebook does not stop the others, and still gets
    its report. `progress(notebook, status, seconds)` is called after each one.
    The sources are never modified.

    The database is resolved once, here, whatever the working directory: each kernel gets it as
    DATABASE_URL (and DATABASE_REPLICA_URL), with COPYTHAT_ENV_FILE naming the same env file (or an
    empty one), so no kernel searches for a `.env` of its own. A cell put before each notebook's code
    shows the database it connects to (`notebook_database()`) and one after it checks it is still the
    same; a notebook that used another database stops the run with a ConfigError naming both.

    Example:
        >>> run = run_notebooks("reports", notebooks=["03"])
        >>> run.index.parts[0], run.index.name      # reports/<UTC time of the run>/index.html
        ('reports', 'index.html')
        >>> run.summary["verdict"] in ("OK", "UNKNOWN", "WARN", "CRIT")
        True
    """
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise InputError(f"keep must be a whole number of runs, at least 1 (got {keep!r})", fix="keep e.g. 10 runs")
    from .config import env_file, settings, source_text
    from .engine import database_url

    selected = select_notebooks(notebooks, folder)
    plan = _parameters_per_notebook(selected, parameters or {}, folder)
    configured = settings()
    url = database_url()  # which database, said once here (the embedded one starts now), not in every report
    expected = database_identity(url)  # and what it says it is: each notebook must say the same
    run_folder = _new_run_folder(Path(output_dir))
    started = time.perf_counter()
    rows, wrong = [], None
    with _kernel_environment(url, configured.replica_url, env_file(), expected):
        for source in selected:
            rows.append(_execute(source, run_folder, plan[source], show_code, expected))
            if progress:
                progress(rows[-1]["notebook"], rows[-1]["status"], rows[-1]["seconds"])
            wrong = _wrong_database(rows[-1], expected)
            if wrong:
                break
        results = pd.DataFrame(rows, columns=COLUMNS, dtype=object).astype({"seconds": float})  # None stays None, not NaN
        if wrong:  # the database the run would check is in doubt: not checked
            summary = {"database": expected["url"], "revision": None, "head": None, "verdict": "UNKNOWN", "problems": [wrong],
                       "failure_rate": None, "stuck_jobs": None, "stopped": True}  # fmt: skip
        else:
            summary = run_summary()
    summary["database"] = expected["url"]
    same = sum(bool(row["identities"]) and not any(_mismatch(expected, used) for used in row["identities"]) for row in rows)
    summary["connected"] = f"{describe_database(expected)}: " + (
        "the one every notebook reported" if same == len(selected) else f"the one {same} of {len(selected)} notebooks reported"
    )
    ok = int((results["status"] == "ok").sum())
    failed = results.loc[results["status"] != "ok", "notebook"].tolist()
    summary["notebooks"] = f"{ok} ok" + (f", {len(failed)} failed ({', '.join(failed)})" if failed else "")
    if wrong:
        summary["notebooks"] += f"; stopped, {len(selected) - len(rows)} not run"
    summary["seconds"] = round(time.perf_counter() - started, 1)
    index = run_folder / "index.html"
    summary["reports"] = str(index)
    index.write_text(_index_html(run_folder.name, results, summary), encoding="utf-8")
    if wrong:
        source = source_text(configured) if configured.url is not None else "the embedded database, as nothing is configured"
        left = len(selected) - len(rows)
        raise ConfigError(
            f"{wrong}, from {source}; the run stopped there" + (f" ({left} notebook{'s' * (left != 1)} not run)" if left else ""),
            fix=f"let the run choose the database (DATABASE_URL, .env or --env-file), not the notebook; its report: {rows[-1]['report'] or index}",
        )
    if keep is not None:
        prune_runs(output_dir, keep)
    return Run(run_folder, index, results, summary)


def database_identity(url=None) -> dict:
    """Return what the database at `url` (default: the one in use) says it is, without its password.

    `url` masked; `database` (current_database()), `user`, `address` (inet_server_addr(), or the
    socket folder), `port`, `server_version`, and `system_identifier` (None where the role may not read it).

    Example:
        >>> sorted(database_identity())
        ['address', 'database', 'port', 'server_version', 'system_identifier', 'url', 'user']
    """
    from .config import normalize_url
    from .engine import database_url, get_engine, run_query

    url = normalize_url(url) if url is not None else database_url()
    engine = get_engine(url)
    row = run_query(
        "SELECT current_database() AS database, current_user AS login, host(inet_server_addr()) AS address, "
        "current_setting('port') AS port, current_setting('server_version') AS server_version",
        name="runbooks:database",
        engine=engine,
    ).iloc[0]
    try:
        system = str(run_query("SELECT system_identifier::text AS id FROM pg_control_system()", name="runbooks:server", engine=engine)["id"][0])
    except (CopythatError, SQLAlchemyError):
        system = None
    return {
        "url": mask_url(url),
        "database": str(row["database"]),
        "user": str(row["login"]),
        "address": str(row["address"]) if row["address"] else f"socket {url.query.get('host') or url.host or '(default)'}",
        "port": int(row["port"]),
        "server_version": str(row["server_version"]).split()[0],
        "system_identifier": system,
    }


def describe_database(identity: Mapping) -> str:
    """Return a database identity (`database_identity()`) in a few words.

    Example:
        >>> describe_database({"database": "neondb", "address": "10.0.0.5", "port": 5432, "server_version": "17.2"})
        'neondb on 10.0.0.5:5432, PostgreSQL 17.2'
    """
    return f"{identity['database']} on {identity['address']}:{identity['port']}, PostgreSQL {identity['server_version']}"


def notebook_database(*, end: bool = False) -> dict:
    """Show the database this notebook uses and, in a run of `run_notebooks`, check it is the run's; return its identity.

    The run puts a call first in each notebook, and `end=True` last. The line shown names the
    database with its password masked. A database other than the run's raises ConfigError.

    Example:
        >>> notebook_database()["database"] == database_identity()["database"]  # doctest: +SKIP
        Database: postgresql+psycopg2://...
        True
    """
    used = database_identity()
    line = f"Database: {used['url']} ({describe_database(used)})"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:  # in a kernel: the line, and the identity for the run
        display({"text/plain": line if not end else f"Still the database: {used['url']}", DATABASE_MIME: used}, raw=True)
    else:
        print(line)
    expected = json.loads(os.environ[RUN_DATABASE_VAR]) if os.environ.get(RUN_DATABASE_VAR) else None
    wrong = _mismatch(expected, used) if expected else None
    if wrong:
        alike = used["url"] == expected["url"] and describe_database(used) == describe_database(expected)
        raise ConfigError(
            f"this notebook {'ended on' if end else 'uses'} {used['url']} ({describe_database(used)}), "
            f"not the run's database {expected['url']} ({describe_database(expected)})" + (f": {wrong}" if alike else ""),
            fix="let the run choose the database (DATABASE_URL, .env or --env-file): do not set DATABASE_URL or COPYTHAT_ENV_FILE in a notebook"
            if end
            else "check what the kernel reads besides the run's DATABASE_URL (its kernel spec's env, an IPython startup file)",
        )
    return used


def describe_figures() -> None:
    """Make this kernel give each matplotlib figure its description (`charts.alt_text`) as its text form: a report's alt text.

    Example:
        >>> describe_figures()  # outside IPython: nothing to do
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def text(fig, include=None, exclude=None) -> dict:
        from .charts import alt_text

        return {"text/plain": alt_text(fig)}  # the inline backend still adds the image

    # the bundle formatter, as matplotlib's inline backend resets the text one when pyplot loads
    shell.display_formatter.mimebundle_formatter.for_type_by_name("matplotlib.figure", "Figure", text)


def _mismatch(expected: Mapping, used: Mapping) -> str | None:
    """What differs between the run's database and the one a notebook used, in words; None when they are the same."""
    different = [
        f"{key} {used.get(key)!s} instead of {expected.get(key)!s}"
        for key in ("url", "database", "address", "port", "user", "system_identifier")
        if used.get(key) != expected.get(key) and not (key == "system_identifier" and None in (used.get(key), expected.get(key)))
    ]
    return ", ".join(different) or None


@contextmanager
def _kernel_environment(url, replica_url, env_path: Path | None, expected: Mapping) -> Iterator[None]:
    """The environment the kernels start with: exactly the run's database, whatever their working directory."""
    names = (URL_VAR, REPLICA_URL_VAR, ENV_FILE_VAR, RUN_DATABASE_VAR)
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="copythat-run-") as scratch:
        if env_path is None:  # nothing else to read, but a kernel must not look for a .env either
            env_path = Path(scratch) / "nothing.env"
            env_path.write_text("", encoding="utf-8")
        os.environ[URL_VAR] = url.render_as_string(hide_password=False)
        if replica_url is not None:
            os.environ[REPLICA_URL_VAR] = replica_url.render_as_string(hide_password=False)
        else:
            os.environ.pop(REPLICA_URL_VAR, None)
        os.environ[ENV_FILE_VAR] = str(Path(env_path).resolve())
        os.environ[RUN_DATABASE_VAR] = json.dumps(dict(expected))
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _wrong_database(row: Mapping, expected: Mapping) -> str | None:
    """Why a notebook's run shows it used another database than the run's, or None."""
    for used in row["identities"]:
        wrong = _mismatch(expected, used)
        if wrong:
            return f"notebook {row['notebook']} used {used['url']} ({describe_database(used)}), not the run's database {expected['url']} ({describe_database(expected)})"
    return None


def prune_runs(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete the oldest dated run folders under `output_dir` beyond the newest `keep`; return what was deleted.

    Only folders named like a run (2026-11-25T0312Z) are touched.

    Example:
        >>> prune_runs("/tmp/copythat-no-reports-here", keep=5)
        []
    """
    root = Path(output_dir)
    runs = sorted((p for p in root.iterdir() if p.is_dir() and RUN_FOLDER.match(p.name)), key=_run_order) if root.is_dir() else []
    doomed = runs[: max(len(runs) - keep, 0)]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def _match(name: str, available: list[Path]) -> Path | None:
    name = name.strip()
    for path in available:
        if name in (path.name, path.stem) or (name.isdigit() and path.stem.split("_", 1)[0] == name.zfill(2)):
            return path
    return None


def _parameters_per_notebook(selected: list[Path], parameters: Mapping[str, object], folder: str | Path) -> dict[Path, dict]:
    """Which parameters reach which notebook; an unknown notebook or name is an error before anything runs."""
    declared = {path: notebook_parameters(path) for path in selected}
    plan: dict[Path, dict] = {path: {} for path in selected}
    for key, value in parameters.items():
        target, _, name = key.rpartition(":")
        if target:
            path = select_notebooks([target], folder)[0]
            if path not in declared:
                raise InputError(f"parameter {key!r} is for {path.stem}, which this run does not include", fix=f"also select notebook {target}")
            if name not in declared[path]:
                raise InputError(f"{path.stem} has no parameter {name!r}", fix=f"use one of its parameters: {_names(declared[path])}")
            plan[path][name] = checked_parameter(name, value, declared[path][name])
            continue
        having = [path for path in selected if name in declared[path]]
        if not having:
            known = "; ".join(f"{path.stem}: {_names(declared[path])}" for path in selected)
            raise InputError(f"no selected notebook has a parameter {name!r}", fix=f"use one they have ({known})")
        for path in having:
            plan[path][name] = checked_parameter(name, value, declared[path][name])
    return plan


def _names(declared: Mapping) -> str:
    return ", ".join(declared) or "(none)"


def _new_run_folder(root: Path) -> Path:
    """The dated folder of this run, created; a second run in the same minute gets -2, -3, ..."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            folder = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
    except OSError as exc:
        raise InputError(f"cannot write reports to {root} ({exc.strerror or exc})", fix="give output_dir a folder you can write to", params="output_dir") from None
    raise InputError(f"{root} already holds 999 runs from this minute", fix="prune it, or choose another folder")


def _run_order(path: Path) -> tuple[str, int]:
    """Oldest first: by the minute, then by the -2, -3 of runs within it."""
    return path.name[:16], int(path.name[17:] or 1)


def _execute(source: Path, run_folder: Path, parameters: dict, show_code: bool, expected: Mapping | None = None) -> dict:
    """Run one notebook into the run folder and write its HTML report; a failure is a row, not an exception.

    The executed copy gets the run's database check before the notebook's code and after it.
    """
    import nbformat
    import papermill

    executed = run_folder / source.name
    report = executed.with_suffix(".html")
    started = time.perf_counter()
    error = None
    try:
        nbformat.write(_with_database_checks(nbformat.read(source, as_version=4)), executed)
        papermill.execute_notebook(
            str(executed),
            str(executed),
            parameters=parameters,
            cwd=str(source.parent),
            progress_bar=False,
            kernel_name="python3",
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up chatter on stderr
        )
    except papermill.PapermillExecutionError as exc:
        error = f"{_failed_cell(executed) or f'cell {exc.exec_count}'}: {exc.ename}: {mask_text(_first_line(exc.evalue))}"
    except Exception as exc:  # the kernel died or could not start: still a row
        error = f"{type(exc).__name__}: {mask_text(_first_line(str(exc)))}"
    identities = _reported_databases(executed) if executed.exists() else []
    if executed.exists():
        _write_report(executed, report, show_code)
    return {
        "notebook": source.stem,
        "status": "failed" if error else "ok",
        "seconds": round(time.perf_counter() - started, 1),
        "report": str(report) if report.exists() else None,
        "executed": str(executed) if executed.exists() else None,
        "error": error,
        "database": identities[0]["url"] if identities else None,
        "identities": identities,
    }


def _with_database_checks(notebook):
    """The notebook with the run's database check before its first code cell and after its last."""
    import nbformat

    check = nbformat.v4.new_code_cell(CHECK_SOURCE, metadata={"tags": [CHECK_TAG]})
    end = nbformat.v4.new_code_cell(END_SOURCE, metadata={"tags": [END_TAG]})
    first = next((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"), len(notebook.cells))
    notebook.cells = [*notebook.cells[:first], check, *notebook.cells[first:], end]
    return notebook


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _failed_cell(executed: Path) -> str | None:
    """Which cell of the notebook failed, counted as in its source (the run's own cells not counted): 'cell 3', or 'the database check'."""
    import nbformat

    try:
        notebook = nbformat.read(executed, as_version=4)
    except Exception:
        return None
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        injected = _tags(cell) & INJECTED_TAGS
        count += not injected
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return "the run's database check" if injected - {"injected-parameters"} else f"cell {count}"
    return None


def _reported_databases(executed: Path) -> list[dict]:
    """The databases the notebook's check cells reported, in order."""
    import nbformat

    try:
        notebook = nbformat.read(executed, as_version=4)
    except Exception:
        return []
    return [
        dict(output["data"][DATABASE_MIME])
        for cell in notebook.cells
        if _tags(cell) & {CHECK_TAG, END_TAG}
        for output in cell.get("outputs", [])
        if DATABASE_MIME in output.get("data", {})
    ]


def _write_report(executed: Path, report: Path, show_code: bool) -> None:
    """One self-contained HTML page from an executed notebook: code hidden (except a failing cell), charts inline with alt text.

    A failed notebook's page starts with the error and its fix; the traceback is folded away.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    failure = None
    heading = ""
    cells = []
    for cell in notebook.cells:
        errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
        if END_TAG in _tags(cell) and not errors:
            continue  # the closing check said nothing new
        if "papermill-error-cell-tag" in _tags(cell) and 'id="papermill-error-cell"' not in cell.source:
            continue  # papermill's banner pointing down to the failing cell: the page starts with the error instead
        if cell.cell_type == "markdown":
            heading = next((line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("#")), heading)
        if cell.cell_type == "code" and not show_code and not errors:
            cell.metadata["transient"] = {"remove_source": True}
        for output in cell.get("outputs", []):
            _mask_output(output)
            if "image/png" in output.get("data", {}):
                output.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = _alt(output, heading)
        if errors and failure is None:
            failure = _failure(errors[0], _failed_cell(executed) or "a cell")
        cells.append(cell)
    notebook.cells = cells
    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"copythat-report.html.j2": REPORT_TEMPLATE})],
        template_file="copythat-report.html.j2",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": executed.stem}, "copythat_failure": failure})
    report.write_text(body, encoding="utf-8")


def _mask_output(output) -> None:
    """No password in a report: every text an output carries, masked."""
    if "text" in output:
        output["text"] = mask_text(output["text"])
    if output.get("output_type") == "error":
        output["evalue"] = mask_text(output.get("evalue", ""))
        output["traceback"] = [mask_text(line) for line in output.get("traceback", [])]
    for kind, value in output.get("data", {}).items():
        if kind.startswith("text/") and isinstance(value, str):
            output["data"][kind] = mask_text(value)


def _alt(output, heading: str) -> str:
    """A chart's alt text: the description the kernel gave the figure (charts.alt_text), else the section it is in."""
    text = " ".join(str(output.get("data", {}).get("text/plain", "")).split())
    if text.startswith("Chart: ") and heading:  # an untitled figure: named by its section
        return f"{heading}: {text.removeprefix('Chart: ')}"
    if text and not re.match(r"^<(Figure|matplotlib)\b", text):
        return text
    return f"Chart: {heading}" if heading else "Chart"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failure(error, where: str) -> dict:
    """What a failed notebook's page says first: where, the error's last line (a CopythatError's problem and its fix apart)."""
    message = _ANSI.sub("", mask_text(_first_line(error.get("evalue", ""))))
    problem, _, fix = message.partition(". Fix: ")
    if fix:
        return {"where": where, "message": problem, "fix": fix}
    return {"where": where, "message": f"{error.get('ename', 'Error')}: {message}", "fix": None}


def _index_html(name: str, results: pd.DataFrame, summary: Mapping) -> str:
    """The run's front page: the verdict and summary first, then a link to each notebook's report."""
    colour = {"OK": "#d7f0d7", "WARN": "#fbecc5", "CRIT": "#f8d0d0"}.get(summary["verdict"], "#e4e4e4")
    rows = []
    for row in results.itertuples():
        links = " ".join(
            f'<a href="{html.escape(Path(path).name)}">{label}</a>'
            for label, path in (("report", row.report), ("notebook", row.executed))
            if path
        )
        rows.append(
            f"<tr><td>{html.escape(row.notebook)}</td><td>{row.status}</td><td class=num>{row.seconds:.1f} s</td>"
            f"<td>{links}</td><td>{html.escape(row.error or '')}</td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>copythat-ops run {name}: {summary["verdict"]}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; }}
.verdict {{ background: {colour}; padding: 0.6em 1em; font-size: 1.4em; font-weight: bold; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
table {{ border-collapse: collapse; }}
td, th {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #ddd; vertical-align: top; }}
td.num {{ text-align: right; white-space: nowrap; }}
</style></head>
<body>
<h1>copythat-ops run {name}</h1>
<p class="verdict">Health: {summary["verdict"]}</p>
<pre>{html.escape(summary_text(summary))}</pre>
<h2>Reports</h2>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>open</th><th>error</th></tr>
{chr(10).join(rows)}
</table>
</body></html>
"""


def _first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0]


def _one_line(exc: Exception) -> str:
    return mask_text(_first_line(str(getattr(exc, "orig", None) or exc)))
