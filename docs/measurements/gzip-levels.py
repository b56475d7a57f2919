"""What each gzip level saves and costs on the app's real answers: the bytes
and the CPU time per answer at levels 1 to 9, with zlib (the library nginx's
gzip and Apache's mod_deflate call, Debian's build, at their defaults: a 32 KB
window, memLevel 8), and Brotli's qualities beside it when the brotli module is
importable (Debian's nginx and Apache modules use the same library). The
answers come from the app itself (Flask's test client, no server), so the
figures are the proxies' compression work alone, with nothing else on top.

    .venv/bin/python docs/measurements/gzip-levels.py [--repeat 200]

CPU time is this process's (time.process_time), the median of five rounds;
no server runs, so it needs no lock, but a busy machine slows every level
alike: compare levels within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib
from pathlib import Path

from app import create_app

ROOT = Path(__file__).resolve().parents[2]
# the answers the proxies compress: JSON of every size the app sends, the
# problem details of an error, and the front page's files
PATHS = (
    "/fib/sequence?n=1000",
    "/fib/sequence?n=2000",
    "/fib/20000?method=doubling",
    "/fib/sequence?n=100",
    "/info",
)


def answers() -> dict[str, bytes]:
    client = create_app().test_client()
    found = {path: client.get(path).get_data() for path in PATHS}
    for path in sorted((ROOT / "app" / "static").glob("*.*")):
        if path.suffix in (".css", ".js", ".svg"):
            found[f"static/{path.name}"] = path.read_bytes()
    return found


def gzip_bytes(data: bytes, level: int) -> bytes:
    # wbits 31: a gzip stream (header and trailer), as the proxies send
    packer = zlib.compressobj(level, zlib.DEFLATED, 31, 8)
    return packer.compress(data) + packer.flush()


def cpu_us(compress, data: bytes, repeat: int) -> float:
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            compress(data)
        rounds.append((time.process_time() - start) / repeat * 1e6)
    return statistics.median(rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=100, help="compressions per round")
    args = parser.parse_args()
    methods = [
        (f"gzip {level}", lambda d, level=level: gzip_bytes(d, level)) for level in range(1, 10)
    ]
    try:
        import brotli

        methods += [
            (f"brotli {q}", lambda d, q=q: brotli.compress(d, quality=q)) for q in (0, 1, 4, 5, 11)
        ]
    except ImportError:
        print("(no brotli module: Brotli not measured)")
    print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}; {time.strftime('%Y-%m-%d')}")
    print("| answer | bytes | method | bytes sent | x smaller | CPU us per answer | MB/s |")
    print("|---|--:|---|--:|--:|--:|--:|")
    for name, data in answers().items():
        repeat = max(3, min(args.repeat, int(args.repeat * 20000 / len(data))))
        for label, compress in methods:
            size = len(compress(data))
            us = cpu_us(compress, data, repeat)
            print(
                f"| {name} | {len(data):,} | {label} | {size:,} | {len(data) / size:.2f} | "
                f"{us:,.0f} | {len(data) / us:,.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
