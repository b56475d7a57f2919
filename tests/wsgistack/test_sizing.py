"""wsgistack/sizing.py: memory sizes as --max-memory takes them, and the bench
package used through its public names only."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from wsgistack import sizing
from wsgistack.sizing import memory_size

SIZING = Path(sizing.__file__)


@pytest.mark.parametrize(
    ("text", "mb"), [("512M", 512), ("1.5G", 1536), ("2048K", 2), ("300", 300), ("1GiB", 1024)]
)
def test_memory_sizes(text, mb):
    assert memory_size(text) == mb


@pytest.mark.parametrize("text", ["", "0M", "lots", "5T", "-1G"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        memory_size(text)


def test_sizing_uses_only_public_names():
    tree = ast.parse(SIZING.read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and isinstance(node.value, ast.Name)
        and node.value.id == "bench"
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wsgistack.bench")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
