"""What libraries print — TensorFlow's C++ and Python logs, oneDNN and CUDA notices, retracing warnings,
MediaPipe's and LiteRT's C++ log lines, a JVM's — goes to a log file instead of the terminal, while
smsguard's own lines (written to `sys.stdout` and `sys.stderr` by Python) stay on the terminal.

Libraries write to the process's file descriptors 1 and 2 from C and C++, and to Python's `logging` and
`warnings`; `library_output` points both file descriptors at the log, gives Python's `sys.stdout` and
`sys.stderr` copies of the original descriptors, and sends `logging` and `warnings` to the log too.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_routing = False  # whether a library_output context is sending fds 1 and 2 to a log, or letting them through (verbose)


@contextlib.contextmanager
def library_output(log: Path | None, verbose: bool = False) -> Iterator[None]:
    """Run the body with library output in a temporary file, kept as `log` at the end when `log`'s folder
    exists (else dropped); with `verbose`, let it through to the terminal as it comes."""
    global _routing
    if verbose:
        _routing = True
        try:
            yield
        finally:
            _routing = False
        return
    if log is None:  # nothing to keep: to the null device, so that no file is left behind, even by a process killed with -9
        with _routed(Path(os.devnull)):
            yield
        return
    with tempfile.NamedTemporaryFile(prefix="smsguard-", suffix=".log", delete=False) as file:
        temporary = Path(file.name)
    try:
        with _routed(temporary):
            yield
    finally:
        _keep(temporary, log)


@contextlib.contextmanager
def _routed(target: Path) -> Iterator[None]:
    global _routing
    with _python_streams_kept(), _descriptors_to(target), _python_logs_to(target):
        _routing = True
        try:
            yield
        finally:
            _routing = False


def forward(data: bytes) -> None:
    """Output a library produced while something else held it (a converter's captured log), where
    library output goes now: the log, or the terminal with --verbose; nowhere when not routing."""
    if _routing and data:
        sys.stderr.flush()
        os.write(2, data)


def _keep(temporary: Path, log: Path | None) -> None:
    try:
        if log is not None and log.parent.is_dir() and temporary.stat().st_size:
            shutil.move(str(temporary), str(log))
    except OSError:
        pass  # a log is a convenience: a read-only run folder must not fail the command
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _python_streams_kept() -> Iterator[None]:
    """`sys.stdout` and `sys.stderr` on copies of fds 1 and 2, when they write to them (not under a test's capture)."""
    saved = sys.stdout, sys.stderr
    copies = [_copy_of(stream, fd) for stream, fd in ((sys.stdout, 1), (sys.stderr, 2))]
    sys.stdout = copies[0] or sys.stdout
    sys.stderr = copies[1] or sys.stderr
    try:
        yield
    finally:
        for copy in copies:
            if copy is not None:
                with contextlib.suppress(OSError, ValueError):
                    copy.flush()
        sys.stdout, sys.stderr = saved
        for copy in copies:
            if copy is not None:
                with contextlib.suppress(OSError, ValueError):
                    copy.close()


def _copy_of(stream: TextIO, fd: int) -> TextIO | None:
    try:
        if stream is None or stream.fileno() != fd:
            return None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    stream.flush()
    raw = open(os.dup(fd), "wb", buffering=0)  # noqa: SIM115 -- closed by _python_streams_kept
    return io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors, line_buffering=True, write_through=True)


@contextlib.contextmanager
def _descriptors_to(path: Path) -> Iterator[None]:
    """Point fds 1 and 2 at `path` (appending), and back at the end."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


@contextlib.contextmanager
def _python_logs_to(path: Path) -> Iterator[None]:
    """Python `logging` and `warnings` into the log. A handler on the root logger also keeps TensorFlow from
    adding its own (it does only while the root has none), and loggers that already have handlers of
    their own hand their records to the root for the while."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    root = logging.getLogger()
    others = [logging.getLogger(name) for name in ("tensorflow", "absl", "tf2onnx", "py.warnings")]
    saved = [(logger, logger.handlers[:], logger.propagate) for logger in others]
    root_level = root.level
    root.addHandler(handler)
    root.setLevel(min(root_level or logging.WARNING, logging.INFO))
    for logger in others:
        logger.handlers = []
        logger.propagate = True
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
        root.removeHandler(handler)
        root.setLevel(root_level)
        handler.close()
