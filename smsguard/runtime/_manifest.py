"""The manifest and its parts, typed: what a bundle holds and how to check it (`Manifest`, with its files,
golden vectors and source), with the bundle's file names and every file format's version.

Export builds a `Manifest` and writes `Manifest.to_dict()`; the runtime, `verify`, `bench` and the tests
read it back with `Manifest.from_dict`. A reader refuses a newer major format and ignores unknown fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smsguard import __version__
from smsguard._enum import TextEnum
from smsguard._errors import BundleError
from smsguard._files import sha256_of
from smsguard.runtime._contract import LABELS

MANIFEST_NAME = "manifest.json"
VOCAB_NAME = "vocab.json"
PARITY_NAME = "parity.json"

# major.minor: a reader refuses a newer major, ignores unknown fields. 1.1 added a model's own `threshold` and
# `variant`, and the golden vectors' `builtin_kernel_probabilities`; 1.2 the `serial`; 1.3 each model's `tolerance`;
# 1.4 a model's `form` (an .npz model in the compact form), the `pack` section, and golden vectors pinned by
# `ids_sha256` alone (a packed manifest keeps `ids` in full only for the edge cases).
FORMAT_VERSION = "1.4"
VOCAB_FORMAT = 2  # vocab.json; 2 added the `text` section (pinned lowercase, normaliser); 1 is still read
NPZ_FORMAT = 1  # the folded LSTM's .npz (its `meta` array)
NPZ_COMPACT_FORMAT = 2  # an .npz whose table is stored unfolded (int8 embedding, input kernel, bias) and folded at load
NGRAM_FORMAT = 1  # the n-gram bag's frozen spec (NgramHasher.to_dict)
OUTPUT_MEANING = "probability of the second label"
# How close a device must reproduce a model's golden outputs when its manifest entry (format < 1.3) does not say:
# a float32 model Keras' probability within 1e-5, a quantized one its own output on the export machine within 0.01.
LEGACY_TOLERANCE = {True: 1e-5, False: 0.01}


class ModelFormat(TextEnum):
    TFLITE = "tflite"
    ONNX = "onnx"
    NPZ = "npz"  # the folded, pad-primed LSTM as plain arrays, for the NumPy backends


class Quantization(TextEnum):
    FLOAT32 = "float32"
    DYNAMIC_INT8 = "dynamic_int8"  # int8 weights, float activations (quantized per message at run time in TFLite)
    FLOAT16 = "float16"  # float16 weights, float32 compute
    INT8 = "int8"  # full integer (TFLite), or an int8 table (npz)


class Variant(TextEnum):
    FIXED = "fixed"  # runs all maxlen steps
    PRIMED = "primed"  # runs only the real tokens, from the stored pad state


class Form(TextEnum):
    """How an `.npz` model stores its input table (manifest `form`, 1.4; absent = folded)."""

    FOLDED = "folded"  # the embedding folded into the input projection at export: the fastest to load
    COMPACT = "compact"  # the int8 embedding and the input kernel kept apart, folded at load: half the bytes


class FileKind(TextEnum):
    MODEL = "model"  # run by the runtime's backends
    VOCABULARY = "vocabulary"
    REPORT = "report"
    CLIENT = "client"  # for another client (MediaPipe's TextClassifier): the manifest's `clients` section says how


def model_file_name(fmt: ModelFormat, quantization: Quantization, variant: Variant, form: Form = Form.FOLDED) -> str:
    """`model.<quantization>[.primed|.compact].<format>`; an `.npz` model is always primed, so it carries no
    `.primed`, and only an `.npz` model has a compact form."""
    infix = ".primed" if variant is Variant.PRIMED and fmt is not ModelFormat.NPZ else ""
    infix += ".compact" if form is Form.COMPACT else ""
    return f"model.{quantization.value}{infix}.{fmt.value}"


def ids_sha256(ids: Sequence[int] | Any) -> str:
    """How a golden vector pins its ids without listing them: the SHA-256 (hex) of the row as little-endian int32."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i4").tobytes()).hexdigest()


