# One Dockerfile, one target per server (compose.yaml builds and names them):
#
#   uwsgi     the app under uWSGI, uwsgi-protocol socket 0.0.0.0:3031, on a
#             compose network only nginx joins (compose.yaml), never published
#   nginx     nginx on 8080 in front of the uwsgi target
#   apache    Apache + mod_wsgi 6 (daemon mode, built in a stage) on 8081
#   gunicorn  the app under gunicorn on 8082
#   locust    Locust master or worker; web UI on 8089
#   granian   the app under granian on 8085 (Debian's python3)
#
# On CPython built from Debian's source package (PYTHON_BUILD: ft or gil):
#   freethreaded         --disable-gil: granian (CMD) or gunicorn gthread
#                        (`gunicorn --config /srv/deploy/gunicorn/gunicorn.conf.py`)
#                        on 8085
#   gil                  the control: the same build with the GIL, the same
#                        servers, command and port (PYTHON_BUILD=gil)
#   apache-freethreaded  Apache + mod_wsgi 6, WSGIFreeThreading On, on 8081
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
# the CPython build the freethreaded, gil and apache-freethreaded targets run:
# ft (--disable-gil) or gil (the control); see python-source below
ARG PYTHON_BUILD=ft

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
# what mod_wsgi 6.1.1 compiles with: Debian's Apache headers and apxs, a
# compiler, python3's headers (the apache image's Python; the free-threaded
# build brings its own), and the CA store Debian's pip reads (in the apache
# image's venv, as in venv-builder). requirements-mod_wsgi.txt says why not
# Debian's libapache2-mod-wsgi-py3. The mod-wsgi-*venv stages below build into
# their venv on top of this; the compiler and headers stay in them.
FROM base AS mod-wsgi-build

# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        apache2-dev python3-dev gcc ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120
COPY requirements-mod_wsgi.txt /tmp/requirements-mod_wsgi.txt

###############################################################################
# the apache image's venv: the app's, plus mod_wsgi compiled against trixie's
# Apache and python3
FROM mod-wsgi-build AS mod-wsgi-venv

COPY --from=app-venv /opt/venv /opt/venv
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
# Apache and the stack's configs, without mod_wsgi or Python: the apache and
# apache-freethreaded targets add the interpreter and its venv (the module is
# in the venv; httpd.conf's LoadModule finds it from VENV)
FROM base AS apache-server

ARG UID
ARG GID

