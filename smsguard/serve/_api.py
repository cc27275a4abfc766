"""The versioned JSON API: what each path answers. Transport-free: a `Request` in, a `Response` out.

Scoring runs in a bounded pool of threads (the native kernel releases the GIL); parsing, checking and
writing the JSON of a classify request happen there too, so the event loop only moves bytes. Past
`workers + queue` requests in flight, a new one gets 503 at once instead of waiting without end.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import json
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring  # C: what json.dumps(ensure_ascii=False) writes a string with
from typing import Any

import numpy as np

from smsguard import __version__
from smsguard.runtime import Bundle, Classifier, Manifest, ReloadError, SmsguardError
from smsguard.runtime.bundle import MANIFEST_NAME
from smsguard.serve._access_log import AccessLog
from smsguard.serve._config import ServeConfig
from smsguard.serve._http import Request, Response, error_response
from smsguard.serve._metrics import CONTENT_TYPE, Metrics
from smsguard.serve._pool import ScoringPool

API_VERSION = 1
INLINE_BODY = 2048  # bytes: a body this small (a few messages) is scored on the loop's thread: handing it to a worker and back costs more
HEALTH_PROBE = "smsguard health check"
EXPECTED = 'expected {"messages": [{"id": ..., "text": "..."}, ...]}'
RESULT_PARTS = 7  # {"id": ID, "probability": P, "label": LABEL}, : one result of an answer, spaced as json.dumps spaces it
_TEXT = operator.itemgetter("text")


class RequestError(Exception):
    """A request the API refuses: its status, error code and one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message)


@dataclass(frozen=True)
class Scored:
    """Probabilities and labels, all from one model: the one whose serial is given."""

    serial: int
    model: str
    probabilities: list[float]
    labels: list[str]


def score(classifier: Classifier, texts: list[str]) -> Scored:
    """Score `texts` on one model and say which: `Classifier.classify` takes the probabilities, the decision, the
    serial and the model file from the model running when the call starts, whatever a reload does meanwhile."""
    classified = classifier.classify(texts)
    return Scored(classified.serial, classified.model, np.round(classified.probabilities.astype(np.float64), 6).tolist(), classified.labels)


def parse_messages(body: bytes, max_messages: int, max_text: int) -> tuple[list[str], list[Any]]:
    """The texts and ids of a classify request, or a `RequestError` naming what is wrong and where."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, "invalid_utf8", f"the request body is not UTF-8: byte 0x{body[error.start]:02x} at offset {error.start}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(400, "invalid_json", f"the request body is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(document, dict) or "messages" not in document:
        raise RequestError(400, "bad_request", f"{EXPECTED}, found {_kind(document)}" + (" without \"messages\"" if isinstance(document, dict) else ""))
    messages = document["messages"]
    if not isinstance(messages, list):
        raise RequestError(400, "bad_request", f'"messages" must be a list, found {_kind(messages)}; {EXPECTED}')
    if len(messages) > max_messages:
        raise RequestError(413, "too_many_messages", f"the request has {len(messages)} messages, more than the limit of {max_messages} (--max-messages); split it")
    try:  # the usual request, checked a column at a time in C; anything unusual is named by the loop below
        texts = list(map(_TEXT, messages))
        ids = list(map(dict.get, messages, itertools.repeat("id")))
    except (TypeError, KeyError):
        pass
    else:
        if set(map(type, texts)) <= {str} and max(map(len, texts), default=0) <= max_text and not set(map(type, ids)) & {dict, list} and _unicode(body, texts):
            return texts, ids
    return _checked(messages, max_text)


def _checked(messages: list[Any], max_text: int) -> tuple[list[str], list[Any]]:
    """The texts and ids, message by message: the first problem raises a `RequestError` naming the message."""
    texts, ids = [], []
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(400, "bad_request", f'messages[{number}] must be an object with a "text" string, found {_kind(message)}')
        value, key = message.get("text"), message.get("id")
        if not isinstance(value, str):
            raise RequestError(400, "bad_request", f'messages[{number}].text must be a string, found {_kind(value)}')
        if len(value) > max_text:
            raise RequestError(413, "text_too_long", f"messages[{number}].text has {len(value)} characters, more than the limit of {max_text} (--max-text)")
        if isinstance(key, (dict, list)):
            raise RequestError(400, "bad_request", f"messages[{number}].id must be a string, a number or null, found {_kind(key)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(400, "invalid_text", f"messages[{number}].text has a lone surrogate (\\u{ord(value[_surrogate(value)]):04x}): not Unicode text") from None
        texts.append(value)
        ids.append(key)
    return texts, ids


def classify_body(classifier: Classifier, body: bytes, max_messages: int, max_text: int) -> tuple[bytes, Scored]:
    """A /v1/classify request body in, its answer's body out (with what scored it): the work of a worker thread."""
    texts, ids = parse_messages(body, max_messages, max_text)
    scored = score(classifier, texts)
    return answer_body(scored, ids), scored


