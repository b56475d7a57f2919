#!/bin/sh
# Install a wsgistack stack on a Debian (or Ubuntu) server, under systemd:
# what docs/debian-server.md tells a person to do, as one script. Run it as
# root from a checkout of this repository:
#
#     sudo deploy/debian/install.sh uwsgi      # nginx + uWSGI
#     sudo deploy/debian/install.sh apache     # Apache + mod_wsgi
#
# The knobs come from the environment (docs/configuration.md), as everywhere:
#     sudo PORT=80 SERVER_NAMES=example.org deploy/debian/install.sh uwsgi
# and so does the app (docs/your-app.md); the defaults install this project's:
#     APP_REQUIREMENTS  pip requirements of the app, its pins (requirements.txt)
#     APP_SOURCE        folders of its code, copied beside the venv (app wsgistack)
#
# Safe to run again: a second run with other knobs renders and installs the
# configs anew and restarts the stack.
set -eu

stack="${1:?usage: install.sh uwsgi|apache}"
case "$stack" in
    uwsgi) packages="nginx uwsgi-core uwsgi-plugin-python3" ;;
    apache) packages="apache2 apache2-dev python3-dev gcc" ;;
    *) echo "install.sh: unknown stack $stack (uwsgi or apache)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
APP_USER="${APP_USER:-wsgistack}"
APP_HOME=/srv/wsgistack
VENV="${VENV:-$APP_HOME/venv}"
APP_REQUIREMENTS="${APP_REQUIREMENTS:-requirements.txt}"
APP_SOURCE="${APP_SOURCE:-app wsgistack}"
export APP_USER VENV

# 1. Debian's servers, and Debian's python3 for the venv: uWSGI's python3
#    plugin and mod_wsgi embed that interpreter
apt-get update -qq
# word splitting is the point: one argument per package
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $packages python3 python3-venv procps >/dev/null

# 2. the app's own account (a system account: no login, no home of its own);
#    www-data, the proxy's user, joins its group, which owns the uWSGI socket
id -u "$APP_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir "$APP_HOME" --no-create-home \
        --shell /usr/sbin/nologin "$APP_USER"
usermod --append --groups "$APP_USER" www-data

# 3. the venv with the app's pinned requirements, and the app's code beside it
#    (owned by root: the app reads its code, it does not write it). The .pth
#    file puts APP_HOME on the venv's path, so `import app` finds APP_HOME/app
#    (the demo app uses wsgistack's CPU count: it comes along).
mkdir -p "$APP_HOME"
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r "$APP_REQUIREMENTS"
if [ "$stack" = apache ]; then
    # mod_wsgi 6, compiled against Debian's Apache and python3 (about 20 s)
    "$VENV/bin/pip" install -q -r requirements-mod_wsgi.txt
fi
for folder in $APP_SOURCE; do
    rm -rf "${APP_HOME:?}/$(basename "$folder")"
    cp -r "$folder" "$APP_HOME/"
done
echo "$APP_HOME" > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-app.pth"

# the app's own settings (FLASK_SECRET_KEY=... and the like), one per line:
# both units read this file (EnvironmentFile=); root's only
mkdir -p /etc/wsgistack
[ -e /etc/wsgistack/app.env ] || install -m 600 /dev/null /etc/wsgistack/app.env

# 4. the configs, rendered from the knobs into Debian's layout
rendered="$(mktemp -d)"
/usr/bin/python3 -m wsgistack.render --layout debian --out "$rendered" >/dev/null
etc="$rendered/etc"

# 5. the stack's files in place, enabled the Debian way, started by systemd
if [ "$stack" = uwsgi ]; then
    rm -rf /etc/nginx/wsgistack
    cp -r "$etc/nginx/wsgistack" /etc/nginx/
    cp "$etc/nginx/sites-available/wsgistack" /etc/nginx/sites-available/
    ln -sf ../sites-available/wsgistack /etc/nginx/sites-enabled/wsgistack
    # Debian's default site also listens on port 80 as the default server
    rm -f /etc/nginx/sites-enabled/default
    cp "$etc/wsgistack/uwsgi.ini" "$etc/wsgistack/systemd.ini" /etc/wsgistack/
    cp "$etc/systemd/system/wsgistack-uwsgi.service" /etc/systemd/system/
    mkdir -p /etc/systemd/system/nginx.service.d
    cp "$etc/systemd/system/nginx.service.d/wsgistack.conf" /etc/systemd/system/nginx.service.d/
    systemctl daemon-reload
    systemctl enable --quiet wsgistack-uwsgi nginx
    systemctl restart wsgistack-uwsgi nginx
else
    rm -rf /etc/apache2/wsgistack
    cp -r "$etc/apache2/wsgistack" /etc/apache2/
    cp "$etc/apache2/conf-available/wsgistack.conf" /etc/apache2/conf-available/
    cp "$etc/apache2/sites-available/wsgistack.conf" /etc/apache2/sites-available/
    cp "$etc/apache2/mods-available/wsgistack-wsgi.load" /etc/apache2/mods-available/
    cp "$etc/apache2/ports.conf" /etc/apache2/ports.conf
    # the modules httpd.conf loads; Debian's own mod_wsgi, if installed, would
    # be a second wsgi_module
    a2dismod -q wsgi 2>/dev/null || true
    xargs a2enmod -q < /etc/apache2/wsgistack/modules >/dev/null
    a2enconf -q wsgistack
    # Debian's default site also listens on port 80; its access log for
    # virtual hosts without one would log every request a second time
    a2dissite -q 000-default || true
    a2disconf -q other-vhosts-access-log || true
    a2ensite -q wsgistack
    mkdir -p /etc/systemd/system/apache2.service.d
    cp "$etc/systemd/system/apache2.service.d/wsgistack.conf" /etc/systemd/system/apache2.service.d/
    apache2ctl configtest
    systemctl daemon-reload
    systemctl enable --quiet apache2
    systemctl restart apache2
fi
rm -rf "$rendered"
echo "install.sh: $stack is running; journalctl -u $([ "$stack" = uwsgi ] && echo 'wsgistack-uwsgi -u nginx' || echo apache2) shows its log"
