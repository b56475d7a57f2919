"""Starts of one image, counted: start a container, wait for /up to answer,
remove it, again. A start whose app never answers within the deadline is a
hang; its log and its processes' threads (state and kernel wait channel, read
from /proc on the host, so run as root) are kept in start-cycle-PORT-N.log.
Prints a line per hang and a summary.

    python3 docs/measurements/start-cycles.py IMAGE CYCLES PORT [docker run options]
    python3 docs/measurements/start-cycles.py wsgistack-gil:latest 150 18610
    python3 docs/measurements/start-cycles.py wsgistack-gil:latest 150 18611 \\
        -v "$PWD/serve-fork.py:/srv/deploy/granian/serve.py:ro"

The container runs as the suite's free-threading tests run it (read-only, a
/tmp tmpfs, no healthcheck, 1 process x 8 threads), published on
127.0.0.1:PORT; the image's own METRICS default (1) unless -e METRICS=0 is
given. Standard library and the docker client only.
"""

import os
import subprocess
import sys
import time
import urllib.request

DEADLINE = 20  # seconds for /up to answer; a sound start takes about 1


def up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/up", timeout=2) as answer:
            return answer.status == 200
    except Exception:  # noqa: BLE001 - not yet
        return False


def threads(container: str) -> str:
    """Each process of the container and the kernel wait of each of its threads."""
    pids = subprocess.run(
        ["docker", "top", container, "-o", "pid"], capture_output=True, text=True
    ).stdout.split()[1:]
    lines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode()
            lines.append(f"{pid}: {command}")
            for task in sorted(os.listdir(f"/proc/{pid}/task")):
                with open(f"/proc/{pid}/task/{task}/wchan") as wchan:
                    lines.append(f"  thread {task}: {wchan.read()}")
        except OSError as exc:
            lines.append(f"{pid}: {exc}")
    return "\n".join(lines)


def cycle(image: str, port: int, options: list[str], number: int) -> bool:
    name = f"start-cycle-{port}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run = ["docker", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp"]
    run += ["--no-healthcheck", "-e", "WSGI_PROCESSES=1", "-e", "WSGI_THREADS=8"]
    run += ["-p", f"127.0.0.1:{port}:8085", *options, image]
    subprocess.run(run, check=True, capture_output=True)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if up(port):
            return True
        time.sleep(0.3)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    with open(f"start-cycle-{port}-{number}.log", "w") as kept:
        kept.write(logs.stdout + logs.stderr + "\n--- threads\n" + threads(name) + "\n")
    return False


def main() -> None:
    image, cycles, port, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    hangs = 0
    try:
        for number in range(1, cycles + 1):
            if not cycle(image, port, options, number):
                hangs += 1
                print(f"cycle {number}: no answer at /up within {DEADLINE} s", flush=True)
    finally:
        subprocess.run(["docker", "rm", "-f", f"start-cycle-{port}"], capture_output=True)
    print(f"{image} {' '.join(options)}: {hangs} hangs in {cycles} starts")


if __name__ == "__main__":
    main()
