"""Reading files: hash them, read their bytes or JSON, with one-line errors that name the file and what it is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from smsguard._errors import BundleError, SmsguardError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path, what: str) -> Any:
    return parse_json(read_bytes(path, what), path, what)


def read_bytes(path: Path, what: str, error: type[SmsguardError] = BundleError) -> bytes:
    """A file's bytes, or `error` saying that `what` is missing or cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        msg = f"{what} '{path}' is missing"
        raise error(msg) from None
    except OSError as problem:
        msg = f"{what} '{path}' cannot be read: {problem.strerror}"
        raise error(msg) from None


def parse_json(data: bytes, path: Path, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        msg = f"{what} '{path}' is not readable JSON: {error}"
        raise BundleError(msg) from None
