"""The architecture's rules hold on the import graph, so they cannot rot unnoticed.

The rules (docs/architecture.md) are contracts in pyproject.toml, checked by
import-linter; this also checks that no two modules import each other, even
through others.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
         "lint_imports_command()"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("chatbuddy")
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None and not _package_and_its_own_module(importer, imported):
                cycles.append(" -> ".join((importer, *back)))
    assert cycles == []


def _package_and_its_own_module(a: str, b: str) -> bool:
    """A package's __init__ importing its own submodules is how packages export."""
    return a.startswith(b + ".") or b.startswith(a + ".")
