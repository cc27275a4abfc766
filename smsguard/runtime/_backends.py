"""Inference backends: numba, LiteRT, the legacy tflite-runtime, ONNX Runtime and NumPy, behind one `run(ids)`.

Each is imported only when asked for, so a device needs only the one it runs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smsguard._errors import BackendError
from smsguard.runtime import _flatbuffer, _lstm, _lstm_native, _native
from smsguard.runtime._contract import INPUT_NAME, LAYOUT_METADATA, NGRAM_LENGTH_KEY, OUTPUT_NAME, InputLayout
from smsguard.runtime._manifest import BundleFile, ModelFormat, TensorSpec, Variant

if TYPE_CHECKING:
    from smsguard.runtime._vocabulary import Vocabulary


def distribution_version(distribution: str) -> str:
    """The installed version of a PyPI distribution, or "not installed"."""
    import importlib.metadata  # here, not at import: it costs start-up time a device only pays when asked

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class BackendInfo:
    """One entry of `BACKENDS`: a backend, the model files it runs, and the `Session` that runs them."""

    name: str  # what users pass as `backend=`
    module: str  # what it imports
    format: ModelFormat  # the model files it runs
    extra: str  # the pip extra that installs it
    distribution: str  # its PyPI name, for its version
    session: Callable[..., Session]  # opens a model file: `session(info, path, entry, **options)`

    @property
    def installed(self) -> bool:
        if self.module.startswith("smsguard."):  # built with smsguard, or not (no compiler at install)
            return _native.available()
        top = self.module.split(".")[0]
        return importlib.util.find_spec(top) is not None

    @property
    def version(self) -> str:
        return distribution_version(self.distribution)


def backend_info(name: str) -> BackendInfo:
    for info in BACKENDS:
        if info.name == name:
            return info
    msg = f"unknown backend '{name}'; choose one of: auto, {', '.join(b.name for b in BACKENDS)}"
    raise BackendError(msg)


def installed_backends() -> list[BackendInfo]:
    return [info for info in BACKENDS if info.installed]


def require_installed(info: BackendInfo) -> None:
    if not info.installed and info.name == "native":
        msg = f"backend 'native' is not available: {_native.NOT_BUILT}"
        raise BackendError(msg)
    if not info.installed:
        msg = f"backend '{info.name}' is not installed; install it with: pip install 'smsguard[{info.extra}]'"
        raise BackendError(msg)


class Session:
    """A loaded model: int32 ids of shape (n, layout.width) in (word ids, then a fused model's n-gram ids),
    float32 spam probabilities of shape (n,) out. `layout` is what the model file states (None for a TFLite or
    ONNX model written before files stated it)."""

    backend: BackendInfo
    entry: BundleFile
    layout: InputLayout | None = None

    def run(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_texts(self, vocabulary: Vocabulary, texts: list[str]) -> np.ndarray:
        """The probabilities of texts (checked by `as_texts`), featurised by `vocabulary`."""
        return self.run(vocabulary.encode_checked(texts))

    def signature(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """The model's inputs and outputs as the interpreter reports them."""
        raise NotImplementedError


def open_session(info: BackendInfo, path: Path, entry: BundleFile, builtin_kernels: bool = False) -> Session:
    """Load `entry` (a file at `path` whose hash the caller checked) in backend `info`. `builtin_kernels`:
    a TFLite model without the XNNPACK delegate LiteRT applies by default (what an older runtime computes)."""
    require_installed(info)
    if entry.format is not info.format:
        msg = f"backend '{info.name}' runs {info.format} models, not '{entry.name}' ({entry.format})"
        raise BackendError(msg)
    options = {"builtin_kernels": True} if builtin_kernels else {}
    return info.session(info, path, entry, **options)


_OLD_OP = re.compile(r"builtin opcode '(\w+)' version '(\d+)'")


class TFLiteSession(Session):
    """A TFLite interpreter. Interpreters are not thread-safe, so calls take a lock."""

    def __init__(self, info: BackendInfo, path: Path, entry: BundleFile, builtin_kernels: bool = False) -> None:
        """`builtin_kernels`: without the XNNPACK delegate the interpreter applies by default (what an
        older runtime computes); export records those outputs too."""
        self.backend, self.entry = info, entry
        module = importlib.import_module(info.module)
        options = {"experimental_op_resolver_type": module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if builtin_kernels else {}
        try:
            self._interpreter = module.Interpreter(model_path=str(path), num_threads=1, **options)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise _load_error(info, entry, error) from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()
        stated = _flatbuffer.metadata(path.read_bytes()).get(LAYOUT_METADATA)
        self.layout = None if stated is None else InputLayout.from_metadata(json.loads(stated), entry.name)

    def run(self, ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=self._input["dtype"])
        with self._lock:
            interpreter = self._interpreter
            if ids.shape[0] != self._batch:
                interpreter.resize_tensor_input(self._input["index"], ids.shape, strict=False)
                interpreter.allocate_tensors()
                self._batch = ids.shape[0]
            interpreter.set_tensor(self._input["index"], ids)
            interpreter.invoke()
            out = interpreter.get_tensor(self._output["index"])
        return _dequantize(out, *self._output["quantization"]).reshape(-1)

    def signature(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        def spec(detail: dict) -> TensorSpec:
            shape = tuple(None if d < 0 else int(d) for d in detail.get("shape_signature", detail["shape"]))
            scale, zero_point = detail["quantization"]
            return TensorSpec(detail["name"], np.dtype(detail["dtype"]).name, shape, float(scale), int(zero_point))

        interpreter = self._interpreter
        return tuple(map(spec, interpreter.get_input_details())), tuple(map(spec, interpreter.get_output_details()))


class OnnxSession(Session):
    """An ONNX Runtime inference session on the CPU (thread-safe by design)."""

    def __init__(self, info: BackendInfo, path: Path, entry: BundleFile) -> None:
        self.backend, self.entry = info, entry
        ort = importlib.import_module("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one message at a time is fastest on one core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types, not importable up front
            raise _load_error(info, entry, error) from None
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self._primed = entry.variant is Variant.PRIMED
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.layout = InputLayout.from_metadata(metadata, entry.name)
        # A model written before files stated their layout: a fused primed one still named its n-gram length.
        self._ngram_length = self.layout.ngram_length if self.layout else int(metadata.get(NGRAM_LENGTH_KEY, 0))

    def run(self, ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if not self._primed:
            return self._run(ids)
        # Feed each message's last max(L, 1) word ids (and its n-gram ids after them); the model starts from
        # the state after the pads.
        maxlen = self.layout.maxlen if self.layout else ids.shape[1] - self._ngram_length
        if ids.ndim != 2 or ids.shape[1] != maxlen + self._ngram_length:
            msg = f"onnxruntime backend: expected int32 ids of shape (n, {maxlen + self._ngram_length}), found {ids.shape}"
            raise BackendError(msg)
        steps = np.maximum(np.count_nonzero(ids[:, :maxlen], axis=1), 1)
        if len(ids) == 1:
            return self._run(ids[:, maxlen - int(steps[0]) :])
        out = np.empty(len(ids), dtype=np.float32)
        for count in np.unique(steps):
            rows = np.flatnonzero(steps == count)
            out[rows] = self._run(ids[rows, maxlen - int(count) :])
        return out

    def _run(self, ids: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output], {self._input: ids})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def signature(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        def spec(arg) -> TensorSpec:
            element = arg.type.removeprefix("tensor(").removesuffix(")")
            dtype = {"float": "float32", "double": "float64"}.get(element, element)
            return TensorSpec(arg.name, dtype, tuple(d if isinstance(d, int) else None for d in arg.shape))

        return tuple(map(spec, self._session.get_inputs())), tuple(map(spec, self._session.get_outputs()))


def _dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if values.dtype.kind in "iu" and scale:
        return ((values.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)
    return values.astype(np.float32, copy=False)


def _load_error(info: BackendInfo, entry: BundleFile, error: Any) -> BackendError:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    old_op = _OLD_OP.search(str(error))
    if old_op:
        op, version = old_op.groups()
        hint = "install ai-edge-litert (pip install 'smsguard[litert]')" if info.name == "tflite-runtime" else "upgrade it"
        msg = (
            f"{info.name} {info.version} is too old for model '{entry.name}': it cannot run op {op} "
            f"version {version}; {hint}, or pick another model of the bundle"
        )
        return BackendError(msg)
    msg = f"{info.name} {info.version} cannot load model '{entry.name}': {text}"
    return BackendError(msg)


class NumpySession(Session):
    """The folded, pad-primed LSTM in pure NumPy: no native dependency, fast for large batches."""

    def __init__(self, info: BackendInfo, path: Path, entry: BundleFile) -> None:
        self.backend, self.entry = info, entry
        self._lstm = _lstm
        try:
            self.weights = _lstm.LstmWeights.load(path)
        except (OSError, ValueError, KeyError, EOFError) as error:  # np.load's errors for a file that is not an npz
            raise _load_error(info, entry, error) from None
        self.layout = self.weights.layout

    def run(self, ids: np.ndarray) -> np.ndarray:
        try:
            return self._lstm.proba(np.asarray(ids, dtype=np.int32), self.weights)
        except ValueError as error:
            msg = f"{self.backend.name} backend: {error}"
            raise BackendError(msg) from None

    def signature(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return _npz_signature(self.weights.layout)


class NumbaSession(NumpySession):
    """The same model, compiled by numba: a few microseconds a message. Every batch, large or not,
    runs the same per-message kernel, so a probability is bit-identical alone or among thousands."""

    releases_gil = True  # its kernel is compiled with nogil: predict_proba tokenizes the next chunk meanwhile

    def __init__(self, info: BackendInfo, path: Path, entry: BundleFile) -> None:
        super().__init__(info, path, entry)
        from smsguard.runtime import _lstm_numba  # here: importing numba costs half a second and 100 MB

        w = self.weights
        self._args = (w.table, w.recurrent, w.dense_kernel, np.float32(w.dense_bias), w.primed_h, w.primed_c)
        self._kernel, self._means = _lstm_numba.proba_serial, _lstm_numba.ngram_means

    def run(self, ids: np.ndarray) -> np.ndarray:
        ngrams = self.weights.ngrams
        try:
            words, ngram_ids = self.weights.layout.split(np.ascontiguousarray(ids, dtype=np.int32))
            out = self._kernel(words, *self._args)
            if ngrams is None or ngram_ids is None:
                return out
            means, bad = self._means(ngram_ids, ngrams.scores)  # the gather-mean compiled; the sigmoid and mean as NgramBranch.fuse
            if bad >= 0:
                msg = f"n-gram ids must be in 0..{len(ngrams.scores) - 1}"
                raise ValueError(msg)
            return ngrams.fuse_means(out, means)
        except ValueError as error:
            msg = f"{self.backend.name} backend: {error}"
            raise BackendError(msg) from None


class NativeSession(Session):
    """The folded, pad-primed LSTM in the C kernel built at install (`_lstm_c`): one code path per
    message whatever the batch, no BLAS, no threads of its own, the GIL released while it runs."""

    releases_gil = True  # so predict_proba tokenizes the next chunk while this one runs

    def __init__(self, info: BackendInfo, path: Path, entry: BundleFile, isa: str = "auto") -> None:
        """`isa`: "auto" (AVX2+FMA where the CPU has it, else the baseline), or "baseline" (SSE2, NEON)."""
        self.backend, self.entry = info, entry
        self._native = _lstm_native
        try:
            arrays = _lstm_native.NativeArrays.load(path)
            self._model = arrays.model(isa)
        except (OSError, ValueError, KeyError, EOFError) as error:  # np.load's errors for a file that is not an npz
            raise _load_error(info, entry, error) from None
        self.layout, self._layout, self.units = arrays.layout, arrays.layout, arrays.recurrent.shape[0]

    @property
    def isa(self) -> str:
        return str(self._model.isa)

    def run_texts(self, vocabulary: Vocabulary, texts: list[str]) -> np.ndarray:
        """Text to probability in one C call (`Model.run_texts`) when the vocabulary has its C featuriser, whose rows it
        checks against the model's layout."""
        featuriser = vocabulary.featuriser
        if featuriser is None:
            return self.run(vocabulary.encode_checked(texts))
        inputs = texts if len(texts) == 1 and texts[0].isascii() else vocabulary.featuriser_input(texts)  # one ASCII SMS: as it is
        if inputs is None:
            return self.run(vocabulary.encode_checked(texts))
        out = np.empty(len(texts), dtype=np.float32)
        try:
            self._model.run_texts(featuriser, inputs, out)  # as _lstm_native.proba_texts, without its frame
            return out
        except ValueError as error:
            msg = f"native backend: {error}"
            raise BackendError(msg) from None

    def run(self, ids: np.ndarray) -> np.ndarray:
        try:
            return self._native.proba(self._model, ids)  # a fused model's n-gram branch included
        except ValueError as error:
            msg = f"native backend: {error}"
            raise BackendError(msg) from None

    def signature(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return _npz_signature(self._layout)


def _npz_signature(layout: InputLayout) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    return (TensorSpec(INPUT_NAME, "int32", (None, layout.width)),), (TensorSpec(OUTPUT_NAME, "float32", (None,)),)


BACKENDS = (  # the order `backend="auto"` tries them in: fastest first, pure NumPy last
    BackendInfo("native", _native.MODULE, ModelFormat.NPZ, "", "smsguard", NativeSession),  # built at install when a C compiler is there
    BackendInfo("numba", "numba", ModelFormat.NPZ, "fast", "numba", NumbaSession),
    BackendInfo("litert", "ai_edge_litert.interpreter", ModelFormat.TFLITE, "litert", "ai-edge-litert", TFLiteSession),
    BackendInfo("tflite-runtime", "tflite_runtime.interpreter", ModelFormat.TFLITE, "tflite", "tflite-runtime", TFLiteSession),
    BackendInfo("onnxruntime", "onnxruntime", ModelFormat.ONNX, "onnx", "onnxruntime", OnnxSession),
    BackendInfo("numpy", "numpy", ModelFormat.NPZ, "", "numpy", NumpySession),  # always there: the base install
)
