"""The house rules the code keeps, checked: function size (Python and C), no pickle, one door to the C extension."""

from __future__ import annotations

import ast
import re
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


_C_NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.DOTALL)  # comments, strings, characters


def c_functions(path: Path) -> list[tuple[str, int]]:
    """(where, lines) of each function defined in a C source: from the first line of its signature (at the left margin)
    to its closing brace, as Python's are counted. Comments, strings and characters are blanked first (their newlines
    kept), so that a brace inside them counts for nothing; an initializer (`... = {`) is not a function."""
    text = _C_NOISE.sub(lambda match: re.sub(r"[^\n]", " ", match.group()), path.read_text(encoding="utf-8"))
    found, depth, start, head = [], 0, -1, ""
    for number, line in enumerate(text.splitlines(), 1):
        if depth == 0 and start < 0 and line[:1] not in ("", " ", "#", "}") and not line.startswith(("typedef", "enum", "struct")) and "(" in line:
            start, head = number, ""
        if start >= 0 and depth == 0:
            head += line
            if ";" in line and "{" not in line:
                start = -1  # a declaration
            elif "{" in line and "=" in head.split("{")[0].split(")")[-1] + head.split("(")[0]:
                start = -1  # an initializer
        depth += line.count("{") - line.count("}")
        if start >= 0 and depth == 0 and "}" in line:
            names = [kernel or plain for kernel, plain in re.findall(r"FN\((\w+)\)\s*\(|(\w+)\s*\(", head) if (kernel or plain) not in ("__attribute__", "FN")]
            found.append((f"{path.relative_to(PACKAGE.parent)}:{start} {names[0] if names else '?'}", number - start + 1))
            start = -1
    return found


def test_no_c_function_is_over_60_lines() -> None:
    sources = sorted([*PACKAGE.rglob("*.c"), *PACKAGE.rglob("*.h")])
    functions = [function for path in sources for function in c_functions(path)]
    assert len(functions) > 80  # the parser finds the kernel's, the bag's, the featuriser's and the type's functions
    long = [f"{where} ({lines} lines)" for where, lines in functions if lines > MAX_FUNCTION_LINES]
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
