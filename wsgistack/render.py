"""Render the server configs in ``deploy/`` from the settings.

The files in ``deploy/`` are the configs themselves; the only thing that is not
literal server syntax is a placeholder written ``{{ NAME }}`` (upper case), which
is replaced by the knob of that name (``wsgistack.settings``) or by a value the
folder's own module derives from the knobs (``FOLDERS``, ``wsgistack.configs``).
An unknown placeholder is an error, never an empty string. nginx's own
``$variables`` and Apache's ``${VARS}`` are left alone.

The same code runs natively (``wsgistack up``) and in the container
entrypoints, with the standard library only::

    python3 -m wsgistack.render deploy/nginx/nginx.conf --out /tmp/run

A knob left unset or empty whose default differs by app server (uWSGI's worker
shape, wsgistack/settings.py) takes the default of the server the folder
configures (``SERVERS``), so a config rendered with no knobs set is the one
`wsgistack up` and the images run.

``--layout debian`` writes every stack's files as a Debian server under
systemd takes them instead (``wsgistack.debian``, docs/debian-server.md)::

    python3 -m wsgistack.render --layout debian --out /tmp/server
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from wsgistack import cpus, debian, tls
from wsgistack.configs import apache_mod_wsgi, nginx, prometheus, proxy, uwsgi
from wsgistack.settings import Settings, SettingsError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}")

# each config folder of deploy/ and what its templates fill in beyond the knobs
FOLDERS: dict[str, tuple[Callable[[Settings], dict[str, str]], ...]] = {
    "nginx": (proxy.values, nginx.values),
    "apache-mod_wsgi": (proxy.values, apache_mod_wsgi.values),
    "uwsgi": (uwsgi.values,),
    "prometheus": (prometheus.values,),
    # the Debian layout's own files: systemd units and drop-ins (wsgistack.debian)
    "debian": (debian.values,),
}
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
LAYOUTS = ("files", "debian")


# the app server each folder's config is for, whose own knob defaults apply
# (wsgistack/settings.py): nginx's limits count the slots of uWSGI behind it
SERVERS: dict[str, str] = {"nginx": "uwsgi", "uwsgi": "uwsgi", "apache-mod_wsgi": "mod_wsgi"}
# the knobs that size a server's workers, as --shape prints them
SHAPE = ("WSGI_PROCESSES", "WSGI_THREADS", "NGINX_WORKERS")


class RenderError(ValueError):
    """A template names a setting that does not exist."""


def render_text(text: str, values: Mapping[str, str], source: str = "<template>") -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            raise RenderError(f"{source}:{line}: unknown placeholder {{{{ {name} }}}}")
        return values[name]

    return PLACEHOLDER.sub(substitute, text)


def folder_of(template: Path) -> str:
    """The config folder of deploy/ a template is, or is in (FOLDERS); "" if none."""
    return next((part for part in reversed(template.parts) if part in FOLDERS), "")


def server_of(templates: list[Path]) -> str:
    """The app server these templates configure (SERVERS); "" for none. One
    rendering configures one stack: templates of two servers are an error."""
    servers = {SERVERS[folder] for t in templates if (folder := folder_of(t)) in SERVERS}
    if len(servers) > 1:
        raise RenderError(f"templates of more than one app server: {', '.join(sorted(servers))}")
    return servers.pop() if servers else ""


def template_values(settings: Settings, folder: str) -> dict[str, str]:
    """The knobs, and what the folder's modules derive from them."""
    values = settings.as_env()
    for derive in FOLDERS.get(folder, ()):
        try:
            values.update(derive(settings))
        except OSError as exc:  # a file a derived value is read from
            raise RenderError(f"{folder}: {exc}") from None
    return values


def render_file(template: Path, out_dir: Path, settings: Settings) -> Path:
    """Render ``template`` into ``out_dir`` under the same name; a folder, file by file."""
    return _render(template, out_dir, template_values(settings, folder_of(template)))


def _render(template: Path, out_dir: Path, values: Mapping[str, str]) -> Path:
    target = out_dir / template.name
    if template.is_dir():
        for child in sorted(template.iterdir()):
            _render(child, target, values)
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(render_text(template.read_text(), values, str(template)))
    return target


def names_setting(template: Path, name: str) -> bool:
    """Whether ``template`` (a file, or any file in a folder) has ``{{ name }}``."""
    files = sorted(template.rglob("*")) if template.is_dir() else [template]
    return any(
        match.group(1) == name
        for path in files
        if path.is_file()
        for match in PLACEHOLDER.finditer(path.read_text(errors="replace"))
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments: ``python3 -m wsgistack.render`` and ``wsgistack render``."""
    parser.add_argument(
        "templates", nargs="*", type=Path, help="config files or folders from deploy/"
    )
    parser.add_argument("--out", type=Path, help="folder to write them to")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="files",
        help="files: each template under its own name (default); debian: every stack's "
        "files at their paths on a Debian server under systemd (docs/debian-server.md)",
    )
    parser.add_argument(
        "--shape",
        action="store_true",
        help="print, instead, the worker counts these templates are rendered with, "
        "as shell assignments (the images' entrypoint exports them)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m wsgistack.render",
        description="Fill the {{ PLACEHOLDERS }} of server configs from environment variables.",
    )
    add_arguments(parser)
    return run(parser, parser.parse_args(argv))


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.shape:
        if args.layout != "files":
            parser.error("--shape prints the shape of the files layout's templates")
    elif args.out is None:
        parser.error("--out is required (or --shape)")
    elif (args.layout == "files") != bool(args.templates):
        parser.error("name the templates to render, or --layout debian (which renders them all)")
    try:
        if args.layout == "debian":
            settings = debian.settings_for_debian()
            for path in debian.render_debian(DEPLOY_DIR, args.out, settings, render_file):
                print(path)
            return 0
        settings = Settings.from_env(server=server_of(args.templates))
        if args.shape:
            # what the CPU count (the default of some) comes from, for the log
            print(f"wsgistack.cpus: {cpus.detect().describe()}", file=sys.stderr)
            print(" ".join(f"{name}={getattr(settings, name)}" for name in SHAPE))
            return 0
        for template in args.templates:
            print(render_file(template, args.out, settings))
        # the files the configs name: a proxy's config with TLS=1 and no
        # certificate gets one (an app server's config names none)
        if any(names_setting(template, "TLS_CERT") for template in args.templates):
            tls.ensure_certificate(settings)
    except (SettingsError, RenderError, OSError, subprocess.CalledProcessError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
