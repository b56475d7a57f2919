"""deploy/prometheus: the config and the rules, checked and unit-tested by
Prometheus' own promtool (Debian's prometheus package: make test-deps).
The alerts firing for real on a running stack: tests/integration/test_metrics.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from wsgistack.render import render_file
from wsgistack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent / "rules.test.yml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """deploy/prometheus rendered with the default knobs, the rule tests beside it."""
    if shutil.which("promtool") is None:
        pytest.skip("no promtool: apt-get install prometheus (make test-deps)")
    out = render_file(
        ROOT / "deploy" / "prometheus", tmp_path_factory.mktemp("p"), Settings.from_env({})
    )
    shutil.copy(TESTS, out / TESTS.name)
    return out


def promtool(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_config_and_its_rule_files_are_valid(rendered):
    out = promtool("check", "config", "prometheus.yml", cwd=rendered)
    assert "SUCCESS: 2 rule files found" in out


def test_the_rules_pass_their_unit_tests(rendered):
    assert "SUCCESS" in promtool("test", "rules", TESTS.name, cwd=rendered)


def test_every_alert_has_a_unit_test():
    alerts = {
        line.split(":", 1)[1].strip()
        for line in (ROOT / "deploy/prometheus/rules/alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip()
        for line in TESTS.read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert alerts == tested
