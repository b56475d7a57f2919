"""The wsgistack/bench package's shape: one job a module, each small."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsgistack.bench import plan

PACKAGE = Path(plan.__file__).parent


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_each_module_stays_small(module):
    assert len(module.read_text().splitlines()) < 400
