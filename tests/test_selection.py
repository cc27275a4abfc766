"""Which model a backend loads by default, for a given installed version of it: the manifest's
`min_runtime` steers an old tflite-runtime to a model it can load. Real bundle, real manifest edits;
the installed version is the argument (as `Classifier.load` passes the one pip installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_edits import edit_manifest

from smsguard.runtime import Bundle
from smsguard.runtime._backends import backend_info
from smsguard.runtime._selection import can_load, default_model, version_tuple

LEGACY = "2.14.0"  # tflite-runtime's last release


@pytest.mark.parametrize(("text", "expected"), [
    ("2.14.0", (2, 14, 0)), ("2.17", (2, 17)), ("2.14.0rc1", (2, 14, 0)), ("1.2.3.post1", (1, 2, 3)), ("unknown", None), ("", None),
])
def test_versions_are_read_as_numbers(text, expected):
    assert version_tuple(text) == expected


@pytest.mark.slow
def test_an_old_tflite_runtime_gets_a_model_it_can_load(bundle_copy: Path) -> None:
    legacy = backend_info("tflite-runtime")
    recommended = Bundle.load(bundle_copy).manifest.recommended["tflite"]
    assert default_model(Bundle.load(bundle_copy), legacy, LEGACY).name == recommended  # as exported: 2.14 runs them all

    def too_new(manifest: dict, names: set[str]) -> None:
        for entry in manifest["files"]:
            if entry["name"] in names:
                entry["min_runtime"] = {"tflite-runtime": "2.17.0"}  # what a per-channel int8 model needs

    edit_manifest(bundle_copy, lambda m: too_new(m, {recommended}))
    bundle = Bundle.load(bundle_copy)
    chosen = default_model(bundle, legacy, LEGACY)
    assert chosen is not None and chosen.name != recommended and chosen.format == "tflite"
    assert can_load(chosen, "tflite-runtime", LEGACY)
    assert default_model(bundle, legacy, "2.17.0").name == recommended  # a new enough runtime keeps the recommendation
    assert default_model(bundle, legacy, "2.18.1").name == recommended
    assert default_model(bundle, backend_info("litert"), "1.2.0").name == recommended  # the limit is tflite-runtime's only

    tflite = {name for name, entry in bundle.models.items() if entry.format == "tflite"}
    edit_manifest(bundle_copy, lambda m: too_new(m, tflite))
    assert default_model(Bundle.load(bundle_copy), legacy, LEGACY) is None  # auto moves on to the next backend
