"""The bundle format: a folder holding `manifest.json`, `vocab.json` and model files, each pinned by
SHA-256. Export writes it and the device reads it, both through this module."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsguard import __version__
from smsguard.runtime._errors import BundleError, IntegrityError
from smsguard.runtime._vocabulary import Vocabulary

MANIFEST_NAME = "manifest.json"
VOCAB_NAME = "vocab.json"
PARITY_NAME = "parity.json"
# major.minor: a reader refuses a newer major, ignores unknown fields. 1.1 added a model's own
# `threshold` and `variant`, and the golden vectors' `builtin_kernel_probabilities`.
FORMAT_VERSION = "1.1"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, content: bytes) -> None:
    """Write a file so that readers see the old one or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are meant to be copied and read
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        msg = f"{what} '{path}' is missing"
        raise BundleError(msg) from None
    except OSError as error:
        msg = f"{what} '{path}' cannot be read: {error.strerror}"
        raise BundleError(msg) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        msg = f"{what} '{path}' is not readable JSON: {error}"
        raise BundleError(msg) from None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "int32", "float32", "int8"
    shape: tuple[int | None, ...]  # None for the dynamic batch axis
    scale: float = 0.0  # quantization of an integer tensor: real = scale * (q - zero_point)
    zero_point: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            shape=tuple(data["shape"]),
            scale=float(data.get("scale", 0.0)),
            zero_point=int(data.get("zero_point", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle as its manifest records it."""

    name: str
    kind: str  # "model", "vocabulary" or "report"
    size: int
    sha256: str
    format: str = ""  # "tflite", "onnx" or "npz" (the folded LSTM for the NumPy backends)
    quantization: str = ""  # "float32", "float16", "dynamic_int8" or "int8"
    variant: str = "fixed"  # "fixed": maxlen steps; "primed": only the real tokens, from the stored pad state
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    min_runtime: Mapping[str, str] | None = None  # backend -> oldest version known to run it
    threshold: float | None = None  # a model's own threshold, when it needs one to meet the target; else the bundle's

    @property
    def is_float(self) -> bool:
        return self.quantization == "float32"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BundleFile:
        return cls(
            name=data["name"],
            kind=data["kind"],
            size=int(data["size"]),
            sha256=data["sha256"],
            format=data.get("format", ""),
            quantization=data.get("quantization", ""),
            variant=data.get("variant", "fixed"),
            inputs=tuple(TensorSpec.from_dict(t) for t in data.get("inputs", ())),
            outputs=tuple(TensorSpec.from_dict(t) for t in data.get("outputs", ())),
            min_runtime=data.get("min_runtime"),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "size": self.size, "sha256": self.sha256}
        if self.kind == "model":
            data |= {
                "format": self.format,
                "quantization": self.quantization,
                "variant": self.variant,
                "inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs],
            }
            if self.min_runtime:
                data["min_runtime"] = dict(self.min_runtime)
            if self.threshold is not None:
                data["threshold"] = self.threshold
        return data

    @classmethod
    def describe(cls, path: Path, kind: str, **fields: Any) -> BundleFile:
        """The manifest entry of a file written into a bundle being built."""
        return cls(name=path.name, kind=kind, size=path.stat().st_size, sha256=sha256_of(path), **fields)


@dataclass(frozen=True)
class GoldenVector:
    """A test message with the ids and probabilities the export machine computed, for a device to replay."""

    text: str
    ids: tuple[int, ...]
    label: str
    keras_probability: float
    probabilities: Mapping[str, float]  # model file name -> its probability on the export machine
    builtin_kernel_probabilities: Mapping[str, float] = field(default_factory=dict)  # TFLite model -> its probability with LiteRT's builtin kernels, no XNNPACK


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle. `load` checks the manifest, the format version and the vocabulary's hash;
    `model_path` checks a model file's hash before handing it out."""

    path: Path
    manifest: Mapping[str, Any]
    vocabulary: Vocabulary
    files: Mapping[str, BundleFile]
    threshold: float  # for every model without a threshold of its own (`threshold_of`)
    labels: tuple[str, str]  # (negative, positive): the model outputs the probability of labels[1]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        path = Path(path)
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            msg = f"bundle '{path}' {what}; create one with `smsguard export RUN_DIR --out {path}`"
            raise BundleError(msg)
        manifest = read_json(path / MANIFEST_NAME, "manifest")
        if not isinstance(manifest, dict):
            msg = f"manifest '{path / MANIFEST_NAME}' must hold a JSON object"
            raise BundleError(msg)
        check_format_version(manifest.get("format_version"), path / MANIFEST_NAME, manifest.get("smsguard_version"))
        try:
            files = {entry["name"]: BundleFile.from_dict(entry) for entry in manifest["files"]}
            threshold = float(manifest["threshold"])
            labels = tuple(manifest["labels"])
            vocab_name = manifest["vocabulary"]
            vocab_entry = files[vocab_name]
        except (KeyError, TypeError, ValueError) as error:
            msg = f"manifest '{path / MANIFEST_NAME}' is malformed: missing or invalid {error}"
            raise BundleError(msg) from None
        if len(labels) != 2 or not 0.0 <= threshold <= 1.0:
            msg = f"manifest '{path / MANIFEST_NAME}' is malformed: expected two labels and a threshold in [0, 1]"
            raise BundleError(msg)
        for entry in files.values():
            if entry.threshold is not None and not 0.0 <= entry.threshold <= 1.0:
                msg = f"manifest '{path / MANIFEST_NAME}' is malformed: model '{entry.name}' has threshold {entry.threshold}, expected one in [0, 1]"
                raise BundleError(msg)
        vocab_path = verified_path(path, vocab_entry)
        try:
            vocabulary = Vocabulary.from_dict(read_json(vocab_path, "vocabulary"))
        except BundleError as error:
            msg = f"'{vocab_path}': {error}"
            raise BundleError(msg) from None
        return cls(path, manifest, vocabulary, files, threshold, labels)  # type: ignore[arg-type]

    @property
    def models(self) -> dict[str, BundleFile]:
        return {name: entry for name, entry in self.files.items() if entry.kind == "model"}

    def recommended(self, fmt: str) -> BundleFile | None:
        name = self.manifest.get("recommended", {}).get(fmt)
        return self.models.get(name) if name else None

    def model(self, name: str) -> BundleFile:
        try:
            return self.models[name]
        except KeyError:
            msg = f"bundle '{self.path}' has no model '{name}'; it has: {', '.join(self.models)}"
            raise BundleError(msg) from None

    def threshold_of(self, entry: BundleFile) -> float:
        """The threshold a model is used at: its own when the manifest gives one, else the bundle's."""
        return self.threshold if entry.threshold is None else entry.threshold

    def model_path(self, entry: BundleFile) -> Path:
        return verified_path(self.path, entry)

    @property
    def golden(self) -> list[GoldenVector]:
        return [
            GoldenVector(
                g["text"], tuple(g["ids"]), g["label"], float(g["keras_probability"]), g["probabilities"],
                g.get("builtin_kernel_probabilities", {}),
            )
            for g in self.manifest.get("golden", ())
        ]


def check_format_version(version: object, where: Path, writer: object = None) -> None:
    """Refuse a manifest of a newer major format, naming the smsguard that wrote it (which reads it)."""
    reader_major = FORMAT_VERSION.split(".")[0]
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        msg = f"manifest '{where}' has no valid format_version (found {version!r}); re-export the bundle"
        raise BundleError(msg) from None
    if major > int(reader_major):
        upgrade = (
            f"upgrade to smsguard {writer} or later (pip install -U 'smsguard>={writer}')"
            if isinstance(writer, str) and writer
            else "upgrade smsguard (pip install -U smsguard)"
        )
        written = f", written by smsguard {writer}" if isinstance(writer, str) and writer else ""
        msg = (
            f"manifest '{where}' has format {version}{written}; this smsguard {__version__} reads format "
            f"{reader_major}.x: {upgrade}"
        )
        raise BundleError(msg)


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
