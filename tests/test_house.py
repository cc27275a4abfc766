"""The house rules the code keeps, checked: function size, no pickle, one door to the C extension."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "smsguard"
MAX_FUNCTION_LINES = 60  # a function a reader holds in view; the old 166-line export() is what this prevents


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno]


def test_no_python_function_is_over_60_lines() -> None:
    long = [f"{where} ({lines} lines)" for path in sorted(PACKAGE.rglob("*.py")) for where, lines in _functions(path) if lines > MAX_FUNCTION_LINES]
    assert long == []


def test_only_the_native_facade_imports_the_c_extension() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "_lstm_c" in {alias.name.split(".")[-1] for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                         if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        or "runtime._lstm_c\"" in path.read_text(encoding="utf-8")
    )
    assert importers == ["smsguard/runtime/_native.py"]
