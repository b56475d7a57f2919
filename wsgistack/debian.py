"""The Debian layout: deploy/'s configs as a Debian server under systemd wants them.

    python3 -m wsgistack.render --layout debian --out DIR

writes, under DIR, every file at the absolute path it takes on the server
(DIR/etc/nginx/sites-available/wsgistack is /etc/nginx/sites-available/wsgistack),
which deploy/debian/install.sh copies into place (docs/debian-server.md):

- nginx: Debian's nginx.conf is left as it is. Our nginx.conf's ``http`` block
  becomes the site ``sites-available/wsgistack`` (a site file is included
  inside Debian's ``http`` block), less what Debian's block sets already; the
  rest of deploy/nginx (conf.d/, snippets/, tls.d/, uwsgi_params) goes to
  /etc/nginx/wsgistack/, the includes pointing there.
- uWSGI: /etc/wsgistack/uwsgi.ini (deploy/uwsgi) plus systemd.ini (the
  socket's group and mode), run by a unit of its own, wsgistack-uwsgi.service.
- Apache: our httpd.conf's server-wide settings become ``conf-available/
  wsgistack.conf`` (a2enconf), its virtual hosts ``sites-available/
  wsgistack.conf`` (a2ensite), its Listen lines Debian's ports.conf, its
  LoadModule lines the list a2enmod takes (mod_wsgi 6 from the venv through a
  .load file of its own); the rest of deploy/apache-mod_wsgi goes to
  /etc/apache2/wsgistack/.
- systemd: drop-ins for Debian's nginx.service and apache2.service, and the
  uWSGI unit, from deploy/debian/systemd/.

The configs are deploy/'s own, rendered as for any other layout: only the
differences a Debian server needs are made here, each named in DIFFERENCES
below, so a fix to deploy/ reaches this layout too. Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from wsgistack.settings import UWSGI_SHAPE, Settings

# where the stacks' files go on the server
NGINX_DIR = "/etc/nginx/wsgistack"
APACHE_DIR = "/etc/apache2/wsgistack"
UWSGI_DIR = "/etc/wsgistack"
# the app's code and its venv (deploy/debian/install.sh puts them there)
APP_HOME = "/srv/wsgistack"
# sockets, pids and fifos: the uWSGI unit's RuntimeDirectory=, and Debian's
# own for Apache (APACHE_RUN_DIR in /etc/apache2/envvars; apache2.service's
# RuntimeDirectory= in our drop-in), both on /run, a tmpfs made anew at boot
UWSGI_RUN_DIR = "/run/wsgistack"
APACHE_RUN_DIR = "/run/apache2"
# the journal: systemd-journald's syslog socket, for the servers that run as
# daemons under Debian's units (their stdout is no file they can reopen)
SYSLOG = "unix:/dev/log"
JOURNAL_CAT = "/usr/bin/systemd-cat --identifier=apache2"

# the knob defaults of a Debian server, where the environment sets none
DEBIAN_DEFAULTS = {
    "RUN_DIR": UWSGI_RUN_DIR,
    "PORT": "80",
    "BIND_ADDRESS": "0.0.0.0",
    "VENV": f"{APP_HOME}/venv",
    "STATIC_ROOT": f"{APP_HOME}/app/static",
    # no metrics listeners: the layout ships no units for the exporters and
    # Prometheus yet, and its ports would listen on BIND_ADDRESS
    # (docs/debian-server.md)
    "METRICS": "0",
}

# what Debian's nginx.conf sets in its own http block (bookworm's and trixie's):
# the same directive in our site would be refused as a duplicate, or doubled
NGINX_DEBIAN_HTTP = {
    "default_type",
    "types",
    "server_tokens",
    "gzip",
    "sendfile",
    "tcp_nopush",
    "types_hash_max_size",
    "ssl_protocols",
    "ssl_prefer_server_ciphers",
}
# Debian's Apache sets these from /etc/apache2/envvars and mods-enabled/mime.conf
APACHE_DEBIAN_OWN = {"PidFile", "DefaultRuntimeDir", "TypesConfig"}

# the differences, in words: docs/debian-server.md lists them from here
DIFFERENCES = {
    "nginx": [
        "`daemon`, `pid`, `worker_*`, `error_log` and `events` are Debian's "
        "(its nginx.conf's main context: the unit passes `daemon on`, "
        "its PIDFile is /run/nginx.pid)",
        f"in the http block, what Debian's sets already: {', '.join(sorted(NGINX_DEBIAN_HTTP))}",
        "the `*_temp_path` folders are Debian's (/var/lib/nginx)",
        "`access_log` and the sites' `error_log` go to the journal (syslog to /dev/log): "
        "under a unit, stdout is the journal's socket, which /dev/stdout cannot reopen; "
        "unbuffered, as nginx requires for syslog (a message a line)",
        f"the includes point at {NGINX_DIR}/",
    ],
    "uwsgi": [
        "the socket is 0660 and owned by the app's user and group, which www-data is a member of",
        f"its run folder is the unit's RuntimeDirectory= ({UWSGI_RUN_DIR})",
    ],
    "apache-mod_wsgi": [
        "`LoadModule` lines become the modules a2enmod enables; mod_wsgi 6 from the venv "
        "gets a .load file of its own (mods-available/wsgistack-wsgi.load)",
        f"`{'`, `'.join(sorted(APACHE_DEBIAN_OWN))}` are Debian's (envvars, mime.conf)",
        "`Listen` goes to Debian's ports.conf",
        "`ErrorLog` goes to syslog and `CustomLog` through systemd-cat: both to the journal",
        f"the virtual hosts are the site (sites-available/wsgistack.conf); the rest of "
        f"httpd.conf the conf (conf-available/wsgistack.conf); the includes point at {APACHE_DIR}/",
        "the mod_wsgi daemons run as the app's own user (`user=`, `group=`)",
    ],
}


def values(s: Settings) -> dict[str, str]:
    """What deploy/debian's templates fill in beyond the knobs."""
    # the stop grace period of the timeout ladder (wsgistack/settings.py)
    return {"STOP_GRACE_PERIOD": str(s.STOP_GRACE_PERIOD)}


