#!/bin/sh
# pip install into the venv at $VENV (/opt/venv), in a Dockerfile build stage.
# Every pip step of the Dockerfile runs it the same way:
#
#   RUN --mount=type=secret,id=ca_bundle,required=false \
#       pip-install.sh -r /tmp/requirements.txt
#
# Behind a TLS-intercepting proxy, pip needs the proxy's CA, which only the
# host's CA bundle carries: compose.yaml hands that bundle in as the optional
# BuildKit secret `ca_bundle` (`docker build --secret
# id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt` does the same). Without
# the secret, or with an empty one (CA_BUNDLE=/dev/null), pip uses the CA
# store it would anyway: builds elsewhere need nothing.
set -eu

# the lowest CPU priority: the test suite builds the images while its native
# tests run (tests/integration/conftest.py), and their timings must not wait
# for pip (mod_wsgi compiles); alone on a machine the build takes as long as ever
renice -n 19 -p $$ >/dev/null

if [ -s /run/secrets/ca_bundle ]; then
    # PIP_CERT: pip's; REQUESTS_CA_BUNDLE: the requests library's, for
    # whatever else fetches over HTTPS while a package builds
    export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle
fi
# no version check (the venv's pip is the one its python ships); a long
# timeout for slow mirrors; no cache, which would only end up in the layer
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120
exec "$VENV/bin/pip" install --no-cache-dir "$@"
