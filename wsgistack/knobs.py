"""How a knob is declared and how its text becomes a value (``wsgistack.settings``).

A knob is a field of ``Settings`` declared with ``knob(default, parse, help)``;
its name is the field's. A parser takes the knob's raw text (from the
environment, else the default) and the knobs declared before it, already
parsed, so that a default can follow another knob (UWSGI_SOCKET in RUN_DIR).
It raises ValueError to say what is wrong; ``Settings.from_env`` names the
knob, its value and its help in the SettingsError.

A knob may have other defaults for some app servers (``servers``): the worker
shape of uWSGI (wsgistack/settings.py says why). Such a knob left unset or
empty takes the default of the app server the settings are for, else its own.

Standard library only, as ``wsgistack.settings``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wsgistack.cpus import available_cpus

Parse = Callable[[str, Mapping[str, Any]], Any]


class SettingsError(ValueError):
    """A knob has a value the servers cannot use."""


@dataclass(frozen=True)
class Knob:
    env: str
    default: int | str
    parse: Parse
    help: str
    # app server -> its own default for this knob (APP_SERVERS)
    servers: Mapping[str, int | str] = field(default_factory=dict)

    def default_for(self, server: str) -> int | str:
        return self.servers.get(server, self.default)


def knob(
    default: int | str,
    parse: Parse,
    help: str,
    servers: Mapping[str, int | str] | None = None,
) -> Any:
    """A knob's declaration, as a field of Settings: its name is the field's;
    ``servers``: the app servers whose default differs from ``default``."""
    return field(metadata={"knob": (default, parse, help, dict(servers or {}))})


def text(raw: str, known: Mapping[str, Any]) -> str:
    return raw


def whole(minimum: int) -> Parse:
    """A whole number, at least ``minimum``."""

    def parse(raw: str, known: Mapping[str, Any]) -> int:
        digits = raw.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError("expected a whole number")
        if int(digits) < minimum:
            raise ValueError(f"must be at least {minimum}")
        return int(digits)

    return parse


def level(raw: str, known: Mapping[str, Any]) -> int:
    """A compression level: 1 (fastest) to 9 (smallest), or 0 (off)."""
    value = whole(0)(raw, known)
    if value > 9:
        raise ValueError("must be 0 (off) or 1 to 9")
    return value


def switch(raw: str, known: Mapping[str, Any]) -> int:
    if raw.strip() not in ("0", "1"):
        raise ValueError("expected 0 (off) or 1 (on)")
    return int(raw)


def url_path(ends_with_slash: bool) -> Parse:
    """An absolute URL path (``/readyz``), or a prefix ending in ``/`` (``/static/``):
    printable ASCII, no spaces, quotes or ``;``, as the configs write it verbatim."""

    def parse(raw: str, known: Mapping[str, Any]) -> str:
        path = raw.strip()
        if not path.startswith("/") or (ends_with_slash and not path.endswith("/")):
            raise ValueError(
                "expected a path starting with /"
                + (" and ending with /" if ends_with_slash else "")
            )
        if not all(33 <= ord(c) < 127 and c not in "\"';{}\\" for c in path):
            raise ValueError("expected printable ASCII without spaces, quotes, ';' or braces")
        return path

    return parse


def cpus(raw: str, known: Mapping[str, Any]) -> int:
    """A worker count; unset or empty: the CPUs this process may use, from its
    cgroup's CPU quota and affinity mask (wsgistack/cpus.py), not the host's cores."""
    return whole(1)(raw, known) if raw.strip() else available_cpus()


def addresses(raw: str, known: Mapping[str, Any]) -> str:
    """IP addresses and CIDR ranges, separated by spaces."""
    for address in raw.split():
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(f"{address!r} is not an IP address or CIDR range") from None
    return raw


def address(raw: str, known: Mapping[str, Any]) -> str:
    """``host:port`` (a name, an IPv4 address or a bracketed IPv6 one), or empty."""
    raw = raw.strip()
    if not raw:
        return ""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ValueError("expected host:port, or nothing")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return raw


def secret(needed_with: str, shortest: int) -> Parse:
    """A password: required when the knob ``needed_with`` is set, at least
    ``shortest`` characters, none of them white space (config files split on it)."""

    def parse(raw: str, known: Mapping[str, Any]) -> str:
        if not raw:
            if known[needed_with]:
                raise ValueError(f"needed with {needed_with}={known[needed_with]!r}")
            return raw
        if len(raw) < shortest:
            raise ValueError(f"must be at least {shortest} characters long")
        if any(char.isspace() for char in raw):
            raise ValueError("must not contain white space")
        return raw

    return parse


def or_else(fallback: Callable[[Mapping[str, Any]], Any], parse: Parse = text) -> Parse:
    """``parse``, and ``fallback(known)`` where that gives an empty string or 0."""
    return lambda raw, known: parse(raw, known) or fallback(known)
