"""Claims of the documentation that no other test held, each checked here (fast: the tiny bundle, a pseudo
terminal, the repository itself). The audit that found them, claim by claim: CHANGELOG.md and issue 25."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_edits import edit_manifest
from conftest import cannot_run

from smsguard.runtime import Bundle, BundleError, Classifier

ROOT = Path(__file__).resolve().parents[1]
CHECK_LINES = "from smsguard import _console; _console.check(True, 'ok'); _console.check(False, 'bad'); _console.error('broken')"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _on_a_terminal(environment: dict[str, str]) -> str:
    """What the console prints when stderr is a terminal (a pseudo terminal), with `environment`."""
    main, secondary = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", CHECK_LINES], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=secondary,
                              env=environment, timeout=60, check=True)
        assert done.returncode == 0
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal is closed once everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8")
    finally:
        os.close(main)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    """docs/reference/cli.md: 'Colour only on a terminal, never with NO_COLOR set.'"""
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"PYTHONPATH": str(ROOT)}
    coloured = _on_a_terminal(environment)
    assert ANSI.findall(coloured), coloured  # the terminal gets colour
    assert ANSI.sub("", coloured).splitlines() == ["  -[✓] ok", "  -[x] bad", "ERROR broken"]
    assert not ANSI.findall(_on_a_terminal(environment | {"NO_COLOR": "1"}))
    piped = subprocess.run([sys.executable, "-c", CHECK_LINES], capture_output=True, text=True, env=environment, timeout=60, check=True)
    assert piped.stderr.splitlines() == ["  -[✓] ok", "  -[x] bad", "ERROR broken"]  # not a terminal: no colour


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(tiny_copy: Path) -> None:
    """docs/reference/bundle-format.md: a file name 'with a / is refused'."""
    shutil.copy(tiny_copy / "model.int8.npz", tiny_copy.parent / "model.int8.npz")
    edit_manifest(tiny_copy, lambda m: next(f for f in m["files"] if f["name"] == "model.int8.npz").update(name="../model.int8.npz"))
    expected = rf"^manifest names file '\.\./model\.int8\.npz' outside its bundle '{re.escape(str(tiny_copy))}'$"
    with pytest.raises(BundleError, match=expected):
        Bundle.load(tiny_copy).check_files()
    with pytest.raises(BundleError, match=expected):
        Classifier.load(tiny_copy, backend="numpy", model="../model.int8.npz")


def test_web_node_modules_are_never_committed() -> None:
    """docs/how-to/mediapipe.md: the npm packages go into web/node_modules, '(never committed)'."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        cannot_run(f"{ROOT} is not a git checkout, or git is not installed")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "web/node_modules"], capture_output=True, text=True, timeout=60, check=True)
    assert tracked.stdout == ""
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "web/node_modules/x/index.js"], timeout=60, check=False)
    assert ignored.returncode == 0  # and a new file there would not be added by `git add -A`


def test_the_out_of_domain_set_is_never_read_by_the_package() -> None:
    """docs/explanation/accuracy.md: the out-of-domain set (benchmarks/ood/) 'is never used for training, thresholds
    or model selection': no module of smsguard names it; only benchmarks/out_of_domain.py reads it."""
    named = re.compile(r"\bood\b|messages\.csv|out.of.domain", re.IGNORECASE)
    readers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "smsguard").rglob("*.py") if named.search(p.read_text(encoding="utf-8")))
    assert readers == []
    assert named.search((ROOT / "benchmarks" / "out_of_domain.py").read_text(encoding="utf-8"))  # the pattern finds a reader
