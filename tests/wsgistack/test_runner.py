"""The runner's refusals come before anything starts, and say what to do."""

import socket

import pytest

from wsgistack.runner import StackError, StackSpec, check_binaries, check_port_free
from wsgistack.stacks import STACKS, get_stack


def test_a_taken_port_is_refused_with_advice():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"port 127.0.0.1:{port} is taken.*--port"):
            check_port_free("127.0.0.1", port)


def test_a_missing_binary_is_named_with_its_package():
    spec = StackSpec("x", "x", 1, {"no-such-server-binary": "apt-get install no-such"}, None)
    with pytest.raises(StackError, match="no-such-server-binary.*apt-get install no-such"):
        check_binaries(spec)


def test_an_unknown_stack_lists_the_known_ones():
    with pytest.raises(StackError, match="unknown stack 'nginx'.*uwsgi"):
        get_stack("nginx")


def test_every_stack_has_a_distinct_default_port():
    ports = [spec.default_port for spec in STACKS.values()]
    assert len(ports) == len(set(ports))
