"""loadtests/: the Locust users the README documents, as Locust itself lists them
(no load is sent: the scenarios run against real stacks in
tests/integration/test_locust.py)."""

from __future__ import annotations

import subprocess
import sys

from wsgistack.stacks import ROOT

LOADTESTS = ROOT / "loadtests"


def test_the_locustfiles_define_the_documented_users():
    # in a process of its own: importing Locust monkey-patches the standard library (gevent)
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f"]
        + [",".join(str(LOADTESTS / name) for name in ("fib.py", "batches.py", "jobs.py"))]
        + ["--list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    users = set(listed.stdout.split())
    assert {"CpuUser", "SequenceUser", "IoUser", "FanoutUser", "MixUser"} <= users, listed.stderr
    assert {"SequenceBatchUser", "IoBatchUser", "CpuBatchUser"} <= users
    assert "JobUser" in users
    assert "FibUser" not in users
    assert (LOADTESTS / "locust.conf").is_file()
