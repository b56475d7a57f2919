#!/usr/bin/python3
"""Container healthcheck: one request through the server's real request path.

    healthcheck URL

``http://HOST:PORT/PATH``
    an HTTP GET; healthy on a 2xx answer. The Host header is HOST:PORT, the
    container's own address, as a load balancer's probe sends it: the
    servers answer /livez and /readyz whatever the Host, so the check passes
    with any SERVER_NAMES.
``uwsgi://HOST:PORT/PATH``
    the same request in the uwsgi protocol, for the app server behind nginx,
    whose socket speaks no HTTP and is never published.
``connected://HOST:PORT``
    healthy while this container holds an established TCP connection to PORT
    (read from /proc/net/tcp): a Locust worker that has joined its master,
    not merely one whose master listens.
``valkey://HOST:PORT``
    Valkey answers PING with PONG, logged in as VALKEY_USER with
    VALKEY_PASSWORD (from the environment): it has loaded its append-only file
    (it answers LOADING until then) and accepts the app's user.
``fresh:PATH?max_age=SECONDS``
    the file PATH was written within the last SECONDS: a job worker's
    heartbeat (app/worker.py), which its event loop writes while it consumes.

``$NAME`` in the URL is expanded from the environment at check time, so the
Dockerfile can say ``http://127.0.0.1:$PORT/readyz`` and follow a changed ``PORT``.
Exit status 0 means healthy, 1 unhealthy (Docker's HEALTHCHECK contract).
Standard library only: it runs with Debian's /usr/bin/python3 in every image,
so no image needs curl.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# below Docker's --timeout (5 s in the Dockerfile), so a hung server is
# reported by this script rather than killed without a word
TIMEOUT = float(os.environ.get("HEALTHCHECK_TIMEOUT", "4"))
# the TCP state "established" in /proc/net/tcp
ESTABLISHED = "01"


def check_http(url: str) -> str:
    # the healthcheck talks to the server in its own container: no proxy
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=TIMEOUT) as response:
        return f"HTTP {response.status}"


def uwsgi_packet(variables: dict[str, str]) -> bytes:
    """A uwsgi-protocol request: header (modifier1 0, size, modifier2 0), then vars."""
    body = b""
    for key, value in variables.items():
        k, v = key.encode("latin-1"), value.encode("latin-1")
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(body), 0) + body


def check_uwsgi(url: str) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 3031
    path = parts.path or "/"
    packet = uwsgi_packet(
        {
            "REQUEST_METHOD": "GET",
            "REQUEST_URI": path + (f"?{parts.query}" if parts.query else ""),
            "PATH_INFO": path,
            "QUERY_STRING": parts.query,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": str(port),
            "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": "wsgistack-healthcheck",
        }
    )
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        conn.sendall(packet)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise OSError(f"not an HTTP answer: {status_line!r}")
    if not 200 <= int(fields[1]) < 300:
        raise OSError(status_line)
    return status_line


def check_connected(url: str) -> str:
    port = urlsplit(url).port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st ...; addresses are HEXIP:HEXPORT
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == ESTABLISHED:
                return f"connected to port {port}"
    raise OSError(f"no established connection to port {port}")


def resp(*words: str) -> bytes:
    """A command in Valkey's protocol (RESP): an array of bulk strings."""
    encoded = [word.encode() for word in words]
    return f"*{len(encoded)}\r\n".encode() + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


def check_valkey(url: str) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    user, password = os.environ.get("VALKEY_USER", ""), os.environ.get("VALKEY_PASSWORD", "")
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        conn.sendall((resp("AUTH", user, password) if password else b"") + resp("PING"))
        answers = b""
        expected = 2 if password else 1
        while answers.count(b"\r\n") < expected:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answers += chunk
    lines = answers.decode("latin-1").split("\r\n")[:expected]
    if lines[-1] != "+PONG" or (password and lines[0] != "+OK"):
        raise OSError(" / ".join(lines))
    return "PONG"


def check_fresh(url: str) -> str:
    parts = urlsplit(url)
    max_age = float(parse_qs(parts.query).get("max_age", ["30"])[0])
    age = time.time() - Path(parts.path).stat().st_mtime
    if age > max_age:
        raise OSError(f"{parts.path} is {age:.0f} s old (at most {max_age:g})")
    return f"written {age:.1f} s ago"


CHECKS = {
    "http": check_http,
    "https": check_http,
    "uwsgi": check_uwsgi,
    "connected": check_connected,
    "valkey": check_valkey,
    "fresh": check_fresh,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], "\nusage: healthcheck URL", file=sys.stderr)
        return 1
    url = os.path.expandvars(argv[1])
    check = CHECKS.get(urlsplit(url).scheme)
    if check is None:
        print(f"{url}: unknown scheme (one of {', '.join(CHECKS)})", file=sys.stderr)
        return 1
    try:
        print(f"{url}: {check(url)}")
    except (OSError, urllib.error.URLError, ValueError) as exc:
        print(f"{url}: unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
