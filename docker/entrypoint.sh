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

# worker counts left unset or empty follow the CPUs this container may use
# (its cgroup CPU quota and affinity mask: wsgistack/cpus.py), not the host's
# cores; resolved once here so that the configs, gunicorn and the app's /info
# all see the same number. The locust image has no wsgistack: nothing to size.
if [ -d /srv/wsgistack ]; then
    cpus=$(/usr/bin/python3 -m wsgistack.cpus)
    WSGI_PROCESSES="${WSGI_PROCESSES:-$cpus}"
    NGINX_WORKERS="${NGINX_WORKERS:-$cpus}"
    export WSGI_PROCESSES NGINX_WORKERS
    echo "entrypoint: WSGI_PROCESSES=$WSGI_PROCESSES NGINX_WORKERS=$NGINX_WORKERS" >&2
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
