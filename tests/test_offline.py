"""The test process talks to this machine only (tests/conftest.py): what smsguard does must work
offline, and a client library's telemetry must not be needed."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from conftest import OutsideRequest


def test_connections_to_other_machines_are_refused() -> None:
    with pytest.raises(OutsideRequest, match=r"refused a request to '192\.0\.2\.1'"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OutsideRequest, match=r"refused a request to '2001:db8::1'"):
        socket.socket(socket.AF_INET6).connect(("2001:db8::1", 80))


def test_name_lookups_other_than_localhost_are_refused() -> None:
    with pytest.raises(OutsideRequest, match=r"refused a request to 'example\.org'"):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(urllib.error.URLError, match="tests talk to this machine only"):
        urllib.request.urlopen("https://example.org/", timeout=1)


def test_this_machine_is_reachable() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname(), timeout=1) as client:
        peer, _ = server.accept()
        with peer:
            client.sendall(b"ok")
            assert peer.recv(2) == b"ok"
    assert socket.getaddrinfo("localhost", 80)
