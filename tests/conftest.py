"""Suite-wide rules.

Tests marked ``server`` start real servers (nginx, uWSGI, Apache, Docker). On a
developer's machine that lacks one they skip with the reason; in CI (``CI`` set,
as ``.ci/run`` does) such a skip is turned into a failure, because those tests
are the point of the project.
"""

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and item.get_closest_marker("server") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"real-server test skipped in CI, which counts as a failure: {reason}"
