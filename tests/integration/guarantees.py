"""What each stack guarantees: the behaviour suite's declarations, and the
table of docs/guarantees.md made from them.

Declared here and nowhere else: a test marked ``@pytest.mark.behaviour("x")``
runs against every stack whose set below holds "x" (tests/integration/conftest.py
parametrizes it). A stack that lacks a behaviour is not skipped, it is simply
not asked. The table in docs/guarantees.md is ``markdown_table()``'s output:
``python -m tests.wsgistack.test_docs`` rewrites it, and a test keeps them equal.
"""

from __future__ import annotations

from tests.integration.targets import VARIANTS

# what each behaviour means, as the table in docs/guarantees.md says it
DESCRIPTIONS: dict[str, str] = {
    "endpoints": "every endpoint answers correctly, `Server-Timing` intact",
    "front_page": "the front page and its static files work in a real browser (Chromium)",
    "hardened_headers": "no server version leaked; security headers on every answer",
    "concurrency": "processes x threads really serve at once",
    "idle_connections": "clients idle on kept-alive connections hold no slot: a new one is "
    "answered at once",
    "request_timeout": "a request past `REQUEST_TIMEOUT` gets a JSON 504 within "
    "`REQUEST_TIMEOUT + 2` s, idle and under traffic; no other request fails",
    "request_timeout_at_proxy": "under traffic a stuck request's JSON 504 comes only at the "
    "proxy's timeout (`REQUEST_TIMEOUT + 5`), and its thread stays busy",
    "overload": "far too many requests get fast JSON 503s; none hangs; the stack recovers",
    "bad_input": "bad parameters get JSON 4xx answers through the server",
    "proxy_limits": "malformed lines, huge headers and bodies, unknown Hosts and slow "
    "clients are refused by the proxy; no worker dies",
    "header_limits": "whatever headers the proxy admits reach the app (no 502 on the way)",
    "crash_is_502": "a worker dying mid-request is a JSON 502 at once, not a 504",
    "client_fairness": "a flood from one client address leaves room for the others",
    "forwarded_headers": "`X-Forwarded-For`/`-Proto` believed from `TRUSTED_PROXIES` only",
    "graceful_stop": "SIGTERM: in-flight and queued requests all finish",
    "graceful_stop_in_flight_only": "SIGTERM: in-flight requests finish; queued "
    "connections are reset",
    "graceful_reload": "a reload under steady traffic loses no request",
    "follows_recreated_app": "a recreated app container is followed without a restart",
    "tls": "HTTPS compliant with Mozilla's 6.0 intermediate profile (sslyze), the hybrid "
    "post-quantum group where OpenSSL has it, HTTP/2, 308 from plain HTTP, HSTS",
    "request_ids": "one request ID in the proxy's, the app server's and the app's log",
    "compression": "JSON gzipped for clients that accept it",
}

# the behaviours a production stack behind a proxy shows
PROXIED = {
    "endpoints",  # every endpoint answers correctly, Server-Timing intact
    "hardened_headers",  # no server version leaked, security headers present
    "concurrency",  # processes x threads are real
    "idle_connections",  # clients idle on kept-alive connections hold no slot
    # a request past REQUEST_TIMEOUT gets a JSON 504 within REQUEST_TIMEOUT + 2 s,
    # idle and while other requests go on (none of which fails), its slot freed
    "request_timeout",
    "overload",  # far too many requests get fast JSON 503/502s, none hangs
    "bad_input",  # the app's bad parameters get 4xx JSON through the server
    "proxy_limits",  # malformed lines, huge headers/bodies, unknown Host, slow clients
    "graceful_stop",  # SIGTERM lets in-flight and queued requests finish
    "graceful_reload",  # a reload under steady traffic loses no request
}

# nginx + uWSGI shows more: what nginx admits fits uWSGI's buffer, a crashed
# worker is a 502 (not a 504), and one client address cannot take every slot
NGINX_UWSGI = PROXIED | {
    "header_limits",
    "crash_is_502",
    "client_fairness",
    "forwarded_headers",
    "front_page",  # the HTML page and its static files work in a real browser
}

# what a compose stack shows: a reload is an orchestrator's job there (new
# containers), not a signal to a running one; every host client reaches the
# proxy from Docker's proxy address, so fairness per client cannot show
CONTAINERIZED = PROXIED - {"graceful_reload"}

# gunicorn alone has no proxy in front: no per-request timeout (its gthread
# `timeout` is a worker heartbeat), no overload shedding, no Host check, no body
# limit, no slow-client defence, no security headers (deploy/gunicorn/); a stop
# finishes the requests its threads hold and resets the ones still queued; a
# client that keeps its connection open after the answer stalls the worker
GUNICORN = {
    "endpoints",
    "front_page",
    "concurrency",
    "bad_input",
    "graceful_stop_in_flight_only",
    "graceful_reload",
}

