"""The native backend (the C kernel built at install) on the session's real bundle: Keras-exact at
every length on both instruction-set paths, one code path per message whatever the batch (for the
native and numba backends), bad ids refused, and an install without a C compiler that still works
and says so."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_bits, cannot_run, needs
from cpu import expected_isa

from smsguard.runtime import BackendError, Bundle, Classifier
from smsguard.runtime._backends import backend_info
from smsguard.runtime._native import NOT_BUILT, available, best_isa

ROOT = Path(__file__).resolve().parents[1]
FLOAT_ATOL = 1e-5  # a float32 model computes the Keras function; only summation order and tanh differ
QUANTIZED_ATOL = 0.01  # the int8 table against its own output on the export machine
NPZ_MODELS = ("model.float32.npz", "model.int8.npz", "model.int8.compact.npz")
INVARIANT_BACKENDS = ("native", "numba")  # one kernel per message: bit-identical whatever the batch
BATCH_SIZES = (1, 3, 2000)

slow = pytest.mark.slow
needs_native = needs("" if available() else NOT_BUILT)


def isas() -> list[str]:
    """Every code path this CPU can run: the dispatched one, AVX2 beside AVX-512, and the baseline (SSE2 / NEON)."""
    return ["auto", *(["avx2"] if best_isa() == "avx512" else []), "baseline"] if best_isa() not in ("sse2", "neon", "generic") else ["auto"]


def wide_isas() -> list[str]:
    """The vector instruction sets with fused multiply-add this CPU has: the kernel gives the same bits with each."""
    return {"avx512": ["avx512", "avx2"], "avx2+fma": ["avx2"]}.get(best_isa(), [])


@needs_native
@pytest.mark.parametrize("units", [1, 3, 8, 16, 17, 33, 64])
def test_avx512_and_avx2_give_the_same_bits(units: int) -> None:
    """Same arithmetic in every lane, whatever the width (a column past the last full block included): a CPU with AVX-512
    scores as one with AVX2 alone. On random weights, every length, one message at a time and in pairs."""
    if len(wide_isas()) < 2:
        pytest.skip(f"this CPU has {best_isa()}: no second vector width to hold it against")
    from smsguard.runtime import _native

    rng = np.random.default_rng(units)
    maxlen, rows, gates = 12, 50, 4 * units
    arrays = [rng.normal(0, 0.5, (rows, gates)).astype(np.float32), None, rng.normal(0, 0.3, (units, gates)).astype(np.float32),
              rng.normal(0, 1, units).astype(np.float32), 0.1, rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32),
              rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32)]
    quantized = [rng.integers(-127, 128, (rows, gates), dtype=np.int8), rng.uniform(0.001, 0.02, rows).astype(np.float32), *arrays[2:]]
    ids = np.zeros((301, maxlen), dtype=np.int32)
    for i, row in enumerate(ids):
        row[maxlen - i % (maxlen + 1) :] = rng.integers(1, rows, i % (maxlen + 1))
    for weights in (arrays, quantized):
        runs = []
        for isa in wide_isas():
            model, out = _native.lstm_model(*weights, isa=isa), np.empty(len(ids), dtype=np.float32)
            model.run(ids, out)
            alone = np.array([_native_one(model, row) for row in ids])
            assert model.isa == {"avx2": "avx2+fma"}.get(isa, isa) and alone.tobytes() == out.tobytes()
            runs.append(out)
        assert runs[0].tobytes() == runs[1].tobytes()


def _native_one(model, row: np.ndarray) -> np.float32:
    out = np.empty(1, dtype=np.float32)
    model.run(row[None], out)
    return out[0]


def test_the_native_kernel_is_built_where_a_c_compiler_is():
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        cannot_run("no C compiler on this machine: the NumPy backend runs the .npz models")
    assert available(), f"a C compiler ({compiler}) is here, yet {NOT_BUILT}"
    assert best_isa() in ("avx512", "avx2+fma", "sse2", "neon", "generic")
    assert backend_info("native").installed


@slow
@needs_native
@pytest.mark.parametrize("isa", isas())
def test_the_native_kernel_matches_keras_at_every_length(bundle_dir: Path, run_dir: Path, isa: str) -> None:
    from smsguard.train import read_split
    from smsguard.train._model import load_model

    bundle = Bundle.load(bundle_dir)
    maxlen = bundle.vocabulary.config.maxlen
    dataset, split = read_split(run_dir / "split.json")
    known = [w for w, i in bundle.vocabulary.word_index.items() if i < bundle.vocabulary.size][: maxlen + 10]
    by_length = [" ".join(known[:k]) for k in range(maxlen + 11)]
    texts = [dataset.texts[i] for i in split.test] + by_length
    ids = bundle.vocabulary.encode(texts)
    keras_proba = load_model(run_dir / "model.keras").predict(ids, batch_size=1024, verbose=0).reshape(-1)
    entry = bundle.model("model.float32.npz")
    session = open_session_with_isa(bundle, entry.name, isa)
    assert session.isa == expected_isa(isa)
    np.testing.assert_allclose(session.run(ids), keras_proba, atol=FLOAT_ATOL, rtol=0)
    single = np.concatenate([session.run(ids[i : i + 1]) for i in range(len(ids) - len(by_length), len(ids))])
    np.testing.assert_allclose(single, keras_proba[-len(by_length) :], atol=FLOAT_ATOL, rtol=0)


@slow
@needs_native
@pytest.mark.parametrize("isa", isas())
@pytest.mark.parametrize("model", NPZ_MODELS)
def test_the_native_kernel_reproduces_the_golden_vectors(bundle_dir: Path, model: str, isa: str) -> None:
    bundle = Bundle.load(bundle_dir)
    golden = bundle.golden
    ids = np.array([g.ids for g in golden], dtype=np.int32)
    got = open_session_with_isa(bundle, model, isa).run(ids).astype(np.float64)
    if bundle.model(model).is_float:
        np.testing.assert_allclose(got, [g.keras_probability for g in golden], atol=FLOAT_ATOL, rtol=0)
    else:
        np.testing.assert_allclose(got, [g.probabilities[model] for g in golden], atol=QUANTIZED_ATOL, rtol=0)


def open_session_with_isa(bundle: Bundle, model: str, isa: str):
    from smsguard.runtime._backends import NativeSession

    entry = bundle.model(model)
    return NativeSession(backend_info("native"), bundle.model_path(entry), entry, isa=isa)


@slow
@pytest.mark.parametrize("backend", INVARIANT_BACKENDS)
@pytest.mark.parametrize("model", NPZ_MODELS)
def test_a_message_gets_the_same_bits_alone_or_in_any_batch(bundle_dir: Path, uci_texts: list[str], model: str, backend: str) -> None:
    if not backend_info(backend).installed:
        cannot_run(f"backend '{backend}' is not installed here")
    classifier = Classifier.load(bundle_dir, backend=backend, model=model)
    texts = uci_texts[:2000]
    watched = list(range(0, 2000, 97))  # messages of every length, each checked in every batch
    alone = np.array([classifier.predict_proba([texts[i]])[0] for i in watched])
    for size in BATCH_SIZES[1:]:
        for position, i in enumerate(watched):
            start = min(max(i - position % size, 0), len(texts) - size)  # i at varying places in its batch
            batch = classifier.predict_proba(texts[start : start + size])
            assert batch[i - start].tobytes() == alone[position].tobytes(), (model, backend, size, i)
    everything = classifier.predict_proba(texts)
    assert_same_bits(everything[watched], alone, (model, backend))


@slow
@needs_native
def test_ids_outside_the_vocabulary_are_refused(bundle_dir: Path) -> None:
    classifier = Classifier.load(bundle_dir, backend="native", model="model.int8.npz")
    session = classifier.session
    ids = classifier.encode(["win cash now", "see you"])
    ids[1, -1] = classifier.vocabulary.size
    expected = f"native backend: token id {classifier.vocabulary.size} at row 1 is outside the model's vocabulary of {classifier.vocabulary.size} ids"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        session.run(ids)
    ids[1, -1] = -3
    with pytest.raises(BackendError, match="token id -3 at row 1 is outside"):
        session.run(ids)


@slow
@needs_native
def test_auto_picks_the_native_backend_for_npz_models(bundle_dir: Path) -> None:
    recommended = Bundle.load(bundle_dir).manifest.recommended["npz"]
    classifier = Classifier.load(bundle_dir)
    assert (classifier.backend, classifier.model.name) == ("native", recommended)
    assert classifier.predict(["WINNER!! Claim your £900 prize now, call 09061701461", "Are we still on for dinner tonight?"]) == ["spam", "ham"]


@slow
def test_an_install_without_a_c_compiler_succeeds_and_says_so(bundle_dir: Path, tmp_path: Path) -> None:
    """pip builds smsguard with a compiler that always fails (a machine without one): the wheel has
    no kernel, installs, and verify passes with the NumPy backend, saying once why it is used."""
    if importlib.util.find_spec("setuptools") is None:
        cannot_run("setuptools is not installed in this environment")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "smsguard", source / "smsguard", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    environment = os.environ | {"CC": "false", "LDSHARED": "false"}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=600, env=environment, check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("smsguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "smsguard/runtime/_lstm_c.c" in names or "smsguard/runtime/_lstm_native.py" in names
    assert not [n for n in names if n.startswith("smsguard/runtime/_lstm_c.") and n.endswith((".so", ".pyd"))]
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    verify = subprocess.run(
        [sys.executable, "-m", "smsguard", "verify", str(bundle_dir), "--backend", "native", "--backend", "numpy"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(target)}, check=False,
    )
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert f"{target}/smsguard" in subprocess.run(
        [sys.executable, "-c", "import smsguard; print(smsguard.__file__)"], capture_output=True, text=True, cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(target)}, check=True,
    ).stdout
    assert verify.stderr.count(NOT_BUILT) == 1
    assert "-[✓] model.float32.npz [numpy]" in verify.stderr
    assert "[native]" not in verify.stderr


@slow
@needs_native
def test_a_file_that_is_not_an_npz_model_is_refused_by_the_native_backend(bundle_copy: Path) -> None:
    from bundle_edits import replace_with_non_model

    replace_with_non_model(bundle_copy, "model.float32.npz")
    with pytest.raises(BackendError, match=r"^native \S+ cannot load model 'model.float32.npz': "):
        Classifier.load(bundle_copy, backend="native", model="model.float32.npz")


@slow
@pytest.mark.parametrize("backend", INVARIANT_BACKENDS)
def test_chunks_scored_while_the_next_is_tokenized_give_the_serial_results(bundle_dir: Path, uci_texts: list[str], backend: str) -> None:
    """predict_proba overlaps tokenizing with a kernel that releases the GIL: same bits, same order."""
    if not backend_info(backend).installed:
        cannot_run(f"backend '{backend}' is not installed here")
    classifier = Classifier.load(bundle_dir, backend=backend, model="model.int8.npz")
    assert classifier.session.releases_gil
    texts = uci_texts[:5000] + uci_texts[:1234]  # four chunks, the last one short
    serial = np.concatenate([classifier.session.run(classifier.encode(texts[i : i + 2048])) for i in range(0, len(texts), 2048)])
    assert_same_bits(classifier.predict_proba(texts), serial, backend)
    assert_same_bits(classifier.predict_proba(iter(texts)), serial, (backend, "streamed"))
    with pytest.raises(TypeError, match=r"^text at index 4500 must be str or UTF-8 bytes, found int$"):
        classifier.predict_proba([*texts[:4500], 7])


def test_every_array_the_kernel_reads_starts_on_a_cache_line(tiny_bundle: Path) -> None:
    """NumPy aligns to 16 bytes; the kernel's 64-byte loads straddled two cache lines for whichever arrays happened to
    land off a line, and a process's speed depended on it (benchmarks/serve.py saw a fifth between two starts)."""
    from smsguard.runtime._lstm_native import ALIGNMENT, NativeArrays

    bundle = Bundle.load(tiny_bundle)
    arrays = NativeArrays.load(bundle.model_path(bundle.model("model.int8.npz")))
    held = {name: getattr(arrays, name) for name in ("table", "table_scale", "recurrent", "dense_kernel", "primed_h", "primed_c")}
    assert {name: array.ctypes.data % ALIGNMENT for name, array in held.items()} == dict.fromkeys(held, 0)
    assert all(array.flags.c_contiguous for array in held.values())