def settings_for_debian(env: Mapping[str, str] | None = None, **overrides) -> Settings:
    """The knobs from ``env`` (os.environ when None), with a Debian server's
    defaults for those it does not set."""
    env = os.environ if env is None else env
    return Settings.from_env({**DEBIAN_DEFAULTS, **env}, **overrides)


# --- nginx's syntax: statements at one level of a block ----------------------


@dataclass
class Statement:
    """One statement of a config at one level: the comment and blank lines
    before it (``lead``) and the statement itself, a block included."""

    lead: str
    text: str

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ""


def _nginx_statements(text: str) -> tuple[list[Statement], str]:
    """The statements of one level of an nginx config, and the text after the last."""
    statements, start, i, depth = [], 0, 0, 0
    body_start = None  # where the current statement's words begin
    while i < len(text):
        char = text[i]
        if char == "#":
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if char in "'\"":
            end = text.find(char, i + 1)
            while end > 0 and text[end - 1] == "\\":
                end = text.find(char, end + 1)
            i = len(text) if end < 0 else end + 1
            continue
        if not char.isspace() and body_start is None and depth == 0:
            body_start = i
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if depth == 0 and char in ";}" and body_start is not None:
            statements.append(Statement(text[start:body_start], text[body_start : i + 1]))
            start, body_start = i + 1, None
        i += 1
    return statements, text[start:]


def nginx_block_body(text: str, name: str) -> str:
    """The text inside the top-level block ``name { ... }``."""
    for statement in _nginx_statements(text)[0]:
        if statement.name == name and statement.text.endswith("}"):
            return statement.text[statement.text.index("{") + 1 : -1]
    raise ValueError(f"no top-level {name} block")


