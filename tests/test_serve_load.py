"""`smsguard serve` under load and faults, on 127.0.0.1, bounded in time and count: reloads during load
(good and bad bundles), the fault list (bad bodies, a 10 MB body, 100,000 messages, a client sending one
byte a second, 1,000 idle connections) while another client keeps being served, kill -9 and restart,
and a socket passed the way systemd's socket activation does. Behaviour is asserted, never a timing."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import resource
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import ROOT, Server, bundle_variant, point, raw_exchange, request, running, smsguard_command, split_response

from smsguard.runtime import Classifier
from smsguard.serve import Client

pytestmark = pytest.mark.slow
LOAD_CLIENTS = 4
RELOADS = 10


class Load:
    """Clients on kept-alive connections sending `body` until stopped; every answer is checked by `check`."""

    def __init__(self, port: int, body: Callable[[int], bytes], check: Callable[[dict], None], clients: int = LOAD_CLIENTS, limit: float = 120.0) -> None:
        self.port, self.body, self.check, self.limit = port, body, check, limit
        self.ok, self.failed, self.serials = 0, [], set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _client(self, number: int) -> None:
        deadline = time.monotonic() + self.limit  # bounded, whatever happens to the test
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = 0
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                connection.request("POST", "/v1/classify", body=self.body(sent), headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                assert response.status == 200, answer
                self.check(answer)
                with self.lock:
                    self.ok += 1
                    self.serials.add(answer["serial"])
            except (OSError, http.client.HTTPException, AssertionError, ValueError) as error:
                with self.lock:
                    self.failed.append(f"client {number}: {type(error).__name__}: {error}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                time.sleep(0.05)
            sent += 1
        connection.close()


@pytest.fixture(scope="module")
def probe(fused_bundle: Path, uci_texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Messages spread over the probability range, and their probabilities in this process."""
    classifier = Classifier.load(fused_bundle)
    texts = uci_texts[:400]
    p = classifier.predict_proba(texts)
    order = np.argsort(p)
    chosen = [texts[i] for i in order[np.linspace(0, len(order) - 1, 24).astype(int)]]
    return chosen, classifier.predict_proba(chosen)


