#!/bin/sh
# `make debian-server`: a fresh Debian trixie server in a container, systemd
# as PID 1, with both stacks installed by deploy/debian/install.sh, as
# docs/debian-server.md tells a person to:
#
#   nginx + uWSGI     on 127.0.0.1:8096 (port 80 inside)
#   Apache + mod_wsgi on 127.0.0.1:8097 (port 8081 inside: one machine, two stacks)
#
#   docker exec -it wsgistack-debian-server bash     # then systemctl, journalctl
#   docker rm -f wsgistack-debian-server
#
# The knobs set in the environment reach install.sh (so the tests run it with
# their small timeouts); APP_ENV_FILE, if set, becomes /etc/wsgistack/app.env
# (the app's own settings). systemd in a container needs its own cgroup
# namespace, CAP_SYS_ADMIN and a tmpfs /run (docs/debian-server.md).
set -eu
cd "$(dirname "$0")/../.."
name=wsgistack-debian-server
image="$name:${IMAGE_TAG:-latest}"
checkout=/root/wsgistack

docker build --quiet --tag "$image" -f docker/debian-server/Dockerfile docker/debian-server >/dev/null
docker rm --force "$name" >/dev/null 2>&1 || true
docker run --detach --name "$name" --hostname debian-server \
    --cgroupns=private --cap-add SYS_ADMIN --tmpfs /run --tmpfs /run/lock \
    --publish 127.0.0.1:8096:80 --publish 127.0.0.1:8097:8081 "$image" >/dev/null
# the boot: systemd answers "running" (or "degraded") once it is done
state=""
for _ in $(seq 120); do
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
echo "debian-server: booted ($state)"

# this checkout, as `git clone` would give it (untracked files included, ignored ones not)
docker exec "$name" mkdir -p "$checkout"
git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- --create | docker exec -i "$name" tar -C "$checkout" --extract
# behind a TLS-intercepting proxy pip needs its CA, as the image builds do
# (docker/pip-install.sh); elsewhere this is the usual bundle
pip_cert=""
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    docker cp /etc/ssl/certs/ca-certificates.crt "$name:/root/host-ca.crt"
    pip_cert="-e PIP_CERT=/root/host-ca.crt"
fi
if [ -n "${APP_ENV_FILE:-}" ]; then
    docker exec "$name" mkdir -p /etc/wsgistack
    docker cp "$APP_ENV_FILE" "$name:/etc/wsgistack/app.env"
fi

# the knobs of this environment, by name (docker exec -e NAME passes a set one)
knobs="$(PYTHONPATH=. /usr/bin/python3 -c 'from wsgistack.settings import KNOBS; print(" ".join(k.env for k in KNOBS if k.env not in ("PORT", "BIND_ADDRESS")))')"
install() {
    port="$1"; shift
    # shellcheck disable=SC2046,SC2086 # one -e per knob
    docker exec $(for k in $knobs APP_REQUIREMENTS APP_SOURCE; do printf -- '-e %s ' "$k"; done) \
        $pip_cert -e PORT="$port" -w "$checkout" "$name" deploy/debian/install.sh "$@"
}
# Apache first: Debian's apache2 starts on port 80 when installed, which
# nginx needs here; its install moves it to 8081
install 8081 apache
install 80 uwsgi
echo "debian-server: nginx + uWSGI on http://127.0.0.1:8096, Apache + mod_wsgi on http://127.0.0.1:8097"