def _dedent(text: str, spaces: int = 4) -> str:
    prefix = " " * spaces
    return "\n".join(
        line[spaces:] if line.startswith(prefix) else line.lstrip(" ") for line in text.split("\n")
    )


NGINX_INCLUDE = re.compile(r"^(\s*include\s+)(?![/$])([^\s;]+)", re.M)
NGINX_LOG_TO_STDOUT = re.compile(r"\baccess_log\s+/dev/stdout\b")
NGINX_LOG_BUFFER = re.compile(r"\s+(?:buffer|flush)=[^\s;]+")


def nginx_absolute_includes(text: str) -> str:
    """Relative includes (from the rendered folder, nginx's prefix) pointing at NGINX_DIR."""
    return NGINX_INCLUDE.sub(lambda m: f"{m[1]}{NGINX_DIR}/{m[2]}", text)


def nginx_site(nginx_conf: str) -> str:
    """Debian's site file from our rendered nginx.conf: its http block, less
    what Debian's nginx.conf sets, logging to the journal."""
    statements, tail = _nginx_statements(nginx_block_body(nginx_conf, "http"))
    out = []
    for statement in statements:
        name = statement.name
        if name in NGINX_DEBIAN_HTTP or (name == "include" and "mime.types" in statement.text):
            out.append(f"\n# {name}: Debian's nginx.conf sets it in its own http block\n")
            continue
        if name.endswith("_temp_path"):
            out.append(f"\n# {name}: Debian's (/var/lib/nginx)\n")
            continue
        text = statement.text
        if name == "access_log":
            text = NGINX_LOG_TO_STDOUT.sub(f"access_log syslog:server={SYSLOG},nohostname", text)
            # a syslog message a line: nginx refuses buffer= and flush= there
            text = NGINX_LOG_BUFFER.sub("", text)
            text += (
                "\n# the errors of these sites to the journal too (Debian's nginx.conf keeps"
                " its\n# own error.log for the rest). default: the main error_log\n"
                f"error_log syslog:server={SYSLOG},nohostname warn;"
            )
        out.append(statement.lead + text)
    body = _dedent("".join(out) + tail).strip("\n")
    header = (
        "# The wsgistack site, for Debian's nginx: included inside the http block of\n"
        "# Debian's /etc/nginx/nginx.conf (sites-enabled/*), which is left as it is.\n"
        "# Rendered from deploy/nginx/nginx.conf's http block by `wsgistack render\n"
        "# --layout debian` (wsgistack/debian.py says what differs and why).\n\n"
    )
    return header + nginx_absolute_includes(body) + "\n"


# --- Apache's syntax: one directive a logical line ---------------------------


def _apache_statements(text: str) -> tuple[list[Statement], str]:
    """The top-level directives and sections of an Apache config (continuation
    lines joined into their directive), and the text after the last."""
    statements, lead, current, depth = [], [], [], 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            lead.append(line)
            continue
        current.append(line)
        if stripped.endswith("\\"):
            continue
        if stripped.startswith("</"):
            depth -= 1
        elif stripped.startswith("<"):
            depth += 1
        if depth == 0:
            statements.append(Statement("".join(lead), "".join(current)))
            lead, current = [], []
    return statements, "".join(lead + current)


APACHE_MODULE_FILE = re.compile(r"/mod_(\w+)\.so$")


@dataclass
class ApacheParts:
    conf: str  # conf-available/wsgistack.conf
    site: str  # sites-available/wsgistack.conf
    ports: str  # ports.conf
    modules: list[str]  # for a2enmod
    wsgi_load: str  # mods-available/wsgistack-wsgi.load


def _apache_absolute(path: str) -> str:
    return path if path.startswith(("/", "$")) else f"{APACHE_DIR}/{path}"


