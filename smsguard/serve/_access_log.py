"""The access log: one JSON object a line per request, to stderr (the journal under systemd) or a file.

Lines are buffered and flushed once a second by the service (`flush`), not written one system call each."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import TextIO

from smsguard.runtime import SmsguardError
from smsguard.serve._http import Request, Response

BUFFER = 65_536  # bytes of log lines held before a write; `flush` empties it every second


class AccessLog:
    def __init__(self, target: str) -> None:
        """`target`: "-" for stderr, "off" for none, else a file, appended to."""
        self._stamp = (0, "")  # (second, its time as written): formatted once a second, not once a request
        self.file: TextIO | None
        if target == "off":
            self.file = None
        elif target == "-":
            self.file = open(sys.stderr.fileno(), "w", encoding="utf-8", buffering=BUFFER, closefd=False)  # noqa: SIM115 -- closed by close()
        else:
            try:
                self.file = open(target, "a", encoding="utf-8", buffering=BUFFER)  # noqa: SIM115 -- open for the service's life, closed by close()
            except OSError as error:
                msg = f"access log '{target}' cannot be opened for appending: {error.strerror}; give a writable file, '-' or 'off'"
                raise SmsguardError(msg) from None

    def write(self, request: Request | None, response: Response, seconds: float, peer: str) -> None:
        if self.file is None:
            return
        line = {
            "time": self._time(),
            "peer": peer,
            "method": request.method if request else None,
            "path": request.path if request else None,
            "status": response.status,
            "bytes_in": len(request.body) if request else 0,
            "bytes_out": len(response.body),
            "ms": round(seconds * 1000, 3),
            **response.log,
        }
        with contextlib.suppress(OSError, ValueError):  # a full disk or a closed stderr must not stop the service answering
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _time(self) -> str:
        second = int(time.time())
        if second != self._stamp[0]:
            self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + "Z")
        return self._stamp[1]

    def event(self, **fields: object) -> None:
        """A line that is not a request: started, reloaded, stopping."""
        if self.file is None:
            return
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", **fields}
        with contextlib.suppress(OSError, ValueError):
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.file.flush()

    def flush(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.flush()
            self.file.close()
            self.file = None
