"""qmail/core imports only the stdlib's pure parts, flanker, html2text, jinja2 and itself.

Nothing of the rest of qmail: an import of ``qmail.models`` or ``qmail.config`` would
bring the database or the environment into the pure stages."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).parents[2] / "qmail" / "core"
ALLOWED_THIRD_PARTY = {"flanker", "html2text", "jinja2"}
FORBIDDEN_STDLIB = {"os", "socket", "smtplib", "subprocess", "threading", "asyncio", "sqlite3"}


def imported_modules(path: Path) -> set[str]:
    """The full names of the modules ``path`` imports (relative imports are refused)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            assert node.module is not None
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_has_no_io_imports(path):
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            assert top not in FORBIDDEN_STDLIB, f"{path.name} imports {name}"
        elif top == "qmail":
            assert name.startswith("qmail.core."), f"{path.name} imports {name}"
        else:
            assert top in ALLOWED_THIRD_PARTY, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_never_reads_the_clock(path):
    source = path.read_text(encoding="utf-8")
    assert ".now(" not in source and "utcnow(" not in source and "time.time(" not in source
