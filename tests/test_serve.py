"""`smsguard serve` as a client sees it: the API, its refusals (status and one-line JSON error), limits,
reloads, metrics and the access log, on a real server process with a real bundle, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest
from serve_helpers import ROOT, Server, bundle_variant, point, raw_exchange, request, running, smsguard_command, split_response

from smsguard.runtime import Classifier, ConfigError
from smsguard.serve import Client, ServeConfig

MESSAGES = [
    "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only.",
    "Are we still on for dinner tonight? I'll be there around 7.",
    "Привет! Ты придёшь завтра? 🙂",
    "",
    "URGENT! Your mobile number has won £2000 bonus caller prize. Call 09058095201 now",
]
LIMITS = ("--max-body", "4096", "--max-messages", "8", "--max-text", "300", "--read-timeout", "1", "--workers", "2", "--queue", "4")


@pytest.fixture(scope="module")
def bundle_link(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle behind a symlink, as an updater keeps it; the module's reload test re-points it."""
    folder = tmp_path_factory.mktemp("serve")
    link = folder / "current"
    point(link, tiny_bundle)
    return link


@pytest.fixture(scope="module")
def server(bundle_link: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve-log") / "access.jsonl"
    with running(bundle_link, *LIMITS, log=log) as server:
        yield server


@pytest.fixture(scope="module")
def reference(tiny_bundle: Path) -> Classifier:
    return Classifier.load(tiny_bundle)


def one_line_error(body: object, code: str, message: str) -> None:
    assert body == {"error": message, "code": code}


def test_classify_answers_in_order_with_ids_labels_and_the_serial(server: Server, reference: Classifier) -> None:
    status, _, body = request(server, "POST", "/v1/classify", {"messages": [{"id": f"m{n}", "text": t} for n, t in enumerate(MESSAGES)]})
    assert status == 200
    assert body["serial"] == reference.serial
    assert body["model"] == reference.model.name
    assert [r["id"] for r in body["results"]] == [f"m{n}" for n in range(len(MESSAGES))]
    assert [r["label"] for r in body["results"]] == reference.predict(MESSAGES)
    assert [r["probability"] for r in body["results"]] == [round(float(p), 6) for p in reference.predict_proba(MESSAGES)]


def test_a_message_without_id_gets_null_and_no_messages_get_no_results(server: Server, reference: Classifier) -> None:
    assert request(server, "POST", "/v1/classify", {"messages": [{"text": "hi"}]})[2]["results"][0]["id"] is None
    assert request(server, "POST", "/v1/classify", {"messages": []})[2] == {"serial": reference.serial, "model": reference.model.name, "results": []}


def test_model_names_serial_manifest_hash_model_backend_threshold(server: Server, tiny_bundle: Path, reference: Classifier) -> None:
    status, _, body = request(server, "GET", "/v1/model")
    assert status == 200
    assert body["serial"] == reference.serial
    assert body["manifest_sha256"] == hashlib.sha256((tiny_bundle / "manifest.json").read_bytes()).hexdigest()
    assert (body["model"], body["backend"], body["threshold"], body["labels"]) == (reference.model.name, reference.backend, reference.threshold, ["ham", "spam"])
    assert body["api_version"] == 1


def test_healthz_scores_a_message(server: Server, reference: Classifier) -> None:
    status, _, body = request(server, "GET", "/healthz")
    assert (status, body) == (200, {"status": "ok", "serial": reference.serial, "model": reference.model.name})


def test_many_requests_on_one_kept_alive_connection(server: Server) -> None:
    connection = server.connection()
    sockets = set()
    for n in range(20):
        connection.request("POST", "/v1/classify", body=json.dumps({"messages": [{"id": n, "text": f"message {n}"}]}))
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["results"][0]["id"] == n
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1


def test_expect_100_continue_pipelining_and_head_are_answered_as_http_1_1_says(server: Server) -> None:
    body = b'{"messages": [{"id": "x", "text": "hello"}]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/classify HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"  # curl waits for it before sending a body over 1 KB
        sock.sendall(body)
        status, _, answer = split_response(sock.recv(65536))
        assert (status, json.loads(answer)["results"][0]["id"]) == (200, "x")
        two = b"GET /healthz HTTP/1.1\r\n\r\nHEAD /v1/model HTTP/1.1\r\nConnection: close\r\n\r\n"
        sock.sendall(two)  # pipelined: answered in order
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    first, _, rest = raw.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in first.split(b"\r\n") if line.lower().startswith(b"content-length")))
    status, headers, empty = split_response(rest[length:])
    assert first.startswith(b"HTTP/1.1 200") and json.loads(rest[:length])["status"] == "ok"
    assert (status, headers["connection"], empty) == (200, "close", b"")  # HEAD: the length of the body, no body
    assert int(headers["content-length"]) > 0


