"""Where every benchmark writes: NAME.json for programs and NAME.md for people, atomically."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from smsguard._staging import write_atomic, write_json


def write_results(out: Path, name: str, result: dict, table: str, took: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", result)
    write_atomic(out / f"{name}.md", table.encode("utf-8"))
    print(table)
    print(f"* Results in {out / (name + '.md')} and {out / (name + '.json')} ({took})", file=sys.stderr)


def cpu_name() -> str:
    """The CPU's model name, for the results' header."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
