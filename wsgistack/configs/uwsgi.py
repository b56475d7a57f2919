"""What deploy/uwsgi's template fills in beyond the knobs, in uWSGI's syntax."""

from __future__ import annotations

import os

from wsgistack.settings import Settings


def metrics_lines(s: Settings) -> str:
    """uWSGI's lines for the metrics (METRICS=1), or a comment (docs/metrics.md).

    - env: the workers' prometheus_client writes to files in METRICS_DIR
      (its multiprocess mode), set before any worker imports the app;
    - exec-asap: the folder emptied when the master starts, as the library
      asks (values of an earlier run would be added to this one's);
    - attach-daemon2: the exporter (wsgistack/exporter.py), which the
      master starts, restarts if it dies and stops with itself: it adds up
      the workers' files, reads the stats server and the socket's queue, and
      serves them on METRICS_PORT. SIGTERM stops it at once (default: SIGKILL).
    """
    if not s.METRICS:
        return "# METRICS=0: no metrics (docs/metrics.md)"
    python = os.path.join(s.VENV, "bin", "python") if s.VENV else "python3"
    return "\n".join(
        [
            f"env = PROMETHEUS_MULTIPROC_DIR={s.METRICS_DIR}",
            f"exec-asap = rm -rf {s.METRICS_DIR} && mkdir -p {s.METRICS_DIR}",
            f"attach-daemon2 = cmd={python} -m wsgistack.exporter uwsgi,stopsignal=15",
        ]
    )


def values(s: Settings) -> dict[str, str]:
    recycling = s.RELOAD_ON_RSS_MB > 0
    return {
        "UWSGI_METRICS": metrics_lines(s),
        # memory-based recycling, or (RELOAD_ON_RSS_MB=0) no line at all: the
        # option's presence alone, even `reload-on-rss = 0`, makes uWSGI read
        # /proc/self/stat after every request (UWSGI_OPT_MEMORY in uWSGI
        # 2.0.21's core/config.c and core/utils.c)
        "UWSGI_RELOAD_ON_RSS": f"reload-on-rss = {s.RELOAD_ON_RSS_MB}"
        if recycling
        else "# RELOAD_ON_RSS_MB=0: no memory-based recycling, and no memory read per request",
        # the worker's memory in its log lines, read only with recycling on
        "UWSGI_LOG_RSS": ',"rss_mb":%(rssM)' if recycling else "",
    }
