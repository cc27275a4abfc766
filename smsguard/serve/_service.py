"""`smsguard serve`: load the bundle, listen (TCP, a UNIX socket, or the sockets systemd passes), answer until
SIGTERM or SIGINT, reload on SIGHUP. Tells systemd when it is ready and, with WatchdogSec, that it still scores."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import signal
import socket
import stat
from ipaddress import ip_address
from pathlib import Path

from smsguard import _console as console
from smsguard.runtime import Classifier, SmsguardError
from smsguard.serve._access_log import AccessLog
from smsguard.serve._api import Api, RequestError, score
from smsguard.serve._config import ServeConfig
from smsguard.serve._http import HttpServer, Limits, Request, Response
from smsguard.serve._metrics import Metrics

BACKLOG = 1024  # connections the kernel queues before accept: a burst waits instead of being refused
SYSTEMD_FIRST_FD = 3
LOG_FLUSH = 1.0  # seconds between access-log flushes


class ServeError(SmsguardError):
    """The service cannot start: an address in use, a socket path taken, a bad socket from systemd."""


def serve(config: ServeConfig) -> int:
    """Load the bundle and serve it until stopped; 0 after a clean stop."""
    classifier = Classifier.load(config.bundle, **config.load_options())
    _raise_open_files_limit(config.max_connections)
    asyncio.run(_run(config, classifier))
    return 0


async def _run(config: ServeConfig, classifier: Classifier) -> None:
    loop = asyncio.get_running_loop()
    log = AccessLog(config.access_log)
    metrics = Metrics()

    def note(request: Request | None, response: Response, seconds: float, peer: str) -> None:
        log.write(request, response, seconds, peer)
        if request is None:  # refused by the HTTP layer before the API saw it: counted as endpoint "other"
            metrics.request("", response.status, seconds, response.log.get("error"))

    http = HttpServer(lambda request: api.handle(request), Limits(config.max_body, config.read_timeout, config.max_connections), note)
    api = Api(classifier, config, metrics, log, lambda: len(http.connections))
    servers, addresses = await _listen(config, http)
    gc.freeze()  # the loaded bundle (a vocabulary of many small objects) is never garbage; a full collection walking it would stall answers
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_on_signal(api)))
    housekeeping = loop.create_task(_housekeeping(api, log))
    model = api.note_model()
    if not _loopback_only(config):
        console.info(f"note: {config.host} is not a loopback address: anyone who reaches it can classify messages and read /v1/model and /metrics (/v1/reload stays loopback-only)")
    console.step(f"Serving {model['model']} [{model['backend']}] of bundle {config.bundle} (serial {model['serial']}) on {' and '.join(addresses)}; SIGHUP or POST /v1/reload reloads it")
    log.event(event="started", serial=model["serial"], model=model["model"], backend=model["backend"], listen=addresses, pid=os.getpid())
    _notify("READY=1\nSTATUS=serving serial " + str(model["serial"]))
    try:
        await stop.wait()
    finally:
        _notify("STOPPING=1")
        housekeeping.cancel()
        await _stop(servers, http, config.read_timeout)
        api.pool.shutdown()
        log.event(event="stopped", serial=classifier.serial)
        log.close()
        if config.unix and not _systemd_fds():
            with contextlib.suppress(OSError):
                os.unlink(config.unix)


async def _stop(servers: list[asyncio.AbstractServer], http: HttpServer, grace: float) -> None:
    """Stop accepting, let requests being answered finish (at most `grace` seconds), close the rest."""
    for server in servers:
        server.close()
    http.close_idle()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(http.idle.wait(), grace)
    for connection in list(http.connections):
        connection.close()


async def _reload_on_signal(api: Api) -> None:
    with contextlib.suppress(RequestError):  # a refused bundle is in the log; the old model keeps serving
        await api.reload("SIGHUP")


async def _housekeeping(api: Api, log: AccessLog) -> None:
    """Flush the access log every second; with systemd's WatchdogSec, say WATCHDOG=1 while a message can still be scored."""
    loop = asyncio.get_running_loop()
    watchdog = _watchdog_interval()
    probe: asyncio.Future | None = None
    next_ping = loop.time()
    while True:
        await asyncio.sleep(LOG_FLUSH if watchdog is None else min(LOG_FLUSH, watchdog))
        log.flush()
        if watchdog is None or loop.time() < next_ping:
            continue
        if probe is None or probe.done():
            if probe is not None and probe.exception() is None:
                _notify("WATCHDOG=1")
            probe = api.pool.run(lambda: score(api.classifier, ["watchdog"]))
            next_ping = loop.time() + watchdog


def _watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 / 3  # ping three times a period: one late probe does not get the service killed


def _notify(state: str) -> None:
    """sd_notify(3), without libsystemd: one datagram to $NOTIFY_SOCKET when systemd started us."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def _systemd_fds() -> list[int]:
    """The listening sockets systemd passed (socket activation), if they are meant for this process."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = os.environ.get("LISTEN_FDS", "0")
    return list(range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + int(count))) if count.isdigit() else []


async def _listen(config: ServeConfig, http: HttpServer) -> tuple[list[asyncio.AbstractServer], list[str]]:
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    addresses: list[str] = []
    fds = _systemd_fds()
    if fds:
        for fd in fds:
            sock = socket.socket(fileno=fd)
            if sock.family == socket.AF_UNIX:
                servers.append(await loop.create_unix_server(http.protocol, sock=sock))
                addresses.append(f"unix:{sock.getsockname()} (from systemd)")
            else:
                servers.append(await loop.create_server(http.protocol, sock=sock))
                addresses.append(f"http://{_name(sock.getsockname())}/ (from systemd)")
        return servers, addresses
    port = config.tcp_port
    if port is not None:
        try:
            server = await loop.create_server(http.protocol, config.host, port, backlog=BACKLOG)
        except OSError as error:
            msg = f"cannot listen on {config.host}:{port}: {_reason(error)}; is another service on that port? choose another --port"
            raise ServeError(msg) from None
        servers.append(server)
        addresses += [f"http://{_name(s.getsockname())}/" for s in server.sockets]
    if config.unix:
        _clear_stale_socket(Path(config.unix))
        try:
            server = await loop.create_unix_server(http.protocol, config.unix, backlog=BACKLOG)
        except OSError as error:
            msg = f"cannot listen on UNIX socket '{config.unix}': {_reason(error)}; check that its folder exists and is writable"
            raise ServeError(msg) from None
        os.chmod(config.unix, 0o660)  # the owner and its group (for example gammu's user, added to it) may connect
        servers.append(server)
        addresses.append(f"unix:{config.unix}")
    return servers, addresses


def _reason(error: OSError) -> str:
    """The system's words for an error (asyncio wraps them in a longer sentence of its own)."""
    return os.strerror(error.errno) if error.errno else str(error)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a killed server; refuse a live one, or a path that is not a socket."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        msg = f"UNIX socket path '{path}' exists and is not a socket; remove it or choose another --unix"
        raise ServeError(msg)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # nobody listens: a socket file left by a killed server
            return
    msg = f"UNIX socket '{path}' is in use by another server; stop it or choose another --unix"
    raise ServeError(msg)


def _name(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback_only(config: ServeConfig) -> bool:
    if config.tcp_port is None or config.host == "localhost":
        return True
    try:
        return ip_address(config.host).is_loopback
    except ValueError:
        return False


def _raise_open_files_limit(connections: int) -> None:
    """Each connection is a file descriptor; the usual soft limit (1024) is below --max-connections' default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
