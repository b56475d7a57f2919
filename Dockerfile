# One Dockerfile, one target per server (compose.yaml builds and names them):
#
#   uwsgi     the app under uWSGI, uwsgi-protocol socket 0.0.0.0:3031, on a
#             compose network only nginx joins (compose.yaml), never published
#   nginx     nginx on 8080 in front of the uwsgi target
#   apache    Apache + mod_wsgi 6 (daemon mode, built in a stage) on 8081
#   gunicorn  the app under gunicorn on 8082
#   locust    Locust master or worker; web UI on 8089
#
#   docker compose --profile uwsgi build
#   docker build --target gunicorn --tag wsgistack-gunicorn .
#
# Servers come from Debian's packages; the app lives in a venv made with
# Debian's /usr/bin/python3, the interpreter that uWSGI's python3 plugin and
# mod_wsgi embed. Machines that cannot reach Docker Hub build a local
# debian:trixie-slim with docker/build-base-image.sh first.
#
# Behind a TLS-intercepting proxy, pip needs the proxy's CA: hand it in as the
# optional build secret `ca_bundle` (compose.yaml does), e.g.
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt .
# Without the secret the build uses the image's own CA store.
#
# Every image runs as a non-root user (UID/GID build args), also under an
# arbitrary UID with GID 0 (OpenShift), and with a read-only root filesystem
# given a tmpfs at /tmp: the only path written at run time is RUN_DIR.

# numeric ids, so that runAsNonRoot-style checks can see a non-root user
ARG UID=1000
ARG GID=1000

###############################################################################
FROM debian:trixie-slim AS base

ARG UID
ARG GID

# PYTHONPATH: the app and wsgistack live in /srv, as in the repository (the
# venvs also list /srv in a .pth file, for servers that ignore PYTHONPATH)
# HOME: writable for any UID, even with a read-only root filesystem
# BIND_ADDRESS: reachable from other containers and published ports
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/srv \
    LANG=C.UTF-8 \
    HOME=/tmp \
    RUN_DIR=/tmp/wsgistack \
    BIND_ADDRESS=0.0.0.0 \
    VENV=/opt/venv

# Debian stable only ever moves a package to its next security or point
# release, and old versions leave the archive: the suite is the pin, a version
# pin would break the build at the next update
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${GID}" app \
    && useradd --uid "${UID}" --gid "${GID}" --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin app

WORKDIR /srv

###############################################################################
# builds the venvs; nothing of it but /opt/venv reaches a runtime image
FROM base AS venv-builder

# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && /usr/bin/python3 -m venv /opt/venv

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120

###############################################################################
# the app's pinned runtime dependencies, before any source: edits to the app
# keep this layer cached
FROM venv-builder AS app-venv

COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
# the source in /srv (copied last, in each runtime stage) is importable by the
# venv's python as if installed: mod_wsgi's python-home, uWSGI's virtualenv and
# gunicorn all find `app` without PYTHONPATH or a path in their configs
RUN echo /srv > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-src.pth"

###############################################################################
# the apache image's venv: the app's, plus mod_wsgi 6.1.1 compiled against
# trixie's Apache and python3 (requirements-mod_wsgi.txt says why not Debian's
# libapache2-mod-wsgi-py3). The compiler and headers stay in this stage.
FROM app-venv AS mod-wsgi-venv

# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        apache2-dev python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*

COPY requirements-mod_wsgi.txt /tmp/requirements-mod_wsgi.txt
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-mod_wsgi.txt

###############################################################################
FROM venv-builder AS locust-venv

COPY requirements-loadtest.txt /tmp/requirements-loadtest.txt
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-loadtest.txt

###############################################################################
FROM base AS uwsgi

ARG UID
ARG GID

# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        uwsgi-core uwsgi-plugin-python3 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=app-venv /opt/venv /opt/venv
# memory_rule.py: the entrypoint's warning when APP_MEMORY is too small
COPY docker/entrypoint.sh docker/healthcheck.py docker/memory_rule.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/uwsgi /srv/deploy/uwsgi
COPY --chown=${UID}:${GID} app /srv/app

# UWSGI_SOCKET: TCP, so that nginx in another container reaches it
# the uwsgi stack's shape: processes of one thread each (harakiri is exact
# only so, docs/nginx-uwsgi.md); the nginx image carries the same for its limits
ENV UWSGI_SOCKET=0.0.0.0:3031 \
    WSGI_PROCESSES=8 \
    WSGI_THREADS=1 \
    WSGISTACK_TEMPLATES=/srv/deploy/uwsgi/uwsgi.ini

USER ${UID}:${GID}
EXPOSE 3031
# uWSGI drains on SIGTERM: uwsgi.ini maps signal 15 to gracefully_kill_them_all
STOPSIGNAL SIGTERM
# readiness through uWSGI to the app; the socket speaks the uwsgi protocol,
# so the check does too
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "uwsgi://$UWSGI_SOCKET/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
# the entrypoint renders into RUN_DIR (/tmp/wsgistack in every image); a
# changed RUN_DIR needs the paths in CMD changed too
CMD ["uwsgi", "--ini", "/tmp/wsgistack/uwsgi.ini"]

