"""What deploy/valkey's valkey.conf fills in beyond the knobs, in Valkey's syntax."""

from __future__ import annotations

import hashlib

from wsgistack.settings import Settings

# Valkey's port when VALKEY_ADDRESS names none to listen on (no job queue)
DEFAULT_PORT = 6379


def values(s: Settings) -> dict[str, str]:
    return {
        # the port of VALKEY_ADDRESS, the address the app and workers use
        "VALKEY_PORT": s.VALKEY_ADDRESS.rpartition(":")[2] or str(DEFAULT_PORT),
        # the password as the ACL stores it, a SHA-256: the rendered config
        # holds no password. https://valkey.io/topics/acl/
        "VALKEY_PASSWORD_SHA256": hashlib.sha256(s.VALKEY_PASSWORD.encode()).hexdigest(),
        "VALKEY_MAXMEMORY": f"{s.VALKEY_MEMORY_MB}mb",
    }
