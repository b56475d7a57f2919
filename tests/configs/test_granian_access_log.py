"""The granian stack's buffered access log (deploy/granian/serve.py), without a
server: its writes are whole lines of at most PIPE_BUF bytes (so the workers'
writes to one pipe never interleave mid-line), in order, none lost; a line
waits at most ACCESS_LOG_FLUSH_SECONDS; a forked worker does not write again
what its parent held. Fast tier: the writes to stdout are recorded, not made."""

from __future__ import annotations

import importlib.util
import logging
import os
import select
import sys

import pytest

from wsgistack.stacks import DEPLOY_DIR
from wsgistack.wait import wait_until


@pytest.fixture(scope="module")
def serve():
    srcfile = logging._srcfile
    spec = importlib.util.spec_from_file_location("granian_serve", DEPLOY_DIR / "granian/serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # serve.py turns off logging's caller lookup for its whole process
    logging._srcfile = srcfile
    return module


@pytest.fixture
def stdout(monkeypatch, serve):
    """The writes the handler makes to stdout (whatever pytest's capture made
    it), recorded instead of made: a list of bytes."""
    writes: list[bytes] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if fd != sys.stdout.fileno():
            return real_write(fd, data)
        writes.append(bytes(data))
        return len(data)

    monkeypatch.setattr(serve.os, "write", write)
    return writes


def handler(serve):
    made = serve.BufferedAccessLog()
    made.setFormatter(logging.Formatter("%(message)s"))
    return made


def log(made, message: str) -> None:
    made.handle(logging.makeLogRecord({"msg": message}))


def test_lines_are_written_in_whole_batches_of_at_most_pipe_buf(serve, stdout, monkeypatch):
    monkeypatch.setattr(serve, "ACCESS_LOG_FLUSH_SECONDS", 3600)
    made = handler(serve)
    # lines of varied lengths, one longer than PIPE_BUF
    lines = [f'{{"n":{n},"pad":"{"x" * (n * 37 % 300)}"}}' for n in range(200)]
    lines[100] = "y" * (select.PIPE_BUF + 10)
    for line in lines:
        log(made, line)
    # nothing waits one write per line: batches of many
    assert 0 < len(stdout) < len(lines) / 5, len(stdout)
    made.flush()
    assert b"".join(stdout).decode().splitlines() == lines
    for data in stdout:
        assert data.endswith(b"\n"), data[-40:]
        assert len(data) <= select.PIPE_BUF or data.count(b"\n") == 1, len(data)


def test_a_line_waits_at_most_the_flush_interval(serve, stdout, monkeypatch):
    monkeypatch.setattr(serve, "ACCESS_LOG_FLUSH_SECONDS", 0.05)
    made = handler(serve)
    log(made, "first")
    # no other request comes: the worker's writer thread writes it
    wait_until(lambda: stdout, timeout=2, interval=0.01, what="the line written")
    assert stdout == [b"first\n"]


def test_a_forked_worker_does_not_write_its_parents_lines(serve, stdout, monkeypatch):
    monkeypatch.setattr(serve, "ACCESS_LOG_FLUSH_SECONDS", 3600)
    made = handler(serve)
    # what a worker forked from a process that held a line finds in its copy
    made.lines, made.size, made.writer_pid = [b"parent\n"], 7, os.getpid() + 1
    log(made, "child")
    made.flush()
    assert stdout == [b"child\n"]
    assert made.writer_pid == os.getpid()
