"""A fused model in the native kernel: the n-gram gather-mean and the fusion run inside the C call and
give what `NgramBranch.fuse` gives (the NumPy and numba backends) within 1e-6, on small `.npz` files
written by export's own `write_npz` from random weights; bit-identical for a message alone or in any
batch; bad n-gram ids refused with a clear error; word-only models unchanged. No timings."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import cannot_run, needs
from cpu import expected_isa

from smsguard.export._primed import write_npz
from smsguard.runtime import BackendError, NgramConfig, NgramHasher, Vocabulary
from smsguard.runtime._backends import backend_info, open_session
from smsguard.runtime._lstm import LstmWeights, proba
from smsguard.runtime._lstm_native import NativeArrays
from smsguard.runtime._lstm_native import proba as native_proba
from smsguard.runtime._native import NOT_BUILT, available, best_isa
from smsguard.runtime.bundle import BundleFile

pytestmark = needs("" if available() else NOT_BUILT)

MAXLEN = 12
ATOL = 1e-6  # the kernel's float32 n-gram branch against NumPy's (expf and NumPy's exp may differ by an ulp)
TEXTS = [
    "WINNER!! Claim your £900 prize now, call 09061701461",
    "Are we still on for dinner tonight?",
    "",
    "   ",
    "ok",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 to receive entry question",
    "été à Paris, ça va? 😀👍🏽",
    "x " * 300,  # more grams than a row keeps
    " ".join(f"w{i}" for i in range(40)),
]


def isas() -> list[str]:
    return ["auto", *(["avx2"] if best_isa() == "avx512" else []), "baseline"] if best_isa() not in ("sse2", "neon", "generic") else ["auto"]


def random_weights(rng: np.random.Generator, words: int, units: int, buckets: int, length: int | None) -> dict[str, np.ndarray]:
    """Weights of the shapes and scales a trained model has; with `length`, a fused model's folded n-gram branch."""
    dim = 8
    weights = {
        "embedding": rng.normal(0, 0.5, (words, dim)).astype(np.float32),
        "kernel": rng.normal(0, 0.4, (dim, 4 * units)).astype(np.float32),
        "recurrent": rng.normal(0, 0.3, (units, 4 * units)).astype(np.float32),
        "bias": rng.normal(0, 0.1, 4 * units).astype(np.float32),
        "dense_kernel": rng.normal(0, 0.8, units).astype(np.float32),
        "dense_bias": np.array([0.1], dtype=np.float32),
    }
    if length is not None:
        scores = rng.normal(0, 2.0, buckets + 1).astype(np.float32)
        scores[0] = 0.0
        weights |= {"ngram_scores": scores, "ngram_bias": np.array([-0.7], dtype=np.float32), "ngram_length": np.array(length, dtype=np.int64)}
    return weights


@pytest.fixture(scope="module", params=[(64, 1024, 96), (20, 8192, 512)], ids=["u64-b1024-l96", "u20-b8192-l512"])
def model_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fused model (float32 and int8 table), the same word model alone, and ids for both: 64 units run the
    kernel's blocks, 20 its leftover columns; 512 n-gram ids a row as the fused preset."""
    units, buckets, length = request.param
    rng = np.random.default_rng(units)
    folder = tmp_path_factory.mktemp(f"fused{units}")
    weights = random_weights(rng, 300, units, buckets, length)
    paths = {}
    for name, quantize in (("fused.float32.npz", False), ("fused.int8.npz", True)):
        write_npz(weights, MAXLEN, folder / name, quantize)
        paths[name] = folder / name
    word_weights = {key: value for key, value in weights.items() if not key.startswith("ngram")}
    write_npz(word_weights, MAXLEN, folder / "words.float32.npz", False)
    paths["words.float32.npz"] = folder / "words.float32.npz"
    hasher = NgramHasher(NgramConfig(buckets=buckets, length=length))
    n = 2000
    words = np.zeros((n, MAXLEN), dtype=np.int32)
    for row, size in zip(words, rng.integers(0, MAXLEN + 1, n), strict=True):  # every length, front-padded
        row[MAXLEN - size :] = rng.integers(1, 300, size)
    texts = [TEXTS[i % len(TEXTS)] + (f" extra{i}" if i % 3 else "") for i in range(n)]
    ids = np.concatenate([words, hasher.encode(texts)], axis=1)
    return {"paths": paths, "ids": ids, "length": length, "buckets": buckets}


def native_model(path: Path, isa: str = "auto"):
    return NativeArrays.load(path).model(isa)