# apache2-bin: the server and its modules, without the apache2 package's
# perl, scripts and Debian site layout that a rendered httpd.conf does not use;
# openssl makes the throwaway certificate when TLS=1 and none is mounted
# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        apache2-bin openssl \
    && rm -rf /var/lib/apt/lists/*

COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/apache-mod_wsgi /srv/deploy/apache-mod_wsgi
# the app, and app/static: the front page's CSS and JS, which Apache serves
# itself (STATIC_ROOT's default beside /srv/wsgistack)
COPY --chown=${UID}:${GID} app /srv/app

ENV PORT=8081 \
    WSGISTACK_TEMPLATES=/srv/deploy/apache-mod_wsgi

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
# Apache + mod_wsgi 6 on Debian's python3
FROM apache-server AS apache

ARG UID
ARG GID

# libpython3.X: the shared Python library the venv's mod_wsgi links to
# unpinned on purpose, as in the base stage: the Debian suite is the pin
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "$(python3 -c 'import sys; print("libpython%d.%d" % sys.version_info[:2])')" \
    && rm -rf /var/lib/apt/lists/*

COPY --from=mod-wsgi-venv /opt/venv /opt/venv

USER ${UID}:${GID}

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

###############################################################################
# CPython built from Debian's own source package, twice: free-threaded (PEP
# 703, "no GIL"; Debian ships no such build, trixie or sid) and, as its
# control, with the GIL. Stages of their own, so that the layer cache builds
# each once per machine (about 2-3 minutes with 2 cores) and every later
# build reuses it.
#
#   docker build --target freethreaded --tag wsgistack-freethreaded .
#   docker build --target gil --build-arg PYTHON_BUILD=gil --tag wsgistack-gil .
#   docker build --target freethreaded --build-arg PYTHON_FT_VERSION=3.14 ...
#
# PYTHON_FT_VERSION: the one knob, for both builds. The source package
# python$VERSION of the suite in the base image (trixie: 3.13); a newer one
# where the mirror serves it re-measures the benchmark's interpreter axis with
# nothing else changed.
# The builds (docker/build-python.sh): Debian's pristine upstream tarball (the
# orig tarball, without Debian's patches), installed to /opt/python,
#   ft   ./configure --disable-gil --enable-shared  (python3.13t,
#        sys._is_gil_enabled() is False unless PYTHON_GIL=1 or an extension
#        asks for it)
#   gil  ./configure --enable-shared: the same, with the GIL. The control: the
#        benchmark tells what free-threading costs (ft against gil) from what
#        this build costs (gil against Debian's python3, which has Debian's
#        patches, PGO and LTO)
# --enable-shared: a libpython3.13[t].so, which an embedding server (mod_wsgi)
# links. No --enable-optimizations (PGO) or --with-lto: they triple the build
# time (docs/free-threading.md).
FROM debian:trixie-slim AS python-source

ARG PYTHON_FT_VERSION=3.13

# deb-src: the image's own mirrors, also for source packages; the build
# dependencies of CPython's optional modules that pip and the app need (ssl,
# zlib, ctypes via libffi, bz2, lzma, sqlite3, uuid)
# unpinned on purpose, as in the base stage: the Debian suite is the pin;
# the lists stay for the next RUN's `apt-get source` (a build stage only: no
# runtime image copies them)
# hadolint ignore=DL3008,DL3009
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config xz-utils \
        libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev uuid-dev

WORKDIR /build
# --download-only: the .dsc, the orig tarball and Debian's packaging, with no
# dpkg-source unpacking (and so no Debian patches); apt checks each file's hash
# against the signed Sources index
RUN chown _apt /build \
    && apt-get source --download-only "python${PYTHON_FT_VERSION}" \
    && tar -xf "python${PYTHON_FT_VERSION}_"*.orig.tar.?z \
    && rm -f ./*.orig.tar.?z ./*.debian.tar.?z ./*.dsc
COPY docker/build-python.sh /usr/local/bin/

# each RUN fails the build unless sys._is_gil_enabled() says what it should
FROM python-source AS python-ft-build
RUN build-python.sh ft

FROM python-source AS python-gil-build
RUN build-python.sh gil

###############################################################################
# the interpreter the freethreaded, gil and apache-freethreaded targets run:
# PYTHON_BUILD (a global ARG, at the top) picks the stage, ft or gil. Each
# target checks it got the one it is named for.
# a stage of this file, not an image to pull: no tag to give it
# hadolint ignore=DL3006
FROM python-${PYTHON_BUILD}-build AS python-build

###############################################################################
# the venv on the built interpreter: the app and the servers that run it
# without the GIL (gunicorn gthread, granian), pinned in
# requirements-freethreaded.txt; the gil build installs the very same
FROM base AS python-build-venv

COPY --from=python-build /opt/python /opt/python
COPY requirements-freethreaded.txt /tmp/requirements-freethreaded.txt
# the runtime libraries of ssl, ctypes, bz2, lzma, sqlite3 come with Debian's
# python3 in the base stage; the import line fails the build if one goes missing
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/python/bin/python -c 'import ssl, ctypes, bz2, lzma, sqlite3, uuid, zlib' \
    && /opt/python/bin/python -m venv /opt/venv \
    && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/venv/bin/pip install --no-cache-dir \
        --only-binary=:all: -r /tmp/requirements-freethreaded.txt \
    && echo /srv > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-src.pth"

###############################################################################
# the app on the built interpreter, served by granian (the default command) or
# gunicorn gthread (compose.yaml's gunicorn-ft service): the freethreaded and
# gil targets below are this stage, checked
FROM base AS python-build-server

ARG UID
ARG GID

COPY --from=python-build /opt/python /opt/python
COPY --from=python-build-venv /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/gunicorn /srv/deploy/gunicorn
COPY --chown=${UID}:${GID} deploy/granian /srv/deploy/granian
COPY --chown=${UID}:${GID} app /srv/app

# no PYTHON_GIL=0 on purpose: CPython turns the GIL back on (with a warning)
# when it imports an extension module not declared free-threading safe, and
# the test that /info's gil_enabled is false (tests/integration/
# test_freethreaded.py) must see that. Both servers read the knobs from the
# environment (wsgistack.settings): nothing to render.
ENV PORT=8085 \
    PATH=/opt/venv/bin:$PATH \
    WSGISTACK_TEMPLATES=

USER ${UID}:${GID}
EXPOSE 8085
# granian and gunicorn both let in-flight requests finish on SIGTERM
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["python", "/srv/deploy/granian/serve.py"]

###############################################################################
# the app on free-threaded CPython: threads of one process run Python code in
# parallel (PYTHON_BUILD=ft, the default)
FROM python-build-server AS freethreaded
RUN python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") or sys.exit("target freethreaded: build it with PYTHON_BUILD=ft")'

###############################################################################
# its control: the same source, flags, servers and pins, with the GIL
# (PYTHON_BUILD=gil)
FROM python-build-server AS gil
RUN python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") and sys.exit("target gil: build it with PYTHON_BUILD=gil")'

###############################################################################
# the free-threaded venv plus mod_wsgi compiled against Debian's Apache and
# the built interpreter's shared libpython3.13t (mod_wsgi's setup.py links it
# with an rpath to /opt/python/lib)
FROM mod-wsgi-build AS mod-wsgi-ft-venv

COPY --from=python-build /opt/python /opt/python
COPY --from=python-build-venv /opt/venv /opt/venv
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-mod_wsgi.txt

###############################################################################
# Apache + mod_wsgi 6 on free-threaded CPython (PYTHON_BUILD=ft, the default):
# the apache image with WSGIFreeThreading On (MOD_WSGI_FREE_THREADING=1,
# deploy/apache-mod_wsgi/wsgi-daemons.conf), so that a daemon process's
# threads run Python in parallel
FROM apache-server AS apache-freethreaded

ARG UID
ARG GID

COPY --from=python-build /opt/python /opt/python
COPY --from=mod-wsgi-ft-venv /opt/venv /opt/venv
RUN /opt/venv/bin/python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") or sys.exit("target apache-freethreaded: build it with PYTHON_BUILD=ft")'

ENV MOD_WSGI_FREE_THREADING=1

USER ${UID}:${GID}

###############################################################################
# granian on Debian's python3 (the GIL build): the app venv plus granian,
# pinned in requirements-granian.txt
FROM app-venv AS granian-venv

COPY requirements-granian.txt /tmp/requirements-granian.txt
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle REQUESTS_CA_BUNDLE=/run/secrets/ca_bundle; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-granian.txt

###############################################################################
# the app under granian alone, no proxy, on 8085: deploy/granian/serve.py
# holds every option. Same file, same port as the freethreaded target.
FROM base AS granian

ARG UID
ARG GID

COPY --from=granian-venv /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
COPY --chown=${UID}:${GID} wsgistack /srv/wsgistack
COPY --chown=${UID}:${GID} deploy/granian /srv/deploy/granian
COPY --chown=${UID}:${GID} app /srv/app

# serve.py reads the knobs from the environment (wsgistack.settings): nothing
# to render
ENV PORT=8085 \
    PATH=/opt/venv/bin:$PATH \
    WSGISTACK_TEMPLATES=

USER ${UID}:${GID}
EXPOSE 8085
# granian's workers stop accepting and finish their requests on SIGTERM
# (within workers_kill_timeout)
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["python", "/srv/deploy/granian/serve.py"]
