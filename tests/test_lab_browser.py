"""JupyterLab as a user sees it: the server `make lab` starts, and each curated notebook run in headless Chromium.

The browser test needs Debian's `chromium` and `chromium-driver` (apt-get install
chromium chromium-driver); without them it is skipped. Nothing is downloaded at
test time: Selenium drives /usr/bin/chromedriver, Selenium Manager stays offline.
The notebooks' kernels inherit DATABASE_URL from the test session, so they run
against the test database. A screenshot per notebook goes to build/lab-screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from copythat_ops.runbooks import NOTEBOOK_DIR, notebooks

CHECKOUT = NOTEBOOK_DIR.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1800"]  # fmt: skip
# Lab settings for a test: never save a notebook (the curated sources stay as committed), render every cell, no news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}
RUN_TIMEOUT = 300  # seconds for one notebook's cells to run in the browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


def make_lab_options() -> list[str]:
    """The options `make lab` gives JupyterLab, read from the Makefile's recipe (`make -n lab` prints it, runs nothing)."""
    recipe = subprocess.run(["make", "-s", "-n", "lab"], cwd=CHECKOUT, capture_output=True, text=True, check=True).stdout
    line = next(line for line in recipe.splitlines() if "jupyter lab" in line)
    return [arg for arg in shlex.split(line) if arg.startswith("--")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started as `make lab` starts it, on a free port with a token and settings of its own; yields its URL and token.

    The notebooks' database (DATABASE_URL) is migrated first, so each notebook can run on its own.
    """
    from copythat_ops import migrations
    from copythat_ops.engine import dispose_engines

    migrations.upgrade("head")
    dispose_engines()
    home = tmp_path_factory.mktemp("lab")
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), "copythat-test"
    args = [str(Path(sys.executable).parent / "jupyter"), "lab", *make_lab_options(), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={token}", f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]  # fmt: skip
    if os.geteuid() == 0 and "--allow-root" not in args:
        args.append("--allow-root")
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env_file = home / "lab.env"
    env_file.touch(mode=0o600)
    env_file.write_text(f"DATABASE_URL={os.environ['DATABASE_URL']}\n")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", str(runtime)),  # as a desktop session has
           "COPYTHAT_BACKUP_DIR": str(home / "backups"),  # notebook 04's backups stay out of the checkout
           "COPYTHAT_ENV_FILE": str(env_file)}  # the kernels work in notebooks/: they read this, never the checkout's .env
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(args, cwd=CHECKOUT, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # up to 60 s for the server to come up
            try:
                get_json(f"{base}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail(f"JupyterLab did not answer within 60 s; its log: {(home / 'lab.log').read_text()[-2000:]}")
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def report_folder():
    """A run folder under build/reports, where `make run` writes them (removed afterwards)."""
    folder = CHECKOUT / "build" / "reports" / f"lab-test-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>copythat-ops run</title><p>Health: OK</p>")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_make_lab_opens_on_the_notebooks_and_reaches_the_reports(lab, report_folder):
    base, token = lab
    listed = {item["name"] for item in get_json(f"{base}/api/contents/notebooks?token={token}")["content"]}
    assert {p.name for p in notebooks()} <= listed
    with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as page:  # opens on notebooks/
        assert page.status == 200 and page.url.startswith(f"{base}/lab/tree/notebooks") and b"JupyterLab" in page.read()
    runs = {item["name"] for item in get_json(f"{base}/api/contents/build/reports?token={token}")["content"]}
    assert report_folder.name in runs  # build/reports is inside Lab's root: the file browser lists the runs
    with urllib.request.urlopen(f"{base}/files/build/reports/{report_folder.name}/index.html?token={token}", timeout=5) as page:
        assert b"Health: OK" in page.read()  # and a report opens


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's packages, driven by Selenium through the packaged chromedriver."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"Chromium is not installed ({', '.join(missing)} missing): apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser or driver
    profile = tempfile.mkdtemp(prefix="copythat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script: str, timeout: float, what: str):
    """Poll a JavaScript expression until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def menu(driver, menu_name: str, entry_name: str) -> None:
    """Click a JupyterLab menu bar item, then one of its entries, as a user does."""
    from selenium.webdriver.common.by import By

    def item(selector: str, label: str):
        found = [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed() and e.text.strip() == label]
        return found[0] if found else None

    item(".lm-MenuBar-item", menu_name).click()
    deadline = time.monotonic() + 10
    while (entry := item(".lm-Menu-item .lm-Menu-itemLabel", entry_name)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert entry is not None, f"the {menu_name} menu has no {entry_name!r}"
    entry.click()


# Where the notebook's code cells are: their prompts ("[ ]:", "[*]:", "[3]:") and whether the kernel is idle.
PROMPTS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt"
CELL_STATE = f"""return {{
  prompts: Array.from(document.querySelectorAll('{PROMPTS}')).map(p => p.textContent.trim()),
  idle: !!document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]'),
}};"""


def run_all_cells(driver, cells: int) -> list[str]:
    """Edit > Clear Outputs of All Cells, Run > Run All Cells; wait until the kernel has stopped running them; return the prompts.

    Done when every cell has run, or when the kernel is idle with nothing queued
    (JupyterLab stops at a cell that raised: the cells after it keep "[ ]:").
    """
    menu(driver, "Edit", "Clear Outputs of All Cells")
    wait_for(driver, f"!Array.from(document.querySelectorAll('{PROMPTS}')).some(p => /\\d/.test(p.textContent))", 10, "the outputs to clear")
    menu(driver, "Run", "Run All Cells")
    deadline, settled = time.monotonic() + RUN_TIMEOUT, 0
    while time.monotonic() < deadline:
        state = driver.execute_script(CELL_STATE)
        ran = [t for t in state["prompts"] if re.fullmatch(r"\[\d+\]:", t)]
        if len(ran) == cells and state["idle"]:
            return state["prompts"]
        settled = settled + 1 if ran and state["idle"] and not any("*" in t for t in state["prompts"]) else 0
        if settled >= 4:  # idle for 2 s with cells left unrun: the run stopped at an error
            return state["prompts"]
        time.sleep(0.5)
    pytest.fail(f"the cells did not finish within {RUN_TIMEOUT} s; prompts: {driver.execute_script(CELL_STATE)['prompts']}")


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """The folder of the screenshots, one per notebook: build/lab-screenshots (git-ignored; CI can keep it), the latest run's."""
    folder = CHECKOUT / "build" / "lab-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


@pytest.mark.parametrize("name", [p.name for p in notebooks()])
def test_each_notebook_runs_in_jupyterlab_without_errors_and_its_charts_render(lab, browser, screenshots, name):
    base, token = lab
    source = NOTEBOOK_DIR / name
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    code_cells = [c for c in nbformat.read(source, as_version=4).cells if c.cell_type == "code"]
    charts = sum("_chart(" in c.source for c in code_cells)

    browser.get(f"{base}/lab/tree/notebooks/{name}?reset&token={token}")  # a fresh workspace: this notebook only
    wait_for(browser, "document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').length", 60, "the notebook to open")
    wait_for(browser, "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status=\"idle\"]')", 60, "the kernel to start")
    prompts = run_all_cells(browser, len(code_cells))

    errors = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
        "[data-mime-type=\"application/vnd.jupyter.stderr\"]')).map(e => e.textContent.slice(0, 500));"
    )
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img'))"
        ".map(i => ({png: i.src.startsWith('data:image/png'), width: i.naturalWidth, complete: i.complete}));"
    )
    first_chart = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')"
    browser.execute_script(f"const i = {first_chart}; if (i) i.scrollIntoView();")
    browser.save_screenshot(str(screenshots / f"{source.stem}.png"))

    assert errors == [], f"{name} shows errors in JupyterLab: {errors}"
    assert all(re.fullmatch(r"\[\d+\]:", t) for t in prompts), f"not every cell of {name} ran: {prompts}"
    assert len(images) >= charts, f"{name} draws {charts} charts, the page shows {len(images)} images"
    assert all(i["png"] and i["complete"] and i["width"] > 0 for i in images), f"a chart of {name} did not render: {images}"
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # running in Lab never saved the curated notebook
