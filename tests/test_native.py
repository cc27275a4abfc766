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
BATCH_SIZES = (1, 3, 5, 65, 2000)  # alone, pairs, a four and one, across the kernel's window of 64, a chunk

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


def seeded_model(units: int, quantized: bool, isa: str, maxlen: int = 40, rows: int = 300, n: int = 200) -> tuple[object, np.ndarray]:
    """The kernel's Model of seeded random weights (a float or an int8 table) and n rows of ids of every length, front-padded."""
    from smsguard.runtime import _native

    rng = np.random.default_rng(units)
    gates = 4 * units
    table = rng.normal(0, 0.5, (rows, gates)).astype(np.float32)
    rest = [rng.normal(0, 0.3, (units, gates)).astype(np.float32), rng.normal(0, 1, units).astype(np.float32), 0.1,
            rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32), rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32)]
    int8 = [rng.integers(-127, 128, (rows, gates), dtype=np.int8), rng.uniform(0.001, 0.02, rows).astype(np.float32)]
    ids = np.zeros((n, maxlen), dtype=np.int32)
    for row in ids:
        length = int(rng.integers(0, maxlen + 1))
        row[maxlen - length :] = rng.integers(1, rows, length)
    return _native.lstm_model(*(int8 if quantized else [table, None]), *rest, isa=isa), ids


# sha256 (first 16 hex digits) of the probabilities of `seeded_model`'s 200 rows, as the kernel computed them before its
# recurrent matrix was packed in panels and its batches grouped by length (main at ca6c091): the bits users had.
PINNED = {
    ("avx", 64, False): "2091e503810dbecd", ("avx", 64, True): "b70edfd26df63500",
    ("avx", 17, False): "4ca5b4178486146a", ("avx", 17, True): "3e9f44da1ca7bb31",
    ("sse2", 64, False): "534ae2fc1b3da136", ("sse2", 64, True): "c745549253ff7c6d",
    ("sse2", 17, False): "5fab8c26843bda25", ("sse2", 17, True): "5e2b570f86e59936",
}


@needs_native
@pytest.mark.parametrize("units", [64, 17])
@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "int8"])
def test_the_kernel_keeps_the_bits_it_had(units: int, quantized: bool) -> None:
    """64 units (the default model's: whole panels) and 17 (columns past the last panel), on every x86-64 code path:
    the same bits as the kernel that users had, whatever the kernel does now to be faster."""
    import hashlib

    if best_isa() not in ("avx512", "avx2+fma", "sse2"):
        pytest.skip(f"the pinned bits are x86-64's; this CPU runs {best_isa()}")
    for isa in [*wide_isas(), "baseline"]:
        model, ids = seeded_model(units, quantized, isa)
        out = np.empty(len(ids), dtype=np.float32)
        model.run(ids, out)
        family = "sse2" if isa == "baseline" else "avx"
        assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == PINNED[family, units, quantized], (isa, units, quantized)


# The same for a fused model's n-gram branch (the sum of its scores in NumPy's pairwise order, the mean, the sigmoid), by
# the row's n-gram length, on every side of the pairwise sum's splits: main at ca6c091, AVX2 and AVX-512.
PINNED_FUSED = {1: "9759071588e6adf9", 7: "db02fbef5d127dca", 8: "ec258d24d454def4", 9: "f94ec1c2625537b9", 127: "cab386a8696ff972",
                128: "8906f338544bfdb0", 129: "d0aecf9d02bb627b", 136: "7f8ed2269d1dfc19", 300: "f8fa103cb7d94b58", 512: "0a75a3f8ccf714b1",
                2049: "ea5a56601bf209ee"}


