"""The pack targets: what each device runs, declared once (the runtime that reads the pack, the model files that
runtime can run, the one it gets by default, and how a device checks it). `smsguard pack --for TARGET` picks one.

Like the export targets (`_targets.py`): adding a device is adding an entry here; `_pack.py` does the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smsguard._enum import TextEnum
from smsguard.runtime import Bundle, BundleFile, FileKind, ModelFormat
from smsguard.runtime.bundle import Form, Quantization
from smsguard.runtime.mediapipe import CLIENT


class PackTarget(TextEnum):
    PI = "pi"
    ANDROID = "android"
    JAVA = "java"
    WEB = "web"
    MEDIAPIPE = "mediapipe"


@dataclass(frozen=True)
class Choice:
    """The model files a pack holds besides the vocabulary, and a note when the choice is a fallback."""

    names: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class PackSpec:
    """One pack target: who reads the pack, what it may hold, and what it holds by default."""

    target: PackTarget
    runs_in: str  # the runtime that reads the pack, in the user's words (recorded in the packed manifest)
    formats: tuple[ModelFormat, ...]  # the model formats that runtime runs: `--model` must name one of them
    default: Callable[[Bundle], Choice]  # the model files it holds without `--model`
    check: str  # how a device proves the pack computes what the export machine did ({pack}: the pack's folder)
    client: str | None = None  # a client of the manifest's `clients` section (its files instead of a model's)

    @property
    def runs(self) -> str:
        """What its runtime runs, for messages."""
        return f"the {self.client} client models" if self.client else " and ".join(f".{fmt} models" for fmt in self.formats)

    def accepts(self, entry: BundleFile, clients: Mapping[str, Any]) -> bool:
        """Whether `--model NAME` may name this file for this target."""
        if self.client is not None:
            return entry.name in {m["name"] for m in clients.get(self.client, {}).get("models", ())}
        return entry.kind is FileKind.MODEL and entry.format in self.formats

    def held_with(self, model: str, clients: Mapping[str, Any]) -> tuple[str, ...]:
        """The model file and what it needs beside it in the pack (the MediaPipe probe that shows the client's ids)."""
        if self.client is not None and clients.get(self.client, {}).get("probe"):
            return (model, clients[self.client]["probe"])
        return (model,)


def _recommended(fmt: ModelFormat) -> Callable[[Bundle], Choice]:
    def choose(bundle: Bundle) -> Choice:
        entry = bundle.recommended(fmt) or next((e for e in bundle.models.values() if e.format is fmt), None)
        return Choice(() if entry is None else (entry.name,))

    return choose


def _compact_npz(bundle: Bundle) -> Choice:
    """The compact int8 model for a size-sensitive target; the recommended .npz of a bundle exported without one."""
    compact = next((e for e in bundle.models.values() if e.format is ModelFormat.NPZ and e.form is Form.COMPACT and e.quantization is Quantization.INT8), None)
    if compact is not None:
        return Choice((compact.name,))
    fallback = _recommended(ModelFormat.NPZ)(bundle)
    note = f"bundle '{bundle.path}' has no compact .npz model (an older export); packing {', '.join(fallback.names)} instead: re-export the run for one of half the size"
    return Choice(fallback.names, note if fallback.names else "")


def _mediapipe_client(bundle: Bundle) -> Choice:
    """The smallest client model (its int8 one: MediaPipe reads no other file)."""
    models = list(bundle.manifest.clients.get(CLIENT, {}).get("models", ()))
    if not models:
        return Choice(())
    chosen = min(models, key=lambda m: bundle.files[m["name"]].size if m["name"] in bundle.files else float("inf"))
    return Choice((chosen["name"],))


_PYTHON_FORMATS = (ModelFormat.NPZ, ModelFormat.TFLITE, ModelFormat.ONNX)
_VERIFY = "`smsguard verify {pack}` (the golden vectors replayed in the Python runtime)"
_CONFORMANCE = _VERIFY + " before it ships (the Python runtime reads the same files), then the runtime's own conformance check on the device"

PACK_TARGETS: tuple[PackSpec, ...] = (
    PackSpec(PackTarget.PI, "the Python runtime with its native backend, as on a Raspberry Pi", _PYTHON_FORMATS, _recommended(ModelFormat.NPZ), _VERIFY),
    PackSpec(PackTarget.ANDROID, "LiteRT on Android, fed by the Java library's encode", (ModelFormat.TFLITE,), _recommended(ModelFormat.TFLITE), _VERIFY),
    PackSpec(PackTarget.JAVA, "the Java runtime of clients/java", (ModelFormat.NPZ,), _compact_npz, _CONFORMANCE),
    PackSpec(PackTarget.WEB, "the JavaScript runtime of clients/js, in a web page", (ModelFormat.NPZ,), _compact_npz, _CONFORMANCE),
    PackSpec(PackTarget.MEDIAPIPE, "MediaPipe's TextClassifier on Android, iOS or the web", (), _mediapipe_client, _VERIFY + " with smsguard[mediapipe]", client=CLIENT),
)


def pack_spec(target: PackTarget | str) -> PackSpec:
    target = PackTarget(target)
    return next(spec for spec in PACK_TARGETS if spec.target is target)
