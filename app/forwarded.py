"""The client's address and scheme, believed from trusted proxies only.

Behind nginx or Apache, the proxy has already done this (realip, remoteip) and
``REMOTE_ADDR`` is the client; this middleware matters for the stacks without a
proxy of ours (gunicorn, the development server) behind a load balancer. A
request whose peer is a trusted proxy (``TRUSTED_PROXIES``, addresses or CIDR
ranges) gets its ``REMOTE_ADDR`` from ``X-Forwarded-For`` (the right-most
address that is not itself a trusted proxy) and its scheme from
``X-Forwarded-Proto``; anyone else's forwarded headers are ignored.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8 192.0.2.7"`` -> networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in text.split())


def is_trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class TrustedProxyMiddleware:
    def __init__(self, wsgi_app, trusted: tuple[Network, ...]) -> None:
        self.wsgi_app = wsgi_app
        self.trusted = trusted

    def __call__(self, environ, start_response):
        if self.trusted and is_trusted(environ.get("REMOTE_ADDR", ""), self.trusted):
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            for hop in reversed([h for h in hops if h]):
                if not is_trusted(hop, self.trusted):
                    # not an address: keep the proxy's
                    with contextlib.suppress(ValueError):
                        environ["REMOTE_ADDR"] = str(ipaddress.ip_address(hop))
                    break
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.wsgi_app(environ, start_response)
