"""The alerting rules of prometheus/: valid for Prometheus (`promtool check rules`), their unit tests pass
(`promtool test rules`), every rule has a test where it fires and one where it does not, and each rule's
test fails when that rule is changed (so no rule passes untested).

promtool is Debian's `prometheus` package (apt-get install prometheus); without it these tests are skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parent.parent / "prometheus"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)")


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_unit_tests_pass():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_tested_firing_and_not_firing():
    cases = [case for test in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(not case.get("exp_alerts") for case in mine), f"{rule['alert']}: no test where it does not fire"
        severities = {alert["exp_labels"].get("severity") for case in mine for alert in case.get("exp_alerts") or []}
        assert rule["labels"]["severity"] in severities, f"{rule['alert']} ({rule['labels']['severity']}): no test where it fires"
        assert {"summary", "action"} <= set(rule["annotations"]), rule["alert"]


@pytest.mark.parametrize("index", range(len(rules())), ids=[f"{r['alert']}-{r['labels']['severity']}" for r in rules()])
def test_each_rule_s_tests_catch_a_change_to_it(index, tmp_path):
    """Loosen one rule (its `for:` one step longer, its threshold moved): the unit tests must then fail."""
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    rule = [r for group in data["groups"] for r in group["rules"]][index]
    rule["for"] = {"2m": "4m", "5m": "7m", "10m": "12m", "15m": "17m", "30m": "50m", "1h": "80m"}[rule["for"]]
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0, f"{rule['alert']} with for: {rule['for']} still passes its tests"
    assert rule["alert"] in result.stdout + result.stderr


def test_the_example_configuration_is_valid_and_scrapes_by_target(tmp_path):
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    (tmp_path / "copythat-serve.token").write_text("a-token-of-16-chars-or-more\n")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout
    jobs = {job["job_name"]: job for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]}
    relabel = jobs["copythat-targets"]["relabel_configs"]
    assert [r.get("target_label") for r in relabel] == ["__param_target", "instance", "__address__"]  # postgres_exporter's multi-target


def test_the_metrics_page_explains_every_alert():
    page = (PROMETHEUS.parent / "docs" / "metrics.md").read_text()
    explained = {line.split("`")[1] for line in page.splitlines() if line.startswith("| `") and line.split("`")[1][0].isupper()}
    assert explained == {rule["alert"] for rule in rules()}
