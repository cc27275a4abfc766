"""The bundle format's public module: the loaded `Bundle`, `verified_path`, and (from `_manifest` and
`_contract`) the typed manifest, its file names and format versions, and the model contract's names.

Export builds a `Manifest` and writes `Manifest.to_dict()`; the runtime, `verify`, `bench` and the tests
read it back with `Manifest.from_dict`. A reader refuses a newer major format and ignores unknown fields.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smsguard._errors import BundleError, IntegrityError
from smsguard._files import parse_json, read_bytes, read_json, sha256_of
from smsguard.runtime._contract import INPUT_NAME, LABELS, LAYOUT_METADATA, NGRAM_LENGTH_KEY, OUTPUT_NAME, Decision, InputLayout
from smsguard.runtime._manifest import (
    FORMAT_VERSION,
    LEGACY_TOLERANCE,
    MANIFEST_NAME,
    NGRAM_FORMAT,
    NPZ_COMPACT_FORMAT,
    NPZ_FORMAT,
    OUTPUT_MEANING,
    PARITY_NAME,
    VOCAB_FORMAT,
    VOCAB_NAME,
    BundleFile,
    FileKind,
    Form,
    GoldenVector,
    LeftOut,
    Manifest,
    ModelFormat,
    PackInfo,
    Quantization,
    Source,
    TensorSpec,
    Variant,
    check_format_version,
    ids_sha256,
    model_file_name,
)
from smsguard.runtime._vocabulary import Vocabulary
from smsguard.runtime.signing import PublicKey, check_signature

__all__ = [
    "FORMAT_VERSION",
    "INPUT_NAME",
    "LABELS",
    "LAYOUT_METADATA",
    "LEGACY_TOLERANCE",
    "MANIFEST_NAME",
    "NGRAM_FORMAT",
    "NGRAM_LENGTH_KEY",
    "NPZ_COMPACT_FORMAT",
    "NPZ_FORMAT",
    "OUTPUT_MEANING",
    "OUTPUT_NAME",
    "PARITY_NAME",
    "VOCAB_FORMAT",
    "VOCAB_NAME",
    "Bundle",
    "BundleFile",
    "Decision",
    "FileKind",
    "Form",
    "GoldenVector",
    "InputLayout",
    "LeftOut",
    "Manifest",
    "ModelFormat",
    "PackInfo",
    "Quantization",
    "Source",
    "TensorSpec",
    "Variant",
    "check_format_version",
    "ids_sha256",
    "manifest_file",
    "model_file_name",
    "verified_path",
]


def verified_path(folder: Path, entry: BundleFile) -> Path:
    """The path of a bundle file whose bytes match the manifest; refuse it otherwise."""
    path = folder / entry.name
    if Path(entry.name).name != entry.name:
        msg = f"manifest names file '{entry.name}' outside its bundle '{folder}'"
        raise BundleError(msg)
    if not path.exists():
        msg = f"bundle file '{path}' is missing; re-export the bundle or copy the whole folder"
        raise BundleError(msg)
    try:
        actual = sha256_of(path)
    except OSError as error:
        msg = f"bundle file '{path}' cannot be read: {error.strerror}"
        raise BundleError(msg) from None
    if actual != entry.sha256:
        msg = (
            f"bundle file '{path}' does not match its manifest: expected sha256 {entry.sha256}, "
            f"found {actual} ({path.stat().st_size} bytes, expected {entry.size}); the file was changed or "
            f"truncated, re-export the bundle or copy it again"
        )
        raise IntegrityError(msg)
    return path


# ---- a loaded bundle --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle. `load` checks the manifest, the format version and the vocabulary's hash;
    `model_path` checks a model file's hash before handing it out."""

    path: Path
    manifest: Manifest
    vocabulary: Vocabulary
    signed_by: str | None = None  # the id of the trusted key whose signature was checked; None when none was asked for

    @classmethod
    def load(cls, path: str | os.PathLike[str], trusted_keys: Sequence[PublicKey] | None = None, min_serial: int | None = None) -> Bundle:
        """Read and check a bundle. With `trusted_keys`, its manifest must carry a signature by one of them
        (see `smsguard.runtime.signing`); with `min_serial`, its serial must be at least that."""
        path = Path(path)
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            msg = f"bundle '{path}' {what}; create one with `smsguard export RUN_DIR --out {path}`"
            raise BundleError(msg)
        raw = read_bytes(path / MANIFEST_NAME, "manifest")
        signed_by = None
        if trusted_keys is not None:
            signed_by = check_signature(path, raw, trusted_keys)  # before the manifest is believed at all
        manifest = Manifest.from_dict(parse_json(raw, path / MANIFEST_NAME, "manifest"), path / MANIFEST_NAME)
        if min_serial is not None and manifest.serial < min_serial:
            msg = f"bundle '{path}' has serial {manifest.serial}, older than {min_serial}; an older bundle is not taken back (a replayed update?)"
            raise BundleError(msg)
        vocab_path = verified_path(path, manifest_file(manifest, manifest.vocabulary))
        try:
            vocabulary = Vocabulary.from_dict(read_json(vocab_path, "vocabulary"))
        except BundleError as error:
            msg = f"'{vocab_path}': {error}"
            raise BundleError(msg) from None
        return cls(path, manifest, vocabulary, signed_by)

    @property
    def files(self) -> dict[str, BundleFile]:
        return {entry.name: entry for entry in self.manifest.files}

    @property
    def models(self) -> dict[str, BundleFile]:
        return self.manifest.models

    @property
    def threshold(self) -> float:
        """The bundle's threshold: for every model without one of its own (`threshold_of`)."""
        return self.manifest.threshold

    @property
    def labels(self) -> tuple[str, str]:
        """(negative, positive): the model outputs the probability of labels[1]."""
        return self.manifest.labels

    @property
    def golden(self) -> tuple[GoldenVector, ...]:
        return self.manifest.golden

    def recommended(self, fmt: ModelFormat) -> BundleFile | None:
        name = self.manifest.recommended.get(fmt)
        return self.models.get(name) if name else None

    def model(self, name: str) -> BundleFile:
        try:
            return self.models[name]
        except KeyError:
            pack = self.manifest.pack
            left_out = pack.left_out_file(name) if pack else None
            if pack and left_out and left_out.kind is FileKind.MODEL:
                msg = f"bundle '{self.path}' is packed for {pack.target} and does not hold model '{name}' of its full bundle; {left_out.where()}"
            else:
                msg = f"bundle '{self.path}' has no model '{name}'; it has: {', '.join(self.models)}"
            raise BundleError(msg) from None

    def lacks(self, fmt: ModelFormat, also: str = "", target: str | None = None) -> str:
        """For a pack without a model of `fmt`: its target, `also`, and the pack that holds its full bundle's model of
        `fmt` (the pack for `target` when one does; "" for a full bundle). What a refusal of a pack appends to its message."""
        pack = self.manifest.pack
        if pack is None:
            return ""
        found = sorted(pack.left_out_models(fmt), key=lambda e: target not in e.targets)
        where = f"; its full bundle's {found[0].name} is left out, and {found[0].where(target)}" if found else ""
        return f"; it is packed for {pack.target} ({pack.runs_in}){also}{where}"

    def threshold_of(self, entry: BundleFile) -> float:
        """The threshold a model is used at: its own when the manifest gives one, else the bundle's."""
        return self.threshold if entry.threshold is None else entry.threshold

    def model_path(self, entry: BundleFile) -> Path:
        return verified_path(self.path, entry)

    def check_files(self) -> None:
        """Check every file the manifest lists against its SHA-256 (loading checks only what it uses)."""
        for entry in self.manifest.files:
            verified_path(self.path, entry)


def manifest_file(manifest: Manifest, name: str) -> BundleFile:
    return next(entry for entry in manifest.files if entry.name == name)
