"""A small HTTP/1.1 server on asyncio: keep-alive, Content-Length bodies, limits and timeouts.

Just what a local JSON API needs, and nothing a client could use to exhaust the service: a request head
is at most `MAX_HEAD` bytes, a body at most `max_body` (refused from its Content-Length, before it is
read), the whole request must arrive within `read_timeout` (a client that sends one byte a second gets
408), an idle keep-alive connection is closed after the same time, and past `max_connections` a new
connection gets 503. Each refusal is a one-line JSON error. Bodies sent chunked are refused (411/501):
the clients this serves (curl, requests, the gammu hook, wrk) send Content-Length.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from ipaddress import ip_address

MAX_HEAD = 16_384  # bytes of request line and headers; more gets 431
MAX_HEADERS = 100
LINGER = 2.0  # seconds a refused client may keep sending (discarded) before the close, so it can read the refusal
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # names in lower case
    body: bytes
    peer: str  # "127.0.0.1:50412", or "unix" for a UNIX socket
    local: bool  # from loopback or a UNIX socket: may ask for a reload


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    log: dict = field(default_factory=dict)  # extra fields for the access log line (messages, serial, error code)


def error_response(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A refusal: one line of JSON, `{"error": ..., "code": ...}`."""
    body = json.dumps({"error": message, "code": code}, ensure_ascii=False).encode() + b"\n"
    return Response(status, body, headers=headers, log={"error": code})


Handler = Callable[[Request], Awaitable[Response]]
Logger = Callable[[Request | None, Response, float, str], None]


