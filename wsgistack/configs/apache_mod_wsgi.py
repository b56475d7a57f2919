"""What deploy/apache-mod_wsgi's templates fill in beyond the knobs, in Apache's syntax.

The timeout ladder in Apache + mod_wsgi (docs/apache-mod_wsgi.md): mod_wsgi 6
judges each daemon thread against request-timeout x (1 + ln threads), so its
request-timeout is derived to cut a request at REQUEST_TIMEOUT, and Apache's
socket-timeout answers the client a JSON 504 at REQUEST_TIMEOUT + 1 s.
"""

from __future__ import annotations

import glob
import math
import os
import sys

from wsgistack.configs.proxy import is_text, mime_types
from wsgistack.settings import Settings

# seconds past REQUEST_TIMEOUT at which Apache answers a JSON 504 for a request
# the mod_wsgi daemon has not answered (socket-timeout), so the client has its
# answer within REQUEST_TIMEOUT + 2 s on a loaded machine too; mod_wsgi frees
# the thread itself (docs/apache-mod_wsgi.md)
MOD_WSGI_MARGIN = 1
# Apache threads per process: ThreadsPerChild in httpd.conf
THREADS_PER_CHILD = 64


def request_timeout(s: Settings) -> int:
    """mod_wsgi 6's request-timeout, so that a thread is cut at REQUEST_TIMEOUT.

    mod_wsgi 6 cuts a thread whose request has run request-timeout x
    (1 + ln threads) seconds (wsgi_daemon.c); request-timeout is whole
    seconds, so it is rounded up: never before REQUEST_TIMEOUT, at most
    one step of (1 + ln threads) s after it.
    """
    scale = 1 + math.log(s.WSGI_THREADS)
    return max(1, math.ceil(s.REQUEST_TIMEOUT / scale - 1e-9))


def module_path(s: Settings) -> str:
    """The mod_wsgi module to load: MOD_WSGI_MODULE, else the one built into VENV
    (natively, as the runner does, the venv wsgistack runs from);
    `mod_wsgi-express module-config` names the same file."""
    if s.MOD_WSGI_MODULE:
        return s.MOD_WSGI_MODULE
    venv = s.VENV or sys.prefix
    pattern = "lib/python3*/site-packages/mod_wsgi/server/mod_wsgi-py3*.so"
    found = sorted(glob.glob(os.path.join(venv, pattern)))
    return found[-1] if found else os.path.join(venv, "mod_wsgi-not-built.so")


def max_request_workers(s: Settings) -> int:
    """Apache threads: a relay for every request the daemons take, and as
    many again to refuse the surplus with a 503."""
    wanted = max(512, 2 * s.PROXY_MAX_CONNS)
    return -(-wanted // THREADS_PER_CHILD) * THREADS_PER_CHILD


def remote_ip(proxies: list[str]) -> str:
    """mod_remoteip's lines: the header and every trusted proxy, or none at all
    (mod_remoteip given a header and no proxy list trusts every peer)."""
    if not proxies:
        return "# TRUSTED_PROXIES is empty: no RemoteIPHeader, so no address is trusted"
    return "\n".join(
        ["RemoteIPHeader X-Forwarded-For"] + [f"RemoteIPInternalProxy {a}" for a in proxies]
    )


def values(s: Settings) -> dict[str, str]:
    proxies = s.TRUSTED_PROXIES.split()
    workers = max_request_workers(s)
    types = mime_types()
    return {
        "APACHE_REMOTE_IP": remote_ip(proxies),
        # an expression, true when the connection itself (not the address
        # mod_remoteip derived) comes from a trusted proxy: nginx's $from_trusted_proxy
        "APACHE_FROM_TRUSTED_PROXY": " || ".join(
            f"%{{CONN_REMOTE_ADDR}} -ipmatch '{a}'" for a in proxies
        )
        or "false",
        "APACHE_MAX_REQUEST_WORKERS": str(workers),
        # process slots: the serving ones, and as many finishing a reload
        "APACHE_SERVER_LIMIT": str(2 * workers // THREADS_PER_CHILD),
        "MOD_WSGI_REQUEST_TIMEOUT": str(request_timeout(s)),
        "MOD_WSGI_SOCKET_TIMEOUT": str(s.REQUEST_TIMEOUT + MOD_WSGI_MARGIN),
        "MOD_WSGI_MODULE_PATH": module_path(s),
        # the WSGIFreeThreading line, or a comment: only mod_wsgi 6 knows the
        # directive, and MOD_WSGI_MODULE may name Debian's 4.9 or 5.0, which
        # would refuse the config
        # compression: GZIP_LEVEL 0 chains no filter; DeflateCompressionLevel takes 1 to 9
        "APACHE_GZIP_CHAIN": "FilterChain gzip"
        if s.GZIP_LEVEL
        else "# GZIP_LEVEL=0: no compression (the filter is declared, not chained)",
        "APACHE_GZIP_LEVEL": str(s.GZIP_LEVEL or 1),
        # the daemons' PROMETHEUS_MULTIPROC_DIR (app.wsgi), "" with METRICS=0
        "METRICS_DIR": s.METRICS_DIR if s.METRICS else "",
        "MOD_WSGI_FREE_THREADING_LINE": "WSGIFreeThreading On"
        if s.MOD_WSGI_FREE_THREADING
        else "# MOD_WSGI_FREE_THREADING=0: no WSGIFreeThreading (mod_wsgi's default, Off)",
        # the extensions of the text types of Debian's mime.types, which get a
        # charset (snippets/static.conf)
        "APACHE_TEXT_EXTENSIONS": " ".join(
            f".{extension}"
            for extension, media_type in sorted(types.items())
            if is_text(media_type)
        ),
        # where plain HTTP is redirected to when Apache serves HTTPS itself
        # (TLS=1), else nowhere (snippets/redirect-to-https.conf)
        "APACHE_OWN_HTTPS": f"https://%{{SERVER_NAME}}:{s.TLS_PUBLIC_PORT}" if s.TLS else "",
        # the Content-Security-Policy header, or none
        "APACHE_CSP_LINE": "# CONTENT_SECURITY_POLICY=none: no header here; the app's own goes out"
        if s.CONTENT_SECURITY_POLICY == "none"
        else f'Header always set Content-Security-Policy "{s.CONTENT_SECURITY_POLICY}"',
    }
