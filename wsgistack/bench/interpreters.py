"""The interpreter axis: the same app and servers on three CPython builds, each in
its image, started with ``docker run`` on the same CPUs, and the comparison the
report makes of them.

- ``debian``: Debian's python3 (PGO + LTO, Debian's patches), what the stacks'
  images run (wsgistack-gunicorn, -granian, -apache).
- ``gil``: CPython from the same Debian source package and the same configure
  flags as the free-threaded one, the GIL on: the control that separates what
  free-threading costs from what the build costs (wsgistack-gil).
- ``freethreaded``: that source built ``--disable-gil`` (wsgistack-freethreaded,
  wsgistack-apache-freethreaded with mod_wsgi's WSGIFreeThreading).

Pure data and arithmetic: endpoints.container_endpoint starts the containers.
"""

from __future__ import annotations

import os
import shlex
import statistics
from dataclasses import dataclass, replace

from wsgistack.bench.plan import WORKLOADS, WRK, Concurrency, StackRun, Workload, name_list
from wsgistack.bench.results import Result

GUNICORN = ("gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py")
# every image's venv python is the interpreter serving the app
VENV_PYTHON = "/opt/venv/bin/python"
# what the build was: printed as JSON by VENV_PYTHON in the container
PYTHON_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': sys.version, "
    "'config_args': sysconfig.get_config_var('CONFIG_ARGS') or '', "
    "'opt': sysconfig.get_config_var('OPT') or ''}))"
)
# the configure flags that change the speed of Python code
SPEED_FLAGS = (
    "--disable-gil",
    "--enable-optimizations",
    "--with-lto",
    "--enable-shared",
    "--with-pydebug",
)


@dataclass(frozen=True)
class Image:
    """A server in an image: the image's name (its tag is IMAGE_TAG), the port it
    listens on in the container, and the command that starts it (the image's CMD if
    empty)."""

    name: str
    port: int
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interpreter:
    name: str
    title: str
    # server -> its image on this interpreter
    images: dict[str, Image]
    # how to build the images (the compose profiles that hold them)
    build: str


INTERPRETERS = {
    i.name: i
    for i in (
        Interpreter(
            "debian",
            "Debian's python3, what the stacks' images run: Debian's patches, PGO, LTO "
            "and -O3 (debian/rules; its sysconfig is edited to hide them and say -O2)",
            {
                "gunicorn": Image("wsgistack-gunicorn", 8082),
                "granian": Image("wsgistack-granian", 8085),
                "apache": Image("wsgistack-apache", 8081),
            },
            "docker compose --profile gunicorn --profile granian --profile apache build",
        ),
        Interpreter(
            "gil",
            "CPython from Debian's source package (the upstream tarball), built as the "
            "free-threaded one but with the GIL: the control. No PGO, no LTO",
            {
                "gunicorn": Image("wsgistack-gil", 8085, GUNICORN),
                "granian": Image("wsgistack-gil", 8085),
            },
            "docker compose --profile freethreaded build",
        ),
        Interpreter(
            "freethreaded",
            "CPython from Debian's source package (the upstream tarball), "
            "--disable-gil. No PGO, no LTO",
            {
                "gunicorn": Image("wsgistack-freethreaded", 8085, GUNICORN),
                "granian": Image("wsgistack-freethreaded", 8085),
                "apache": Image("wsgistack-apache-freethreaded", 8081),
            },
            "docker compose --profile freethreaded build",
        ),
    )
}
SERVERS = ("gunicorn", "granian", "apache")
# what "processes" are for each server on the free-threaded build
PROCESS_NOTES = {
    "granian": "granian's free-threaded build runs its workers as threads of one process",
}
SCALING_WORKLOADS = ("cpu", "sequence", "io")
# the shapes whose throughput is compared: does a second thread do what a second process does?
SCALING_SHAPES = (Concurrency(1, 1), Concurrency(1, 2), Concurrency(2, 1))
# the shapes whose memory is compared: 16 slots as threads, as processes, and between
MEMORY_SHAPES = (Concurrency(1, 16), Concurrency(2, 8), Concurrency(16, 1))
# memory is read with every slot busy: I/O-bound requests fill them at little CPU
MEMORY_WORKLOAD = "io"
# every workload of this axis is loaded by wrk: Locust's own CPU would take a
# share of the 2 cores that differs with the server's speed
AXIS_WORKLOADS: dict[str, Workload] = {
    name: replace(WORKLOADS[name], engine=WRK) for name in SCALING_WORKLOADS
}
# an argparse type: comma-separated interpreter names
interpreter_list = name_list(INTERPRETERS, "interpreter")


def run_name(server: str, interpreter: str) -> str:
    """A run's stack name in the results, tables and file names: "gunicorn-freethreaded"."""
    return f"{server}-{interpreter}"


