"""How many CPUs this process may really use: the default for the worker counts.

``os.cpu_count()`` counts the host's cores. In a container (Docker's ``--cpus``,
Kubernetes' ``resources.limits.cpu``, a systemd ``CPUQuota``) the kernel lets
the process use only a share of them, enforced by the CFS bandwidth quota of
its cgroup; a worker per host core would then be throttled, not parallel. The
usable count is the smallest of:

- the cgroup quota, ``quota / period`` CPUs, in this cgroup and every ancestor
  up to the mount point (a parent's limit applies to its children too):
  cgroup v2 ``cpu.max`` ("150000 100000", or "max 100000" for no limit),
  cgroup v1 ``cpu.cfs_quota_us`` (-1 for no limit) and ``cpu.cfs_period_us``;
- the CPU affinity mask (``taskset``, ``docker run --cpuset-cpus``, the
  kubelet's static CPU manager);
- the host's cores.

A fractional quota is rounded up (1.5 CPUs: 2 workers, since the half CPU is
usable too), and the result is at least 1. The cgroup files are found as the
JDK and Go's automaxprocs find them: the process's cgroup from
``/proc/self/cgroup``, the hierarchy's mount point and root from
``/proc/self/mountinfo``.
https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files
https://docs.kernel.org/scheduler/sched-bwc.html

Standard library only: the nginx image runs ``python3 -m wsgistack.cpus``
without the app's virtualenv (docker/entrypoint.sh).

    python3 -m wsgistack.cpus           # prints the count; the detail on stderr
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuLimit:
    """What limits this process's CPUs, and the count the defaults use."""

    available: int
    """CPUs the worker counts default to: ceil(min(quota, affinity, host)), at least 1."""
    quota: float | None
    """CPUs the cgroup quota allows (1.5 = 150 ms per 100 ms); None without a quota."""
    quota_source: str | None
    """The file the quota was read from, and its content, for logs."""
    affinity: int | None
    """CPUs in the scheduler affinity mask; None where the platform cannot say."""
    host: int | None
    """The host's CPUs (``os.cpu_count()``)."""

    def describe(self) -> str:
        quota = f"quota {self.quota:g} CPUs ({self.quota_source})" if self.quota else "no CPU quota"
        plural = "" if self.available == 1 else "s"
        return (
            f"{self.available} CPU{plural} available: {quota}, "
            f"affinity {self.affinity}, host {self.host}"
        )

    def as_dict(self) -> dict[str, int | float | str | None]:
        return {
            "available": self.available,
            "quota": self.quota,
            "quota_source": self.quota_source,
            "affinity": self.affinity,
            "host": self.host,
        }


@dataclass(frozen=True)
class _Mount:
    version: int  # 1 or 2
    root: str  # the cgroup path that the mount point shows (mountinfo field 4)
    point: Path


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cgroup_paths(text: str) -> tuple[str | None, str | None]:
    """The process's cgroup in the v2 hierarchy and in v1's cpu controller.

    Lines of /proc/self/cgroup are ``id:controllers:path``; v2's has id 0 and no
    controllers, v1's cpu line lists ``cpu`` among its controllers.
    """
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ident, controllers, path = parts
        if ident == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _mounts(text: str, prefix: Path) -> list[_Mount]:
    """cgroup2 mounts and cgroup v1 mounts of the cpu controller, from mountinfo.

    A line: ``id parent major:minor root mountpoint options [optional...] -
    fstype source superoptions`` (proc(5)); the root is the cgroup the mount
    shows, e.g. /docker/<id> in a container without a cgroup namespace.
    """
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point = _unescape(fields[3]), _unescape(fields[4])
        fstype, superoptions = tail[0], tail[2].split(",")
        where = prefix / point.lstrip("/")
        if fstype == "cgroup2":
            found.append(_Mount(2, root, where))
        elif fstype == "cgroup" and "cpu" in superoptions:
            found.append(_Mount(1, root, where))
    return found


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _cgroup_dirs(mount: _Mount, path: str) -> list[Path]:
    """The process's cgroup folder under ``mount`` and its ancestors up to the mount."""
    if mount.root == "/":
        relative = path
    elif path == mount.root or path.startswith(mount.root.rstrip("/") + "/"):
        relative = path[len(mount.root) :]
    else:
        # the mount shows some other part of the tree (a cgroup namespace
        # whose /proc/self/cgroup is relative to it): the mount's own folder
        relative = "/"
    directory = mount.point / relative.lstrip("/")
    dirs = [directory]
    while directory != mount.point and mount.point in directory.parents:
        directory = directory.parent
        dirs.append(directory)
    return dirs


def _quota_v2(directory: Path) -> tuple[float, str] | None:
    text = _read(directory / "cpu.max")
    if text is None:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period, f"{directory / 'cpu.max'}: {text}"


def _quota_v1(directory: Path) -> tuple[float, str] | None:
    quota_text = _read(directory / "cpu.cfs_quota_us")
    period_text = _read(directory / "cpu.cfs_period_us")
    if quota_text is None or period_text is None:
        return None
    try:
        quota, period = int(quota_text), int(period_text)
    except ValueError:
        return None
    if quota <= 0 or period <= 0:  # -1: no limit
        return None
    return quota / period, f"{directory / 'cpu.cfs_quota_us'}: {quota_text} / {period_text}"


def cgroup_quota(root: Path = Path("/")) -> tuple[float, str] | None:
    """The tightest CFS quota on this process's cgroups, in CPUs, and where it is.

    ``root`` prefixes every path read (tests point it at a fixture tree).
    """
    cgroup = _read(root / "proc/self/cgroup")
    mountinfo = _read(root / "proc/self/mountinfo")
    if cgroup is None or mountinfo is None:
        return None
    v2_path, v1_path = _cgroup_paths(cgroup)
    best: tuple[float, str] | None = None
    for mount in _mounts(mountinfo, root):
        path, reader = (v2_path, _quota_v2) if mount.version == 2 else (v1_path, _quota_v1)
        if path is None:
            continue
        for directory in _cgroup_dirs(mount, path):
            found = reader(directory)
            if found and (best is None or found[0] < best[0]):
                best = found
    if best is not None and root != Path("/"):
        # fixture trees: report the path as the process would see it
        best = (best[0], best[1].replace(str(root).rstrip("/"), "", 1))
    return best


def affinity() -> int | None:
    """CPUs this process may be scheduled on (None where the OS cannot say)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def detect(
    root: Path = Path("/"), *, affinity_count: int | None = -1, host: int | None = -1
) -> CpuLimit:
    """The CPU limit of this process; the keyword arguments stand in for the OS in tests."""
    quota = cgroup_quota(root)
    if affinity_count == -1:
        affinity_count = affinity()
    if host == -1:
        host = os.cpu_count()
    limits = [n for n in (quota[0] if quota else None, affinity_count, host) if n]
    available = max(1, math.ceil(min(limits))) if limits else 1
    return CpuLimit(
        available=available,
        quota=round(quota[0], 3) if quota else None,
        quota_source=quota[1] if quota else None,
        affinity=affinity_count,
        host=host,
    )


def available_cpus() -> int:
    """The default for worker counts (WSGI_PROCESSES, NGINX_WORKERS)."""
    return detect().available


def main() -> int:
    limit = detect()
    print(f"wsgistack.cpus: {limit.describe()}", file=sys.stderr)
    print(limit.available)
    return 0


if __name__ == "__main__":
    sys.exit(main())
