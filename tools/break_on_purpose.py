"""Break the build on purpose, one way at a time, and show that the test guarding each claim fails; then
restore the file and show that it passes (issue 25: each new check seen failing once). It changes files in
place and puts them back; run it on a clean checkout whose venv is made (`make check` first):

    .venv/bin/python tools/break_on_purpose.py [WORDS]   # only the breakages whose description holds WORDS
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Breakage(NamedTuple):
    what: str
    path: str
    old: str
    new: str
    test: str


BREAKAGES = (
    Breakage("verify passes with a pair not run", "smsguard/runtime/_verify.py",
             "all(r.passed for r in self.results) and", "all(r.passed for r in self.results if not r.skipped) and",
             "tests/test_fast_runtime.py::test_verify_fails_when_a_pair_could_not_be_run"),
    Breakage("a call reads the model per chunk (no snapshot)", "smsguard/runtime/_classifier.py",
             "        snapshot = self._snapshot()\n        chunks = _chunks(", "        snapshot = self\n        chunks = _chunks(",
             "tests/test_fast_runtime.py::test_reload_never_mixes_two_bundles"),
    Breakage("the kernel ignores the instruction set asked for", "smsguard/runtime/_native.py",
             "return extension().Model(*arrays, isa, **ngram_branch)", "return extension().Model(*arrays, 'auto', **ngram_branch)",
             "tests/test_native.py"),
    Breakage("unknown words get id 1 without an OOV token", "smsguard/runtime/_vocabulary.py",
             "if config.oov_token is not None else None", "if config.oov_token is not None else 1",
             "tests/test_fast_texts.py"),
    Breakage("the command line imports pandas (a device install has none)", "smsguard/train/_config.py",
             "from smsguard.train._evasion import", "from smsguard.train._data import DataError  # noqa: F401\nfrom smsguard.train._evasion import",
             "tests/test_fast_runtime.py::test_the_command_line_runs_verify_without_the_training_stack"),
    Breakage("streaming reads the whole generator (memory grows)", "smsguard/runtime/_classifier.py",
             "chunks = _chunks(as_texts(texts), STREAM_CHUNK)", "chunks = iter(list(_chunks(as_texts(texts), STREAM_CHUNK)))",
             "tests/test_runtime.py::test_a_million_messages_are_streamed_in_bounded_memory"),
)


def pytest(test: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test], cwd=ROOT, capture_output=True, text=True, check=False)
    summary = [line for line in done.stdout.splitlines() if " failed" in line or " passed" in line][-1:]
    return f"exit {done.returncode}: {summary[0] if summary else done.stdout[-200:]}"


def main() -> int:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python tools/break_on_purpose.py at {commit}")
    for breakage in BREAKAGES:
        if len(sys.argv) > 1 and sys.argv[1] not in breakage.what:
            continue
        path = ROOT / breakage.path
        text = path.read_text()
        if text.count(breakage.old) != 1:
            print(f"cannot break '{breakage.what}': {breakage.path} no longer holds the line it changes once")
            continue
        try:
            path.write_text(text.replace(breakage.old, breakage.new))
            print(f"broken: {breakage.what}: {pytest(breakage.test)}")
        finally:
            path.write_text(text)
        print(f"restored: {pytest(breakage.test)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