@pytest.mark.parametrize("isa", isas())
@pytest.mark.parametrize("name", ["fused.float32.npz", "fused.int8.npz"])
def test_the_kernel_fuses_as_numpy_does(model_files: dict, name: str, isa: str) -> None:
    path, ids = model_files["paths"][name], model_files["ids"]
    weights = LstmWeights.load(path)
    assert weights.ngrams is not None and weights.ngrams.length == model_files["length"]
    expected = proba(ids, weights)
    model = native_model(path, isa)
    assert model.isa == expected_isa(isa)  # the path asked for, not the kernel's own choice
    got = native_proba(model, ids)
    assert got.dtype == np.float32 and got.shape == (len(ids),)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    # The n-gram branch alone: the kernel's word probability, fused by NumPy, is the kernel's fused one.
    words_only = dataclasses.replace(NativeArrays.load(path), ngrams=None).model(isa)
    word_probability = native_proba(words_only, np.ascontiguousarray(ids[:, :MAXLEN]))
    np.testing.assert_allclose(got, weights.ngrams.fuse(word_probability, ids[:, MAXLEN:]), atol=ATOL, rtol=0)
    assert np.abs(got - word_probability).max() > 0.01  # the n-gram branch counts


@pytest.mark.parametrize("isa", ["auto", "baseline"])
def test_a_native_session_runs_the_instruction_set_asked_for(tiny_bundle: Path, isa: str) -> None:
    from smsguard.runtime import Bundle
    from smsguard.runtime._backends import NativeSession

    bundle = Bundle.load(tiny_bundle)
    entry = bundle.model("model.int8.npz")
    session = NativeSession(backend_info("native"), bundle.model_path(entry), entry, isa=isa)
    assert session.isa == expected_isa(isa)
    ids = bundle.vocabulary.encode([g.text for g in bundle.golden])
    numpy = open_session(backend_info("numpy"), bundle.model_path(entry), entry).run(ids)
    np.testing.assert_allclose(session.run(ids), numpy, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", ["native", "numba", "numpy"])
def test_every_npz_backend_gives_the_fused_probability(model_files: dict, backend: str) -> None:
    info = backend_info(backend)
    if not info.installed:
        cannot_run(f"backend '{backend}' is not installed here")
    path, ids = model_files["paths"]["fused.int8.npz"], model_files["ids"]
    entry = BundleFile(name=path.name, kind="model", size=path.stat().st_size, sha256="", format="npz", quantization="int8")
    session = open_session(info, path, entry)
    width = MAXLEN + model_files["length"]
    assert session.signature()[0][0].shape == (None, width)
    np.testing.assert_allclose(session.run(ids), proba(ids, LstmWeights.load(path)), atol=ATOL, rtol=0)


@pytest.mark.parametrize("isa", isas())
def test_a_fused_message_gets_the_same_bits_alone_or_in_any_batch(model_files: dict, isa: str) -> None:
    path, ids = model_files["paths"]["fused.int8.npz"], model_files["ids"]
    model = native_model(path, isa)
    everything = native_proba(model, ids)
    watched = list(range(0, len(ids), 37))
    alone = np.array([native_proba(model, ids[i : i + 1])[0] for i in watched])
    assert alone.tobytes() == everything[watched].tobytes()
    for size in (2, 3, 7):  # pairs in both places, and the odd one out
        for position, i in enumerate(watched):
            start = min(max(i - position % size, 0), len(ids) - size)
            batch = native_proba(model, ids[start : start + size])
            assert batch[i - start].tobytes() == alone[position].tobytes(), (size, i)


def test_bad_ngram_ids_are_refused(model_files: dict) -> None:
    path, ids = model_files["paths"]["fused.float32.npz"], model_files["ids"][:3].copy()
    entry = BundleFile(name=path.name, kind="model", size=0, sha256="", format="npz", quantization="float32")
    session = open_session(backend_info("native"), path, entry)
    top = model_files["buckets"]
    for column, value in ((MAXLEN, top + 1), (MAXLEN + 5, -1), (ids.shape[1] - 1, 2**31 - 1)):
        bad = ids.copy()
        bad[2, column] = value
        expected = f"native backend: n-gram id {value} at row 2 is outside the model's n-gram ids 0..{top}"
        with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
            session.run(bad)
    bad = ids.copy()
    bad[1, 0] = 300
    with pytest.raises(BackendError, match=r"^native backend: token id 300 at row 1 is outside the model's vocabulary of 300 ids$"):
        session.run(bad)
    width, length = ids.shape[1], model_files["length"]
    shape = re.escape(f"native backend: ids must be a C-contiguous int32 array of shape (n, {width}): {MAXLEN} word ids, then {length} n-gram ids")
    for wrong in (ids[:, :MAXLEN], ids[:, :-1], ids[0]):
        with pytest.raises(BackendError, match=f"^{shape}$"):
            session.run(wrong)


def test_the_model_refuses_a_bad_ngram_branch(model_files: dict) -> None:
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    arrays = NativeArrays.load(model_files["paths"]["fused.float32.npz"])
    assert arrays.ngrams is not None
    lstm = (arrays.table, arrays.table_scale, arrays.recurrent, arrays.dense_kernel, arrays.dense_bias, arrays.primed_h, arrays.primed_c)
    scores = arrays.ngrams.scores
    cases = [
        ({"ngram_scores": scores, "ngram_length": 0}, r"^ngram_length must be from 1 to 2147483647, found 0$"),
        ({"ngram_length": 8}, r"^ngram_length 8 needs ngram_scores$"),
        ({"ngram_scores": np.ones(5, dtype=np.float32), "ngram_length": 8}, r"^ngram_scores must be a vector whose first \(padding\) score is 0$"),
        ({"ngram_scores": np.zeros(0, dtype=np.float32), "ngram_length": 8}, r"^ngram_scores must be a vector whose first \(padding\) score is 0$"),
        ({"ngram_scores": scores.astype(np.float64), "ngram_length": 8}, r"^ngram_scores must be a C-contiguous 1-D array of format 'f'"),
        ({"ngram_scores": scores.reshape(1, -1), "ngram_length": 8}, r"^ngram_scores must be a C-contiguous 1-D array of format 'f'"),
    ]
    for keywords, message in cases:
        with pytest.raises(ValueError, match=message):
            _lstm_c.Model(*lstm, "auto", **keywords)
    with pytest.raises(TypeError):
        _lstm_c.Model(*lstm, "auto", scores)  # the n-gram branch is given by keyword only


def test_a_word_model_runs_as_before(model_files: dict) -> None:
    path, ids = model_files["paths"]["words.float32.npz"], model_files["ids"]
    words = np.ascontiguousarray(ids[:, :MAXLEN])
    arrays = NativeArrays.load(path)
    assert arrays.ngrams is None
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    model = _lstm_c.Model(arrays.table, arrays.table_scale, arrays.recurrent, arrays.dense_kernel, arrays.dense_bias, arrays.primed_h, arrays.primed_c)
    np.testing.assert_allclose(native_proba(model, words), proba(words, LstmWeights.load(path)), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match=rf"^ids must be a C-contiguous int32 array of shape \(n, {MAXLEN}\)$"):
        native_proba(model, ids)
    assert set(model.profile(words[:5], np.empty(5, dtype=np.float32))) == {"lookup_ns", "recurrence_ns", "activations_ns", "output_ns", "timer_ns"}


def test_the_profile_times_the_ngram_branch_and_scores_alike(model_files: dict) -> None:
    path, ids = model_files["paths"]["fused.int8.npz"], model_files["ids"][:50]
    model = native_model(path)
    out = np.empty(len(ids), dtype=np.float32)
    parts = model.profile(ids, out)
    assert set(parts) == {"lookup_ns", "recurrence_ns", "activations_ns", "output_ns", "timer_ns", "ngram_ns"}
    assert parts["ngram_ns"] > 0
    assert out.tobytes() == native_proba(model, ids).tobytes()


def test_a_fused_vocabulary_feeds_the_kernel_one_array(model_files: dict) -> None:
    """Text to probability: the vocabulary writes word and n-gram ids into one row, the kernel takes it."""
    length, buckets = model_files["length"], model_files["buckets"]
    vocabulary = Vocabulary.fit(TEXTS).with_ngrams(NgramHasher(NgramConfig(buckets=buckets, length=length)))
    vocabulary = Vocabulary(dataclasses.replace(vocabulary.config, maxlen=MAXLEN), vocabulary.word_index, vocabulary.ngrams)
    ids = vocabulary.encode(TEXTS)
    assert ids.shape == (len(TEXTS), MAXLEN + length) and ids.flags.c_contiguous
    path = model_files["paths"]["fused.float32.npz"]
    np.testing.assert_allclose(native_proba(native_model(path), ids), proba(ids, LstmWeights.load(path)), atol=ATOL, rtol=0)


@pytest.mark.parametrize("length", [1, 7, 8, 9, 127, 128, 129, 136, 300, 512, 2049])
def test_numbas_gather_mean_gives_the_bits_of_numpys(length: int) -> None:
    """The numba backend's gather-mean is compiled (`_lstm_numba.ngram_means`, NumPy's pairwise order written out, without
    recursion); its fusion equals `NgramBranch.fuse` bit for bit, at lengths on every side of the pairwise sum's splits."""
    if not backend_info("numba").installed:
        pytest.skip("numba is not installed (pip install 'smsguard[fast]')")
    from smsguard.runtime import _lstm_numba
    from smsguard.runtime._lstm import NgramBranch

    rng = np.random.default_rng(length)
    scores = rng.normal(0, 2.0, 8193).astype(np.float32)
    scores[0] = 0.0
    branch = NgramBranch(scores, np.float32(-0.7), length)
    ids = rng.integers(0, len(scores), (200, length), dtype=np.int32)
    for row in ids:
        row[rng.integers(0, length + 1) :] = 0  # from no n-gram at all to a full row
    words = rng.uniform(0, 1, len(ids)).astype(np.float32)
    means, bad = _lstm_numba.ngram_means(ids, scores)
    assert bad == -1
    assert branch.fuse_means(words, means).tobytes() == branch.fuse(words, ids).tobytes()
    ids[150, length // 2] = len(scores)
    assert _lstm_numba.ngram_means(ids, scores)[1] == 150
