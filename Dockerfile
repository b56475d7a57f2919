# One Dockerfile, one target per image (compose.yaml builds and names them):
#   uwsgi      the app under uWSGI: a uwsgi-protocol socket on 3031, on a
#              network only nginx joins (compose.yaml), never published
#   nginx      nginx on 8080 in front of the uwsgi target
#   apache     Apache + mod_wsgi 6 (daemon mode) on 8081
#   gunicorn   the app under gunicorn on 8082
#   granian    the app under granian on 8085
#   locust     Locust master or worker; web UI on 8089
#   prometheus Prometheus on 9090 (the metrics profile), exporters the
#              proxies' Prometheus exporters (nginx 9113, Apache 9117)
# and on CPython built from Debian's source package (PYTHON_BUILD: ft or gil):
#   freethreaded  --disable-gil: granian on 8085 (CMD), or gunicorn gthread
#                 (`gunicorn --config /srv/deploy/gunicorn/gunicorn.conf.py`)
#   gil           the control: the same with the GIL (PYTHON_BUILD=gil)
#   apache-freethreaded  Apache + mod_wsgi 6, WSGIFreeThreading On, on 8081
#
#   docker compose --profile uwsgi build
#   docker build --target gunicorn --tag wsgistack-gunicorn .
#
# Servers come from Debian's packages (the suite is the pin: .hadolint.yaml);
# the app's venv is made with Debian's /usr/bin/python3, the interpreter that
# uWSGI's python3 plugin and mod_wsgi embed. Machines that cannot reach Docker
# Hub build a local debian:trixie-slim with docker/build-base-image.sh first.
# Behind a TLS-intercepting proxy, the optional build secret `ca_bundle` hands
# pip the proxy's CA (docker/pip-install.sh).
# Every image runs as a non-root user (UID/GID build args), also under an
# arbitrary UID with GID 0 (OpenShift), and with a read-only root filesystem
# given a tmpfs at /tmp: the only path written at run time is RUN_DIR.
# Every stage installs its packages and dependencies before it copies any
# source: an edit to app/, wsgistack/ or deploy/ rebuilds the last layers only.
#
# Your own app instead of the demo (docs/your-app.md): two build arguments,
# both paths in the build context, which compose.yaml passes on from .env:
#   APP_REQUIREMENTS  the pinned requirements the app's venv is installed
#                     from: the app's dependencies (Flask included), gunicorn
#                     for its image, and the app itself if it comes from an index
#   APP_SOURCE        a folder at the top of the build context, copied to
#                     /srv/APP_SOURCE, which is on the venvs' path: the app's
#                     code, or the module that makes it (WSGI_APP names it)

# numeric ids, so that runAsNonRoot-style checks can see a non-root user
ARG UID=1000
ARG GID=1000
# the CPython build of the targets on it: ft (--disable-gil) or gil
ARG PYTHON_BUILD=ft
# the app (above): this project's demo by default
ARG APP_REQUIREMENTS=requirements.txt
ARG APP_SOURCE=app

# Debian's python3 and the user, for builders and runtimes alike
FROM debian:trixie-slim AS base
ARG UID GID
# PYTHONPATH: the app and wsgistack live in /srv, as in the repository (the
# venvs also list /srv in a .pth file, for servers that ignore PYTHONPATH)
# HOME: writable for any UID, even with a read-only root filesystem
# BIND_ADDRESS: reachable from other containers and published ports
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/srv LANG=C.UTF-8 \
    HOME=/tmp RUN_DIR=/tmp/wsgistack BIND_ADDRESS=0.0.0.0 VENV=/opt/venv
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${GID}" app \
    && useradd --uid "${UID}" --gid "${GID}" --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin app
WORKDIR /srv

###############################################################################
# Builders: the venvs (/opt/venv), from the pinned requirements files; nothing
# else of these stages reaches an image.
###############################################################################

