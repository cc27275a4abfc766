"""`smsguard serve-web BUNDLE`: the browser demo (web/) on 127.0.0.1. The page runs the bundle's full model with the
JavaScript runtime (clients/js/smsguard.mjs, which checks every file against the manifest again in the browser) and,
when the bundle has one, its MediaPipe client model beside it, in MediaPipe's wasm (web/node_modules: `make web`).

Paths served: `/` and the demo's own files; `/smsguard.mjs`; `/bundle/manifest.json`, `/bundle/vocab.json` and
`/bundle/NAME` for each `.npz` model and MediaPipe client model, checked against the manifest hash when the server
starts; `/bundle/config.json` (what the page shows); `/vendor/tasks-text/...` from
web/node_modules/@mediapipe/tasks-text for a bundle with a MediaPipe client. Every response is cross-origin
isolated (COOP/COEP: everything is same-origin), which gives the page's timers their full resolution.
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

from smsguard.runtime import BundleError, ModelFormat, SmsguardError
from smsguard.runtime.bundle import MANIFEST_NAME, Bundle, verified_path

ROOT = Path(__file__).resolve().parents[1]
WEB_DIR = ROOT / "web"  # in a checkout; `--web DIR` elsewhere
MODULE = ROOT / "clients" / "js" / "smsguard.mjs"  # the JavaScript runtime the page imports
VENDOR = Path("node_modules") / "@mediapipe" / "tasks-text"
PAGES = ("index.html", "demo.js", "style.css")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".json": "application/json", ".tflite": "application/octet-stream", ".npz": "application/octet-stream"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Resource-Policy": "same-origin"}


class WebError(SmsguardError):
    """The demo cannot be served: no .npz model in the bundle, no JavaScript runtime, or no MediaPipe files in web/."""


def site(bundle_dir: Path, web_dir: Path = WEB_DIR, module: Path = MODULE) -> dict[str, Any]:
    """What the server hands out: the demo's files, the runtime and the bundle's files it needs (checked), by URL path."""
    bundle = Bundle.load(bundle_dir)
    npz = [name for name, entry in bundle.models.items() if entry.format is ModelFormat.NPZ]
    recommended = bundle.manifest.recommended.get(ModelFormat.NPZ)
    npz.sort(key=lambda name: name != recommended)  # the recommended model first: the page's default
    if not npz and bundle.manifest.pack is not None:
        msg = f"bundle '{bundle_dir}' has no .npz model for the page's JavaScript runtime{bundle.lacks(ModelFormat.NPZ, target='web')}"
        raise WebError(msg)
    if not npz:
        msg = f"bundle '{bundle_dir}' has no .npz model for the page's JavaScript runtime; export the run again with this smsguard"
        raise WebError(msg)
    if not module.is_file():
        msg = f"'{module}' is missing: serve-web serves the JavaScript runtime of a checkout of smsguard (clients/js/smsguard.mjs)"
        raise WebError(msg)
    files: dict[str, Path | bytes] = {f"/{name}": web_dir / name for name in PAGES}
    files["/"] = web_dir / "index.html"
    files["/smsguard.mjs"] = module
    files[f"/bundle/{MANIFEST_NAME}"] = bundle.path / MANIFEST_NAME
    for name in (bundle.manifest.vocabulary, *npz):
        files[f"/bundle/{name}"] = verified_path(bundle.path, bundle.files[name])
    config: dict[str, Any] = {"npz": npz, "threshold": bundle.threshold, "labels": list(bundle.labels), "smsguard_version": bundle.manifest.smsguard_version}
    config |= _mediapipe(bundle, files, web_dir)
    files["/bundle/config.json"] = json.dumps(config).encode()
    return {"files": files, "vendor": (web_dir / VENDOR).resolve() if config["models"] else None}


def _mediapipe(bundle: Bundle, files: dict[str, Path | bytes], web_dir: Path) -> dict[str, Any]:
    """The MediaPipe client's part of the page's configuration (no models when the bundle has no client), its files added."""
    section = bundle.manifest.clients.get("mediapipe")
    if not section:
        return {"models": [], "probe": None, "thresholds": {}}
    vendor = web_dir / VENDOR
    if not (vendor / "wasm").is_dir():
        msg = f"'{vendor}' is missing: run `make web` (npm install in {web_dir}) first, for the bundle's MediaPipe client model"
        raise WebError(msg)
    for name in (*(m["name"] for m in section["models"]), section["probe"]):
        files[f"/bundle/{name}"] = verified_path(bundle.path, bundle.files[name])
    return {"models": [m["name"] for m in section["models"]], "probe": section["probe"], "thresholds": {m["name"]: m["threshold"] for m in section["models"]}}


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, served: dict[str, Any], log: Callable[[str], None] | None, *args: Any) -> None:
        self.served, self.log = served, log
        super().__init__(*args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        found = self.served["files"].get(path)
        if found is None and self.served["vendor"] and path.startswith("/vendor/tasks-text/"):
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
        for header, value in ISOLATION.items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.log:
            self.log(format % args)


def make_server(bundle_dir: Path, port: int = 8000, web_dir: Path = WEB_DIR, log: Callable[[str], None] | None = None, module: Path = MODULE) -> ThreadingHTTPServer:
    """The demo's server on 127.0.0.1:`port` (0: any free port), not yet serving."""
    try:
        served = site(Path(bundle_dir), Path(web_dir), Path(module))
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