REFUSALS = [
    (b"{not json", 400, "invalid_json", "the request body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b'{"messages": [{"text": "caf\xe9"}]}', 400, "invalid_utf8", "the request body is not UTF-8: byte 0xe9 at offset 27"),
    (b'["a"]', 400, "bad_request", 'expected {"messages": [{"id": ..., "text": "..."}, ...]}, found a list'),
    (b'{"texts": []}', 400, "bad_request", 'expected {"messages": [{"id": ..., "text": "..."}, ...]}, found an object without "messages"'),
    (b'{"messages": "hi"}', 400, "bad_request", '"messages" must be a list, found a string; expected {"messages": [{"id": ..., "text": "..."}, ...]}'),
    (b'{"messages": ["hi"]}', 400, "bad_request", 'messages[0] must be an object with a "text" string, found a string'),
    (b'{"messages": [{"text": "ok"}, {"text": 5}]}', 400, "bad_request", "messages[1].text must be a string, found a number"),
    (b'{"messages": [{"text": null}]}', 400, "bad_request", "messages[0].text must be a string, found null"),
    (b'{"messages": [{"text": "x", "id": {"a": 1}}]}', 400, "bad_request", "messages[0].id must be a string, a number or null, found an object"),
    (b'{"messages": [{"text": "\\ud800"}]}', 400, "invalid_text", "messages[0].text has a lone surrogate (\\ud800): not Unicode text"),
    # each problem after good messages (the usual request is checked a column at a time; the first problem is still named)
    (b'{"messages": [{"text": "caf\\u00e9"}, {"text": "x\\udc00y"}]}', 400, "invalid_text", "messages[1].text has a lone surrogate (\\udc00): not Unicode text"),
    (b'{"messages": [{"text": "ok"}, {"text": "b", "id": [1]}]}', 400, "bad_request", "messages[1].id must be a string, a number or null, found a list"),
    (b'{"messages": [{"text": "ok"}, {"id": 2}]}', 400, "bad_request", "messages[1].text must be a string, found null"),
    (b'{"messages": [{"text": "ok"}, 7]}', 400, "bad_request", 'messages[1] must be an object with a "text" string, found a number'),
    (json.dumps({"messages": [{"text": "a"}] * 9}).encode(), 413, "too_many_messages", "the request has 9 messages, more than the limit of 8 (--max-messages); split it"),
    (json.dumps({"messages": [{"text": "é" * 301}]}).encode(), 413, "text_too_long", "messages[0].text has 301 characters, more than the limit of 300 (--max-text)"),
    (json.dumps({"messages": [{"text": "ok"}, {"text": "é" * 301}]}).encode(), 413, "text_too_long", "messages[1].text has 301 characters, more than the limit of 300 (--max-text)"),
]


@pytest.mark.parametrize(("body", "status", "code", "message"), REFUSALS, ids=[r[2] + str(n) for n, r in enumerate(REFUSALS)])
def test_a_bad_classify_request_is_refused_with_its_status_and_a_one_line_json_error(server: Server, body: bytes, status: int, code: str, message: str) -> None:
    connection = server.connection()
    connection.request("POST", "/v1/classify", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    raw = response.read()
    assert response.status == status
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    one_line_error(json.loads(raw), code, message)
    connection.request("POST", "/v1/classify", body=b'{"messages": [{"text": "still here"}]}')  # the connection keeps working
    assert connection.getresponse().status == 200
    connection.close()


HTTP_REFUSALS = [
    (b"GET /v2/classify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found", "no such path '/v2/classify'; the API has /v1/classify, /v1/model, /v1/reload, /healthz, /metrics"),
    (b"GET /v1/classify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed", "/v1/classify takes POST, not GET"),
    (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n\r\n", 411, "length_required", "a POST request needs a Content-Length header"),
    (b"POST /v1/classify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501, "chunked_body", "request bodies sent with Transfer-Encoding are not supported; send Content-Length"),
    (b"POST /v1/classify HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n", 413, "body_too_large", "the request body has 10485760 bytes, more than the limit of 4096 (--max-body)"),
    (b"POST /v1/classify HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "bad_content_length", "Content-Length '-1' is not a number of bytes"),
    (b"HELLO\r\n\r\n", 400, "bad_request_line", "the request line is not METHOD PATH HTTP/1.1: 'HELLO'"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "http_version", "HTTP version 'HTTP/2.0' is not supported; use HTTP/1.1"),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431, "head_too_large", "the request line and headers are over 16384 bytes"),
    (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad_header", "malformed header line 'no colon here'"),
]


@pytest.mark.parametrize(("data", "status", "code", "message"), HTTP_REFUSALS, ids=[r[2] for r in HTTP_REFUSALS])
def test_a_request_that_breaks_http_or_a_limit_is_refused(server: Server, data: bytes, status: int, code: str, message: str) -> None:
    got_status, headers, body = split_response(raw_exchange(server.port, data, timeout=5))
    assert got_status == status
    assert body.count(b"\n") == 1
    one_line_error(json.loads(body), code, message)
    if status == 405:
        assert headers["allow"] == "POST"


def test_a_10_mb_body_is_refused_from_its_length_before_it_is_read(server: Server) -> None:
    head = b"POST /v1/classify HTTP/1.1\r\nContent-Length: 10485760\r\nContent-Type: application/json\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + b"[" * 65536)
        status, headers, _ = split_response(sock.recv(65536))
    assert (status, headers["connection"]) == (413, "close")


def test_a_client_sending_one_byte_at_a_time_gets_408_while_others_are_served(server: Server) -> None:
    data = b'POST /v1/classify HTTP/1.1\r\nContent-Length: 30\r\n\r\n{"messages": [{"text": "a"}]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        for byte in data:
            slow.sendall(bytes([byte]))
            assert request(server, "GET", "/healthz")[0] == 200  # others keep being served meanwhile
            if select.select([slow], [], [], 0.2)[0]:  # answered: stop sending
                break
        status, _, body = split_response(slow.recv(65536))
    assert status == 408
    one_line_error(json.loads(body), "read_timeout", "the request did not arrive whole within 1 s (--read-timeout)")


def test_an_idle_connection_is_closed_after_the_read_timeout(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(1) == b""  # closed by the server, with nothing sent
        assert time.monotonic() - started > 0.8  # kept open for the read timeout, not closed at once


def test_metrics_count_requests_errors_latency_and_name_the_serial(server: Server, reference: Classifier) -> None:
    request(server, "POST", "/v1/classify", {"messages": [{"text": MESSAGES[0]}, {"text": MESSAGES[1]}]})
    request(server, "POST", "/v1/classify", body=b"{")
    status, headers, text = request(server, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert int(lines['smsguard_requests_total{endpoint="/v1/classify",status="200"}']) >= 1
    assert int(lines['smsguard_request_errors_total{code="invalid_json"}']) >= 1
    assert sum(int(lines.get(f'smsguard_messages_total{{label="{label}"}}', 0)) for label in ("ham", "spam")) >= 2
    assert int(lines['smsguard_request_duration_seconds_bucket{endpoint="/v1/classify",le="+Inf"}']) == int(lines['smsguard_request_duration_seconds_count{endpoint="/v1/classify"}'])
    assert int(lines["smsguard_model_serial"]) == reference.serial


def test_the_access_log_has_one_json_object_per_request(server: Server) -> None:
    request(server, "POST", "/v1/classify", body=b"{")
    request(server, "GET", "/v1/model")
    assert server.log is not None
    deadline = time.monotonic() + 10  # the log is flushed once a second
    while time.monotonic() < deadline:
        entries = [json.loads(line) for line in server.log.read_text(encoding="utf-8").splitlines()]
        if any(e.get("path") == "/v1/model" for e in entries):
            break
        time.sleep(0.1)
    assert entries[0]["event"] == "started"
    requests = [e for e in entries if "status" in e]
    assert {"time", "peer", "method", "path", "status", "bytes_in", "bytes_out", "ms"} <= set(requests[-1])
    assert any(e.get("error") == "invalid_json" for e in requests)


def test_reload_takes_a_newer_bundle_and_refuses_a_broken_one_while_serving(server: Server, bundle_link: Path, tiny_bundle: Path, reference: Classifier, tmp_path: Path) -> None:
    status, _, body = request(server, "POST", "/v1/reload")
    assert (status, body["reloaded"], body["serial"]) == (200, False, reference.serial)
    newer = bundle_variant(tiny_bundle, tmp_path / "newer", serial=reference.serial + 1)
    point(bundle_link, newer)
    status, _, body = request(server, "POST", "/v1/reload")
    assert (status, body) == (200, {"reloaded": True, "serial": reference.serial + 1, "previous_serial": reference.serial, "model": reference.model.name})
    assert request(server, "POST", "/v1/classify", {"messages": [{"text": "hi"}]})[2]["serial"] == reference.serial + 1
    broken = bundle_variant(tiny_bundle, tmp_path / "broken", serial=reference.serial + 2)
    (broken / "vocab.json").write_text("{}", encoding="utf-8")
    point(bundle_link, broken)
    status, _, body = request(server, "POST", "/v1/reload")
    assert status == 409 and body["code"] == "reload_refused"
    assert body["error"].startswith(f"bundle '{bundle_link}' not taken, still running serial {reference.serial + 1} from '{bundle_link}': bundle file '{bundle_link / 'vocab.json'}' does not match its manifest")
    assert request(server, "POST", "/v1/classify", {"messages": [{"text": "hi"}]})[2]["serial"] == reference.serial + 1
    point(bundle_link, newer)


def test_reload_is_refused_to_a_peer_that_is_not_local(tiny_bundle: Path, reference: Classifier) -> None:
    """Tests bind loopback only, so the API is asked directly, as the HTTP layer does for a peer that is neither
    loopback nor the UNIX socket (a service bound to another address)."""
    import asyncio

    from smsguard.serve._access_log import AccessLog
    from smsguard.serve._api import Api
    from smsguard.serve._http import Request
    from smsguard.serve._metrics import Metrics

    api = Api(reference, ServeConfig(bundle=str(tiny_bundle)), Metrics(), AccessLog("off"), lambda: 0)
    response = asyncio.run(api.handle(Request("POST", "/v1/reload", {}, b"", "192.0.2.7:5000", local=False)))
    api.pool.shutdown()
    assert response.status == 403
    one_line_error(json.loads(response.body), "forbidden", "/v1/reload is answered on loopback and the UNIX socket only; send SIGHUP or POST from the machine itself")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("workers", 0, "--workers must be at least 1, not 0"),
        ("max_body", -5, "--max-body must be at least 1, not -5"),
        ("queue", -1, "--queue must be 0 or more, not -1"),
        ("read_timeout", 0.0, "--read-timeout must be more than 0 seconds, not 0.0"),
        ("port", 70000, "--port must be between 0 and 65535, not 70000"),
    ],
)
def test_a_setting_out_of_range_is_refused_naming_its_flag(field: str, value: object, error: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(error)}$"):
        ServeConfig(bundle="b", **{field: value})


def test_a_bad_flag_is_one_line_and_status_2(tiny_bundle: Path) -> None:
    done = subprocess.run(smsguard_command("serve", "--bundle", str(tiny_bundle), "--workers", "0"), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip()) == (2, "ERROR invalid argument: --workers must be at least 1, not 0")


def test_a_port_in_use_is_one_line_and_status_2(server: Server, tiny_bundle: Path) -> None:
    done = subprocess.run(smsguard_command("serve", "--bundle", str(tiny_bundle), "--port", str(server.port)), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"ERROR cannot listen on 127.0.0.1:{server.port}: Address already in use; is another service on that port? choose another --port"


def test_the_unix_socket_serves_and_a_stale_one_is_replaced(tiny_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "serve.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on, as a killed server leaves it
    with running(tiny_bundle, "--unix", str(path)) as server:
        assert server.port == 0
        client = Client(unix=str(path))
        assert client.classify(["hello"])["results"][0]["id"] == 0
        assert client.request("POST", "/v1/reload")["reloaded"] is False  # the UNIX socket is local
        assert oct(path.stat().st_mode & 0o777) == "0o660"
    assert not path.exists()  # removed on a clean stop


@pytest.mark.parametrize(
    "ids",
    [
        [0, 1, 2, 3, 4],
        ["m0", 'q"u\\o\nte\x01', "Привет 🙂", "\u2028", ""],
        [None, True, False, 1.5, float("nan")],
        [-0.0, 1e300, 10**30, "x", 7],
        [],
    ],
)
def test_the_answer_is_written_byte_for_byte_as_json_dumps_writes_it(ids: list) -> None:
    """The answer is formatted a column at a time (for speed); what a client reads must be json.dumps's output exactly,
    whatever the ids are (any JSON scalar), and with json.dumps's own spelling of a probability that is not finite."""
    from smsguard.serve._api import Scored, answer_body

    for probabilities in ([0.5, 1e-06, 0.0, 1.0, 0.123456][: len(ids)], [float("nan"), float("inf"), 0.25, 0.5, 0.75][: len(ids)]):
        labels = ["spam" if p >= 0.5 else "ham" for p in probabilities]
        scored = Scored(1796411769, "model.int8.npz", probabilities, labels)
        results = [{"id": i, "probability": p, "label": label} for i, p, label in zip(ids, probabilities, labels, strict=True)]
        expected = json.dumps({"serial": scored.serial, "model": scored.model, "results": results}, ensure_ascii=False).encode() + b"\n"
        assert answer_body(scored, ids) == expected