# python3-venv, and the CA store Debian's pip reads; what mod_wsgi 6.1.1
# compiles with: Debian's Apache headers and apxs, a compiler and python3's
# headers (requirements-mod_wsgi.txt says why not Debian's mod_wsgi)
FROM base AS builder
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-venv ca-certificates apache2-dev python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
COPY docker/pip-install.sh /usr/local/bin/

# the app's. The .pth file makes the source in /srv importable by the venv's
# python as if installed: mod_wsgi's python-home, uWSGI's virtualenv and
# gunicorn find `app` without PYTHONPATH or a path in a config.
FROM builder AS app-venv
ARG APP_REQUIREMENTS
COPY ${APP_REQUIREMENTS} /tmp/requirements.txt
RUN --mount=type=secret,id=ca_bundle,required=false \
    /usr/bin/python3 -m venv /opt/venv \
    && pip-install.sh -r /tmp/requirements.txt \
    && echo /srv > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-src.pth"

# the apache image's: the app's plus mod_wsgi, built for trixie's Apache and python3
FROM app-venv AS mod-wsgi-venv
COPY requirements-mod_wsgi.txt /tmp/
RUN --mount=type=secret,id=ca_bundle,required=false pip-install.sh -r /tmp/requirements-mod_wsgi.txt

# the granian image's: the app's plus granian
FROM app-venv AS granian-venv
COPY requirements-granian.txt /tmp/
RUN --mount=type=secret,id=ca_bundle,required=false pip-install.sh -r /tmp/requirements-granian.txt

# what the nginx image needs of the app's venv: its files that are not code
# (the static folders of a package installed from an index among them), at
# the same paths, so that one STATIC_ROOT names them in every image
FROM app-venv AS app-files
RUN find /opt/venv -depth \( -name '*.py' -o -name '*.pyc' -o -name '*.so' -o -name '*.so.*' \
        -o -path /opt/venv/bin \) -exec rm -rf {} +

FROM builder AS locust-venv
COPY requirements-loadtest.txt /tmp/
RUN --mount=type=secret,id=ca_bundle,required=false \
    /usr/bin/python3 -m venv /opt/venv && pip-install.sh -r /tmp/requirements-loadtest.txt

###############################################################################
# CPython from source (docs/free-threading.md): the pristine upstream tarball
# of Debian's source package, built into /opt/python by docker/build-python.sh
# twice, free-threaded (PEP 703; Debian ships no such build) and, as its
# control, with the GIL. Stages of their own: the layer cache builds each once
# per machine (2-3 minutes with 2 cores).
#   docker build --target gil --build-arg PYTHON_BUILD=gil --tag wsgistack-gil .
###############################################################################

FROM debian:trixie-slim AS python-source
# for both builds: the source package python$VERSION of the base image's suite;
# a newer one re-measures the benchmark's interpreter axis, nothing else changed
ARG PYTHON_FT_VERSION=3.13
# deb-src: the image's own mirrors, also for source packages; the build
# dependencies of CPython's optional modules that pip and the app need (ssl,
# zlib, ctypes via libffi, bz2, lzma, sqlite3, uuid). The lists stay for the
# next RUN's `apt-get source`; no image copies anything but /opt/python.
# hadolint ignore=DL3009
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

# PYTHON_BUILD picks the build (each target on it checks it got its own).
# hadolint takes this FROM for an image to pull, which wants a tag: a stage.
# hadolint ignore=DL3006
FROM python-${PYTHON_BUILD}-build AS python-build

# its venv: the app, gunicorn and granian, wheels only (the gil build installs
# the very same). The import fails the build if the interpreter lacks a module
# (a -dev package missing in python-source leaves it out silently); their
# runtime libraries come with Debian's python3, in base.
FROM builder AS python-build-venv
COPY --from=python-build /opt/python /opt/python
COPY requirements-freethreaded.txt /tmp/
RUN --mount=type=secret,id=ca_bundle,required=false \
    /opt/python/bin/python -c 'import ssl, ctypes, bz2, lzma, sqlite3, uuid, zlib' \
    && /opt/python/bin/python -m venv /opt/venv \
    && pip-install.sh --only-binary=:all: -r /tmp/requirements-freethreaded.txt \
    && echo /srv > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-src.pth"

