"""A small HTTP client for the behaviour suite: a new connection per request
(so no keep-alive state hides a server's behaviour), raw sockets for requests
no well-behaved client would send, and timing of every answer.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from wsgistack.wait import wait_until


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    elapsed: float

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def is_problem(self, status: int | None = None) -> bool:
        """An RFC 9457 problem+json answer (with this status, if given)."""
        if self.content_type != "application/problem+json":
            return False
        body = self.json
        return body.get("status") == self.status and (status is None or self.status == status)


def request(
    base_url: str,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
    source: str | None = None,
    context: ssl.SSLContext | None = None,
    sent: threading.Event | None = None,
) -> Answer:
    """One request on a new connection; ``source``: the client address to send
    from (any 127.x address reaches a server on 127.0.0.1); an https base URL
    is reached with ``context`` (HTTP/1.1: http.client speaks no HTTP/2);
    ``sent`` is set once the request is written (the kernel has it)."""
    url = urlsplit(base_url)
    address = (source, 0) if source else None
    if url.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=timeout, source_address=address, context=context
        )
    else:
        conn = http.client.HTTPConnection(
            url.hostname, url.port, timeout=timeout, source_address=address
        )
    start = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        if sent is not None:
            sent.set()
        resp = conn.getresponse()
        data = resp.read()
        return Answer(resp.status, resp.headers, data, time.monotonic() - start)
    finally:
        conn.close()


def concurrently(
    base_url: str, paths: list[str], timeout: float = 30.0, source: str | None = None
) -> list[Answer | Exception]:
    """Send every request at once, each on its own connection and thread."""

    def one(path: str) -> Answer | Exception:
        try:
            return request(base_url, path, timeout=timeout, source=source)
        except Exception as exc:  # noqa: BLE001 - a failed request is a result here
            return exc

    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(one, paths))


class SteadyTraffic:
    """Clients that keep sending ``path`` until the block ends: the traffic a
    guarantee must hold under. ``outcomes`` holds each answer's status, or the
    exception of a request that got none.

        with SteadyTraffic(base_url, "/io?ms=300", clients=3) as traffic:
            ...
        assert traffic.failed == []
    """

    def __init__(self, base_url: str, path: str, clients: int = 3, timeout: float = 30.0):
        self.base_url, self.path, self.timeout = base_url, path, timeout
        self.clients = clients
        self.outcomes: list[int | Exception] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                answer = request(self.base_url, self.path, timeout=self.timeout)
                self.outcomes.append(answer.status)
            except Exception as exc:  # noqa: BLE001 - a lost request is a result here
                self.outcomes.append(exc)

    def __enter__(self) -> SteadyTraffic:
        for thread in self._threads:
            thread.start()
        return self

    def wait_flowing(self) -> None:
        """Until as many answers as clients came back: the traffic reaches the app."""
        wait_until(
            lambda: len(self.outcomes) >= self.clients,
            timeout=self.timeout,
            interval=0.05,
            what=f"{self.clients} answers to {self.path}",
        )

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    @property
    def failed(self) -> list[int | Exception]:
        return [o for o in self.outcomes if o != 200]


def raw(base_url: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are and return whatever comes back until the server closes."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_raw(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def server_timing(header: str) -> dict[str, float]:
    """``app;dur=1.2, cpu;dur=0.9`` -> {"app": 1.2, "cpu": 0.9}."""
    metrics = {}
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key == "dur":
                metrics[name] = float(value)
    return metrics
