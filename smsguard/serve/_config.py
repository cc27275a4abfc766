"""`ServeConfig`: the settings of `smsguard serve`, one field per flag, checked when made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smsguard.runtime import ConfigError

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeConfig:
    bundle: str  # the bundle folder; reloads read it again, so it may be a symlink an updater re-points
    trusted_key: tuple[str, ...] = ()  # public key files: a signature by one of them is required (default: $SMSGUARD_TRUSTED_KEYS, else none)
    backend: str = "auto"  # the inference backend, as for `smsguard predict`
    model: str | None = None  # a model file of the bundle (default: the recommended one for the backend)
    host: str = "127.0.0.1"  # loopback: only this machine can connect; another address exposes the API to that network
    port: int | None = None  # TCP port (default: 8000, unless only --unix is given; 0 picks a free one)
    unix: str | None = None  # also (or only) listen on this UNIX socket, mode 0660: for local clients such as the gammu hook
    max_body: int = 1_048_576  # bytes in one request body; more is refused with 413 before it is read
    max_messages: int = 1000  # messages in one /v1/classify request
    max_text: int = 10_000  # characters in one message (a 64-part SMS is under 10,000)
    read_timeout: float = 10.0  # seconds to receive a whole request (head and body), and to keep an idle connection open
    workers: int = 2  # threads that score requests (the kernel releases the GIL, so two use both cores of a Pi 3)
    queue: int = 64  # requests waiting for a worker; past it, 503 with Retry-After
    max_connections: int = 2048  # open connections; past it, new ones get 503 and are closed
    access_log: str = "-"  # one JSON line per request: '-' for stderr (the journal under systemd), a file, or 'off'

    def __post_init__(self) -> None:
        positive = {
            "max_body": self.max_body, "max_messages": self.max_messages, "max_text": self.max_text, "workers": self.workers,
            "max_connections": self.max_connections,
        }
        for name, value in positive.items():
            if value < 1:
                msg = f"--{name.replace('_', '-')} must be at least 1, not {value}"
                raise ConfigError(msg)
        if self.queue < 0:
            msg = f"--queue must be 0 or more, not {self.queue}"
            raise ConfigError(msg)
        if not self.read_timeout > 0:
            msg = f"--read-timeout must be more than 0 seconds, not {self.read_timeout}"
            raise ConfigError(msg)
        if self.port is not None and not 0 <= self.port <= 65535:
            msg = f"--port must be between 0 and 65535, not {self.port}"
            raise ConfigError(msg)

    @property
    def tcp_port(self) -> int | None:
        """The TCP port to listen on; None when only a UNIX socket was asked for."""
        if self.port is None:
            return None if self.unix else DEFAULT_PORT
        return self.port

    def load_options(self) -> dict[str, Any]:
        """The keyword arguments of `Classifier.load` (and of a new setting such as a personal folder: one field, one entry)."""
        return {"backend": self.backend, "model": self.model, "trusted_keys": list(self.trusted_key) or None}