def test_ten_reloads_during_load_alternating_good_and_bad_bundles_fail_no_request(fused_bundle: Path, probe, tmp_path: Path) -> None:
    texts, probabilities = probe
    base = Classifier.load(fused_bundle)
    cuts = np.sort(probabilities)
    thresholds = {base.serial: base.threshold}
    bundles = []
    for n in range(RELOADS):
        serial = base.serial + n + 1
        if n % 2 == 0:  # good: a newer serial whose threshold cuts the probe messages elsewhere
            threshold = float((cuts[4 + 3 * n // 2] + cuts[5 + 3 * n // 2]) / 2)
            bundles.append(bundle_variant(fused_bundle, tmp_path / f"good{n}", serial, threshold))
            thresholds[serial] = threshold
        else:  # bad: a model file that does not match its manifest
            bad = bundle_variant(fused_bundle, tmp_path / f"bad{n}", serial, 0.5)
            model = bad / base.model.name
            model.write_bytes(model.read_bytes()[:-10])
            bundles.append(bad)
    expected = {serial: ["spam" if float(p) >= t else "ham" for p in probabilities] for serial, t in thresholds.items()}
    assert len({tuple(labels) for labels in expected.values()}) == len(expected)  # each serial answers differently
    rounded = [round(float(p), 6) for p in probabilities]
    body = json.dumps({"messages": [{"id": n, "text": t} for n, t in enumerate(texts)]}).encode()

    def consistent(answer: dict) -> None:
        assert [r["label"] for r in answer["results"]] == expected[answer["serial"]], f"labels of serial {answer['serial']} expected"
        assert [r["probability"] for r in answer["results"]] == rounded

    link = tmp_path / "current"
    point(link, fused_bundle)
    results = []
    with running(link, "--access-log", "off") as server, Load(server.port, lambda _: body, consistent) as load:
        time.sleep(0.5)
        for n, bundle in enumerate(bundles):
            point(link, bundle)
            if n % 4 < 2:
                status, _, answer = request(server, "POST", "/v1/reload")
                results.append((status, answer.get("serial", answer.get("code"))))
            else:
                server.process.send_signal(signal.SIGHUP)
                time.sleep(1.0)
                results.append(("SIGHUP", request(server, "GET", "/v1/model")[2]["serial"]))
            time.sleep(0.3)
        time.sleep(0.5)
        final = request(server, "GET", "/v1/model")[2]["serial"]
    assert load.failed == []
    assert load.ok > RELOADS
    for n, (how, said) in enumerate(results):
        good_serial = base.serial + n + 1 - n % 2  # after a bad one, the good one before it still serves
        assert said == (good_serial if n % 2 == 0 or how == "SIGHUP" else "reload_refused"), (n, how, said)
    last_good = base.serial + RELOADS - 1
    assert final == last_good
    assert load.serials <= set(expected) and last_good in load.serials


def test_faults_are_refused_or_timed_out_while_another_client_is_served(fused_bundle: Path, probe) -> None:
    texts, probabilities = probe
    rounded = [round(float(p), 6) for p in probabilities]
    body = json.dumps({"messages": [{"text": t} for t in texts[:4]]}).encode()

    def same(answer: dict) -> None:
        assert [r["probability"] for r in answer["results"]] == rounded[:4]

    _raise_open_files(2400)
    with running(fused_bundle, "--access-log", "off", "--read-timeout", "3") as server, Load(server.port, lambda _: body, same, clients=1) as load:
        port = server.port
        for data, status, code in [
            (b"{oops", 400, "invalid_json"),
            (b'{"messages": [{"text": "\xff\xfe"}]}', 400, "invalid_utf8"),
            (b'{"messages": [{"text": ["a"]}]}', 400, "bad_request"),
            (json.dumps({"messages": [{"text": "hi"}] * 100_000}).encode(), 413, "body_too_large"),
            (b"x" * 10 * 1024 * 1024, 413, "body_too_large"),
        ]:
            head = f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            got, _, answer = split_response(raw_exchange(port, head + data, timeout=10))
            assert (got, json.loads(answer)["code"]) == (status, code)
        got, _, answer = _one_byte_a_second(port)
        assert (got, json.loads(answer)["code"]) == (408, "read_timeout")
        with _idle_connections(port, 1000) as idle:
            assert request(server, "GET", "/healthz")[0] == 200  # served beside a thousand idle connections
            time.sleep(3.5)
            closed = sum(_closed_by_server(s) for s in idle)
        assert closed == 1000  # each timed out and closed by the server
    assert load.failed == [] and load.ok > 0
    assert "Traceback" not in server.stop()


def test_a_hundred_thousand_messages_in_one_request_are_refused_by_count(fused_bundle: Path) -> None:
    body = json.dumps({"messages": [{"text": "hi"}] * 100_000}).encode()
    with running(fused_bundle, "--access-log", "off", "--max-body", str(4 * len(body))) as server:
        status, _, answer = request(server, "POST", "/v1/classify", body=body)
        assert (status, answer["code"]) == (413, "too_many_messages")
        assert answer["error"] == "the request has 100000 messages, more than the limit of 1000 (--max-messages); split it"
        assert request(server, "POST", "/v1/classify", {"messages": [{"text": "hi"}]})[0] == 200


def test_kill_9_under_load_then_restart_comes_back_with_the_bundle_intact(fused_bundle: Path, tmp_path: Path) -> None:
    before = _hashes(fused_bundle)
    port = _free_port()
    sock, log = tmp_path / "serve.sock", tmp_path / "access.jsonl"
    flags = ("--port", str(port), "--unix", str(sock), "--access-log", str(log))
    body = json.dumps({"messages": [{"text": "WIN a prize now"}]}).encode()
    first = Server(fused_bundle, *flags)
    with Load(port, lambda _: body, lambda answer: None) as during:
        time.sleep(1.0)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        served_before = during.ok
        second = Server(fused_bundle, *flags)  # the socket file of the killed server is still there
        time.sleep(1.0)
    try:
        assert served_before > 0 and during.ok > served_before  # served before the kill and after the restart
        down = ("ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "BrokenPipeError")
        assert all(failure.split(": ")[1] in down for failure in during.failed), during.failed  # only while it was down
        with Load(port, lambda _: body, lambda answer: None) as after:
            time.sleep(1.0)
        assert after.failed == [] and after.ok > 0
        assert Client(unix=str(sock)).classify(["hi"])["results"][0]["id"] == 0  # the UNIX socket is back too
    finally:
        second.stop()
    assert _hashes(fused_bundle) == before
    lines = log.read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)  # no half-written line from the killed one
    assert [json.loads(line).get("event") for line in lines].count("started") == 2


def test_it_serves_the_socket_systemd_passes(fused_bundle: Path) -> None:
    """Socket activation: the listening socket is fd 3, LISTEN_PID names the service's pid (sh's, kept by exec)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    script = 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3<&0 0</dev/null'
    process = subprocess.Popen(["sh", "-c", script, "sh", *smsguard_command("serve", "--bundle", str(fused_bundle), "--access-log", "off")],
                               cwd=ROOT, stdin=listener.fileno(), stderr=subprocess.PIPE, text=True)
    listener.close()
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"on http://127.0.0.1:{port}/ (from systemd)" in line, line
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


# ---- helpers ----


def _one_byte_a_second(port: int) -> tuple[int, dict, bytes]:
    """A client sending its request a byte a second, until the server answers."""
    data = b'POST /v1/classify HTTP/1.1\r\nContent-Length: 30\r\n\r\n{"messages": [{"text": "a"}]}'
    with socket.create_connection(("127.0.0.1", port), timeout=15) as slow:
        for byte in data:
            slow.sendall(bytes([byte]))
            if select.select([slow], [], [], 1.0)[0]:
                break
        return split_response(slow.recv(65536))


@contextlib.contextmanager
def _idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield sockets
    finally:
        for s in sockets:
            s.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except OSError:
        return False


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_load_client_counts_failures(fused_bundle: Path) -> None:
    """The load client itself: against a server that answers 400, every request is a failure."""
    with running(fused_bundle, "--access-log", "off") as server, Load(server.port, lambda _: b"{", lambda a: None, clients=1) as load:
        time.sleep(0.5)
    assert load.ok == 0 and len(load.failed) > 0 and "400" in load.failed[0]
    assert os.path.exists(fused_bundle)
