"""The README documents every knob there is, so it cannot drift from the code."""

from pathlib import Path

import pytest

from app import DEFAULTS
from wsgistack.settings import KNOBS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("knob", [k.env for k in KNOBS])
def test_readme_documents_every_stack_knob(knob):
    assert f"| `{knob}` |" in README


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_readme_documents_every_app_setting(key):
    assert f"| `{key}` |" in README


def test_readme_guarantee_table_is_the_suites_declarations():
    from tests.integration.guarantees import markdown_table

    table = README.split("<!-- guarantees:start -->\n")[1].split("<!-- guarantees:end -->")[0]
    assert table == markdown_table(), "run: python -m tests.integration.guarantees"
