"""End to end: a real Prometheus scrapes a real `copythat-ops serve` (uvicorn) on a real PostgreSQL, through the
multi-target relabelling of prometheus/prometheus.yml and the rules of prometheus/alerts.yml; a stuck job is
staged and the alert CopythatJobsStuck goes from inactive to firing, read from Prometheus' HTTP API.

The rules are the shipped ones with every `for:` shortened to a few seconds and evaluated every second, so the
test takes about half a minute. It runs only where COPYTHAT_E2E=1 is set (one CI leg) and the `prometheus`
binary is installed (Debian: apt-get install prometheus); elsewhere it is skipped and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from test_metrics import libpq, stage_jobs

from copythat_ops import migrations
from copythat_ops.engine import dispose_engines

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "prometheus"
PROMETHEUS = shutil.which("prometheus")
CLI = str(Path(sys.executable).parent / "copythat-ops")
FOR = "5s"
WAIT = 90  # seconds for a state to show; Prometheus scrapes and evaluates every second

pytestmark = [
    pytest.mark.skipif(os.environ.get("COPYTHAT_E2E") != "1", reason="the Prometheus end-to-end test runs only with COPYTHAT_E2E=1 (one CI leg)"),
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install prometheus)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, check, *, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process ended ({process.returncode}): {log.read_text()[-3000:] if log else ''}")
        try:
            found = check()
        except (OSError, ValueError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not seen within {WAIT} s" + (f"; log: {log.read_text()[-3000:]}" if log else ""))


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prometheus_config(folder: Path, serve_port: int) -> Path:
    """The example prometheus.yml pointed at this serve, every second, no token (serve binds 127.0.0.1); the rules' `for:` shortened."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["copythat-targets"]
    job.pop("authorization")
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": ["prod"]}]
    job["relabel_configs"][-1]["replacement"] = f"127.0.0.1:{serve_port}"
    config["scrape_configs"] = [job]
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = FOR
    (folder / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def rule_state(prometheus: str, name: str) -> set[str]:
    _, body = get(f"{prometheus}/api/v1/rules?type=alert")
    return {rule["state"] for group in json.loads(body)["data"]["groups"] for rule in group["rules"] if rule["name"] == name}


def alerts(prometheus: str, name: str) -> list[dict]:
    _, body = get(f"{prometheus}/api/v1/alerts")
    return [alert for alert in json.loads(body)["data"]["alerts"] if alert["labels"]["alertname"] == name]


def query(prometheus: str, promql: str) -> list[dict]:
    _, body = get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    return json.loads(body)["data"]["result"]


def test_a_stuck_job_fires_its_alert_in_a_real_prometheus(server, tmp_path):
    url = server.create_database("e2e")
    serve = prometheus = None
    try:
        migrations.upgrade(url=url)
        stage_jobs(url, completed=20, failed=1, pending=2)
        dispose_engines()
        targets = tmp_path / "targets.env"
        targets.write_text(f"prod={libpq(url)}\n")
        serve_port, prometheus_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": libpq(url), "COPYTHAT_BACKUP_DIR": str(tmp_path / "backups")}
        env.pop("COPYTHAT_SERVE_TOKEN", None)
        serve_log = tmp_path / "serve.log"
        serve = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(serve_port), "--targets", str(targets)],
            env=env, cwd=tmp_path, stdout=serve_log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        metrics_url = f"http://127.0.0.1:{serve_port}/metrics?target=prod"
        wait_for("serve answering /metrics", lambda: get(metrics_url)[0] == 200, process=serve, log=serve_log)

        prometheus_log = tmp_path / "prometheus.log"
        prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={prometheus_config(tmp_path, serve_port)}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            cwd=tmp_path, stdout=prometheus_log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        api = f"http://127.0.0.1:{prometheus_port}"
        wait_for("prometheus ready", lambda: get(f"{api}/-/ready")[0] == 200, process=prometheus, log=prometheus_log)
        up = wait_for("prod scraped, up", lambda: query(api, 'pg_up{job="copythat-targets", instance="prod"} == 1'), process=prometheus, log=prometheus_log)
        assert up[0]["metric"]["instance"] == "prod"  # the relabelling made the target name the instance
        wait_for("the rules evaluated", lambda: rule_state(api, "CopythatJobsStuck") == {"inactive"}, process=prometheus, log=prometheus_log)
        time.sleep(3)  # a few evaluations with nothing stuck
        assert rule_state(api, "CopythatJobsStuck") == {"inactive"} and alerts(api, "CopythatJobsStuck") == []
        assert query(api, 'copythat_jobs_stuck{instance="prod", status="processing"}')[0]["value"][1] == "0"

        stage_jobs(url, completed=0, failed=0, stuck=2)  # two jobs processing since two hours
        dispose_engines()
        seen: set[str] = set()

        def firing():
            states = {alert["state"] for alert in alerts(api, "CopythatJobsStuck")}
            seen.update(states)
            return [alert for alert in alerts(api, "CopythatJobsStuck") if alert["state"] == "firing"]

        fired = wait_for("CopythatJobsStuck firing", firing, process=prometheus, log=prometheus_log)
        assert fired[0]["labels"] == {"alertname": "CopythatJobsStuck", "instance": "prod", "job": "copythat-targets", "severity": "warning", "status": "processing"}
        assert fired[0]["annotations"]["summary"] == "2 processing jobs stuck on prod (processing over 30 min or pending over 1 h)"
        assert "pending" in seen  # inactive, pending for FOR, then firing
        assert rule_state(api, "CopythatJobsStuck") == {"firing"}
        assert query(api, 'copythat_scrape_error{instance="prod"} == 1') == []  # every collector read
    finally:
        for process in (prometheus, serve):
            if process is not None:
                stop(process)
        server.drop_database(url)
