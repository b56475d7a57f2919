"""Two Flask apps no one here wrote (tests/integration/third_party), served
natively by every production stack (`wsgistack up STACK`, as a person runs
it) with the knobs a user sets for an app of their own (docs/your-app.md),
and driven through their real pages. The images and the Debian server serve
them too: test_containers.py and test_debian_server.py.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.integration import third_party
from tests.integration.targets import make_target

STACKS = ["uwsgi", "apache", "gunicorn", "granian"]


@pytest.fixture(scope="module")
def apps():
    apps = third_party.fetch()
    flaskr = apps["flaskr"]
    third_party.init_flaskr(sys.executable, flaskr.path)
    return apps


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", ["flaskr", "sqlite-web"])
def test_a_third_party_app_through_its_real_pages(apps, name, stack, tmp_path, monkeypatch):
    app = apps[name]
    pythonpath = [str(p) for p in app.path]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))
    for key, value in app.env.items():
        monkeypatch.setenv(key, value)
    target = make_target(stack, tmp_path / f"{stack}.log", app.knobs)
    try:
        target.start()
        third_party.WALKS[name](target.base_url)
    except BaseException:
        print(target.log_tail(60))
        raise
    finally:
        target.stop()