# ---- the manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "int32", "float32", "int8"
    shape: tuple[int | None, ...]  # None for a dynamic axis
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
    kind: FileKind
    size: int
    sha256: str
    format: ModelFormat | None = None  # models only
    quantization: Quantization | None = None  # models only
    variant: Variant = Variant.FIXED
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    min_runtime: Mapping[str, str] | None = None  # backend -> oldest version known to run it
    threshold: float | None = None  # a model's own threshold, when it needs one to meet the target; else the bundle's
    tolerance: float | None = None  # how close a device must reproduce its golden outputs (format 1.3; before: `atol`'s rule)
    form: Form = Form.FOLDED  # an .npz model's table: folded at export, or compact and folded at load (1.4)

    def __post_init__(self) -> None:
        """Text given for an enum field becomes its member, and a typo is an error here, not a silent mismatch later."""
        object.__setattr__(self, "kind", FileKind(self.kind))
        object.__setattr__(self, "variant", Variant(self.variant))
        object.__setattr__(self, "form", Form(self.form))
        if self.format is not None:
            object.__setattr__(self, "format", ModelFormat(self.format))
        if self.quantization is not None:
            object.__setattr__(self, "quantization", Quantization(self.quantization))

    @property
    def is_float(self) -> bool:
        return self.quantization is Quantization.FLOAT32

    @property
    def atol(self) -> float:
        """How close a device must reproduce this model's golden outputs: Keras' probability for a float32 model,
        its own output on the export machine for a quantized one (the export target's tolerance)."""
        return LEGACY_TOLERANCE[self.is_float] if self.tolerance is None else self.tolerance

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BundleFile:
        is_model = data["kind"] == FileKind.MODEL
        return cls(
            name=data["name"],
            kind=data["kind"],
            size=int(data["size"]),
            sha256=data["sha256"],
            format=data["format"] if is_model else None,
            quantization=data["quantization"] if is_model else None,
            variant=data.get("variant", Variant.FIXED),
            inputs=tuple(TensorSpec.from_dict(t) for t in data.get("inputs", ())),
            outputs=tuple(TensorSpec.from_dict(t) for t in data.get("outputs", ())),
            min_runtime=data.get("min_runtime"),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
            tolerance=None if data.get("tolerance") is None else float(data["tolerance"]),
            form=data.get("form", Form.FOLDED) if is_model else Form.FOLDED,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind.value, "size": self.size, "sha256": self.sha256}
        if self.kind is FileKind.MODEL:
            assert self.format is not None and self.quantization is not None
            data |= {
                "format": self.format.value,
                "quantization": self.quantization.value,
                "variant": self.variant.value,
                "inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs],
            }
            if self.min_runtime:
                data["min_runtime"] = dict(self.min_runtime)
            if self.threshold is not None:
                data["threshold"] = self.threshold
            if self.tolerance is not None:
                data["tolerance"] = self.tolerance
            if self.form is not Form.FOLDED:
                data["form"] = self.form.value
        return data

    @classmethod
    def describe(cls, path: Path, kind: FileKind, **fields: Any) -> BundleFile:
        """The manifest entry of a file written into a bundle being built (its bytes hashed once, here)."""
        return cls(name=path.name, kind=kind, size=path.stat().st_size, sha256=sha256_of(path), **fields)


@dataclass(frozen=True)
class GoldenVector:
    """A test message with the ids and probabilities the export machine computed, for a device to replay.

    A full bundle lists every message's `ids`; a packed one (1.4) pins most by `ids_sha256` alone and lists `ids`
    in full only for the edge cases, so that a mismatch still says whether the tokenizer or the model differs."""

    text: str
    ids: tuple[int, ...] | None  # the model input in full; None where `ids_sha256` alone pins it
    label: str
    keras_probability: float
    probabilities: Mapping[str, float]  # model file name -> its probability on the export machine
    builtin_kernel_probabilities: Mapping[str, float] = field(default_factory=dict)  # TFLite model -> its probability with LiteRT's builtin kernels, no XNNPACK
    ids_sha256: str | None = None  # `ids_sha256(ids)`: every golden vector of a packed manifest has it (1.4)

    def __post_init__(self) -> None:
        if self.ids is None and self.ids_sha256 is None:
            msg = f"golden message {self.text[:40]!r} has neither ids nor ids_sha256"
            raise ValueError(msg)

    @property
    def digest(self) -> str:
        """The SHA-256 of the ids: as recorded, or of the ids listed."""
        return self.ids_sha256 if self.ids_sha256 is not None else ids_sha256(self.ids)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GoldenVector:
        ids = data.get("ids")
        digest = data.get("ids_sha256")
        if ids is None and digest is None:
            raise KeyError("ids")
        vector = cls(
            text=data["text"],
            ids=None if ids is None else tuple(int(i) for i in ids),
            label=data["label"],
            keras_probability=float(data["keras_probability"]),
            probabilities={k: float(v) for k, v in data["probabilities"].items()},
            builtin_kernel_probabilities={k: float(v) for k, v in data.get("builtin_kernel_probabilities", {}).items()},
            ids_sha256=None if digest is None else str(digest),
        )
        if vector.ids is not None and digest is not None and ids_sha256(vector.ids) != digest:
            raise ValueError(f"ids_sha256 of golden message {data['text'][:40]!r}, which does not match its ids")
        return vector

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            **({"ids": list(self.ids)} if self.ids is not None else {}),
            **({"ids_sha256": self.ids_sha256} if self.ids_sha256 is not None else {}),
            "label": self.label,
            "keras_probability": self.keras_probability,
            "probabilities": dict(self.probabilities),
            "builtin_kernel_probabilities": dict(self.builtin_kernel_probabilities),
        }


