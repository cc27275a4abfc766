"""Where every benchmark writes: NAME.json for programs and NAME.md for people, atomically."""

from __future__ import annotations

import os
import platform
import shlex
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


def command_line(script: str) -> str:
    """The command that made a result as anyone would rerun it: `python benchmarks/SCRIPT ARGS`, where an argument
    that names a path of this machine outside the repository keeps its last part only (`DIR/bundle`), so that
    results travel without this machine's paths."""
    root = Path(__file__).resolve().parents[1]

    def public(argument: str) -> str:
        path = Path(argument)
        if not (path.is_absolute() or os.path.exists(argument)):
            return argument
        resolved = path.resolve()
        return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else f"DIR/{resolved.name}"

    return shlex.join(["python", f"benchmarks/{script}", *map(public, sys.argv[1:])])
