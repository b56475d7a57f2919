"""What both proxies' configs (deploy/nginx, deploy/apache-mod_wsgi) fill in alike."""

from __future__ import annotations

from wsgistack.settings import Settings


def values(s: Settings) -> dict[str, str]:
    return {
        # what the main config includes for HTTPS: the TLS sites, or (TLS=0) a
        # pattern that matches no file, which nginx's include and Apache's
        # IncludeOptional accept as including nothing
        "TLS_SITES": "tls.d/*.conf" if s.TLS else "tls.d/*.disabled",
        # what the plain HTTP site does with a request first: redirect it to
        # HTTPS (TLS=1), or nothing (TLS=0)
        "HTTPS_REDIRECT": (
            "snippets/redirect-to-https.conf" if s.TLS else "snippets/no-redirect.conf"
        ),
        # the proxy's rungs of the timeout ladder and its admission limit
        # (wsgistack/settings.py)
        "PROXY_TIMEOUT": str(s.PROXY_TIMEOUT),
        "PROXY_MAX_CONNS": str(s.PROXY_MAX_CONNS),
        # the status page for the proxy's Prometheus exporter, on STATUS_PORT
        # (METRICS=1): status.d/*.conf, else a pattern that matches no file
        "STATUS_SITES": "status.d/*.conf" if s.METRICS else "status.d/*.disabled",
    }
