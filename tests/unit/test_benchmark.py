"""In-process cost of each endpoint through the test client.

These print figures and assert only that the request succeeded: timings on
a shared machine are too noisy to assert. Slow endpoints run a few fixed
rounds. Skipped when pytest-benchmark is missing or disabled with
``-p no:benchmark``.
"""

import pytest

from app import create_app

pytestmark = pytest.mark.benchmark(group="endpoints", max_time=0.25, min_rounds=5)


@pytest.fixture
def bench(request):
    """The pytest-benchmark fixture, or a skip when the plugin is off."""
    if not request.config.pluginmanager.hasplugin("benchmark"):
        pytest.skip("pytest-benchmark is not active")
    return request.getfixturevalue("benchmark")


@pytest.fixture(scope="module")
def client():
    """One app for all measurements."""
    return create_app().test_client()


def get(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    return response


@pytest.mark.parametrize(
    "url, status",
    [
        ("/up", 200),
        ("/info", 200),
        ("/fib/10", 200),
        ("/fib/1000", 200),
        ("/fib/20000", 200),
        ("/fib/1000?method=iterative", 200),
        ("/fib/20000?method=iterative", 200),
        ("/fib/sequence?n=1000", 200),
        ("/fib/sequence?n=2000", 200),
        ("/fib/x", 400),
        ("/nowhere", 404),
    ],
)
def test_fast_endpoints(bench, client, url, status):
    bench(get, client, url, status)


@pytest.mark.parametrize(
    "url",
    ["/fib/25?method=naive", "/fib/30?method=naive", "/io", "/fanout"],
)
def test_slow_endpoints(bench, client, url):
    bench.pedantic(get, args=(client, url, 200), rounds=5, iterations=1)
