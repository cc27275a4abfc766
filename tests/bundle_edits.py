"""Changes tests make to a copied bundle: the manifest (which is not hashed itself), and a file's
bytes with its recorded sha256 and size updated, so that only the loader can object."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def edit_manifest(bundle: Path, change) -> None:
    """Rewrite manifest.json after `change(manifest)`."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def replace_file(bundle: Path, name: str, content: bytes) -> Path:
    path = bundle / name
    path.write_bytes(content)

    def change(manifest: dict) -> None:
        entry = next(f for f in manifest["files"] if f["name"] == name)
        entry["sha256"], entry["size"] = hashlib.sha256(content).hexdigest(), len(content)

    edit_manifest(bundle, change)
    return path


def replace_with_non_model(bundle: Path, name: str) -> Path:
    return replace_file(bundle, name, b"this is not a model, but its sha256 is in the manifest\n" * 20)
