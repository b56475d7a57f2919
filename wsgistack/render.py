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
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from wsgistack import tls
from wsgistack.configs import apache_mod_wsgi, nginx, proxy, uwsgi
from wsgistack.settings import Settings, SettingsError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}")

# each config folder of deploy/ and what its templates fill in beyond the knobs
FOLDERS: dict[str, tuple[Callable[[Settings], dict[str, str]], ...]] = {
    "nginx": (proxy.values, nginx.values),
    "apache-mod_wsgi": (proxy.values, apache_mod_wsgi.values),
    "uwsgi": (uwsgi.values,),
}


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


def template_values(settings: Settings, folder: str) -> dict[str, str]:
    """The knobs, and what the folder's modules derive from them."""
    values = settings.as_env()
    for derive in FOLDERS.get(folder, ()):
        values.update(derive(settings))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m wsgistack.render",
        description="Fill the {{ PLACEHOLDERS }} of server configs from environment variables.",
    )
    parser.add_argument(
        "templates", nargs="+", type=Path, help="config files or folders from deploy/"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write them to")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
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
