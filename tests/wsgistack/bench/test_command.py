"""wsgistack/bench/command.py: the command line of ``wsgistack bench``, its refusals
before anything starts (in-process: no server runs here), and its report folder."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wsgistack import cli
from wsgistack.bench.command import new_report_dir
from wsgistack.runner import find_free_port
from wsgistack.stacks import get_stack


def test_a_relative_report_folder_is_made_absolute(tmp_path, monkeypatch):
    # the load generators run in folders of their own: a relative path would miss
    monkeypatch.chdir(tmp_path)
    out = new_report_dir(Path("reports/x"))
    assert out.is_absolute() and out.is_dir() and out == tmp_path / "reports" / "x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stacks", "uwsgi,nosuch"], "unknown stack nosuch; choose from: uwsgi"),
        (["--settings", "2by16"], "is not PROCESSESxTHREADS"),
        (["--duration", "0"], "must be above 0"),
        (["--quick", "--full"], "not allowed with argument"),
    ],
)
def test_bad_arguments_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["bench", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path, capsys):
    out = tmp_path / "report"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["bench", "--stacks", "devserver", "--port", str(port), "--out", str(out)])
    assert code == 1
    assert f"port 127.0.0.1:{port} is taken" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_server_binary_is_refused(monkeypatch, tmp_path, capsys):
    spec = get_stack("uwsgi")
    monkeypatch.setattr(spec, "binaries", {"no-such-server": "apt-get install it"})
    code = cli.main(["bench", "--stacks", "devserver,uwsgi", "--out", str(tmp_path / "r")])
    assert code == 1
    assert "no-such-server (apt-get install it)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_docker_mode_says_when_the_compose_stacks_are_down(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UWSGI_HTTP_PORT", str(find_free_port()))
    code = cli.main(["bench", "--docker", "--stacks", "uwsgi", "--out", str(tmp_path / "r")])
    assert code == 1
    assert "docker compose --profile uwsgi up -d --wait" in capsys.readouterr().err
