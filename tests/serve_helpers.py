"""What the serve and gammu tests share: a real `smsguard serve` process on 127.0.0.1, raw HTTP requests, and
bundle copies with another serial or threshold (the manifest is not hashed, so they stay valid bundles)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bundle_edits import edit_manifest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0  # seconds for a server to say where it listens (a loaded CI machine is slow to import NumPy)
SERVING = re.compile(r"on (?:http://(?P<host>[\d.]+):(?P<port>\d+)/|unix:(?P<unix>\S+))")


def smsguard_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "smsguard", *args]


class Server:
    """A `smsguard serve` subprocess; `url`/`port` once it has said where it listens."""

    def __init__(self, bundle: Path, *flags: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log = log
        args = ["serve", "--bundle", str(bundle), *flags]
        if "--port" not in flags and "--unix" not in flags:
            args += ["--port", "0"]
        if "--access-log" not in flags and log is not None:
            args += ["--access-log", str(log)]
        self.stderr_lines: list[str] = []
        self.process = subprocess.Popen(smsguard_command(*args), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.port = 0
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            match = SERVING.search(line) if line.startswith("* Serving") else None
            if match:
                self.port = int(match["port"]) if match["port"] else 0
                return
        self.process.kill()
        rest = self.process.stderr.read()
        raise AssertionError(f"smsguard serve did not start: {''.join(self.stderr_lines)}{rest}")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it and return the rest of its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            _, rest = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, rest = self.process.communicate()
        return "".join(self.stderr_lines) + (rest or "")


@contextlib.contextmanager
def running(bundle: Path, *flags: str, **kwargs) -> Iterator[Server]:
    server = Server(bundle, *flags, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def request(server: Server, method: str, path: str, document=None, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON or text) of one request on a new connection."""
    connection = server.connection()
    try:
        if document is not None:
            body = json.dumps(document).encode()
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, dict(response.getheaders()), json.loads(data) if kind.startswith("application/json") else data.decode()


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are and read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may refuse and close before it has read everything
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def bundle_variant(bundle: Path, target: Path, serial: int, threshold: float | None = None) -> Path:
    """A copy of `bundle` with another serial (and threshold): what an update looks like to a running server."""
    shutil.copytree(bundle, target)

    def change(manifest: dict) -> None:
        manifest["serial"] = serial
        if threshold is not None:
            manifest["threshold"] = threshold
            for entry in manifest["files"]:
                entry.pop("threshold", None)  # so the bundle's threshold is the one every model uses

    edit_manifest(target, change)
    return target


def point(link: Path, target: Path) -> None:
    """Re-point a symlink at once, as an updater does (a new link renamed over the old)."""
    tmp = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
