"""Library output (C and C++ log lines on file descriptors 1 and 2, Python logging and warnings) goes to
the run folder's log; smsguard's own lines stay on the terminal; --verbose lets everything through."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A stand-in for a library: it writes to the file descriptors as C++ does, and logs and warns as Python
# libraries do; smsguard's own lines go through _console and print, as the commands' do.
PROGRAM = textwrap.dedent("""
    import logging, os, sys, warnings
    from pathlib import Path
    from smsguard import _console as console
    from smsguard._library_output import forward, library_output

    log, verbose = (Path(sys.argv[1]) if sys.argv[1] != "-" else None), sys.argv[2] == "verbose"
    with library_output(log, verbose):
        console.step("Training")
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\\n")
        os.write(1, b"cudart_stub.cc:31] Could not find cuda drivers\\n")
        logging.getLogger("tensorflow").warning("5 out of the last 6 calls triggered tf.function retracing")
        warnings.warn("a converter's deprecation", UserWarning, stacklevel=1)
        forward(b"converter log line\\n")
        print('{"label": "spam"}')
    console.step("Done")
""")


def run(tmp_path: Path, log: Path | None, verbose: bool = False) -> subprocess.CompletedProcess:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM, encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, str(script), str(log) if log else "-", "verbose" if verbose else "quiet"],
        capture_output=True, text=True, timeout=60, check=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


LIBRARY_LINES = (
    "I0000 port.cc:153] oneDNN custom operations are on",
    "cudart_stub.cc:31] Could not find cuda drivers",
    "WARNING:tensorflow:5 out of the last 6 calls triggered tf.function retracing",
    "converter log line",
)


def test_library_output_goes_to_the_log_and_smsguard_lines_to_the_terminal(tmp_path):
    log = tmp_path / "train.log"
    done = run(tmp_path, log)
    assert done.stderr == "* Training\n* Done\n"
    assert done.stdout == '{"label": "spam"}\n'
    written = log.read_text(encoding="utf-8")
    for line in LIBRARY_LINES:
        assert line in written.splitlines()
    assert "UserWarning: a converter's deprecation" in written


def test_without_a_log_file_library_output_is_dropped_and_no_temporary_file_is_left(tmp_path):
    before = set(Path("/tmp").glob("smsguard-*.log"))
    done = run(tmp_path, None)
    assert (done.stderr, done.stdout) == ("* Training\n* Done\n", '{"label": "spam"}\n')
    assert set(Path("/tmp").glob("smsguard-*.log")) <= before


def test_a_log_whose_folder_does_not_exist_is_dropped(tmp_path):
    done = run(tmp_path, tmp_path / "gone" / "train.log")
    assert done.stderr == "* Training\n* Done\n"
    assert not (tmp_path / "gone").exists()


def test_verbose_lets_library_output_through(tmp_path):
    log = tmp_path / "train.log"
    done = run(tmp_path, log, verbose=True)
    assert not log.exists()
    assert done.stderr.splitlines()[0] == "* Training"
    for line in ("I0000 port.cc:153] oneDNN custom operations are on", "converter log line"):
        assert line in done.stderr.splitlines()
    assert "cudart_stub.cc:31] Could not find cuda drivers" in done.stdout.splitlines()


@pytest.mark.parametrize(("command", "log"), [("train --out R", "R/train.log"), ("export RUN --out B", "RUN/export.log"), ("demo --out D", "D/demo.log"), ("verify B", None)])
def test_each_command_keeps_library_output_in_its_run_folder(command, log):
    from smsguard.cli import _library_log, _parser

    args = _parser().parse_args(command.split())
    assert _library_log(args) == (Path(log) if log else None)
    assert args.verbose is False