# granian alone, like gunicorn: no proxy in front, so no per-request timeout,
# no overload shedding, no Host check, no body limit, no slow-body defence, no
# security headers; a stop finishes the requests in flight and resets the
# connections still queued in the kernel's backlog (deploy/granian/serve.py):
# what gunicorn shows, and idle clients hold no slot (gunicorn 27 drains
# each closed connection on its worker's main loop: deploy/gunicorn/)
GRANIAN = GUNICORN | {"idle_connections"}

# the edge, with TLS=1 and (natively) a trusted load balancer at 127.0.0.2: HTTPS as
# Mozilla's intermediate profile wants it, with HTTP/2; forwarded headers and
# request IDs believed from the balancer only; compressed JSON
EDGE = {"tls", "forwarded_headers", "request_ids", "compression"}

BEHAVIOURS: dict[str, set[str]] = {
    "uwsgi": NGINX_UWSGI,
    # uWSGI with threads: harakiri is one deadline per worker, re-armed by every
    # request, so under traffic a stuck request is cut by nginx's read timeout
    # (REQUEST_TIMEOUT + 5) instead: what the suite asserts for it
    "uwsgi-threads": {"request_timeout_at_proxy"},
    "uwsgi-edge": EDGE,
    "apache": PROXIED | {"front_page", "forwarded_headers"},
    "apache-edge": EDGE,
    "gunicorn": GUNICORN,
    "docker-uwsgi": CONTAINERIZED | {"header_limits", "follows_recreated_app", "front_page"},
    "docker-uwsgi-edge": EDGE,
    "docker-apache": CONTAINERIZED | {"front_page"},
    "docker-apache-edge": EDGE,
    "docker-gunicorn": GUNICORN - {"graceful_reload"},
    "granian": GRANIAN,
    "docker-granian": GRANIAN - {"graceful_reload"},
    # granian on free-threaded CPython: its workers are threads of one process,
    # so the one-pid-per-process check of "concurrency" cannot show there
    "docker-freethreaded": GRANIAN - {"graceful_reload", "concurrency"},
    # the development server is a baseline for comparison, not for production
    "devserver": {"endpoints"},
}


# settings a stack needs beyond the suite's (targets.SUITE_SETTINGS)
STACK_SETTINGS: dict[str, dict[str, int]] = {
    "devserver": {"WSGI_PROCESSES": 1, "WSGI_THREADS": 1},
    # uWSGI's default shape: processes of one thread each (deploy/uwsgi/)
    "uwsgi": {"WSGI_PROCESSES": 6, "WSGI_THREADS": 1},
    "docker-uwsgi": {"WSGI_PROCESSES": 6, "WSGI_THREADS": 1},
    "uwsgi-threads": {"WSGI_PROCESSES": 2, "WSGI_THREADS": 4},
    "uwsgi-edge": {
        "WSGI_PROCESSES": 2,
        "WSGI_THREADS": 1,
        "TLS": 1,
        "TRUSTED_PROXIES": "127.0.0.2",
    },
    "docker-uwsgi-edge": {"WSGI_PROCESSES": 2, "WSGI_THREADS": 1, "TLS": 1},
    "apache-edge": {
        "WSGI_PROCESSES": 2,
        "WSGI_THREADS": 2,
        "TLS": 1,
        "TRUSTED_PROXIES": "127.0.0.2",
    },
    "docker-apache-edge": {"WSGI_PROCESSES": 2, "WSGI_THREADS": 2, "TLS": 1},
}


# the table's columns: the stacks as a user names them
STACK_NAMES = {
    "uwsgi": "nginx + uWSGI",
    "apache": "Apache + mod_wsgi",
    "gunicorn": "gunicorn",
    "granian": "granian",
    "freethreaded": "granian, free-threaded",
    "devserver": "Flask dev server",
}
# how a variant of the suite is run, in the table's words
VARIANT_LABELS = {"threads": "`WSGI_THREADS` > 1", "edge": "`TLS=1`"}


def where(behaviour: str) -> dict[str, list[str]]:
    """{stack: ["native", "compose (`TLS=1`)", ...]} for one behaviour."""
    cells: dict[str, list[str]] = {}
    for suite_name, behaviours in BEHAVIOURS.items():
        if behaviour not in behaviours:
            continue
        base = VARIANTS.get(suite_name, suite_name)
        kind = "compose" if base.startswith("docker-") else "native"
        stack = base.removeprefix("docker-")
        variant = suite_name.removeprefix("docker-").removeprefix(stack).lstrip("-")
        label = f"{kind} ({VARIANT_LABELS[variant]})" if variant else kind
        cells.setdefault(stack, []).append(label)
    return cells


def markdown_table() -> str:
    """docs/guarantees.md's table: a row per behaviour, a column per stack."""
    lines = [
        "| guarantee | " + " | ".join(STACK_NAMES.values()) + " |",
        "|---|" + "---|" * len(STACK_NAMES),
    ]
    for behaviour, text in DESCRIPTIONS.items():
        cells = where(behaviour)
        row = [", ".join(cells.get(stack, [])) or "no" for stack in STACK_NAMES]
        lines.append(f"| {text} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
