"""The docs stay true to the code and to themselves.

The reference lives in docs/, one subject a page; README.md is the front door.
The tables between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers are
made from the code (the knobs from ``wsgistack.settings.KNOBS``, the guarantees
from ``tests/integration/guarantees.py``); ``python -m tests.wsgistack.test_docs``
rewrites them, and a test here keeps each equal to its source.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest

from app import DEFAULTS
from wsgistack import cli
from wsgistack.settings import KNOBS
from wsgistack.stacks import STACKS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
GUARANTEES = DOCS / "guarantees.md"
BENCHMARK = DOCS / "benchmark.md"
DEBIAN_SERVER = DOCS / "debian-server.md"
# a front door: the first command on the first screen, the tests' on the second,
# and everything else one link away
README_MAX_LINES = 200
REGENERATE = "run: python -m tests.wsgistack.test_docs"


def knob_table() -> str:
    """The configuration reference's table: a row per knob, as declared."""
    lines = ["| knob | default | what |", "|---|---|---|"]
    for knob in KNOBS:
        default = f"`{knob.default}`" if str(knob.default) != "" else "empty"
        # an app server's own default, for the knobs that have one
        default += "".join(f"; {server}: `{value}`" for server, value in knob.servers.items())
        what = knob.help.replace("|", "\\|")
        lines.append(f"| `{knob.env}` | {default} | {what} |")
    return "\n".join(lines) + "\n"


def install_script() -> str:
    """The Debian server's install script, as the page quotes it: the steps a
    person types are the ones the tests run."""
    script = (ROOT / "deploy" / "debian" / "install.sh").read_text()
    return f"```sh\n{script}```\n"


def generated_tables() -> dict[str, tuple[Path, str]]:
    """{marker name: (the page that holds the table, the table as the code says it)}."""
    from tests.integration.guarantees import markdown_table

    return {
        "knobs": (CONFIGURATION, knob_table()),
        "guarantees": (GUARANTEES, markdown_table()),
        "install-script": (DEBIAN_SERVER, install_script()),
    }


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"


def between_markers(text: str, name: str) -> str:
    start, end = _markers(name)
    assert text.count(start) == 1 and text.count(end) == 1, f"one {start.strip()} and one {end}"
    return text.split(start)[1].split(end)[0]


def with_table(text: str, name: str, table: str) -> str:
    """``text`` with the table between ``name``'s markers replaced by ``table``."""
    start, end = _markers(name)
    before, rest = text.split(start)
    return before + start + table + end + rest.split(end, 1)[1]


@pytest.mark.parametrize("name", ["knobs", "guarantees", "install-script"])
def test_a_generated_table_is_what_the_code_declares(name):
    page, table = generated_tables()[name]
    assert between_markers(page.read_text(), name) == table, REGENERATE


def test_every_knob_is_in_the_configuration_reference():
    # the table is generated, but a hand edit between the markers would show here too
    reference = CONFIGURATION.read_text()
    assert [k.env for k in KNOBS if f"| `{k.env}` |" not in reference] == []


def test_the_app_settings_table_is_the_apps_defaults():
    # hand-written (the defaults carry no help text to generate from): every key
    # of app.DEFAULTS, with its default, and nothing else
    section = CONFIGURATION.read_text().split("## The app's settings")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", section, flags=re.MULTILINE))
    assert rows == {key: "null" if value is None else str(value) for key, value in DEFAULTS.items()}


def test_the_benchmark_page_names_every_bench_option():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [
        option
        for action in sub.choices["bench"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    page = BENCHMARK.read_text()
    assert options and [o for o in options if f"`{o}" not in page] == []


# --- the front door ---------------------------------------------------------


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, "reference belongs in docs/, one subject a page"


def test_the_readme_names_every_stack():
    stacks = README.read_text().split("\n## ")
    table = next(s for s in stacks if s.startswith("The stacks"))
    assert [name for name in STACKS if f"| `{name}` |" not in table] == []


def test_the_knobs_the_readme_names_first_are_knobs():
    section = README.read_text().split("## The knobs to change first")[1].split("\n## ")[0]
    named = re.findall(r"^- `([A-Z_]+)", section, flags=re.MULTILINE)
    assert len(named) == 5 and set(named) <= {k.env for k in KNOBS}


def _layout() -> str:
    return README.read_text().split("## Where everything is")[1].split("```")[1]


def _tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return listing.stdout.split()


def test_the_readme_layout_names_every_tracked_folder_and_file_at_the_top():
    layout = _layout()
    patterns = re.findall(r"\S*\*\S*", layout)
    entries = set()
    for path in _tracked_files():
        parts = path.split("/")
        entries.add(parts[0] + ("/" if len(parts) > 1 else ""))
        if parts[0] == "deploy" and len(parts) > 2:
            entries.add(f"deploy/{parts[1]}/")
    obvious = {"README.md", ".gitignore", ".dockerignore"}
    missing = [
        entry
        for entry in sorted(entries - obvious)
        if entry not in layout and not any(fnmatch(entry, p) for p in patterns)
    ]
    assert missing == []


@pytest.mark.parametrize("index", [DOCS / "README.md", README], ids=["docs/README.md", "README.md"])
def test_the_indexes_list_every_page(index):
    linked = {Path(target).name for target in LINK.findall(index.read_text())}
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert pages and [p for p in pages if p not in linked] == []


# --- links ------------------------------------------------------------------

MARKDOWN_FILES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _without_code(text: str) -> str:
    """The text outside fenced blocks, with inline code spans blanked."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "code", text)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation
    but hyphens and underscores dropped, spaces as hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    result = set()
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def _resolves(page: Path, target: str) -> bool:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.is_relative_to(ROOT) or not resolved.exists():
        return False
    return not anchor or (resolved.suffix == ".md" and anchor in anchors(resolved))


def broken_links(page: Path) -> list[str]:
    """The relative links of a page whose file or heading does not exist (URLs
    with a scheme are not this check's business)."""
    targets = LINK.findall(_without_code(page.read_text()))
    return [
        target
        for target in targets
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not _resolves(page, target)
    ]


@pytest.mark.parametrize("page", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page):
    assert broken_links(page) == []


def test_the_link_check_sees_a_broken_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "b.md").write_text("# The `FLASK_*` settings: what\n\n## Again\n## Again\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#the-flask_-settings-what) [ok](b.md#again-1) [`code`](b.md)\n"
        "[no](b.md#nowhere) [no](c.md) `[not a link](c.md)`\n"
        "```\n[not a link either](d.md)\n# not a heading\n```\n"
    )
    assert broken_links(page) == ["b.md#nowhere", "c.md"]


def regenerate() -> None:
    for name, (page, table) in generated_tables().items():
        text = page.read_text()
        if between_markers(text, name) != table:
            page.write_text(with_table(text, name, table))
            print(f"{page.relative_to(ROOT)}: the {name} table rewritten")


if __name__ == "__main__":
    regenerate()