APACHE_INCLUDE = re.compile(r"^(\s*Include(?:Optional)?\s+)(?![/$])(\S+)", re.M)


def apache_absolute_includes(text: str) -> str:
    """Relative includes (from ServerRoot, the rendered folder) pointing at APACHE_DIR."""
    return APACHE_INCLUDE.sub(lambda m: f"{m[1]}{APACHE_DIR}/{m[2]}", text)


def apache_parts(httpd_conf: str) -> ApacheParts:
    """Debian's files from our rendered httpd.conf."""
    statements, tail = _apache_statements(httpd_conf)
    conf, site, listens, modules, wsgi_load = [], [], [], [], ""
    for statement in statements:
        words, text = statement.words, statement.text
        name = statement.name
        if name == "LoadModule":
            module = APACHE_MODULE_FILE.search(words[2])
            if words[1] == "wsgi_module":
                wsgi_load = text
                modules.append("wsgistack-wsgi")
            elif module:
                modules.append(module[1])
            continue
        if name in APACHE_DEBIAN_OWN:
            conf.append(f"\n# {name}: Debian's (/etc/apache2/envvars, mods-enabled/)\n")
            continue
        if name == "Listen":
            listens.append(text)
            conf.append("\n# Listen: in Debian's ports.conf\n")
            continue
        if name == "Define" and words[1] == "CONF_DIR":
            text = f"Define CONF_DIR {APACHE_DIR}\n"
        elif name == "ErrorLog":
            text = "ErrorLog syslog:daemon\n"
        elif name == "CustomLog" and words[1] == "/dev/stdout":
            text = text.replace("/dev/stdout", f'"|{JOURNAL_CAT}"', 1)
        elif name in ("Include", "IncludeOptional"):
            path = words[1]
            text = text.replace(path, _apache_absolute(path), 1)
            if path.startswith(("conf.d/", "tls.d/")):
                site.append(statement.lead + text)
                conf.append("\n# the virtual hosts: sites-available/wsgistack.conf\n")
                continue
        conf.append(statement.lead + text)
    header = (
        "# Rendered from deploy/apache-mod_wsgi/httpd.conf by `wsgistack render --layout\n"
        "# debian` for Debian's Apache (wsgistack/debian.py says what differs and why).\n"
    )
    return ApacheParts(
        conf=header + "# The server-wide settings (a2enconf wsgistack): included after Debian's\n"
        "# apache2.conf and mods-enabled/, so the values here win.\n" + "".join(conf) + tail,
        site=header + "# The virtual hosts (a2ensite wsgistack); the server-wide settings are\n"
        "# conf-available/wsgistack.conf.\n" + "".join(site),
        ports="# Debian's file for Listen lines, included by apache2.conf: the wsgistack\n"
        "# site's, in place of Debian's 80 and 443 (the HTTPS one, with TLS=1, is in\n"
        f"# {APACHE_DIR}/tls.d/app.conf).\n" + "".join(listens),
        modules=modules,
        wsgi_load="# mod_wsgi 6, built into the app's venv (deploy/debian/install.sh), in place\n"
        "# of Debian's libapache2-mod-wsgi-py3 (docs/apache-mod_wsgi.md says why)\n" + wsgi_load,
    )


def mod_wsgi_as_user(wsgi_daemons: str, user: str) -> str:
    """The WSGIDaemonProcess directive, its daemons run as ``user``."""
    statements, tail = _apache_statements(wsgi_daemons)
    out = []
    for statement in statements:
        text = statement.text
        if statement.name == "WSGIDaemonProcess":
            text = text.rstrip("\n") + f" \\\n    user={user} \\\n    group={user}\n"
        out.append(statement.lead + text)
    return "".join(out) + tail


# --- the layout ----------------------------------------------------------------


