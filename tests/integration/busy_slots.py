"""How many requests the workers of a unix-socket app server hold right now,
read from the kernel: the connections accepted on their listening socket and
still open (one per request being served: uWSGI and the mod_wsgi daemons
take a connection per request from their proxy).

The tests that kill workers mid-request wait for this to reach the number of
requests they sent, instead of sleeping a fixed time and hoping the requests
got there (under load they did not, now and then). Nothing outside a worker
shows a request has arrived, but the kernel does: a connection accepted from
a listening unix socket carries that socket's path in /proc/net/unix, in
state 03 (connected); one still waiting to be accepted is in state 02.
Servers on TCP (gunicorn, granian) are not read here.

    python3 busy_slots.py PID...           # at the listening sockets of these processes
    python3 busy_slots.py --at 'PATTERN'   # at the unix sockets whose path matches

Standalone on purpose (the standard library only): the Debian server's tests
run it inside that container (``docker exec -i ... python3 - --at PATTERN <
busy_slots.py``).
"""

from __future__ import annotations

import fnmatch
import os
import sys

# /proc/net/unix: "St" 01 is unconnected (a listening socket has SO_ACCEPTCON
# in Flags), 03 connected
UNIX_LISTENING, UNIX_CONNECTED = "01", "03"


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            link = os.readlink(f"{folder}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    return inodes


def _unix_rows(net: str) -> list[list[str]]:
    """/proc/net/unix's sockets that have a path: Num RefCount Protocol Flags
    Type St Inode Path."""
    with open(f"{net}/unix") as table:
        return [row for line in table.read().splitlines()[1:] if len(row := line.split()) > 7]


def _accepted(rows: list[list[str]], at) -> int:
    return sum(1 for r in rows if r[5] == UNIX_CONNECTED and at(r[7]))


def busy(pids: list[int]) -> int:
    """Connections accepted at the listening sockets in these processes' file
    tables (their network namespace's table: a container's own)."""
    held: set[str] = set()
    for pid in pids:
        held |= socket_inodes(pid)
    rows = _unix_rows(f"/proc/{pids[0]}/net")
    listening = {r[7] for r in rows if r[6] in held and r[5] == UNIX_LISTENING}
    return _accepted(rows, listening.__contains__)


def busy_at(pattern: str, net: str = "/proc/net") -> int:
    """Connections accepted at the unix sockets whose path matches the
    pattern (fnmatch), whoever holds them: where the workers' file tables
    cannot be read (root in a container without CAP_SYS_PTRACE cannot read
    another user's)."""
    return _accepted(_unix_rows(net), lambda path: fnmatch.fnmatch(path, pattern))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--at"]:
        print(busy_at(sys.argv[2]))
    else:
        print(busy([int(pid) for pid in sys.argv[1:]]))