@needs_native
@pytest.mark.parametrize("length", PINNED_FUSED)
@pytest.mark.parametrize("padding", [0.0, -0.0])
def test_the_ngram_branch_keeps_the_bits_it_had(length: int, padding: float) -> None:
    """Rows of n-gram ids ending in zeros (which the kernel leaves out of the sum) and with zeros inside, the padding id's
    score +0 or -0: the fused probabilities keep their bits."""
    import hashlib

    from smsguard.runtime import _native

    if best_isa() not in ("avx512", "avx2+fma"):
        pytest.skip(f"the pinned bits are AVX2's and AVX-512's; this CPU runs {best_isa()}")
    units, maxlen, rows, n = 8, 5, 50, 300
    rng = np.random.default_rng(length)
    lstm = [rng.normal(0, 0.5, (rows, 4 * units)).astype(np.float32), None, rng.normal(0, 0.3, (units, 4 * units)).astype(np.float32),
            rng.normal(0, 1, units).astype(np.float32), 0.1, rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32),
            rng.normal(0, 0.5, (maxlen + 1, units)).astype(np.float32)]
    scores = rng.normal(0, 2.0, 8193).astype(np.float32)
    scores[0] = padding
    words = np.zeros((n, maxlen), np.int32)
    for row in words:
        k = int(rng.integers(0, maxlen + 1))
        row[maxlen - k :] = rng.integers(1, rows, k)
    ids = rng.integers(0, len(scores), (n, length), dtype=np.int32)
    for i, row in enumerate(ids):
        row[rng.integers(0, length + 1) :] = 0  # from no n-gram at all to a full row
        if i % 3 == 0:
            row[rng.random(length) < 0.3] = 0  # and zeros inside
    model = _native.lstm_model(*lstm, ngram_scores=scores, ngram_bias=-0.7, ngram_length=length)
    out = np.empty(n, np.float32)
    model.run(np.ascontiguousarray(np.concatenate([words, ids], axis=1)), out)
    assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == PINNED_FUSED[length]


@needs_native
@pytest.mark.parametrize("units", [64, 17])
@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "int8"])
def test_batches_of_every_size_give_each_message_its_bits_alone(units: int, quantized: bool) -> None:
    """Batches of 1 to 9 messages of mixed lengths, and across the kernel's window of 64 (63, 64, 65, 130): sorted by length
    inside, four or two stepping together, the rest alone; every message gets the bits it gets alone, on every code path."""
    for isa in [*wide_isas(), "baseline"] if best_isa() in ("avx512", "avx2+fma") else ["auto"]:
        model, ids = seeded_model(units, quantized, isa)
        alone = np.array([_native_one(model, row) for row in ids])
        for size in [*range(1, 10), 63, 64, 65, 130]:
            for start in range(0, len(ids) - size + 1, max(size, 7)):
                out = np.empty(size, dtype=np.float32)
                model.run(ids[start : start + size], out)
                assert_same_bits(out, alone[start : start + size], (isa, units, quantized, size, start))
        shuffled = np.random.default_rng(0).permutation(len(ids))
        out = np.empty(len(ids), dtype=np.float32)
        model.run(ids[shuffled], out)
        assert_same_bits(out, alone[shuffled], (isa, units, quantized, "shuffled"))


@needs_native
def test_texts_in_batches_of_every_size_get_their_bits_alone(tiny_bundle: Path) -> None:
    """The text path (Model.run_texts: featurised in C, then windows sorted by length): batches of 1 to 9 and 65 texts of
    mixed lengths, ASCII and not, each scored as alone."""
    from tiny import GOLDEN, TEXTS

    texts = [" ".join(TEXTS[i % len(TEXTS)] for i in range(k % 7)) + f" {k}" for k in range(70)] + list(GOLDEN)
    for model in NPZ_MODELS[:2]:
        classifier = Classifier.load(tiny_bundle, backend="native", model=model)
        alone = np.concatenate([classifier.predict_proba([text]) for text in texts])
        for size in [*range(1, 10), 65]:
            for start in range(0, len(texts) - size + 1, size):
                assert_same_bits(classifier.predict_proba(texts[start : start + size]), alone[start : start + size], (model, size, start))


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
