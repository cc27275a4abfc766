"""What the commands print: one line per step on stderr, checkmarks in colour only on a terminal."""

from __future__ import annotations

import os
import sys


def _colour(code: str, text: str) -> str:
    if os.environ.get("NO_COLOR") or not sys.stderr.isatty():
        return text
    return f"\033[{code}m{text}\033[0m"


def step(message: str) -> None:
    print(f"* {message}", file=sys.stderr, flush=True)


def check(ok: bool, message: str) -> None:
    mark = _colour("32", "✓") if ok else _colour("31", "x")
    print(f"  -[{mark}] {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def error(message: str) -> None:
    print(f"{_colour('31', 'ERROR')} {message}", file=sys.stderr, flush=True)


def table(rows: list[list[str]]) -> str:
    """A plain text table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