# the apache-freethreaded image's: that venv plus mod_wsgi, linked to the
# built interpreter's libpython3.13t with an rpath to /opt/python/lib
FROM python-build-venv AS mod-wsgi-ft-venv
COPY requirements-mod_wsgi.txt /tmp/
RUN --mount=type=secret,id=ca_bundle,required=false pip-install.sh -r /tmp/requirements-mod_wsgi.txt

###############################################################################
# Runtimes: `runtime`, what every image shares, then one stage per target.
###############################################################################

FROM base AS runtime
ARG UID GID
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
# the deploy/ templates the entrypoint renders into RUN_DIR (/tmp/wsgistack),
# where the targets' CMD read them: a changed RUN_DIR needs the CMD changed too
# READY_PATH: the app's readiness path, which the healthchecks ask (a knob:
# wsgistack/settings.py); the proxies' images ask their own /readyz
ENV WSGISTACK_TEMPLATES= READY_PATH=/readyz
# the targets that install packages switch to root (USER 0) for it, and back
USER ${UID}:${GID}
# uWSGI (uwsgi.ini maps it to gracefully_kill_them_all), gunicorn (within
# graceful_timeout) and granian (within workers_kill_timeout) finish the
# requests in flight on SIGTERM; locust stops its users, writes its stats and
# applies its exit-code checks
STOPSIGNAL SIGTERM
# readiness: through the server to the app, not the server alone (/livez):
# the app's READY_PATH where no proxy is in front
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT$READY_PATH"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]

FROM runtime AS uwsgi
ARG UID GID APP_SOURCE
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends uwsgi-core uwsgi-plugin-python3 \
    && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
COPY --from=app-venv /opt/venv /opt/venv
# the entrypoint's warning when APP_MEMORY is too small
COPY docker/memory_rule.py /usr/local/bin/
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/uwsgi /srv/deploy/uwsgi
COPY --chown=app:app ${APP_SOURCE} /srv/${APP_SOURCE}
# UWSGI_SOCKET: TCP, so that nginx in another container reaches it. The worker
# shape, unless set: uWSGI's own, processes of one thread each (the entrypoint
# resolves it; wsgistack/settings.py says why)
ENV UWSGI_SOCKET=0.0.0.0:3031 WSGISTACK_TEMPLATES=/srv/deploy/uwsgi/uwsgi.ini
EXPOSE 3031
# the socket speaks the uwsgi protocol, so the check does too
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "uwsgi://$UWSGI_SOCKET$READY_PATH"]
CMD ["uwsgi", "--ini", "/tmp/wsgistack/uwsgi.ini"]

# no app and no venv: the renderer needs the standard library only;
# openssl makes the throwaway certificate when TLS=1 and none is mounted;
# media-types: Debian's /etc/mime.types, which the static files' types are
# rendered from (deploy/nginx/mime.types)
FROM runtime AS nginx
ARG UID GID APP_SOURCE
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx openssl media-types \
    && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