def server_of(stack: str, interpreter: str) -> str:
    """run_name's inverse: "gunicorn-freethreaded" -> "gunicorn"."""
    return stack.removesuffix(f"-{interpreter}")


def image_of(run: StackRun) -> Image:
    return INTERPRETERS[run.interpreter].images[server_of(run.stack, run.interpreter)]


def image_tag() -> str:
    return os.environ.get("IMAGE_TAG", "latest")


def default_cpuset() -> str:
    """Every CPU this process may run on, as --cpuset-cpus takes them: "0,1"."""
    return ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))


def build_plan(
    servers: list[str],
    interpreters: list[str],
    shapes: tuple[Concurrency, ...] = SCALING_SHAPES,
    memory_shapes: tuple[Concurrency, ...] = MEMORY_SHAPES,
) -> list[StackRun]:
    """Shape by shape, every server on every interpreter that has an image of it, the
    interpreters next to each other, so that a change in the machine's load meets
    them all alike."""
    plan = []
    for shape, workloads in [(s, list(SCALING_WORKLOADS)) for s in shapes] + [
        (s, [MEMORY_WORKLOAD]) for s in memory_shapes if s not in shapes
    ]:
        for server in servers:
            for name in interpreters:
                if server in INTERPRETERS[name].images:
                    plan.append(StackRun(run_name(server, name), shape, list(workloads), {}, name))
    return plan


def servers_of(servers: list[str], interpreters: list[str]) -> list[str]:
    """The servers with an image on at least two of the interpreters: comparable."""
    return [s for s in servers if sum(s in INTERPRETERS[i].images for i in interpreters) >= 2]


def speed_flags(config_args: str, opt: str) -> str:
    """The configure flags that matter to speed, and the compiler's -O level:
    "--disable-gil --enable-shared, -O3"."""
    args = shlex.split(config_args)
    found = [a for a in args if a.split("=", 1)[0] in SPEED_FLAGS]
    levels = [f for f in opt.split() if f.startswith("-O")]
    flags = " ".join(found) or "no " + "/".join(SPEED_FLAGS[:3])
    return f"{flags}, {levels[-1]}" if levels else flags


# --- the comparison, from the results ----------------------------------------


def pick(results: list[Result], server: str, interpreter: str, shape: Concurrency, workload: str):
    """The measured result of one cell, or None."""
    for r in results:
        if (r.stack, r.interpreter, r.concurrency, r.workload) == (
            run_name(server, interpreter),
            interpreter,
            shape,
            workload,
        ) and r.measured:
            return r
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def scaling(
    results: list[Result], server: str, interpreter: str, workload: str, shape: Concurrency
):
    """Requests/s at ``shape`` over requests/s at 1 x 1."""
    at = pick(results, server, interpreter, shape, workload)
    one = pick(results, server, interpreter, Concurrency(1, 1), workload)
    return ratio(at and at.rps, one and one.rps)


def axis(results: list[Result]) -> tuple[list[str], list[str]]:
    """The interpreters and the servers measured, in the order of INTERPRETERS/SERVERS."""
    interpreters = [i for i in INTERPRETERS if any(r.interpreter == i for r in results)]
    servers = [
        s for s in SERVERS if any(r.stack == run_name(s, i) for r in results for i in interpreters)
    ]
    return interpreters, servers


def cpu_cost(results: list[Result], interpreter: str, baseline: str, workload: str = "cpu"):
    """Median over servers and shapes of the CPU per request on ``interpreter`` over
    that on ``baseline``, same server, shape and workload."""
    ratios = []
    for r in results:
        if r.interpreter == interpreter and r.workload == workload and r.measured:
            server = server_of(r.stack, interpreter)
            base = pick(results, server, baseline, r.concurrency, workload)
            value = ratio(r.server_cpu_ms, base and base.server_cpu_ms)
            if value:
                ratios.append(value)
    return statistics.median(ratios) if ratios else None


