"""The HTTP endpoints.

All responses are JSON. Fibonacci values are decimal strings, always, since
JSON numbers above 2**53 lose precision in most clients. Parameter rules and
status codes are described in app.problems.
"""

import os
import platform
import re
import socket
import sys
import threading
import time

from flask import Blueprint, current_app, jsonify, request

from app import fib
from app.problems import InvalidParams
from wsgistack import cpus

bp = Blueprint("views", __name__)

# ascii digits only: int() and str.isdigit() also accept '١٢', '+1', ' 1'
# and '1_000', none of which belong in a url
_DIGITS = re.compile(r"[0-9]+")

METHODS = {
    "doubling": fib.fib_doubling,
    "iterative": fib.fib_iterative,
    "naive": fib.fib_naive,
}


class Params:
    """Collects parameter errors so one response can report all of them."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.failed: set[str] = set()
        self.malformed = False

    def _fail(self, name: str, reason: str, *, malformed: bool) -> None:
        self.errors.append((name, reason))
        self.failed.add(name)
        self.malformed = self.malformed or malformed

    def query(self, name: str) -> str | None:
        """Return the single value of a query parameter, or None if absent."""
        values = request.args.getlist(name)
        if len(values) > 1:
            self._fail(name, "must not be repeated", malformed=True)
            return None
        return values[0] if values else None

    def integer(
        self,
        name: str,
        raw: str | None,
        *,
        minimum: int,
        maximum: int,
        default: int | None = None,
    ) -> int | None:
        """Parse ``raw`` as an integer in [minimum, maximum]; None on error."""
        if name in self.failed:  # repeated: already reported
            return None
        if raw is None:
            if default is None:
                self._fail(name, "is required", malformed=True)
                return None
            # a deployment may set its limit below the default
            return min(default, maximum)
        if not _DIGITS.fullmatch(raw):
            self._fail(
                name, "must be a non-negative integer written with digits 0-9", malformed=True
            )
            return None
        out_of_range = f"must be between {minimum} and {maximum}"
        # check the length first: int() refuses strings over
        # sys.int_max_str_digits and is quadratic below that
        digits = raw.lstrip("0") or "0"
        if len(digits) > len(str(maximum)):
            self._fail(name, out_of_range, malformed=False)
            return None
        value = int(digits)
        if not minimum <= value <= maximum:
            self._fail(name, out_of_range, malformed=False)
            return None
        return value

    def query_int(self, name: str, **limits) -> int | None:
        """Parse the query parameter ``name`` with :meth:`integer`."""
        return self.integer(name, self.query(name), **limits)

    def choice(self, name: str, raw: str | None, choices, *, default: str) -> str | None:
        if name in self.failed:
            return None
        if raw is None:
            return default
        if raw not in choices:
            self._fail(name, f"must be one of: {', '.join(choices)}", malformed=True)
            return None
        return raw

    def check(self) -> None:
        """Raise 400 if anything was malformed, else 422 if out of range."""
        if self.errors:
            raise InvalidParams(400 if self.malformed else 422, self.errors)


def _config(key: str) -> int:
    return current_app.config[key]


@bp.get("/livez")
def livez():
    # liveness: the process answers. Behind a proxy, the proxy answers this
    # path itself; the app's route serves the stacks without one.
    return jsonify(status="ok")


@bp.get("/readyz")
@bp.get("/up")
def readyz():
    # readiness: a request goes through the servers to the app. No work, no
    # allocation worth mentioning; /up is the older name of the same check
    return jsonify(status="ok")


@bp.get("/fib/sequence")
def fib_sequence():
    params = Params()
    n = params.query_int("n", minimum=1, maximum=_config("SEQUENCE_MAX_N"))
    params.check()
    return jsonify(n=n, values=[str(v) for v in fib.fib_sequence(n)])


@bp.get("/fib/<n>")
def fib_n(n: str):
    params = Params()
    method = params.choice("method", params.query("method"), METHODS, default="doubling")
    limit_key = "FIB_NAIVE_MAX_N" if method == "naive" else "FIB_MAX_N"
    number = params.integer("n", n, minimum=0, maximum=_config(limit_key))
    params.check()
    # create_app checked that F(FIB_MAX_N) fits sys.int_max_str_digits
    value = str(METHODS[method](number))
    return jsonify(n=number, method=method, value=value, digits=len(value))


@bp.get("/io")
def io():
    params = Params()
    ms = params.query_int("ms", minimum=0, maximum=_config("IO_MAX_MS"), default=100)
    params.check()
    start = time.perf_counter()
    time.sleep(ms / 1000)
    slept_ms = (time.perf_counter() - start) * 1000
    # the pid lets a client see which worker process served it
    return jsonify(ms=ms, slept_ms=round(slept_ms, 3), pid=os.getpid())


@bp.get("/fanout")
def fanout():
    params = Params()
    calls = params.query_int("calls", minimum=1, maximum=_config("FANOUT_MAX_CALLS"), default=8)
    ms = params.query_int("ms", minimum=0, maximum=_config("IO_MAX_MS"), default=100)
    params.check()
    pool = current_app.extensions["fanout_pool"]
    start = time.perf_counter()
    pool.run_sleeps(calls, ms)
    elapsed_ms = (time.perf_counter() - start) * 1000
    return jsonify(calls=calls, ms=ms, elapsed_ms=round(elapsed_ms, 3), pool_size=pool.size)


@bp.get("/info")
def info():
    # sys._is_gil_enabled() only exists from 3.13; older builds always have a gil
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return jsonify(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        thread_id=threading.get_ident(),
        server_software=request.environ.get("SERVER_SOFTWARE"),
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        gil_enabled=is_gil_enabled() if is_gil_enabled else True,
        configured={
            "processes": current_app.config["WSGI_PROCESSES"],
            "threads": current_app.config["WSGI_THREADS"],
        },
        # what WSGI_PROCESSES defaults to: the CPUs this process may use (its
        # cgroup quota and affinity mask), next to the host's count
        cpus=cpus.detect().as_dict(),
        requests_served=current_app.extensions["request_counter"].value,
        # what the app believes of its client (app/forwarded.py)
        client={"address": request.remote_addr, "scheme": request.scheme},
        request_id=request.environ.get("wsgistack.request_id"),
        # the scheme of the Authorization header the app received ("Bearer"),
        # never the credentials: shows whether a server in front passes the
        # header on (mod_wsgi drops it without WSGIPassAuthorization On)
        authorization=request.headers.get("Authorization", "").partition(" ")[0] or None,
    )