def answer_body(scored: Scored, ids: list[Any]) -> bytes:
    """The answer's JSON, byte for byte what `json.dumps(..., ensure_ascii=False)` writes for it (tests/test_serve.py
    holds them together), but written a column at a time: the results' ids, probabilities and labels each turned to
    JSON by one C function over the column, then laid out in one list of pieces and joined."""
    probabilities = scored.probabilities
    if not all(map(math.isfinite, probabilities)):  # NaN or infinity: json.dumps's own spelling of them
        listed = [{"id": i, "probability": p, "label": label} for i, p, label in zip(ids, probabilities, scored.labels, strict=True)]
        return json.dumps({"serial": scored.serial, "model": scored.model, "results": listed}, ensure_ascii=False).encode() + b"\n"
    kinds = set(map(type, ids))
    id_json = map(int.__repr__, ids) if kinds == {int} else map(encode_basestring, ids) if kinds == {str} else map(_json_value, ids)
    label_json = {label: encode_basestring(label) for label in set(scored.labels)}
    count = len(ids)
    parts: list[str] = [""] * (RESULT_PARTS * count)  # each result's pieces in turn, joined once (no format call a result)
    parts[0::RESULT_PARTS] = ['{"id": '] * count
    parts[1::RESULT_PARTS] = id_json
    parts[2::RESULT_PARTS] = [', "probability": '] * count
    parts[3::RESULT_PARTS] = map(float.__repr__, probabilities)
    parts[4::RESULT_PARTS] = [', "label": '] * count
    parts[5::RESULT_PARTS] = map(label_json.__getitem__, scored.labels)
    parts[6::RESULT_PARTS] = ["}, "] * count
    if count:
        parts[-1] = "}"
    head = f'{{"serial": {_json_value(scored.serial)}, "model": {_json_value(scored.model)}, "results": ['
    return f"{head}{''.join(parts)}]}}\n".encode()


def _json_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _unicode(body: bytes, texts: list[str]) -> bool:
    """No text holds a lone surrogate: only a \\u escape can bring one in (UTF-8 cannot carry it), and UTF-8 cannot encode one."""
    if b"\\u" not in body:
        return True
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(text: str) -> int:
    return next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _json(data: Any, status: int = 200, **log: Any) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode() + b"\n", log=log)


