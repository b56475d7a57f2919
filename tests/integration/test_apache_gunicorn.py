"""What the Apache and gunicorn stacks promise beyond the behaviour suite
(issue 9), against the real servers, natively and in containers:

- the Authorization header reaches the app (mod_wsgi drops it by default);
- every access log line is valid JSON whatever bytes the client sends;
- the health contract: /livez and /readyz answer whatever the Host, /livez
  from Apache itself on the Apache stack, and neither is logged;
- the gunicorn stack refuses a body over MAX_BODY_BYTES with a JSON 413 (the
  app's limit: gunicorn has none);
- the buffered access logs (granian's workers, nginx's workers in front of
  uWSGI) lose no line under concurrent requests and never write one mid-line
  among another worker's.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.http import parse_raw, raw, request
from wsgistack.wait import wait_until

APACHE = ["apache", "docker-apache"]
GUNICORN = ["gunicorn", "docker-gunicorn"]


def stack_name(stack) -> str:
    """``apache``, ``docker-apache``...: the name the stack was started as."""
    return getattr(stack, "stack", None) or f"docker-{stack.profile}"


def access_log_lines(stack, lines: int = 400) -> list[str]:
    """The stack's access log lines, without the runner's or compose's prefix
    ("  apache | ", "apache-1  | "): every line whose text starts with "{"."""
    found = []
    for line in stack.log_tail(lines).splitlines():
        _, sep, text = line.partition(" | ")
        text = (text if sep else line).strip()
        if text.startswith("{"):
            found.append(text)
    return found


def wait_for_log(stack, marker: str, timeout: float = 10.0) -> list[str]:
    """Access log lines, once one holds ``marker`` (logs flush asynchronously)."""

    def logged() -> list[str] | None:
        lines = access_log_lines(stack)
        return lines if any(marker in line for line in lines) else None

    return wait_until(
        logged,
        timeout=timeout,
        interval=0.3,
        what=f"an access log line holding {marker}",
        detail=lambda: "\n".join(access_log_lines(stack)[-5:]),
    )


@pytest.mark.parametrize(
    "stack", ["apache", "gunicorn", "uwsgi", *APACHE[1:], *GUNICORN[1:]], indirect=True
)
def test_the_authorization_header_reaches_the_app(stack):
    answer = request(stack.base_url, "/info", headers={"Authorization": "Bearer t0ken"})
    assert answer.status == 200
    assert answer.json["authorization"] == "Bearer"


# request lines and headers no well-behaved client sends; {m} is a marker
NASTY_REQUESTS = [
    # a backslash and a double quote, in the URL and the User-Agent
    b'GET /fib/5?m={m}&q=\\"x\\\\ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: a\\b"c\r\n',
    # non-ASCII bytes: latin-1, invalid UTF-8, valid UTF-8
    b"GET /fib/5?m={m}&q=\xe9\xff\xc3\xa9 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: \xe9\xff\r\n",
    # a DEL and a tab in the User-Agent
    b"GET /fib/5?m={m} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: a\x7fb\tc\r\n",
    # control characters: refused (400) by the server, logged all the same
    b"GET /fib/5?m={m} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: a\x01b\x1bc\r\n",
    b"GET /fib/5?m={m}&q=\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    # a non-ASCII Host (the catch-all's 421 on Apache)
    b"GET /fib/5?m={m} HTTP/1.1\r\nHost: h\xe9\\st\r\n",
    # an unknown Host with a quote and backslash
    b'GET /nowhere?m={m} HTTP/1.1\r\nHost: a"b\\c\r\nUser-Agent: "\\\r\n',
]


@pytest.mark.parametrize("stack", APACHE + GUNICORN, indirect=True)
def test_every_access_log_line_is_json_whatever_the_client_sends(stack):
    marker = uuid.uuid4().hex
    for template in NASTY_REQUESTS:
        data = template.replace(b"{m}", marker.encode()) + b"Connection: close\r\n\r\n"
        answer = raw(stack.base_url, data)
        assert answer.startswith(b"HTTP/1."), answer[:200]
    # a last, ordinary request: once it is logged, the others are too
    done = uuid.uuid4().hex
    assert request(stack.base_url, f"/fib/5?m={done}").status == 200
    lines = wait_for_log(stack, done)
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError as exc:
            pytest.fail(f"not JSON ({exc}): {line!r}")
        assert isinstance(entry["status"], int), line
    # the nasty requests were logged too (a marker percent-encoded stays as is)
    assert sum(marker in line for line in lines) >= 3, [line for line in lines if marker in line]


@pytest.mark.parametrize("stack", APACHE + GUNICORN, indirect=True)
@pytest.mark.parametrize("host", ["127.0.0.1", "example.org", "10.1.2.3:8080"])
def test_health_answers_whatever_the_host_and_is_not_logged(stack, host):
    agent = f"probe-{uuid.uuid4().hex}"
    for path in ("/livez", "/readyz"):
        status, headers, body = parse_raw(
            raw(
                stack.base_url,
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n"
                "Connection: close\r\n\r\n".encode(),
            )
        )
        assert status == 200, (path, body[:200])
        assert json.loads(body) == {"status": "ok"}
        # the app adds Server-Timing to what it answers: on Apache, /livez is
        # answered without the app, /readyz by it
        by_app = "server-timing" in headers
        assert by_app == (path == "/readyz" or stack_name(stack) not in APACHE), headers
    done = uuid.uuid4().hex
    assert request(stack.base_url, f"/fib/5?m={done}").status == 200
    lines = wait_for_log(stack, done)
    assert not [line for line in lines if agent in line]


@pytest.mark.parametrize("stack", GUNICORN, indirect=True)
def test_gunicorn_refuses_a_body_over_the_limit_with_the_apps_json_413(stack):
    limit = stack.settings.MAX_BODY_BYTES
    ok = request(stack.base_url, "/fib/5", body=b"x" * limit)
    assert ok.status == 200
    answer = request(stack.base_url, "/fib/5", body=b"x" * (limit + 1))
    assert answer.status == 413
    assert answer.is_problem(413), answer.body[:200]
    chunk = b"x" * 4096
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // 4096 + 2))
    status, _, body = parse_raw(
        raw(
            stack.base_url,
            b"GET /fib/5 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
        )
    )
    assert status == 413, body[:200]
    assert json.loads(body)["status"] == 413


@pytest.mark.parametrize("stack", ["granian", "uwsgi"], indirect=True)
def test_buffered_access_logs_keep_every_line_whole_under_concurrency(stack):
    marker = uuid.uuid4().hex
    paths = [f"/fib/5?m={marker}-{n}" for n in range(300)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda path: request(stack.base_url, path).status, paths))
    assert set(statuses) <= {200, 503}, statuses

    def all_logged() -> list[str] | None:
        lines = [line for line in access_log_lines(stack, 2000) if marker in line]
        return lines if len(lines) >= len(paths) else None

    # the buffers are written within a second of the last request
    lines = wait_until(
        all_logged,
        timeout=5,
        interval=0.3,
        what=f"{len(paths)} access log lines holding {marker}",
        detail=lambda: "\n".join(access_log_lines(stack)[-5:]),
    )
    entries = [json.loads(line) for line in lines]
    assert sorted(entry["request"].split()[1].rpartition("-")[2] for entry in entries) == sorted(
        path.rpartition("-")[2] for path in paths
    )
