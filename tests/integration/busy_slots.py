"""How many requests the given worker processes hold right now, read from the
kernel: the connections they accepted on their listening socket and still
hold (one per request being served: uWSGI and the mod_wsgi daemons take a
connection per request from their proxy).

The tests that kill or stop workers mid-request wait for this to reach the
number of requests they sent, instead of sleeping a fixed time and hoping
the requests got there (under load they did not, now and then). Nothing
outside a worker shows a request has arrived, but the kernel does: a
connection accepted from a listening socket keeps that socket's address
(the unix path, or the TCP port), and it is in the worker's file table.

    python3 busy_slots.py PID...           # prints the count (run where the workers run)
    python3 busy_slots.py --at 'PATTERN'   # the same at unix sockets named by a pattern

Standalone on purpose (the standard library only): the Debian server's tests
run it inside that container (``docker exec -i ... python3 - --at PATTERN <
busy_slots.py``).
"""

from __future__ import annotations

import fnmatch
import os
import sys

# /proc/net/unix: "St" 01 is listening (unconnected, with SO_ACCEPTCON set in
# Flags), 03 connected; /proc/net/tcp: "st" 0A is LISTEN, 01 ESTABLISHED
UNIX_LISTENING, UNIX_CONNECTED = "01", "03"
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"


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


def _rows(path: str) -> list[list[str]]:
    try:
        with open(path) as table:
            return [line.split() for line in table.read().splitlines()[1:]]
    except OSError:
        return []


def busy(pids: list[int]) -> int:
    """Connections the processes accepted and hold, counted once each: those
    at the addresses of the listening sockets in their file tables."""
    held: set[str] = set()
    for pid in pids:
        held |= socket_inodes(pid)
    # the tables of the workers' network namespace (a container's own)
    net = f"/proc/{pids[0]}/net" if pids else "/proc/net"
    # unix: Num RefCount Protocol Flags Type St Inode [Path]
    unix = [r for r in _rows(f"{net}/unix") if len(r) > 7 and r[6] in held]
    listening = {r[7] for r in unix if r[5] == UNIX_LISTENING}
    count = sum(1 for r in unix if r[5] == UNIX_CONNECTED and r[7] in listening)
    # tcp: sl local_address rem_address st ... uid timeout inode
    for table in ("tcp", "tcp6"):
        tcp = [r for r in _rows(f"{net}/{table}") if len(r) > 9 and r[9] in held]
        ports = {r[1].rsplit(":", 1)[1] for r in tcp if r[3] == TCP_LISTEN}
        count += sum(1 for r in tcp if r[3] == TCP_ESTABLISHED and r[1].rsplit(":", 1)[1] in ports)
    return count


def busy_at(pattern: str, net: str = "/proc/net") -> int:
    """Connections accepted at the unix sockets whose path matches the
    pattern (fnmatch), whoever holds them: where the workers' file tables
    cannot be read (root in a container without CAP_SYS_PTRACE cannot read
    another user's). A connection still waiting to be accepted is not one
    (its state is 02, connecting)."""
    return sum(
        1
        for r in _rows(f"{net}/unix")
        if len(r) > 7 and r[5] == UNIX_CONNECTED and fnmatch.fnmatch(r[7], pattern)
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--at"]:
        print(busy_at(sys.argv[2]))
    else:
        print(busy([int(pid) for pid in sys.argv[1:]]))
