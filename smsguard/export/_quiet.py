"""Converters write to stdout and stderr from Python and C++; keep that off the user's terminal and
show it only when a conversion fails."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

from smsguard._library_output import forward
from smsguard.runtime import SmsguardError


class ConversionError(SmsguardError):
    """A converter (TFLite, tf2onnx, onnxruntime.quantization) failed."""


@contextlib.contextmanager
def converter_output(what: str) -> Iterator[None]:
    """Silence file descriptors 1 and 2; on an error, raise ConversionError with the log's tail."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # converter warnings are about its internals, not the user's model
                yield
        except Exception as error:
            sys.stdout.flush()
            sys.stderr.flush()
            log.seek(0)
            tail = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()][-5:]
            detail = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
            msg = f"converting {what} failed: {detail}" + ("\n  converter log:\n    " + "\n    ".join(tail) if tail else "")
            raise ConversionError(msg) from error
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            forward(log.read())  # into the run folder's log (or the terminal with --verbose) when the CLI routes library output
