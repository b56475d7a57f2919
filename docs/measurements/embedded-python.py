"""The same Python code in the python3 binary and in the libpython that uWSGI's
python3 plugin embeds: CPU per call of app.fib.fib_naive(22), rounds
interleaved, medians printed. Run from the checkout, with the venv made
(`make venv`) and Debian's uwsgi-plugin-python3 installed:

    python3 docs/measurements/embedded-python.py [ROUNDS]

Each round runs this file twice as a child: `uwsgi --plugin python3 -H .venv
--pyrun` (the app server's interpreter: Debian's shared libpython) and
`.venv/bin/python` (the interpreter gunicorn and granian run in). Standard
library only.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CALLS, N = 200, 22


def child() -> None:
    sys.path.insert(0, str(ROOT))
    from app.fib import fib_naive

    fib_naive(18)  # warm-up
    start = time.process_time()
    for _ in range(CALLS):
        fib_naive(N)
    print(f"ms_per_call={(time.process_time() - start) / CALLS * 1000:.4f}", flush=True)


def measure(command: list[str]) -> float:
    env = {**os.environ, "EMBEDDED_PYTHON_CHILD": "1"}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    line = [x for x in (out.stdout + out.stderr).splitlines() if "ms_per_call=" in x][-1]
    return float(line.split("ms_per_call=")[1])


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    venv = ROOT / ".venv"
    commands = {
        "uwsgi (libpython)": ["uwsgi", "--plugin", "python3", "-H", str(venv), "--pyrun", __file__],
        "python3 binary": [str(venv / "bin" / "python"), __file__],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            times[name].append(measure(command))
    for name, values in times.items():
        print(
            f"{name}: median {statistics.median(values):.3f} ms per call, "
            f"range {min(values):.3f}-{max(values):.3f}"
        )
    ratio = statistics.median(times["uwsgi (libpython)"]) / statistics.median(
        times["python3 binary"]
    )
    print(f"embedded / binary: {ratio:.3f}")


if __name__ == "__main__" or os.environ.get("EMBEDDED_PYTHON_CHILD"):
    if os.environ.get("EMBEDDED_PYTHON_CHILD"):
        child()
    else:
        main()