@dataclass(frozen=True)
class LeftOut:
    """A file of the full bundle that a pack does not hold, and the `smsguard pack` arguments of a pack that does."""

    name: str
    kind: FileKind
    format: ModelFormat | None = None  # models only
    pack: str | None = None  # e.g. "--for android"; None when no pack holds it (the parity report)
    targets: tuple[str, ...] = ()  # every pack target that holds it without --model (a runtime names its own first)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FileKind(self.kind))
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.format is not None:
            object.__setattr__(self, "format", ModelFormat(self.format))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeftOut:
        return cls(data["name"], data["kind"], data.get("format"), data.get("pack"), tuple(data.get("targets", ())))

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "kind": self.kind.value, **({"format": self.format.value} if self.format else {}), "pack": self.pack}
        return data | ({"targets": list(self.targets)} if self.targets else {})

    def where(self, target: str | None = None) -> str:
        """Where a device finds this file: the pack for `target` when that holds it, else the pack that does, else the full bundle."""
        if target is not None and target in self.targets:
            return f"`smsguard pack BUNDLE --for {target}` makes a pack that holds it"
        if self.pack is None:
            return "only the full bundle holds it"
        return f"`smsguard pack BUNDLE {self.pack}` makes a pack that holds it"


@dataclass(frozen=True)
class PackInfo:
    """`pack` (1.4): a bundle cut down by `smsguard pack` to what one device runs, and what it left out."""

    target: str  # the pack target (`smsguard pack --for`)
    runs_in: str  # the runtime that reads it, for people
    source_manifest_sha256: str  # the full bundle's manifest, by hash
    created: str = ""  # when it was packed, ISO 8601 UTC (the manifest's `created` stays the export's)
    left_out: tuple[LeftOut, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PackInfo:
        return cls(
            target=str(data["target"]),
            runs_in=str(data.get("runs_in", "")),
            source_manifest_sha256=str(data["source_manifest_sha256"]),
            created=str(data.get("created", "")),
            left_out=tuple(LeftOut.from_dict(entry) for entry in data.get("left_out", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "runs_in": self.runs_in,
            "source_manifest_sha256": self.source_manifest_sha256,
            "created": self.created,
            "left_out": [entry.to_dict() for entry in self.left_out],
        }

    def left_out_file(self, name: str) -> LeftOut | None:
        return next((entry for entry in self.left_out if entry.name == name), None)

    def left_out_models(self, fmt: ModelFormat) -> list[LeftOut]:
        """The full bundle's models of `fmt` this pack left out, those a pack holds by default first."""
        models = [e for e in self.left_out if e.kind is FileKind.MODEL and e.format is fmt]
        return sorted(models, key=lambda e: (e.pack is None, "--model" in (e.pack or "")))


@dataclass(frozen=True)
class Source:
    """What a bundle was exported from, by name and hash: never a path of the machine that made it."""

    run: str  # the run folder's name
    model: str  # the Keras file in it
    model_sha256: str
    data_sha256: str  # the data file the run was trained on

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Source:
        return cls(run=Path(str(data["run"])).name, model=data["model"], model_sha256=data["model_sha256"], data_sha256=data["data_sha256"])

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "model": self.model, "model_sha256": self.model_sha256, "data_sha256": self.data_sha256}


@dataclass(frozen=True)
class Manifest:
    """`manifest.json`: what a bundle holds and how to check it."""

    threshold: float  # for every model without a threshold of its own
    files: tuple[BundleFile, ...]
    vocabulary: str = VOCAB_NAME
    labels: tuple[str, str] = LABELS
    recommended: Mapping[ModelFormat, str] = field(default_factory=dict)  # format -> model file name
    golden: tuple[GoldenVector, ...] = ()
    source: Source | None = None
    serial: int = 0  # set at export, never lower for a later bundle of the same filter: a device refuses to go back
    created: str = ""  # ISO 8601, UTC
    tools: Mapping[str, str] = field(default_factory=dict)  # distribution -> version on the export machine
    clients: Mapping[str, Any] = field(default_factory=dict)  # client name -> how its files are used and were checked
    pack: PackInfo | None = None  # a packed bundle: its target and what it left out (1.4)
    smsguard_version: str = __version__
    format_version: str = FORMAT_VERSION
    output: str = OUTPUT_MEANING

    @property
    def models(self) -> dict[str, BundleFile]:
        return {entry.name: entry for entry in self.files if entry.kind is FileKind.MODEL}

    @classmethod
    def from_dict(cls, data: object, where: Path) -> Manifest:
        """Check and read a manifest; `where` (its path) names it in every error."""
        if not isinstance(data, dict):
            msg = f"manifest '{where}' must hold a JSON object"
            raise BundleError(msg)
        check_format_version(data.get("format_version"), where, data.get("smsguard_version"))
        try:
            files = tuple(BundleFile.from_dict(entry) for entry in data["files"])
            threshold = float(data["threshold"])
            labels = tuple(data["labels"])
            vocabulary = data["vocabulary"]
            if vocabulary not in {entry.name for entry in files}:
                raise KeyError(vocabulary)
            recommended = {ModelFormat(fmt): name for fmt, name in data.get("recommended", {}).items()}
            golden = tuple(GoldenVector.from_dict(g) for g in data.get("golden", ()))
            source = Source.from_dict(data["source"]) if data.get("source") else None
            pack = PackInfo.from_dict(data["pack"]) if data.get("pack") else None
            serial = data.get("serial", 0)
            if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
                raise ValueError(f"serial {serial!r}")
        except (KeyError, TypeError, ValueError) as error:
            msg = f"manifest '{where}' is malformed: missing or invalid {error}"
            raise BundleError(msg) from None
        if len(labels) != 2 or not 0.0 <= threshold <= 1.0:
            msg = f"manifest '{where}' is malformed: expected two labels and a threshold in [0, 1]"
            raise BundleError(msg)
        for entry in files:
            if entry.threshold is not None and not 0.0 <= entry.threshold <= 1.0:
                msg = f"manifest '{where}' is malformed: model '{entry.name}' has threshold {entry.threshold}, expected one in [0, 1]"
                raise BundleError(msg)
        return cls(
            threshold=threshold,
            files=files,
            vocabulary=vocabulary,
            labels=(labels[0], labels[1]),
            recommended=recommended,
            golden=golden,
            source=source,
            serial=serial,
            created=str(data.get("created", "")),
            tools=dict(data.get("tools", {})),
            clients=dict(data.get("clients", {})),
            pack=pack,
            smsguard_version=str(data.get("smsguard_version", "")),
            format_version=str(data["format_version"]),
            output=str(data.get("output", OUTPUT_MEANING)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "created": self.created,
            "smsguard_version": self.smsguard_version,
            "tools": dict(self.tools),
            "labels": list(self.labels),
            "output": self.output,
            "threshold": self.threshold,
            "serial": self.serial,
            "vocabulary": self.vocabulary,
            "recommended": {fmt.value: name for fmt, name in self.recommended.items()},
            **({"source": self.source.to_dict()} if self.source else {}),
            "files": [entry.to_dict() for entry in self.files],
            "golden": [g.to_dict() for g in self.golden],
            **({"clients": dict(self.clients)} if self.clients else {}),
            **({"pack": self.pack.to_dict()} if self.pack else {}),
        }


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