@dataclass
class Layout:
    """Where a rendered deploy/ folder and the layout's own templates land."""

    out: Path

    def path(self, server_path: str) -> Path:
        target = self.out / server_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write(self, server_path: str, text: str) -> Path:
        target = self.path(server_path)
        target.write_text(text)
        return target


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in sorted(folder.rglob("*")) if path.is_file())


def render_debian(
    deploy: Path,
    out: Path,
    settings: Settings,
    render_file: Callable[[Path, Path, Settings], Path],
) -> list[Path]:
    """Every file of the Debian layout under ``out``; ``render_file`` renders
    a template or folder of deploy/ as any layout does (wsgistack.render)."""
    layout = Layout(out)
    written: list[Path] = []
    scratch = out / ".rendered"
    shutil.rmtree(scratch, ignore_errors=True)
    # uWSGI's own worker shape where the environment sets none, as `wsgistack
    # up` and the images resolve it (wsgistack/settings.py: UWSGI_SHAPE)
    uwsgi_env = {
        k: v for k, v in settings.as_env().items() if k not in UWSGI_SHAPE or os.environ.get(k)
    }
    uwsgi_settings = Settings.from_env(
        uwsgi_env,
        server="uwsgi",
        RUN_DIR=UWSGI_RUN_DIR,
        UWSGI_SOCKET=f"{UWSGI_RUN_DIR}/uwsgi.sock",
    )
    apache_settings = Settings.from_env(settings.as_env(), RUN_DIR=APACHE_RUN_DIR)

    # nginx: the site, and the rest of the folder beside it
    nginx = render_file(deploy / "nginx", scratch, uwsgi_settings)
    written.append(
        layout.write(
            "/etc/nginx/sites-available/wsgistack", nginx_site((nginx / "nginx.conf").read_text())
        )
    )
    for path in _files(nginx):
        if path.name != "nginx.conf":
            relative = path.relative_to(nginx).as_posix()
            text = (
                nginx_absolute_includes(path.read_text())
                if path.suffix != ".pem"
                else path.read_text()
            )
            written.append(layout.write(f"{NGINX_DIR}/{relative}", text))

    # uWSGI
    ini = render_file(deploy / "uwsgi" / "uwsgi.ini", scratch, uwsgi_settings)
    written.append(layout.write(f"{UWSGI_DIR}/uwsgi.ini", ini.read_text()))

    # Apache
    apache = render_file(deploy / "apache-mod_wsgi", scratch, apache_settings)
    parts = apache_parts((apache / "httpd.conf").read_text())
    written += [
        layout.write("/etc/apache2/conf-available/wsgistack.conf", parts.conf),
        layout.write("/etc/apache2/sites-available/wsgistack.conf", parts.site),
        layout.write("/etc/apache2/ports.conf", parts.ports),
        layout.write("/etc/apache2/mods-available/wsgistack-wsgi.load", parts.wsgi_load),
        layout.write(f"{APACHE_DIR}/modules", "\n".join(parts.modules) + "\n"),
    ]
    for path in _files(apache):
        relative = path.relative_to(apache).as_posix()
        if relative == "httpd.conf":
            continue
        text = path.read_text()
        if relative == "wsgi-daemons.conf":
            text = mod_wsgi_as_user(text, settings.APP_USER)
        elif path.suffix == ".conf":
            # a virtual host's own log (status.d's) to the journal as httpd.conf's
            text = apache_absolute_includes(text).replace(
                "CustomLog /dev/stdout", f'CustomLog "|{JOURNAL_CAT}"'
            )
        written.append(layout.write(f"{APACHE_DIR}/{relative}", text))

    # the layout's own templates: deploy/debian/etc/... land at /etc/...
    debian = deploy / "debian"
    for template in _files(debian / "etc"):
        server_path = "/" + template.relative_to(debian).as_posix()
        rendered = render_file(template, scratch, settings)
        written.append(layout.write(server_path, rendered.read_text()))
    shutil.rmtree(scratch)
    return written