COPY --chown=app:app wsgistack /srv/wsgistack
# the whole folder: nginx.conf includes conf.d/, snippets/ and uwsgi_params
COPY --chown=app:app deploy/nginx /srv/deploy/nginx
# the app's static files, which nginx serves itself (STATIC_ROOT; by default
# the demo's app/static beside /srv/wsgistack): the app's source folder, and
# what its venv holds beside code (app-files), at the app images' paths
COPY --chown=app:app ${APP_SOURCE} /srv/${APP_SOURCE}
COPY --from=app-files /opt/venv /opt/venv
# UWSGI_SOCKET: the uwsgi target's service name in compose.yaml. nginx's limits
# count uWSGI's slots: the same worker shape as the uwsgi image, resolved alike
ENV PORT=8080 UWSGI_SOCKET=uwsgi-app:3031 WSGISTACK_TEMPLATES=/srv/deploy/nginx
EXPOSE 8080 8443
# nginx finishes the requests in flight on SIGQUIT; SIGTERM would cut them
STOPSIGNAL SIGQUIT
# readiness: nginx's /readyz, through uWSGI to the app (snippets/health.conf),
# answered whatever the Host header and SERVER_NAMES
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
# -e stderr: nginx opens its built-in error log before reading the config,
# which fails as non-root on a read-only root filesystem
# -p: the prefix that nginx.conf's relative includes start from
CMD ["nginx", "-e", "stderr", "-p", "/tmp/wsgistack/nginx", "-c", "nginx.conf"]

# Apache without mod_wsgi or Python: the apache and apache-freethreaded
# targets add the interpreter, the venv with mod_wsgi (httpd.conf's LoadModule
# finds it from VENV) and the source. apache2-bin: the server and its modules,
# without the apache2 package's perl, scripts and Debian site layout that a
# rendered httpd.conf does not use; openssl and media-types (/etc/mime.types,
# TypesConfig) as in nginx
FROM runtime AS apache-server
ARG UID GID
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apache2-bin openssl media-types \
    && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
ENV PORT=8081 WSGISTACK_TEMPLATES=/srv/deploy/apache-mod_wsgi
# 8443: HTTPS, with TLS=1
EXPOSE 8081 8443
# graceful-stop: Apache lets the requests in flight finish on SIGWINCH
STOPSIGNAL SIGWINCH
# readiness: Apache's /readyz, through the mod_wsgi daemons to the app
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:$PORT/readyz"]
# -d: the ServerRoot that httpd.conf's relative paths start from
CMD ["apache2", "-d", "/tmp/wsgistack/apache-mod_wsgi", "-f", "/tmp/wsgistack/apache-mod_wsgi/httpd.conf", "-DFOREGROUND"]

# libpython3.X: the shared Python library the venv's mod_wsgi links to
FROM apache-server AS apache
ARG UID GID APP_SOURCE
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "$(python3 -c 'import sys; print("libpython%d.%d" % sys.version_info[:2])')" \
    && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
COPY --from=mod-wsgi-venv /opt/venv /opt/venv
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/apache-mod_wsgi /srv/deploy/apache-mod_wsgi
# the app's source: Apache serves its static files itself, as nginx does
COPY --chown=app:app ${APP_SOURCE} /srv/${APP_SOURCE}

# MOD_WSGI_FREE_THREADING=1 renders WSGIFreeThreading On
# (deploy/apache-mod_wsgi/wsgi-daemons.conf): the threads of a daemon process
# run Python in parallel
FROM apache-server AS apache-freethreaded
COPY --from=python-build /opt/python /opt/python
COPY --from=mod-wsgi-ft-venv /opt/venv /opt/venv
RUN /opt/venv/bin/python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") or sys.exit("target apache-freethreaded: build it with PYTHON_BUILD=ft")'
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/apache-mod_wsgi /srv/deploy/apache-mod_wsgi
COPY --chown=app:app app /srv/app
ENV MOD_WSGI_FREE_THREADING=1

# gunicorn.conf.py reads the knobs (WSGI_APP included) from the environment,
# through wsgistack.settings; no proxy in front: the app answers the healthcheck
FROM runtime AS gunicorn
ARG APP_SOURCE
COPY --from=app-venv /opt/venv /opt/venv
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/gunicorn /srv/deploy/gunicorn
COPY --chown=app:app ${APP_SOURCE} /srv/${APP_SOURCE}
ENV PORT=8082 PATH=/opt/venv/bin:$PATH
EXPOSE 8082
CMD ["gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py"]