def verdict(results: list[Result]) -> str:
    """The comparison in one sentence, from the CPU-bound figures."""
    interpreters, servers = axis(results)
    gil = next((i for i in ("debian", "gil") if i in interpreters), None)
    if "freethreaded" not in interpreters or gil is None:
        return "Not enough interpreters measured for a verdict (freethreaded and a GIL build)."
    one, two_threads, two_procs = SCALING_SHAPES
    cells = []
    for server in servers:
        ft = pick(results, server, "freethreaded", two_threads, "cpu")
        base = pick(results, server, gil, two_procs, "cpu")
        if ft and base:
            cells.append((server, ft, base))
    cost = cpu_cost(results, "freethreaded", gil)
    if not cells or cost is None:
        return "The CPU-bound runs at 1 x 2 and 2 x 1 are missing: no verdict."
    server, ft, base = cells[0]
    thread_gain = scaling(results, server, "freethreaded", "cpu", two_threads)
    gil_gain = scaling(results, server, gil, "cpu", two_threads)
    gains = (
        f"a second thread took CPU-bound {server} from 1 x 1 to x{thread_gain:.2f} free-threaded "
        f"(x{gil_gain:.2f} with the GIL), "
        if thread_gain and gil_gain
        else ""
    )
    if ft.rps >= base.rps * 0.95:
        tail = (
            f"so 1 x 2 free-threaded did {ft.rps:.1f} req/s against {base.rps:.1f} for 2 x 1 on "
            f"{gil}: threads can replace processes for CPU-bound work on this build"
        )
    else:
        tail = (
            f"so 1 x 2 free-threaded did {ft.rps:.1f} req/s against {base.rps:.1f} for 2 x 1 on "
            f"{gil}: keep processes for CPU-bound work and threads for I/O"
        )
    control = cpu_cost(results, "freethreaded", "gil") if gil != "gil" else None
    build = (
        f" (x{control:.2f} that of gil, the same build with the GIL: free-threading's share)"
        if control
        else ""
    )
    return (
        f"On this machine {gains}but a CPU-bound request cost x{cost:.2f} the CPU of {gil}'s"
        f"{build}, {tail}."
    )


def interpreter_rows(results: list[Result]) -> list[list[str]]:
    """Per interpreter: its name, what it is, the Python /info reports, its build flags
    as its sysconfig says, the images of the servers run."""
    names, servers = axis(results)
    rows = []
    for name in names:
        mine = [r for r in results if r.interpreter == name]
        first = next((r for r in mine if r.python), mine[0])
        images = sorted(
            {
                f"{image.name}:{image_tag()}"
                for server, image in INTERPRETERS[name].images.items()
                if server in servers
            }
        )
        rows.append(
            [
                name,
                INTERPRETERS[name].title,
                first.python or "-",
                f"`{first.python_build}`" if first.python_build else "-",
                ", ".join(images),
            ]
        )
    return rows


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def side_by_side(results: list[Result], workload: str) -> tuple[list[str], list[list[str]]]:
    """A workload's table: per server and shape, requests/s, server CPU ms per request
    and cores used on each interpreter, next to each other."""
    interpreters, servers = axis(results)
    head = ["server", "processes x threads"]
    for label in ("req/s", "CPU ms/request", "cores used"):
        head += [f"{label} {i}" for i in interpreters]
    rows = []
    for server in servers:
        for shape in SCALING_SHAPES:
            cells = [pick(results, server, i, shape, workload) for i in interpreters]
            if not any(cells):
                continue
            rows.append(
                [
                    server,
                    shape.label,
                    *(_num(c and c.rps, 1) for c in cells),
                    *(_num(c and c.server_cpu_ms, 2) for c in cells),
                    *(_num(c and c.server_cores, 2) for c in cells),
                ]
            )
    return head, rows


def scaling_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    """Per workload and server: 1x2 / 1x1 and 2x1 / 1x1 on each interpreter."""
    interpreters, servers = axis(results)
    one, two_threads, two_procs = SCALING_SHAPES
    head = ["workload", "server"]
    head += [f"1x2 / 1x1 {i}" for i in interpreters] + [f"2x1 / 1x1 {i}" for i in interpreters]
    rows = []
    for workload in SCALING_WORKLOADS:
        for server in servers:
            ups = [scaling(results, server, i, workload, two_threads) for i in interpreters]
            outs = [scaling(results, server, i, workload, two_procs) for i in interpreters]
            if any(ups) or any(outs):
                rows.append(
                    [workload, server, *(f"x{_num(v, 2)}" if v else "-" for v in ups + outs)]
                )
    return head, rows


def memory_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    """Per server and 16-slot shape: the server tree's PSS and USS at its largest on each
    interpreter, with every slot busy."""
    interpreters, servers = axis(results)
    head = ["server", "processes x threads"]
    head += [f"PSS MB {i}" for i in interpreters] + [f"USS MB {i}" for i in interpreters]
    head += [f"processes {i}" for i in interpreters]
    rows = []
    for server in servers:
        for shape in MEMORY_SHAPES:
            cells = [pick(results, server, i, shape, MEMORY_WORKLOAD) for i in interpreters]
            if not any(c and c.pss_mb for c in cells):
                continue
            rows.append(
                [
                    server,
                    shape.label,
                    *(_num(c and c.pss_mb, 1) for c in cells),
                    *(_num(c and c.uss_mb, 1) for c in cells),
                    *(
                        "-" if not c or c.server_processes is None else str(c.server_processes)
                        for c in cells
                    ),
                ]
            )
    return head, rows
