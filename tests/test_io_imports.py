"""The readers in planessl.io import one another without a cycle (issue 20): each module
imports first in a fresh interpreter, and the import graph (module-level and
function-level imports alike) has no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import planessl

SRC = Path(planessl.__file__).parent


def _imports(path: Path) -> set[str]:
    """planessl modules a file imports anywhere in it (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("planessl"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("planessl"))
    return out


def _graph() -> dict[str, set[str]]:
    modules = {"planessl." + ".".join(p.relative_to(SRC).with_suffix("").parts): p
               for p in SRC.rglob("*.py") if p.name != "__init__.py"}
    return {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_import_cycle_through_the_readers():
    graph = _graph()
    readers = [m for m in graph if m.startswith("planessl.io.")]
    assert "planessl.io.dicom_records" in readers
    cycles = {m: _cycle_from(graph, m) for m in readers}
    assert not {m: c for m, c in cycles.items() if c}, cycles
    # the record type has one owner, which imports none of the DICOM reader's modules
    assert not {m for m in graph["planessl.io.dicom_records"] if m.startswith("planessl.io")}


@pytest.mark.parametrize("module", ["dicom_exams", "dicom_scan", "dicom_series",
                                    "dicom_records", "localizers", "views"])
def test_each_reader_imports_first(module):
    code = f"import planessl.io.{module}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=SRC.parent)
    assert done.returncode == 0, done.stderr
