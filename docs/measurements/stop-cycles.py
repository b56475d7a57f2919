"""Graceful stops of one image, counted: start a container, hold every slot with
slow requests and queue more, SIGTERM it, and record its exit status and
whether its log shows a Rust panic. Prints a line per cycle and a summary.

    python3 docs/measurements/stop-cycles.py IMAGE CYCLES PORT [docker run options]
    python3 docs/measurements/stop-cycles.py wsgistack-freethreaded:latest 100 18600

The container runs as compose runs it (read-only, a /tmp tmpfs, no
capabilities), WSGI_THREADS=8, published on 127.0.0.1:PORT. 24 requests of
/io?ms=2000 are sent and SIGTERM follows 0.7 s later, as in the suite's
graceful-stop test. A cycle that exits non-zero or panics leaves its log in
stop-cycle-PORT-N.log. Standard library and the docker client only.
"""

import collections
import subprocess
import sys
import threading
import time
import urllib.request

REQUESTS = 24


def get(port: int, path: str, timeout: float = 20):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status
    except Exception as exc:  # noqa: BLE001 - the kind of failure is the result
        return type(exc).__name__


def cycle(image: str, port: int, options: list[str], number: int) -> tuple[str, bool, int]:
    name = f"stop-cycle-{port}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run = ["docker", "run", "-d", "--name", name, "--read-only"]
    run += ["--tmpfs", "/tmp:size=64m,mode=1777", "--cap-drop", "ALL"]
    run += ["--security-opt", "no-new-privileges=true", "-e", "WSGI_THREADS=8"]
    run += ["-p", f"127.0.0.1:{port}:8085", *options, image]
    subprocess.run(run, check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and get(port, "/readyz", 2) != 200:
        time.sleep(0.2)
    answers: list = []
    clients = [
        threading.Thread(target=lambda: answers.append(get(port, "/io?ms=2000")))
        for _ in range(REQUESTS)
    ]
    for client in clients:
        client.start()
    time.sleep(0.7)  # the first ones reach the app, the rest queue behind them
    subprocess.run(["docker", "kill", "--signal", "TERM", name], capture_output=True)
    for client in clients:
        client.join(25)
    status = subprocess.run(["docker", "wait", name], capture_output=True, text=True)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    log = logs.stdout + logs.stderr
    panicked = "panicked" in log
    code = status.stdout.strip()
    if code != "0" or panicked:
        with open(f"stop-cycle-{port}-{number}.log", "w", encoding="utf-8") as out:
            out.write(log)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return code, panicked, answers.count(200)


def main() -> None:
    image, cycles, port, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    codes: collections.Counter = collections.Counter()
    panics = 0
    for number in range(cycles):
        code, panicked, served = cycle(image, port, options, number)
        codes[code] += 1
        panics += panicked
        print(f"{number} exit {code} panic {panicked} served {served}/{REQUESTS}", flush=True)
    print(f"exit statuses {dict(codes)}, panics {panics} of {cycles} cycles")


if __name__ == "__main__":
    main()
