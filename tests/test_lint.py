"""The tree stays clean under the linters `make lint` runs: ruff, shellcheck, hadolint."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = str(Path(sys.executable).with_name("ruff"))


@pytest.mark.parametrize("command", [[RUFF, "check", "."], [RUFF, "format", "--check", "."]])
def test_ruff_is_clean(command):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make deps installs it)")
    scripts = [".ci/run", *(str(p.relative_to(ROOT)) for p in ROOT.glob("docker/*.sh"))]
    result = subprocess.run([shellcheck, *scripts], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    # a pinned dev dependency: missing means a broken venv, not a reason to skip
    assert Path(hadolint).exists(), "hadolint missing: pip install -r requirements-dev.txt"
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
