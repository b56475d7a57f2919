"""Both stacks on a Debian server under systemd, installed as a person would:
``make debian-server`` (docker/debian-server/start.sh) boots a trixie
container with systemd as PID 1 and runs deploy/debian/install.sh, the script
docs/debian-server.md quotes, for each stack. One server for the module: each
test leaves it serving.

What is proven here and nowhere else: Debian's own units (with the drop-ins)
start, reload and stop the servers, and they hold the guarantees of the
behaviour suite there; the proxy runs as www-data and the app as its own
user, through a socket of their shared group; a reboot brings everything back.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import compose, third_party
from tests.integration.http import SteadyTraffic, request
from tests.integration.targets import SUITE_SETTINGS
from tests.integration.test_behaviour import (
    stop_with_requests_queued,
    wait_for_all_workers,
    worker_pids,
)
from tests.integration.test_timeouts import ANSWER_MARGIN, apache_free_by, stuck_under_traffic
from wsgistack.settings import Settings
from wsgistack.wait import wait_until

CONTAINER = "wsgistack-debian-server"
# tests/integration/busy_slots.py, run on the server
BUSY_SLOTS = Path(__file__).with_name("busy_slots.py").read_text()
# where nginx reaches uWSGI, and Apache its mod_wsgi daemons (WSGISocketPrefix)
APP_SOCKETS = {"uwsgi": "/run/wsgistack/uwsgi.sock", "apache": "/run/apache2/wsgi.*.sock"}
# the suite's small numbers (a stuck request shows in seconds), but for the
# threads: each stack's own default (uWSGI 1 per process, mod_wsgi 8)
KNOBS = {k: str(v) for k, v in SUITE_SETTINGS.items() if k != "WSGI_THREADS"}
# mod_wsgi's 8 threads make Apache's slots 16, and the stop test sends 24 at
# once: a burst fills the daemons' socket before their threads accept their
# share, and with connect-timeout=0 what finds it full is a 503 (6 of 24 with
# the suite's 16; wsgi-daemons.conf). A backlog above the burst, as
# production's default of 128 is above any the tests send.
KNOBS["LISTEN_BACKLOG"] = "32"
# the app's own settings (/etc/wsgistack/app.env): sleeps past the timeout
APP_ENV = "FLASK_IO_MAX_MS=60000\n"
BOOT_TIMEOUT = 60


def sh(
    command: str, timeout: float = 60, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """A shell command on the server, as root (``stdin``: its input)."""
    result = subprocess.run(
        ["docker", "exec", *(["-i"] if stdin is not None else []), CONTAINER, "sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class ServerStack:
    """One stack on the server, as the behaviour suite's helpers take a stack."""

    name: str
    base_url: str
    units: tuple[str, ...]
    settings: Settings

    @property
    def slots(self) -> int:
        return self.settings.WORKER_SLOTS

    def log_tail(self, lines: int = 40) -> str:
        units = " ".join(f"-u {unit}" for unit in self.units)
        return sh(f"journalctl --no-pager -n {lines} {units}", check=False).stdout

    def systemctl(self, verb: str) -> None:
        sh(f"systemctl {verb} {' '.join(self.units)}", timeout=120)

    # a graceful stop, as the behaviour suite's stop test sends it
    def terminate(self) -> None:
        self._stopping = subprocess.Popen(
            ["docker", "exec", CONTAINER, "systemctl", "stop", *self.units],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self._stopping.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(
            lambda: request(self.base_url, "/readyz", timeout=2).status == 200,
            timeout=timeout,
            interval=0.2,
            what=f"{self.name} on the Debian server answering /readyz",
            ignore=(OSError,),
            detail=self.log_tail,
        )


def busy_slots(stack: ServerStack) -> int:
    """The requests the stack's workers hold (tests/integration/busy_slots.py,
    run on the server, at the app server's sockets)."""
    return int(sh(f"python3 - --at '{APP_SOCKETS[stack.name]}'", stdin=BUSY_SLOTS).stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The Debian server, both stacks installed and serving; removed at the end."""
    problem = compose.engine_problem()
    if problem:
        pytest.skip(problem)
    # the session's background build makes the server's image beside the
    # others (docker/build-images.sh); `make debian-server` then finds it built
    # instead of building it at once a second time
    compose.build_images(cpython=False)
    app_env = tmp_path_factory.mktemp("debian-server") / "app.env"
    app_env.write_text(APP_ENV)
    start = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "debian-server"],
        cwd=compose.ROOT,
        env={**compose.compose_env(), **KNOBS, "APP_ENV_FILE": str(app_env)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        subprocess.run(["docker", "rm", "--force", CONTAINER], capture_output=True, check=False)
        pytest.fail(f"make debian-server failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    print(f"make debian-server: {time.monotonic() - start:.0f} s")
    # the settings install.sh rendered from: the knobs, the stacks' shapes
    processes = int(KNOBS["WSGI_PROCESSES"])
    stacks = {
        "uwsgi": ServerStack(
            "uwsgi",
            "http://127.0.0.1:8096",
            ("nginx", "wsgistack-uwsgi"),
            Settings.from_env(KNOBS, WSGI_THREADS=1, WSGI_PROCESSES=processes),
        ),
        "apache": ServerStack(
            "apache", "http://127.0.0.1:8097", ("apache2",), Settings.from_env(KNOBS)
        ),
    }
    yield stacks
    subprocess.run(["docker", "rm", "--force", CONTAINER], capture_output=True, check=False)


@pytest.fixture(params=["uwsgi", "apache"])
def stack(request, server) -> ServerStack:
    stack = server[request.param]
    stack.wait_ready()
    return stack


def app_processes(stack: ServerStack) -> set[int]:
    """The app's worker processes (uWSGI's workers, the mod_wsgi daemons),
    children of the unit's main process, from the process list."""
    unit = stack.units[-1]
    main = sh(f"systemctl show {unit} -p MainPID --value").stdout.strip()
    name = "[(]wsgi:app[)]" if stack.name == "apache" else "uWSGI worker"
    found = sh(f"pgrep --parent {main} --full '{name}'", check=False).stdout
    return {int(pid) for pid in found.split()}


def user_of(pid: int) -> str:
    """The account a process of the server runs as (ps cuts long names)."""
    return sh(f"stat -c %U /proc/{pid}").stdout.strip()


def test_endpoints_users_socket_and_logs(stack):
    """The app answers through Debian's servers; the proxy runs as www-data
    and the app as its own user; nginx reaches uWSGI through a socket of
    their shared group; every request has a line in the journal."""
    # a client of its own, to find its request in the journal
    agent = f"wsgistack-test-{uuid.uuid4().hex[:12]}"
    fib = request(stack.base_url, "/fib/30", headers={"User-Agent": agent})
    assert fib.status == 200 and fib.json["value"] == "832040"
    assert request(stack.base_url, "/livez").status == 200
    # the proxy serves the static files itself, from STATIC_ROOT
    css = request(stack.base_url, "/static/fib.css")
    assert css.status == 200 and css.content_type == "text/css", css.status
    # the stack's shape: every worker process serves, each as the app's user
    pids = worker_pids(stack)
    assert len(pids) == stack.settings.WSGI_PROCESSES, pids
    assert {user_of(pid) for pid in pids} == {"wsgistack"}
    proxy = "nginx: worker" if stack.name == "uwsgi" else "/usr/sbin/apache2"
    users = sh(f"ps -eo user=,args= | grep '{proxy}' | grep -v grep | cut -d' ' -f1").stdout
    assert "www-data" in users.split(), users
    assert "wsgistack" in sh("id -nG www-data").stdout.split()
    if stack.name == "uwsgi":
        socket = sh("stat -c '%A %U %G' /run/wsgistack/uwsgi.sock").stdout.split()
        assert socket == ["srw-rw----", "wsgistack", "wsgistack"], socket
    # the access log is in the journal, one JSON line per request
    wait_until(
        lambda: agent in stack.log_tail(200),
        timeout=5,
        interval=0.2,
        what=f"the request of {agent} in the journal",
    )
    # the units: the ladder's stop grace period, restarted on failure
    for unit in stack.units:
        shown = sh(f"systemctl show {unit} -p TimeoutStopUSec -p Restart").stdout
        assert f"TimeoutStopUSec={stack.settings.STOP_GRACE_PERIOD}s" in shown, shown
        assert "Restart=on-failure" in shown, shown


def test_a_stuck_request_under_traffic_gets_a_json_504_in_time(stack):
    timeout = stack.settings.REQUEST_TIMEOUT
    # uWSGI: harakiri at REQUEST_TIMEOUT (checked each second), then the
    # respawned worker imports the app
    free_by = apache_free_by(stack.settings) if stack.name == "apache" else timeout + 5
    run = stuck_under_traffic(stack.base_url, stack.slots, free_by)
    stuck = run.stuck
    assert not isinstance(stuck, Exception), f"the stuck request got no answer: {stuck!r}"
    assert stuck.status == 504 and stuck.is_problem(504), (stuck.status, stuck.body[:300])
    assert timeout - 1 <= stuck.elapsed <= timeout + ANSWER_MARGIN, stuck.elapsed
    assert not run.failures, run.failures[:5]
    assert run.freed_after is not None, f"a slot was still held {free_by} s after the start"


def test_systemctl_reload_under_steady_traffic_loses_nothing(stack):
    """`systemctl reload` of each unit of the stack (nginx, then the uWSGI
    chain reload; the mod_wsgi daemons for Apache) while clients keep going."""
    before = worker_pids(stack)
    assert app_processes(stack) == before
    with SteadyTraffic(stack.base_url, "/io?ms=50", clients=4, timeout=10) as traffic:
        traffic.wait_flowing()
        for unit in stack.units:
            sh(f"systemctl reload {unit}")
        # read from the process list: a look through every slot on top of the
        # traffic would itself overflow the backlog while Apache's daemons,
        # all restarted at once, import the app (a 503, not the traffic's)
        wait_until(
            lambda: (
                len(now := app_processes(stack)) == stack.settings.WSGI_PROCESSES
                and now.isdisjoint(before)
            ),
            timeout=10 + 3 * stack.settings.WSGI_PROCESSES,
            interval=0.5,
            what="new workers only",
            detail=stack.log_tail,
        )
        # and the traffic goes on against the new ones
        time.sleep(1)
    # every slot is served by a new worker
    assert worker_pids(stack).isdisjoint(before)
    failed, total = len(traffic.failed), len(traffic.outcomes)
    print(f"{stack.name}: systemctl reload under traffic: {failed} failed of {total}")
    assert len(traffic.outcomes) > 50
    assert not traffic.failed, traffic.failed[:5]


def test_a_killed_worker_costs_only_its_own_requests_and_comes_back(stack):
    """SIGKILL to one worker while every slot is busy: the requests it held
    fail, the others are answered, and the master (uWSGI; Apache for the
    mod_wsgi daemons) brings it back. Then SIGKILL to the master itself:
    systemd starts the unit again (Restart=on-failure)."""
    pids = sorted(worker_pids(stack))
    victim = pids[0]
    results: list = []

    def slow():
        try:
            answer = request(stack.base_url, "/io?ms=2000", timeout=20)
            results.append(
                (answer.status, answer.json.get("pid") if answer.status == 200 else None)
            )
        except Exception as exc:  # noqa: BLE001 - a lost request is a result here
            results.append((exc, None))

    # the connections of worker_pids' requests closed (they linger for a moment)
    wait_until(lambda: busy_slots(stack) == 0, timeout=10, interval=0.1, what="idle workers")
    threads = [threading.Thread(target=slow) for _ in range(stack.slots)]
    for thread in threads:
        thread.start()
    # until every slot holds one of them (the kernel shows their connections):
    # a request still on its way when the victim dies queues instead, and
    # may be answered late (a fixed 0.7 s pause fell short under load)
    wait_until(
        lambda: busy_slots(stack) == stack.slots,
        timeout=10,
        interval=0.1,
        what=f"all {stack.slots} slots holding a request",
        detail=stack.log_tail,
    )
    sh(f"kill -KILL {victim}")
    for thread in threads:
        thread.join(timeout=30)
    served = [r for r in results if r[0] == 200]
    failed = [r for r in results if r[0] != 200]
    assert all(pid != victim for _, pid in served), results
    # only the victim's own: at most its threads' worth
    assert len(failed) <= stack.settings.WSGI_THREADS, results
    assert len(served) >= stack.slots - stack.settings.WSGI_THREADS, results
    wait_for_all_workers(stack, timeout=30)

    # the unit's main process: systemd restarts it
    unit = stack.units[-1]
    restarts = int(sh(f"systemctl show {unit} -p NRestarts --value").stdout)
    sh(f"systemctl kill --signal=KILL --kill-whom=main {unit}")
    wait_until(
        lambda: (
            int(sh(f"systemctl show {unit} -p NRestarts --value").stdout) > restarts
            and sh(f"systemctl is-active {unit}", check=False).stdout.strip() == "active"
        ),
        timeout=30,
        interval=0.5,
        what=f"{unit} restarted by systemd",
        detail=stack.log_tail,
    )
    stack.wait_ready()
    assert request(stack.base_url, "/fib/10").status == 200


def test_systemctl_stop_lets_requests_in_flight_finish(stack):
    results, code = stop_with_requests_queued(stack)
    statuses = [getattr(r, "status", r) for r in results]
    assert statuses == [200] * len(results), f"{statuses}\n{stack.log_tail(80)}"
    assert code == 0, stack.log_tail()
    stack.systemctl("start")
    stack.wait_ready()


def test_after_a_reboot_everything_comes_back(server):
    """A reboot (the container restarted: /run is a tmpfs again, empty): the
    enabled units start at boot, their run folders and the uWSGI socket made
    anew; then `systemctl restart` of every unit still serves."""
    subprocess.run(
        ["docker", "restart", "--time", "60", CONTAINER], check=True, capture_output=True
    )
    wait_until(
        lambda: (
            sh("systemctl is-system-running", check=False).stdout.strip() in ("running", "degraded")
        ),
        timeout=BOOT_TIMEOUT,
        interval=0.5,
        what="the server booted",
        ignore=(subprocess.SubprocessError,),
    )
    for stack in server.values():
        stack.wait_ready()
    run_dir = sh("stat -c '%A %U %G' /run/wsgistack").stdout.split()
    assert run_dir == ["drwxr-x---", "wsgistack", "wsgistack"], run_dir
    assert (
        sh("test -S /run/wsgistack/uwsgi.sock && test -d /run/apache2", check=False).returncode == 0
    )
    sh("systemctl restart wsgistack-uwsgi nginx apache2", timeout=120)
    for stack in server.values():
        stack.wait_ready()
        assert request(stack.base_url, "/fib/10").json["value"] == "55"


def install_on_server(stack: str, port: int, knobs: dict[str, str]) -> None:
    """deploy/debian/install.sh on the server, as docs/your-app.md says."""
    env = {**KNOBS, **knobs, "PORT": str(port)}
    if sh("test -f /root/host-ca.crt", check=False).returncode == 0:
        env["PIP_CERT"] = "/root/host-ca.crt"  # as docker/debian-server/start.sh
    options = [f"--env={key}={value}" for key, value in env.items()]
    result = subprocess.run(
        ["docker", "exec", *options, "--workdir=/root/wsgistack", CONTAINER]
        + ["deploy/debian/install.sh", stack],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("name", ["flaskr", "sqlite-web"])
def test_a_third_party_app_on_the_server(server, name):
    """A Flask app no one here wrote, installed with install.sh on both
    stacks as a user installs their own (docs/your-app.md), through its real
    pages."""
    app = third_party.fetch()[name]
    checkout = f"{CONTAINER}:/root/wsgistack/"
    subprocess.run(["docker", "cp", str(app.source), checkout], check=True)
    knobs = {**app.knobs, "APP_SOURCE": app.source.name}
    folder = app.source.name
    knobs["STATIC_ROOT"] = knobs["STATIC_ROOT"].replace(str(app.source), f"/srv/wsgistack/{folder}")
    if app.requirements:
        # the app's pins: the project's (Flask, gunicorn) and its own
        requirements = (compose.ROOT / "requirements.txt").read_text()
        requirements += "\n".join(app.requirements) + "\n"
        sh(f"cat > /root/wsgistack/{name}-requirements.txt <<'EOF'\n{requirements}EOF")
        knobs["APP_REQUIREMENTS"] = f"{name}-requirements.txt"
        venv_site = sh(
            "ls -d /srv/wsgistack/venv/lib/python3*/site-packages", check=False
        ).stdout.strip()
        knobs["STATIC_ROOT"] = f"{venv_site}/sqlite_web/static"
    # the app's data, writable by its user; its settings in app.env
    sh("install -d -o wsgistack -g wsgistack /srv/wsgistack/instance /var/lib/wsgistack")
    env = {**app.env, "SQLITE_WEB_DATABASE": "/var/lib/wsgistack/notes.db"} if app.env else {}
    settings = "".join(f"{key}={value}\n" for key, value in env.items())
    sh(f"printf %s '{settings}{APP_ENV}' > /etc/wsgistack/app.env")
    for stack, port in (("apache", 8081), ("uwsgi", 80)):
        install_on_server(stack, port, knobs)
    if name == "flaskr":
        sh("runuser -u wsgistack -- /srv/wsgistack/venv/bin/flask --app flaskr init-db")
    for stack in server.values():
        stack.wait_ready()
        third_party.WALKS[name](stack.base_url)