# locust reads its options from the environment too (LOCUST_HOST...)
FROM runtime AS locust
COPY --from=locust-venv /opt/venv /opt/venv
COPY --chown=app:app loadtests /srv/loadtests
ENV PATH=/opt/venv/bin:$PATH
# web UI, and the port workers connect to on the master
EXPOSE 8089 5557
# the master's web UI; compose.yaml checks workers by their connection to it
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:8089/"]
# the web UI on the container's interface (locust.conf keeps it on loopback natively)
CMD ["locust", "--config", "/srv/loadtests/locust.conf", "--web-host", "0.0.0.0"]

# granian alone, no proxy: deploy/granian/serve.py holds every option and
# reads the knobs from the environment (the freethreaded target runs the same)
FROM runtime AS granian
ARG APP_SOURCE
COPY --from=granian-venv /opt/venv /opt/venv
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/granian /srv/deploy/granian
COPY --chown=app:app ${APP_SOURCE} /srv/${APP_SOURCE}
ENV PORT=8085 PATH=/opt/venv/bin:$PATH
EXPOSE 8085
CMD ["python", "/srv/deploy/granian/serve.py"]

# Prometheus from Debian's package (2.53 on trixie, promtool included), its
# config and rules rendered from the knobs into RUN_DIR by the entrypoint;
# its data in /prometheus, a volume (compose.yaml), owned by the image's user
FROM runtime AS prometheus
ARG UID GID
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o "${UID}" -g "${GID}" /prometheus
USER ${UID}:${GID}
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/prometheus /srv/deploy/prometheus
ENV WSGISTACK_TEMPLATES=/srv/deploy/prometheus
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck.py", "http://127.0.0.1:9090/-/ready"]
# --web.listen-address: the container's interface (compose publishes it on
# the host's 127.0.0.1 only); --web.enable-lifecycle stays off (no reload or
# quit over HTTP)
CMD ["prometheus", "--config.file=/tmp/wsgistack/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]

# the proxies' exporters from Debian's packages: prometheus-nginx-exporter
# (nginx's stub_status, on 9113) and prometheus-apache-exporter (mod_status,
# on 9117); compose.yaml runs one per stack with its scrape URI
FROM runtime AS exporters
ARG UID GID
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        prometheus-nginx-exporter prometheus-apache-exporter \
    && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
EXPOSE 9113 9117

# the app on the built interpreter, served by granian (the default command) or
# gunicorn gthread (compose.yaml's gunicorn-ft service); the freethreaded and
# gil targets are this stage, checked. No PYTHON_GIL=0 on purpose: CPython
# turns the GIL back on (with a warning) when it imports an extension module
# not declared free-threading safe, and the test that /info's gil_enabled is
# false (tests/integration/test_freethreaded.py) must see that.
FROM runtime AS python-build-server
COPY --from=python-build /opt/python /opt/python
COPY --from=python-build-venv /opt/venv /opt/venv
COPY --chown=app:app wsgistack /srv/wsgistack
COPY --chown=app:app deploy/gunicorn /srv/deploy/gunicorn
COPY --chown=app:app deploy/granian /srv/deploy/granian
COPY --chown=app:app app /srv/app
ENV PORT=8085 PATH=/opt/venv/bin:$PATH
EXPOSE 8085
CMD ["python", "/srv/deploy/granian/serve.py"]

# PYTHON_BUILD=ft, the default: threads of one process run Python in parallel
FROM python-build-server AS freethreaded
RUN python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") or sys.exit("target freethreaded: build it with PYTHON_BUILD=ft")'

# the control (PYTHON_BUILD=gil): the same source, flags, servers and pins, with the GIL
FROM python-build-server AS gil
RUN python -c 'import sysconfig, sys; sysconfig.get_config_var("Py_GIL_DISABLED") and sys.exit("target gil: build it with PYTHON_BUILD=gil")'