class Api:
    """The routes, the scoring pool and what they share: the classifier, the metrics, the access log."""

    def __init__(self, classifier: Classifier, config: ServeConfig, metrics: Metrics, log: AccessLog, connections: Callable[[], int]) -> None:
        self.classifier, self.config, self.metrics, self.log, self.connections = classifier, config, metrics, log, connections
        self.pool = ScoringPool(config.workers)
        self.capacity = config.workers + config.queue
        self.pending = 0
        self._model: tuple[Bundle, dict[str, Any]] | None = None
        self.routes: dict[str, tuple[tuple[str, ...], Callable[[Request], Any]]] = {
            "/v1/classify": (("POST",), self.classify),
            "/v1/model": (("GET", "HEAD"), self.model),
            "/v1/reload": (("POST",), self.reload_request),
            "/healthz": (("GET", "HEAD"), self.health),
            "/metrics": (("GET", "HEAD"), self.render_metrics),
        }
        self.note_model()

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        route = self.routes.get(request.path)
        if route is None:
            response = error_response(404, "not_found", f"no such path {request.path[:100]!r}; the API has {', '.join(self.routes)}")
        elif request.method not in route[0]:
            allowed = ", ".join(route[0])
            response = error_response(405, "method_not_allowed", f"{request.path} takes {allowed}, not {request.method[:20]}", (("Allow", allowed),))
        else:
            try:
                response = await route[1](request)
            except RequestError as error:
                response = error.response()
        self.metrics.request(request.path, response.status, time.perf_counter() - started, response.log.get("error"))
        return response

    async def _in_pool(self, work: Callable[[], Any]) -> Any:
        if self.pending >= self.capacity:
            message = f"{self.pending} requests are being scored or waiting, the limit (--workers {self.config.workers} + --queue {self.config.queue}); try again shortly"
            raise RequestError(503, "overloaded", message)
        self.pending += 1
        try:
            return await self.pool.run(work)
        finally:
            self.pending -= 1

    async def classify(self, request: Request) -> Response:
        config = self.config
        work = lambda: classify_body(self.classifier, request.body, config.max_messages, config.max_text)  # noqa: E731
        body, scored = work() if len(request.body) <= INLINE_BODY else await self._in_pool(work)
        for label in set(scored.labels):  # counted in C (list.count), not one increment a message on the loop's thread
            self.metrics.messages[label] += scored.labels.count(label)
        return Response(200, body, log={"messages": len(scored.labels), "serial": scored.serial})

    async def model(self, request: Request) -> Response:
        return _json(self.note_model(), serial=self.classifier.serial)

    async def health(self, request: Request) -> Response:
        scored = await self._in_pool(lambda: score(self.classifier, [HEALTH_PROBE]))
        return _json({"status": "ok", "serial": scored.serial, "model": scored.model}, serial=scored.serial)

    async def render_metrics(self, request: Request) -> Response:
        self.note_model()
        return Response(200, self.metrics.render(self.pending, self.connections()), content_type=CONTENT_TYPE)

    async def reload_request(self, request: Request) -> Response:
        if not request.local:
            raise RequestError(403, "forbidden", "/v1/reload is answered on loopback and the UNIX socket only; send SIGHUP or POST from the machine itself")
        return await self.reload(f"POST /v1/reload from {request.peer}")

    async def reload(self, cause: str) -> Response:
        """`Classifier.reload` of the configured bundle folder, in a thread of its own: scoring goes on meanwhile."""
        before = self.classifier.serial
        try:
            swapped = await asyncio.get_running_loop().run_in_executor(None, self.classifier.reload, self.config.bundle)
        except ReloadError as error:
            self.metrics.reloads["refused"] += 1
            self.log.event(event="reload", cause=cause, result="refused", serial=before, error=str(error))
            raise RequestError(409, "reload_refused", str(error)) from None
        result = "swapped" if swapped else "unchanged"
        if swapped:
            gc.freeze()  # as at start: the new bundle's objects out of the collector's way (the old ones are freed by reference counting)
        self.metrics.reloads[result] += 1
        model = self.note_model()
        self.log.event(event="reload", cause=cause, result=result, serial=model["serial"], previous_serial=before)
        return _json({"reloaded": swapped, "serial": model["serial"], "previous_serial": before, "model": model["model"]}, serial=model["serial"])

    def note_model(self) -> dict[str, Any]:
        """What /v1/model says of the model serving now (computed once per bundle), also set in the metrics."""
        bundle = self.classifier.bundle
        if self._model is None or self._model[0] is not bundle:
            document: dict[str, Any] = {
                "api_version": API_VERSION,
                "serial": bundle.manifest.serial,
                "manifest_sha256": _manifest_sha256(bundle),
                "model": self.classifier.model.name,
                "backend": self.classifier.backend,
                "threshold": self.classifier.threshold,
                "labels": list(bundle.labels),
                "created": bundle.manifest.created,
                "signed_by": bundle.signed_by,
                "smsguard_version": __version__,
            }
            self._model = (bundle, document)
            self.metrics.serial = bundle.manifest.serial
            self.metrics.model_info = {"model": document["model"], "backend": document["backend"], "manifest_sha256": str(document["manifest_sha256"])}
        return self._model[1]


def _manifest_sha256(bundle: Bundle) -> str | None:
    """The SHA-256 of the manifest file as it is now, when it still holds the loaded manifest (an updater may
    have replaced the folder since); else None."""
    path = bundle.path / MANIFEST_NAME
    try:
        raw = path.read_bytes()
        same = Manifest.from_dict(json.loads(raw), path) == bundle.manifest
    except (OSError, ValueError, SmsguardError):  # not the loaded bundle any more: say nothing rather than a wrong hash
        return None
    return hashlib.sha256(raw).hexdigest() if same else None
