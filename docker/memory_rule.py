#!/usr/bin/python3
"""The uWSGI container's memory rule: worker recycling acts before the kernel kills.

uWSGI replaces a worker whose resident memory passed RELOAD_ON_RSS_MB only at
the end of a request (uwsgi_close_request in core/utils.c, uWSGI 2.0.28), so
the container's memory limit must hold every worker at that size, plus what
its requests in flight add before the check, plus the master, plus the /tmp
tmpfs, whose pages count against the limit:

    limit >= WSGI_PROCESSES x (RELOAD_ON_RSS_MB + 32) + 32 + tmpfs size   (MB)

Below that, the kernel's OOM killer ends a worker (and its requests) before
uWSGI recycles it gracefully. The uwsgi image's entrypoint runs this at start
and warns on stderr when the knobs break the rule (it never refuses to start:
the allowances are estimates); tests/integration/test_containers.py checks
compose.yaml's defaults with the same function. Standard library and
wsgistack.settings only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# what one worker's requests in flight may add past the threshold before the
# check at the end of a request sees it
WORKER_HEADROOM_MB = 32
# the uWSGI master (about 15 MB measured, uWSGI 2.0.28 on trixie)
MASTER_MB = 32
# cgroup v2, then v1; v1 reports "no limit" as a number near 2**63
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
NO_LIMIT_MB = 2**40


def needed_mb(processes: int, reload_on_rss_mb: int, tmpfs_mb: int) -> int:
    """The least memory limit at which uWSGI's recycling acts before the kernel kills."""
    return processes * (reload_on_rss_mb + WORKER_HEADROOM_MB) + MASTER_MB + tmpfs_mb


def cgroup_limit_mb() -> int | None:
    """This container's memory limit in MB; None without one."""
    for path in CGROUP_LIMITS:
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw == "max":
            return None
        limit = int(raw) // 2**20
        return None if limit >= NO_LIMIT_MB else limit
    return None


def tmpfs_mb(path: str = "/tmp") -> int:
    """The size of the tmpfs mounted at ``path`` in MB; 0 if it is no tmpfs."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == path and fields[2] == "tmpfs":
            stat = os.statvfs(path)
            return stat.f_blocks * stat.f_frsize // 2**20
    return 0


def main() -> int:
    # the knobs as the servers read them (defaults, validation); on PYTHONPATH
    # in the image, imported here so that the tests can load this file alone
    from wsgistack.settings import Settings

    settings = Settings.from_env(server="uwsgi")
    processes, reload_on_rss = settings.WSGI_PROCESSES, settings.RELOAD_ON_RSS_MB
    limit = cgroup_limit_mb()
    if reload_on_rss == 0 or limit is None:
        return 0
    tmpfs = tmpfs_mb()
    needed = needed_mb(processes, reload_on_rss, tmpfs)
    if needed > limit:
        print(
            f"memory_rule: warning: the memory limit ({limit} MB) is below what "
            f"WSGI_PROCESSES={processes} x (RELOAD_ON_RSS_MB={reload_on_rss} + "
            f"{WORKER_HEADROOM_MB}) + {MASTER_MB} (master) + {tmpfs} (/tmp tmpfs) = "
            f"{needed} MB needs: the kernel may kill a worker before uWSGI recycles "
            "it. Raise the limit (APP_MEMORY) or lower RELOAD_ON_RSS_MB.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
