#!/bin/sh
# Entrypoint of every image: render this image's server configs from the
# environment into $RUN_DIR, then become the server (exec, so that it is PID 1
# and receives the stop signal itself).
#
# WSGISTACK_TEMPLATES (set per image in the Dockerfile) lists the files and
# folders from deploy/ to render, separated by spaces; empty means nothing to
# render. They land in $RUN_DIR under their own names, as `wsgistack up` lays
# them out natively: $RUN_DIR/uwsgi.ini, $RUN_DIR/nginx/nginx.conf, ...
# RUN_DIR is the only place written at run time: /tmp/wsgistack by default,
# on the tmpfs that a read-only root filesystem gets at /tmp.
set -eu

RUN_DIR="${RUN_DIR:-/tmp/wsgistack}"
export RUN_DIR

mkdir -p "$RUN_DIR"

# the worker counts, resolved once here so that the configs, gunicorn and the
# app's /info all see the same numbers: those left unset or empty take the
# default of the app server this image's templates configure (uWSGI: 8
# processes of 1 thread, wsgistack/settings.py), else follow the CPUs this
# container may use (its cgroup CPU quota and affinity mask: wsgistack/cpus.py),
# not the host's cores. The output is whole numbers only ("WSGI_PROCESSES=8
# WSGI_THREADS=1 NGINX_WORKERS=2"); a knob with a wrong value stops the start
# here, saying which. The locust image has no wsgistack: nothing to size.
if [ -d /srv/wsgistack ]; then
    # word splitting is the point: one argument per template
    # shellcheck disable=SC2086
    shape=$(/usr/bin/python3 -m wsgistack.render --shape ${WSGISTACK_TEMPLATES:-})
    eval "export $shape"
    echo "entrypoint: $shape" >&2
fi

if [ -n "${WSGISTACK_TEMPLATES:-}" ]; then
    # word splitting is the point: one argument per template
    # shellcheck disable=SC2086
    /usr/bin/python3 -m wsgistack.render $WSGISTACK_TEMPLATES --out "$RUN_DIR" >/dev/null
    echo "entrypoint: rendered $WSGISTACK_TEMPLATES into $RUN_DIR" >&2
fi

# the uwsgi image only: warn when the memory limit is below what the knobs need
# for uWSGI's recycling to act before the kernel kills (docker/memory_rule.py)
if [ -x /usr/local/bin/memory_rule.py ]; then
    /usr/local/bin/memory_rule.py || true
fi

exec "$@"
