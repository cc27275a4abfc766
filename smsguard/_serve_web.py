"""`smsguard serve-web BUNDLE`: the browser demo (web/) on 127.0.0.1, with the bundle's MediaPipe client
models and MediaPipe's wasm files (from web/node_modules, installed by `make web`), nothing else.

Paths served: `/` and the demo's own files; `/vendor/tasks-text/...` from
web/node_modules/@mediapipe/tasks-text; `/bundle/config.json` (client models, threshold, labels) and
`/bundle/NAME` for a client model of the bundle, checked against its manifest hash when the server starts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from smsguard.runtime import BundleError, SmsguardError
from smsguard.runtime.bundle import Bundle, verified_path

WEB_DIR = Path(__file__).resolve().parents[1] / "web"  # in a checkout; `--web DIR` elsewhere
VENDOR = Path("node_modules") / "@mediapipe" / "tasks-text"
PAGES = ("index.html", "demo.js", "style.css")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".json": "application/json", ".tflite": "application/octet-stream"}


class WebError(SmsguardError):
    """The demo cannot be served: no client model in the bundle, or no MediaPipe files in web/."""


def site(bundle_dir: Path, web_dir: Path = WEB_DIR) -> dict[str, Any]:
    """What the server hands out: the demo's files and the bundle's client models (checked), by URL path."""
    bundle = Bundle.load(bundle_dir)
    section = bundle.manifest.clients.get("mediapipe")
    if not section:
        msg = f"bundle '{bundle_dir}' has no MediaPipe client model; train with --preset mediapipe and export again"
        raise WebError(msg)
    vendor = web_dir / VENDOR
    if not (vendor / "wasm").is_dir():
        msg = f"'{vendor}' is missing: run `make web` (npm install in {web_dir}) first"
        raise WebError(msg)
    files: dict[str, Path | bytes] = {f"/{name}": web_dir / name for name in PAGES}
    files["/"] = web_dir / "index.html"
    for entry in section["models"]:
        files[f"/bundle/{entry['name']}"] = verified_path(bundle.path, bundle.files[entry["name"]])
    files[f"/bundle/{section['probe']}"] = verified_path(bundle.path, bundle.files[section["probe"]])
    config = {
        "models": [m["name"] for m in section["models"]],
        "probe": section["probe"],
        "threshold": bundle.threshold,
        "thresholds": {m["name"]: m["threshold"] for m in section["models"]},
        "labels": list(bundle.labels),
        "smsguard_version": bundle.manifest.smsguard_version,
    }
    files["/bundle/config.json"] = json.dumps(config).encode()
    return {"files": files, "vendor": vendor.resolve()}


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, served: dict[str, Any], log: Callable[[str], None] | None, *args: Any) -> None:
        self.served, self.log = served, log
        super().__init__(*args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        found = self.served["files"].get(path)
        if found is None and path.startswith("/vendor/tasks-text/"):
            candidate = (self.served["vendor"] / path.removeprefix("/vendor/tasks-text/")).resolve()
            if candidate.is_relative_to(self.served["vendor"]) and candidate.is_file():
                found = candidate
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body = found if isinstance(found, bytes) else found.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", TYPES.get(Path(path).suffix or ".html", "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.log:
            self.log(format % args)


def make_server(bundle_dir: Path, port: int = 8000, web_dir: Path = WEB_DIR, log: Callable[[str], None] | None = None) -> ThreadingHTTPServer:
    """The demo's server on 127.0.0.1:`port` (0: any free port), not yet serving."""
    try:
        served = site(Path(bundle_dir), Path(web_dir))
    except KeyError as error:
        msg = f"bundle '{bundle_dir}' names a client file its manifest does not list: {error}"
        raise BundleError(msg) from None
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, served, log))
    except OSError as error:
        msg = f"cannot serve on 127.0.0.1:{port}: {error.strerror}"
        raise WebError(msg) from None


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
