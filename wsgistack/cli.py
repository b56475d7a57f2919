"""The ``wsgistack`` command: start a stack natively, render configs, benchmark.

wsgistack up uwsgi --port 8080 --processes 2 --threads 8
wsgistack up devserver --port 8083
wsgistack render deploy/nginx --out /tmp/conf
wsgistack render --layout debian --out /tmp/server
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from wsgistack import cpus, render
from wsgistack.render import RenderError
from wsgistack.runner import StackError, run_stack
from wsgistack.settings import Settings, SettingsError
from wsgistack.stacks import STACKS, get_stack


class Stop(Exception):
    """SIGINT or SIGTERM arrived: stop the stack gracefully."""


class Reload:
    """SIGHUP arrived: reload every server without dropping requests."""

    requested = False

    @classmethod
    def request(cls, signum: int, frame: FrameType | None) -> None:
        cls.requested = True


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # one stop is enough: a second Ctrl-C must not cut the graceful one short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsgistack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a stack in the foreground until Ctrl-C or SIGTERM")
    up.add_argument("stack", choices=sorted(STACKS), help="which stack")
    up.add_argument("--port", type=int, help="public port (default: the stack's own)")
    up.add_argument(
        "--processes",
        "--workers",
        type=int,
        dest="processes",
        help="worker processes (env WSGI_PROCESSES)",
    )
    up.add_argument("--threads", type=int, help="threads per process (env WSGI_THREADS)")
    up.add_argument(
        "--threaded",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="devserver: a thread per request (default: off, one at a time)",
    )
    up.add_argument("--request-timeout", type=int, help="seconds (env REQUEST_TIMEOUT)")
    up.set_defaults(func=cmd_up)

    rend = sub.add_parser(
        "render", help="fill the {{ PLACEHOLDERS }} of configs from the environment"
    )
    render.add_arguments(rend)
    rend.set_defaults(func=lambda a: render.run(rend, a))

    # imported here: their heavy imports (matplotlib, rich, psutil) happen only
    # when their command runs, never for `wsgistack up`
    from wsgistack import bench, sizing

    bench.add_parser(sub)
    sizing.add_parser(sub)
    from wsgistack import swarm

    swarm.add_parser(sub)
    return parser


def up_settings(args: argparse.Namespace) -> Settings:
    spec = get_stack(args.stack)
    overrides: dict[str, int | str] = {"PORT": args.port or spec.default_port}
    if args.stack == "devserver":
        # the comparison's baseline: one process, one request at a time
        overrides.update(WSGI_PROCESSES=1, WSGI_THREADS=8 if args.threaded else 1)
    if args.processes is not None:
        overrides["WSGI_PROCESSES"] = args.processes
    if args.threads is not None:
        overrides["WSGI_THREADS"] = args.threads
    if args.request_timeout is not None:
        overrides["REQUEST_TIMEOUT"] = args.request_timeout
    return Settings.from_env(server=spec.server, **overrides)


def cmd_up(args: argparse.Namespace) -> int:
    spec = get_stack(args.stack)
    settings = up_settings(args)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGHUP, Reload.request)
    # what WSGI_PROCESSES and NGINX_WORKERS default to when unset
    print(f"wsgistack: {cpus.detect().describe()}", flush=True)
    try:
        with run_stack(spec, settings) as stack:
            s = stack.settings
            print(
                f"wsgistack: {spec.description} ready at {stack.base_url} "
                f"({s.WSGI_PROCESSES} processes x {s.WSGI_THREADS} threads, "
                f"request timeout {s.REQUEST_TIMEOUT} s); Ctrl-C stops it, SIGHUP reloads it",
                flush=True,
            )
            while True:
                stack.check_alive()
                if Reload.requested:
                    Reload.requested = False
                    print(f"wsgistack: SIGHUP: reloading {spec.name}", flush=True)
                    stack.reload()
                time.sleep(0.2)
    except Stop as stop:
        print(f"wsgistack: {stop}: stopped {spec.name} gracefully", flush=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StackError, SettingsError, RenderError) as exc:
        print(f"wsgistack: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
