"""A small client of `smsguard serve` (HTTP/1.1 over a UNIX socket or TCP), with the standard library only:
the gammu hook uses it, and so can any script on the gateway."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from smsguard.runtime import SmsguardError


class ServerError(SmsguardError):
    """smsguard serve answered with an error, or with something that is not its API."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    """`Client(unix="/run/smsguard/serve.sock")` or `Client(url="http://127.0.0.1:8000")`; one connection, kept alive."""

    def __init__(self, unix: str | None = None, url: str | None = None, timeout: float = 5.0) -> None:
        if unix:
            self.connection: http.client.HTTPConnection = _UnixConnection(unix, timeout)
            self.where = f"unix:{unix}"
        elif url:
            parts = urlsplit(url)
            self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
            self.where = url
        else:
            msg = "a client of smsguard serve needs a UNIX socket path or a URL"
            raise SmsguardError(msg)

    def request(self, method: str, path: str, document: Any = None) -> Any:
        body = None if document is None else json.dumps(document, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        try:
            answer = json.loads(data)
        except ValueError:
            msg = f"{self.where}{path} answered {response.status} with something that is not JSON; is it smsguard serve?"
            raise ServerError(msg) from None
        if response.status != 200:
            said = answer.get("error") if isinstance(answer, dict) else None
            msg = f"{self.where}{path} answered {response.status}: {said or data[:200].decode('utf-8', 'replace')}"
            raise ServerError(msg)
        return answer

    def classify(self, texts: list[str]) -> dict[str, Any]:
        """{"serial": ..., "model": ..., "results": [{"id": n, "probability": ..., "label": ...}, ...]}, ids 0, 1, ..."""
        return self.request("POST", "/v1/classify", {"messages": [{"id": n, "text": t} for n, t in enumerate(texts)]})

    def model(self) -> dict[str, Any]:
        return self.request("GET", "/v1/model")

    def close(self) -> None:
        self.connection.close()
