"""Which model of a bundle a backend loads when none is named: the recommended one for its format,
unless the manifest's `min_runtime` says the installed backend is too old for it; then the first
other model of that format the backend can load (in manifest order), so an old tflite-runtime runs
a model instead of failing on one it cannot load."""

from __future__ import annotations

import re

from smsguard.runtime._backends import BackendInfo
from smsguard.runtime.bundle import Bundle, BundleFile

_NUMBERS = re.compile(r"\d+")


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(2, 14, 0) for "2.14.0" or "2.14.0rc1"; None for a version that has no leading number."""
    parts = []
    for piece in text.split("."):
        found = _NUMBERS.match(piece)
        if not found:
            break
        parts.append(int(found.group()))
        if found.end() != len(piece):  # "0rc1": a pre-release of 0, compared as 0
            break
    return tuple(parts) or None


def can_load(entry: BundleFile, backend: str, version: str) -> bool:
    """False only when the manifest names an oldest version of `backend` for `entry` newer than `version`."""
    needed = (entry.min_runtime or {}).get(backend)
    have, need = version_tuple(version), version_tuple(needed) if needed else None
    if have is None or need is None:  # nothing recorded, or a version we cannot read: let the backend try
        return True
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def default_model(bundle: Bundle, info: BackendInfo, version: str | None = None) -> BundleFile | None:
    """The model `info` runs by default in `bundle`, for the installed version of it (or `version`)."""
    recommended = bundle.recommended(info.format)
    others = [e for e in bundle.models.values() if e.format is info.format and e is not recommended]
    for entry in ([recommended] if recommended else []) + others:
        if not (entry.min_runtime or {}).get(info.name):
            return entry  # no limit recorded: no need to ask the installed version (importlib.metadata costs ms at start-up)
        version = info.version if version is None else version
        if can_load(entry, info.name, version):
            return entry
    return None