###############################################################################
FROM base AS nginx

ARG UID
ARG GID

# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx openssl \
    && rm -rf /var/lib/apt/lists/*

# no app and no venv here: the renderer needs the standard library only,
# openssl makes the throwaway certificate when TLS=1 and none is mounted
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/nginx /srv/deploy/nginx
# the front page's CSS and JS, which nginx serves itself: STATIC_ROOT's
# default beside /srv/wsgistack
COPY --chown=${UID}:${GID} app/static /srv/app/static

# UWSGI_SOCKET: the uwsgi target's service name in compose.yaml
# the whole folder: nginx.conf includes conf.d/, snippets/ and uwsgi_params
ENV PORT=8080 \
    UWSGI_SOCKET=uwsgi-app:3031 \
    WSGI_PROCESSES=8 \
    WSGI_THREADS=1 \
    WSGISTACK_TEMPLATES=/srv/deploy/nginx

USER ${UID}:${GID}
EXPOSE 8080 8443
# nginx finishes the requests in flight on SIGQUIT; SIGTERM would cut them
STOPSIGNAL SIGQUIT
# readiness: through nginx to uWSGI and the app, not just nginx itself (that
# is /livez); answered whatever the Host header (snippets/health.conf)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
# -e stderr: nginx opens its built-in error log before reading the config,
# which fails as non-root on a read-only root filesystem
# -p: the prefix that nginx.conf's relative includes start from
CMD ["nginx", "-e", "stderr", "-p", "/tmp/wsgistack/nginx", "-c", "nginx.conf"]

###############################################################################
FROM base AS apache

ARG UID
ARG GID

# apache2-bin: the server and its modules, without the apache2 package's
# perl, scripts and Debian site layout that a rendered httpd.conf does not use;
# libpython3.X: the shared Python library the venv's mod_wsgi links to;
# openssl makes the throwaway certificate when TLS=1 and none is mounted
# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        apache2-bin openssl \
        "$(python3 -c 'import sys; print("libpython%d.%d" % sys.version_info[:2])')" \
    && rm -rf /var/lib/apt/lists/*

# mod_wsgi's module is in the venv; httpd.conf's LoadModule finds it from VENV
COPY --from=mod-wsgi-venv /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/apache-mod_wsgi /srv/deploy/apache-mod_wsgi
# the app, and app/static: the front page's CSS and JS, which Apache serves
# itself (STATIC_ROOT's default beside /srv/wsgistack)
COPY --chown=${UID}:${GID} app /srv/app

ENV PORT=8081 \
    WSGISTACK_TEMPLATES=/srv/deploy/apache-mod_wsgi

USER ${UID}:${GID}
# 8443: HTTPS, with TLS=1
EXPOSE 8081 8443
# graceful-stop: Apache lets the requests in flight finish on SIGWINCH
STOPSIGNAL SIGWINCH
# readiness, through Apache to the app; answered whatever SERVER_NAMES says
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
# -d: the ServerRoot that httpd.conf's relative paths start from
CMD ["apache2", "-d", "/tmp/wsgistack/apache-mod_wsgi", "-f", "/tmp/wsgistack/apache-mod_wsgi/httpd.conf", "-DFOREGROUND"]

###############################################################################
FROM base AS gunicorn

ARG UID
ARG GID

COPY --from=app-venv /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/gunicorn /srv/deploy/gunicorn
COPY --chown=${UID}:${GID} app /srv/app

# gunicorn.conf.py reads the knobs (WSGI_APP included) from the environment
# itself, through wsgistack.settings: nothing to render
ENV PORT=8082 \
    PATH=/opt/venv/bin:$PATH \
    WSGISTACK_TEMPLATES=

USER ${UID}:${GID}
EXPOSE 8082
# gunicorn's workers finish their requests on SIGTERM (within graceful_timeout)
STOPSIGNAL SIGTERM
# readiness: the app answers it (no proxy in front)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py"]

###############################################################################
FROM base AS locust

ARG UID
ARG GID

COPY --from=locust-venv /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} loadtests /srv/loadtests

# LOCUST_*: locust reads its options from the environment too (LOCUST_HOST...)
ENV PATH=/opt/venv/bin:$PATH \
    WSGISTACK_TEMPLATES=

USER ${UID}:${GID}
# web UI, and the port workers connect to on the master
EXPOSE 8089 5557
# locust stops its users, writes its stats and applies its exit-code checks on SIGTERM
STOPSIGNAL SIGTERM
# the master's web UI; compose.yaml checks workers by their connection to it
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:8089/"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
# the web UI on the container's interface (locust.conf keeps it on loopback natively)
CMD ["locust", "--config", "/srv/loadtests/locust.conf", "--web-host", "0.0.0.0"]
