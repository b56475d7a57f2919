"""What deploy/nginx's templates fill in beyond the knobs, in nginx's syntax."""

from __future__ import annotations

from wsgistack.configs.proxy import is_text, mime_types
from wsgistack.settings import Settings

# where nginx's resolver comes from when DNS_RESOLVER is not set
RESOLV_CONF = "/etc/resolv.conf"
# seconds after a request started within which nginx may still retry it on the
# next app server address (an idempotent request whose connection failed)
RETRY_WINDOW = 5


def system_resolver(path: str = RESOLV_CONF) -> str:
    """The first nameserver of resolv.conf, as nginx's `resolver` takes it."""
    try:
        with open(path, encoding="utf-8") as conf:
            for line in conf:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    address = words[1].split("%")[0]  # drop an IPv6 zone id
                    return f"[{address}]" if ":" in address else address
    except OSError:
        pass
    return "127.0.0.1"


def retry_window(s: Settings) -> int:
    """Seconds within which nginx may retry a failed idempotent request on the
    next app server: no longer than the earliest harakiri (REQUEST_TIMEOUT - 1 s
    in uWSGI 2.0.28, see harakiri_time_pattern), so that a request the app
    server killed for running too long is never run a second time (with
    REQUEST_TIMEOUT=1 it could be: 1 s is nginx's least)."""
    return max(1, min(RETRY_WINDOW, s.REQUEST_TIMEOUT - 1))


def harakiri_time_pattern(request_timeout: int) -> str:
    """A regex for nginx's $upstream_response_time values ("30.004") long
    enough to be uWSGI's harakiri: how nginx tells a request the app server
    killed for its timeout (504) from one it failed at once (502). harakiri
    reads a whole-second clock, so uWSGI 2.0.28 kills from REQUEST_TIMEOUT - 1 s
    on (2.0.21 from REQUEST_TIMEOUT; docs/nginx-uwsgi.md): that is the threshold."""
    return rf"(^|, )({at_least(max(0, request_timeout - 1))})\.[0-9]+$"


def at_least(n: int) -> str:
    """A regex alternation matching the decimal whole numbers >= n (no leading 0)."""
    digits = str(n)
    options = [rf"[1-9][0-9]{{{len(digits)},}}"]  # more digits than n
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            low = int(digit) + 1
            options.append(digits[:i] + f"[{low}-9]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    return "|".join(options)


def types_block(types: dict[str, str]) -> str:
    """The lines of nginx's `types` block: a type and its extensions each."""
    by_type: dict[str, list[str]] = {}
    for extension, media_type in types.items():
        by_type.setdefault(media_type, []).append(extension)
    return "\n".join(
        f"    {media_type} {' '.join(sorted(extensions))};"
        for media_type, extensions in sorted(by_type.items())
    )


def values(s: Settings) -> dict[str, str]:
    proxies = s.TRUSTED_PROXIES.split()
    socket = s.UWSGI_SOCKET
    types = mime_types()
    return {
        # the DNS server nginx asks for the app server's name at run time
        "NGINX_RESOLVER": s.DNS_RESOLVER or system_resolver(),
        # the uwsgi socket as nginx names it (``unix:`` prefix for a path)
        "UWSGI_UPSTREAM": f"unix:{socket}" if socket.startswith("/") else socket,
        "PROXY_MAX_CONNS_PER_CLIENT": str(s.PROXY_MAX_CONNS_PER_CLIENT),
        "PROXY_RETRY_WINDOW": str(retry_window(s)),
        "HARAKIRI_TIME_PATTERN": harakiri_time_pattern(s.REQUEST_TIMEOUT),
        # set_real_ip_from lines: one per trusted proxy
        "NGINX_REAL_IP_FROM": "\n    ".join(f"set_real_ip_from {a};" for a in proxies)
        or "# TRUSTED_PROXIES is empty: no address is trusted",
        # entries of the geo block that marks a trusted proxy's address
        "NGINX_TRUSTED_GEO": "\n        ".join(f"{a} 1;" for a in proxies),
        # compression: GZIP_LEVEL 0 is off; gzip_comp_level takes 1 to 9 only
        "NGINX_GZIP": "on" if s.GZIP_LEVEL else "off",
        "NGINX_GZIP_LEVEL": str(s.GZIP_LEVEL or 1),
        # the media types of static files, Debian's list (mime.types), and the
        # text ones, which get a charset (snippets/static.conf)
        "NGINX_MIME_TYPES": types_block(types),
        # (text/html is always one of charset_types: not listed again)
        "NGINX_CHARSET_TYPES": " ".join(
            sorted({t for t in types.values() if is_text(t)} - {"text/html"})
        ),
        # where plain HTTP is redirected to when this proxy serves HTTPS itself
        # (TLS=1), else nowhere (snippets/redirect-to-https.conf)
        "NGINX_OWN_HTTPS": f"https://$host:{s.TLS_PUBLIC_PORT}$request_uri" if s.TLS else "",
        # the Content-Security-Policy; empty sends none (add_header skips it)
        "NGINX_CSP": "" if s.CONTENT_SECURITY_POLICY == "none" else s.CONTENT_SECURITY_POLICY,
    }
