"""The certificate of the HTTPS listener when none is given: a throwaway one.

With ``TLS=1`` and no ``TLS_CERT``, the proxies serve a certificate made here,
for localhost and 127.0.0.1, valid 30 days, in the run folder, signed by a
certificate authority made for it alone (``ca.pem`` beside it; its key is
deleted at once): enough for a browser or curl on this machine (trust
``ca.pem``, or ``-k``), never for production, where the
real certificate and key are mounted and named by ``TLS_CERT`` / ``TLS_KEY``.
ECDSA P-256, the certificate type Mozilla's guidelines recommend.

Runs natively (``wsgistack up``) and in the images' entrypoint, with the
standard library and the ``openssl`` command only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from wsgistack.settings import Settings, SettingsError

VALID_DAYS = 30


def make_certificate(openssl: str, folder: Path, cert: Path, key: Path) -> Path:
    """A throwaway certificate authority (``ca.pem``, its key deleted once used)
    and a certificate for localhost signed by it: trust ``ca.pem`` (curl
    --cacert, a browser, sslyze) and the chain validates like a real one."""
    ca_cert, ca_key, csr = folder / "ca.pem", folder / "ca.key", folder / "cert.csr"
    extensions = folder / "cert.ext"
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    days = ["-days", str(VALID_DAYS)]
    commands = [
        [openssl, "req", "-x509", *p256, *days, "-subj", "/CN=wsgistack throwaway CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(ca_key), "-out", str(ca_cert)],
        [openssl, "req", *p256, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-set_serial", str(int.from_bytes(os.urandom(8), "big")), *days,
         "-extfile", str(extensions), "-out", str(cert)],
    ]  # fmt: skip
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=60)
    finally:
        for scratch in (ca_key, csr, extensions):
            scratch.unlink(missing_ok=True)
    return ca_cert


def is_self_signed_default(settings: Settings) -> bool:
    """Whether the certificate is the one this module makes in the run folder."""
    return Path(settings.TLS_CERT).parent == Path(settings.RUN_DIR) / "tls"


def ensure_certificate(settings: Settings, log=print) -> None:
    """Make the self-signed certificate if TLS is on and none was given; refuse
    a given certificate or key that does not exist."""
    if not settings.TLS:
        return
    cert, key = Path(settings.TLS_CERT), Path(settings.TLS_KEY)
    if not is_self_signed_default(settings):
        for path in (cert, key):
            if not path.is_file():
                raise SettingsError(f"TLS is on but {path} does not exist (TLS_CERT, TLS_KEY)")
        return
    if cert.is_file() and key.is_file():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SettingsError("TLS=1 without TLS_CERT needs the openssl command to make one")
    cert.parent.mkdir(parents=True, exist_ok=True)
    make_certificate(openssl, cert.parent, cert, key)
    os.chmod(key, 0o600)
    # as root, the servers run unprivileged as the run folder's owner
    owner = Path(settings.RUN_DIR).stat()
    for path in (cert.parent, cert, key, cert.parent / "ca.pem"):
        if os.geteuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)
    log(
        f"TLS=1 and no TLS_CERT: made a certificate for localhost in {cert.parent}, signed by "
        f"a throwaway CA (ca.pem there: trust it to connect without -k; valid {VALID_DAYS} "
        "days). For production, set TLS_CERT and TLS_KEY",
        file=sys.stderr,
    )
