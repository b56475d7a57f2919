"""What deploy/uwsgi's template fills in beyond the knobs, in uWSGI's syntax."""

from __future__ import annotations

from wsgistack.settings import Settings


def values(s: Settings) -> dict[str, str]:
    recycling = s.RELOAD_ON_RSS_MB > 0
    return {
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
