"""The HTTP stacks `smsguard serve` was chosen against, each serving the same two routes with the same work
(`classify_body`, `score` from smsguard.serve._api) so that only the HTTP layer differs:

    python benchmarks/_serve_stacks.py STACK --bundle DIR --port N

STACK: `http.server` (the standard library's ThreadingHTTPServer, HTTP/1.1 keep-alive, a thread per
connection), `tornado` (PyPI), `aiohttp` (PyPI). `smsguard serve` itself is the fourth candidate (asyncio
with its own small HTTP/1.1 layer). Used by benchmarks/serve.py; not shipped."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from smsguard.runtime import Classifier
from smsguard.serve._api import RequestError, classify_body, score

MAX_MESSAGES, MAX_TEXT, WORKERS = 1000, 10_000, 2  # smsguard serve's defaults


def _health(classifier: Classifier) -> bytes:
    scored = score(classifier, ["smsguard health check"])
    return json.dumps({"status": "ok", "serial": scored.serial}).encode()


def _classify(classifier: Classifier, body: bytes) -> tuple[int, bytes]:
    try:
        return 200, classify_body(classifier, body, MAX_MESSAGES, MAX_TEXT)[0]
    except RequestError as error:
        return error.status, json.dumps({"error": error.message, "code": error.code}).encode()


def run_http_server(classifier: Classifier, port: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(200, _health(classifier))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(*_classify(classifier, body))

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def run_tornado(classifier: Classifier, port: int) -> None:
    import asyncio

    import tornado.web

    pool = ThreadPoolExecutor(WORKERS)

    class Health(tornado.web.RequestHandler):
        async def get(self) -> None:
            self.write(await asyncio.get_running_loop().run_in_executor(pool, _health, classifier))

    class Classify(tornado.web.RequestHandler):
        async def post(self) -> None:
            status, body = await asyncio.get_running_loop().run_in_executor(pool, _classify, classifier, self.request.body)
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.write(body)

    async def main() -> None:
        tornado.web.Application([("/healthz", Health), ("/v1/classify", Classify)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def run_aiohttp(classifier: Classifier, port: int) -> None:
    import asyncio

    from aiohttp import web

    pool = ThreadPoolExecutor(WORKERS)

    async def health(request: web.Request) -> web.Response:
        return web.Response(body=await asyncio.get_running_loop().run_in_executor(pool, _health, classifier), content_type="application/json")

    async def classify(request: web.Request) -> web.Response:
        status, body = await asyncio.get_running_loop().run_in_executor(pool, _classify, classifier, await request.read())
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/healthz", health), web.post("/v1/classify", classify)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


STACKS = {"http.server": run_http_server, "tornado": run_tornado, "aiohttp": run_aiohttp}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=list(STACKS))
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    classifier = Classifier.load(args.bundle)
    print("ready", file=sys.stderr, flush=True)
    STACKS[args.stack](classifier, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
