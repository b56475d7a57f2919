"""Fixtures for the unit tests: an app per test and its test client."""

import os
import sys
from pathlib import Path

import pytest

# make `import app` work however pytest is started
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True, scope="session")
def _clean_environment():
    """Run every test without FLASK_* and WSGI_* variables from the shell."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FLASK_") or name in ("WSGI_PROCESSES", "WSGI_THREADS"):
                mp.delenv(name)
        yield


@pytest.fixture
def app():
    """A fresh app with the default limits."""
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    """A test client for the app fixture."""
    return app.test_client()


@pytest.fixture
def assert_problem():
    """Return a checker for RFC 9457 problem responses."""

    def check(response, status, *invalid_names):
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.content_type == PROBLEM
        if response.request.method == "HEAD":
            assert response.data == b""
            return None
        body = response.get_json(force=True)
        assert body["type"] == "about:blank"
        assert body["status"] == status
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["detail"], str) and body["detail"]
        assert b"<" not in response.data  # no html, ever
        if invalid_names:
            assert [p["name"] for p in body["invalid_params"]] == list(invalid_names)
            assert all(p["reason"] for p in body["invalid_params"])
        return body

    return check