class HttpError(Exception):
    """A request that cannot be read: answered with `response`, then the connection is closed."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Limits:
    max_body: int
    read_timeout: float
    max_connections: int


class HttpServer:
    """Connections share this: the handler, the limits, the open-connection count and the logger."""

    def __init__(self, handler: Handler, limits: Limits, log: Logger) -> None:
        self.handler, self.limits, self.log = handler, limits, log
        self.connections: set[_Connection] = set()
        self.idle = asyncio.Event()  # set when no request is being handled: a graceful stop waits for it
        self.idle.set()
        self.busy = 0

    def protocol(self) -> _Connection:
        return _Connection(self)

    def close_idle(self) -> None:
        """On stop: close the connections that are not in the middle of a request."""
        for connection in list(self.connections):
            if not connection.busy:
                connection.close()


def _peer(transport: asyncio.BaseTransport) -> tuple[str, bool]:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        return "unix", True
    address = transport.get_extra_info("peername")
    if not address:
        return "unknown", False
    host = str(address[0])
    try:
        loopback = ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if host.startswith("::ffff:127."):
        loopback = True  # IPv4 loopback on a dual-stack socket
    return f"{host}:{address[1]}", loopback


class _Connection(asyncio.Protocol):
    """One client connection: reads requests one after another, answers each in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False  # a request is being handled: later bytes wait in the buffer
        self.closed = False
        self.write_paused: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: float | None = None  # when the read timeout ends (loop time); None while a request is answered
        self.peer, self.local = "unknown", False
        self.continued = False  # "100 Continue" sent for the request being read
        self.discarding = False  # refused: what the client still sends is read and dropped until the close
        self.eof = False  # the client has half-closed: answer what it sent, then close

    # ---- asyncio callbacks ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer, self.local = _peer(transport)
        server = self.server
        if len(server.connections) >= server.limits.max_connections:
            self._refuse(error_response(503, "too_many_connections", f"the server has {len(server.connections)} connections open, its limit (--max-connections); try again later", (("Retry-After", "1"),)))
            return
        server.connections.add(self)
        self._start_timer()

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_HEAD + self.server.limits.max_body and self.transport:
                self.transport.pause_reading()  # a pipelining client waits until its earlier requests are answered
            return
        self._next_request()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.busy or self.discarding:
            self.close()
        return True  # half-closed: a request being handled still gets its answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self.server.connections.discard(self)
        if self.write_paused is not None and not self.write_paused.done():
            self.write_paused.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.write_paused is not None and not self.write_paused.done():
            self.write_paused.set_result(None)
        self.write_paused = None

    # ---- requests ----

    def _next_request(self) -> None:
        try:
            request = self._parse()
        except HttpError as error:
            self._refuse(error.response)
            return
        if request is None:
            if self.transport and not self.closed:
                self.transport.resume_reading()
            return
        self.busy = True
        self.server.busy += 1
        self.server.idle.clear()
        self.deadline = None  # no read timeout while the request is answered; the timer, if it fires meanwhile, stops
        asyncio.get_running_loop().create_task(self._answer(request[0], request[1]))

    def _parse(self) -> tuple[Request, bool] | None:
        """The next whole request in the buffer and whether to keep the connection, or None until more arrives."""
        end = self.buffer.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                raise HttpError(error_response(431, "head_too_large", f"the request line and headers are over {MAX_HEAD} bytes"))
            return None
        method, path, version, headers = _parse_head(bytes(self.buffer[:end]))
        length = _content_length(method, headers, self.server.limits.max_body)
        if len(self.buffer) < end + 4 + length:
            if length and headers.get("expect", "").lower() == "100-continue" and self.transport and not self.continued:
                self.transport.write(CONTINUE)
                self.continued = True
            return None
        self.continued = False
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        return Request(method, path, headers, body, self.peer, self.local), keep

    async def _answer(self, request: Request, keep: bool) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            response = await self.server.handler(request)
        except Exception:  # a bug: answer 500, say where in the log, keep serving
            traceback.print_exc(file=sys.stderr)
            response = error_response(500, "internal", f"internal error while answering {request.method} {request.path}; the server log has the traceback")
        self._write(response, keep, head_only=request.method == "HEAD")
        self.server.log(request, response, loop.time() - started, self.peer)
        self.busy = False
        self.server.busy -= 1
        if self.server.busy == 0:
            self.server.idle.set()
        if self.write_paused is not None:
            await self._drain()
        if not keep or self.closed or (self.eof and not self.buffer):
            self.close()
            return
        self._start_timer()
        if self.buffer:
            self._next_request()
        elif self.transport:
            self.transport.resume_reading()

    async def _drain(self) -> None:
        """Wait for a slow reader to take the response, at most `read_timeout`; then give up on it."""
        waiter = self.write_paused
        if waiter is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.server.limits.read_timeout)
        except asyncio.TimeoutError:
            if self.transport:
                self.transport.abort()

    def _write(self, response: Response, keep: bool, head_only: bool = False) -> None:
        if self.transport is None or self.closed or self.transport.is_closing():
            return
        reason = HTTPStatus(response.status).phrase
        extra = "".join(f"{name}: {value}\r\n" for name, value in response.headers)
        if not keep:
            extra += "Connection: close\r\n"
        head = f"HTTP/1.1 {response.status} {reason}\r\nContent-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n{extra}\r\n"
        self.transport.write(head.encode("latin-1") if head_only else head.encode("latin-1") + response.body)

    def _refuse(self, response: Response) -> None:
        """Answer a request that could not be read, and close: its remaining bytes cannot be trusted. The close
        lingers: closing with unread bytes would reset the connection, and the client might lose the answer."""
        self._write(response, keep=False)
        self.server.log(None, response, 0.0, self.peer)
        self.server.connections.discard(self)
        self.discarding = True
        self.buffer.clear()
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._cancel_timer()
        self.timer = asyncio.get_running_loop().call_later(LINGER, self.close)

    # ---- timeouts ----

    def _start_timer(self) -> None:
        """The read timeout runs from now. One timer a connection, moved on when it fires early: a request neither
        cancels one nor schedules another (the loop's heap of timers would fill with cancelled ones, each push a
        dozen comparisons in Python)."""
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.server.limits.read_timeout
        if self.timer is None:
            self.timer = loop.call_at(self.deadline, self._timed_out)

    def _cancel_timer(self) -> None:
        self.deadline = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        if self.deadline is None:  # a request is being answered: its end starts the timer again
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline:  # the connection was used since this timer was set
            self.timer = loop.call_at(self.deadline, self._timed_out)
            return
        if self.busy or self.closed:
            return
        if self.buffer:  # part of a request came, not all of it in time
            timeout = self.server.limits.read_timeout
            self._refuse(error_response(408, "read_timeout", f"the request did not arrive whole within {timeout:g} s (--read-timeout)"))
        else:  # an idle keep-alive connection
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        raise HttpError(error_response(400, "bad_request_line", f"the request line is not METHOD PATH HTTP/1.1: {lines[0][:80]!r}"))
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(error_response(505, "http_version", f"HTTP version {version[:20]!r} is not supported; use HTTP/1.1"))
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(error_response(431, "too_many_headers", f"the request has {len(lines) - 1} headers, more than {MAX_HEADERS}"))
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(error_response(400, "bad_header", f"malformed header line {line[:80]!r}"))
        name, value = name.lower(), value.strip()
        if name == "content-length" and headers.get(name, value) != value:
            raise HttpError(error_response(400, "bad_content_length", "the request has two different Content-Length headers"))
        headers[name] = value
    return method, target.split("?", 1)[0], version, headers


def _content_length(method: str, headers: dict[str, str], max_body: int) -> int:
    if "transfer-encoding" in headers:
        raise HttpError(error_response(501, "chunked_body", "request bodies sent with Transfer-Encoding are not supported; send Content-Length"))
    raw = headers.get("content-length")
    if raw is None:
        if method in ("POST", "PUT", "PATCH"):
            raise HttpError(error_response(411, "length_required", f"a {method} request needs a Content-Length header"))
        return 0
    if not raw.isdigit() or len(raw) > 18:
        raise HttpError(error_response(400, "bad_content_length", f"Content-Length {raw[:30]!r} is not a number of bytes"))
    length = int(raw)
    if length > max_body:
        raise HttpError(error_response(413, "body_too_large", f"the request body has {length} bytes, more than the limit of {max_body} (--max-body)"))
    return length
