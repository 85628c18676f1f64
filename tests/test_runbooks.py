"""The curated notebooks executed headless, as `make run` does, and JupyterLab serving them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat

from copythat_ops import migrations
from copythat_ops.runbooks import NOTEBOOK_DIR, notebooks, run_notebooks


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_curated_notebook_runs_and_the_sources_stay_untouched(tmp_path):
    before = {p.name: digest(p) for p in notebooks()}
    result = run_notebooks(tmp_path)
    assert result["status"].tolist() == ["ok"] * len(before), result["error"].tolist()
    assert {p.name: digest(p) for p in notebooks()} == before
    executed = nbformat.read(tmp_path / "01_connect_and_migrate.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(f"revision: {migrations.heads()[0]}" in o.get("text", "") for o in outputs)


def test_a_failing_notebook_is_reported_and_does_not_stop_the_rest(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    broken.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(broken, folder / "01_broken.ipynb")
    shutil.copy(NOTEBOOK_DIR / "01_connect_and_migrate.ipynb", folder / "02_connect.ipynb")
    result = run_notebooks(tmp_path / "out", folder=folder)
    assert result["status"].tolist() == ["failed", "ok"]
    assert "ZeroDivisionError" in result["error"][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_serves_the_notebooks(tmp_path):
    port, token = free_port(), "copythat-test"
    jupyter = Path(sys.executable).parent / "jupyter"
    args = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--notebook-dir={NOTEBOOK_DIR}", "--allow-root"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        listing = None
        for _ in range(120):  # up to 30 s for the server to come up
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2) as reply:
                    listing = json.load(reply)
                break
            except OSError:
                time.sleep(0.25)
        assert listing is not None, "JupyterLab did not answer within 30 s"
        assert {p.name for p in notebooks()} <= {item["name"] for item in listing["content"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
