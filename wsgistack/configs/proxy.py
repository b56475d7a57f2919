"""What both proxies' configs (deploy/nginx, deploy/apache-mod_wsgi) fill in alike."""

from __future__ import annotations

import ssl

from wsgistack.settings import KEEPALIVE_MARGIN, Settings

# Debian's list of media types and their file extensions (package media-types),
# the one Debian's Apache reads (TypesConfig): the proxies serve static files
# with the types it says, nginx from the block rendered from it (nginx.py)
MIME_TYPES = "/etc/mime.types"
# HSTS: browsers use HTTPS only for this long once they saw it over HTTPS
# (two years, Mozilla's guidelines 6.0: hsts_min_age)
HSTS_MAX_AGE = 63072000
# TLS key exchange groups, in the server's order of preference: Mozilla's
# guidelines 6.0, intermediate (tls_curves). X25519MLKEM768, the hybrid
# post-quantum group, first where the OpenSSL has it (3.5 and later); an
# OpenSSL that does not know a group refuses the whole list, so it is left
# out below 3.5, as Mozilla's generator does (ssl-config-generator, state.js)
TLS_GROUPS = ("X25519", "prime256v1", "secp384r1")
PQ_GROUP = "X25519MLKEM768"
PQ_OPENSSL = (3, 5)


def tls_groups(openssl: tuple[int, ...] = ssl.OPENSSL_VERSION_INFO) -> str:
    """The groups for this machine's OpenSSL. Python's ssl module links the
    system's libssl, the one nginx and Apache's mod_ssl link on the machine
    that renders and serves (natively, and in each image)."""
    groups = ((PQ_GROUP,) if tuple(openssl[:2]) >= PQ_OPENSSL else ()) + TLS_GROUPS
    return ":".join(groups)


def mime_types(path: str = MIME_TYPES) -> dict[str, str]:
    """{extension: media type} from a mime.types file ("type ext ext ...").
    An extension listed twice takes the later type, as Apache's mod_mime does;
    an "extension" that is no file name suffix (Debian lists `~` and `%` for
    backup files) is left out. Lower case: neither is case-sensitive."""
    types: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as listing:
            lines = listing.read().splitlines()
    except OSError as exc:
        raise OSError(
            f"{path}: {exc.strerror}; the proxies' media types come from it "
            "(apt-get install media-types)"
        ) from None
    for line in lines:
        words = line.split("#", 1)[0].split()
        for extension in words[1:]:
            if extension.replace(".", "").replace("-", "").replace("_", "").isalnum():
                types[extension.lower()] = words[0].lower()
    return types


def is_text(media_type: str) -> bool:
    """A type the proxies label with a charset: text/* (RFC 2046: charset is
    text's own parameter)."""
    return media_type.startswith("text/")


def values(s: Settings) -> dict[str, str]:
    redirect = s.REDIRECT_TO_HTTPS and (s.TLS or s.TRUSTED_PROXIES)
    return {
        # what the main config includes for HTTPS: the TLS sites, or (TLS=0) a
        # pattern that matches no file, which nginx's include and Apache's
        # IncludeOptional accept as including nothing
        "TLS_SITES": "tls.d/*.conf" if s.TLS else "tls.d/*.disabled",
        # what the plain HTTP site does with a request first: redirect it to
        # HTTPS where HTTPS is served (by the proxy, TLS=1, or by a trusted
        # balancer, TRUSTED_PROXIES), or nothing
        "HTTPS_REDIRECT": (
            "snippets/redirect-to-https.conf" if redirect else "snippets/no-redirect.conf"
        ),
        # the proxy's rungs of the timeout ladder and its admission limit
        # (wsgistack/settings.py)
        "PROXY_TIMEOUT": str(s.PROXY_TIMEOUT),
        "PROXY_MAX_CONNS": str(s.PROXY_MAX_CONNS),
        # idle keep-alive connections outlive the balancer's
        "KEEPALIVE_TIMEOUT": str(s.BALANCER_IDLE_TIMEOUT + KEEPALIVE_MARGIN),
        "HSTS": f"max-age={HSTS_MAX_AGE}"
        + ("; includeSubDomains" if s.HSTS_INCLUDE_SUBDOMAINS else ""),
        "TLS_GROUPS": tls_groups(),
        # the status page for the proxy's Prometheus exporter, on STATUS_PORT
        # (METRICS=1): status.d/*.conf, else a pattern that matches no file
        "STATUS_SITES": "status.d/*.conf" if s.METRICS else "status.d/*.disabled",
    }
