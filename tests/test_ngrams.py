"""The n-gram bag: the Python reference against a hand-worked example, the C kernel against the
reference on random texts from every corner of Unicode and every edge of the config, the frozen spec
(to_dict / from_dict) and its errors, and the fallback when the extension is not built."""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import zlib
from dataclasses import asdict

import numpy as np
import pytest
from conftest import needs

from smsguard.runtime import BackendError, BundleError, ConfigError, NgramConfig, NgramHasher, _native
from smsguard.runtime._native import NOT_BUILT, available
from smsguard.runtime._ngrams import WHITESPACE

needs_native = needs("" if available() else NOT_BUILT)

FUZZ_TEXTS = 2000  # random texts for the default config; each other config gets a quarter as many
POOLS = {
    "ascii": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;=?@[\\]^_`{|}~",
    "ascii_space": "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ",  # Python's whitespace in ASCII: the C kernel splits on these
    "latin1": "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÉÎÕÜß£¥©®°±µ¶·¿×÷",
    "greek": "ΑΒΓΔΣσςΟΦοφωΩάέή",  # capital sigma lowers to ς at the end of a word
    "turkish": "İIıi\u0307",  # İ lowers to two code points
    "emoji": "😀👍🏽🇺🇸❤\ufe0f\u200d🔥",  # 4-byte UTF-8, modifiers, joiners
    "cjk": "中文字漢日本語한국어",
    "combining": "\u0301\u0308\u0345\u20dd",  # \u0345 lowers/uppercases oddly
    "whitespace": WHITESPACE,  # every character str.split() splits on
    "odd": "\x00\ud800\udbff\udc80\udfff\ufeff\u200b\uffff\U0010ffff<>",  # NUL, lone surrogates, not-space spaces, the wrap characters
}
CONFIGS = [
    NgramConfig(),
    NgramConfig(buckets=1),
    NgramConfig(buckets=2),
    NgramConfig(buckets=3, length=7),
    NgramConfig(min_n=3, max_n=3),
    NgramConfig(min_n=1, max_n=4),
    NgramConfig(min_n=1, max_n=1, length=3),
    NgramConfig(min_n=16, max_n=16),
    NgramConfig(min_n=2, max_n=16, length=2000),
    NgramConfig(lower=False),
    NgramConfig(length=1),
    NgramConfig(buckets=10007),  # not a power of two: a remainder, not a mask
    NgramConfig(buckets=2**19 - 1),  # the largest bitmap the kernel keeps
    NgramConfig(buckets=2**19),  # the smallest that takes the hash set instead
    NgramConfig(buckets=2**31 - 2, length=50),
]


def random_text(rng: random.Random) -> str:
    """Mostly SMS-sized, some long enough to fill 512 ids, some one very long word."""
    pools = rng.sample(sorted(POOLS), rng.randint(1, 3))
    alphabet = "".join(POOLS[name] for name in pools)
    shape = rng.random()
    if shape < 0.05:
        return "".join(rng.choice(POOLS[pools[0]]) for _ in range(rng.randint(500, 3000)))  # one word, or close
    size = rng.randint(0, 40) if shape < 0.7 else rng.randint(100, 400) if shape < 0.9 else rng.randint(1000, 3000)
    return "".join(" " if rng.random() < 0.15 else rng.choice(alphabet) for _ in range(size))


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [random_text(rng) for _ in range(count)]


def reference_rows(hasher: NgramHasher, texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), hasher.config.length), dtype=np.int32)
    for row, text in zip(out, texts, strict=True):
        ids = hasher.ids(text)
        row[: len(ids)] = ids
    return out


def first_difference(native: np.ndarray, python: np.ndarray, texts: list[str]) -> str:
    row = int(np.flatnonzero((native != python).any(axis=1))[0])
    column = int(np.flatnonzero(native[row] != python[row])[0])
    return f"text {row} {texts[row][:80]!r}: column {column}, C {native[row, column]}, Python {python[row, column]}"


# ---- the reference ----------------------------------------------------------------------------------


def crc_id(gram: str, buckets: int) -> int:
    return zlib.crc32(gram.encode("utf-8")) % buckets + 1


# "Hi  mum!" lowers to "hi  mum!", splits into "hi" and "mum!", wrapped "<hi>" and "<mum!>"; grams by
# word, then start, then n = 2..5.
HI_MUM_GRAMS = [
    *["<h", "<hi", "<hi>"],  # start 0 of "<hi>"
    *["hi", "hi>"],
    "i>",
    *["<m", "<mu", "<mum", "<mum!"],  # start 0 of "<mum!>": "<mum!>" itself has 6 characters, too long
    *["mu", "mum", "mum!", "mum!>"],
    *["um", "um!", "um!>"],
    *["m!", "m!>"],
    "!>",
]


def test_the_reference_takes_grams_by_word_then_start_then_n() -> None:
    expected = [crc_id(gram, 8192) for gram in HI_MUM_GRAMS]
    assert len(set(expected)) == len(expected) == 20  # no collision among these 20 at 8192 buckets
    assert NgramHasher(native=False).ids("Hi  mum!") == expected


def test_the_reference_keeps_the_first_of_colliding_ids_and_stops_at_length() -> None:
    first_seen = list(dict.fromkeys(crc_id(gram, 5) for gram in HI_MUM_GRAMS))
    assert NgramHasher(NgramConfig(buckets=5), native=False).ids("Hi  mum!") == first_seen
    assert sorted(first_seen) == [1, 2, 3, 5]  # 20 grams, 4 ids: bucket 4 happens not to be hit
    assert NgramHasher(NgramConfig(length=4), native=False).ids("Hi  mum!") == [crc_id(gram, 8192) for gram in HI_MUM_GRAMS[:4]]


def test_the_reference_lowers_only_when_asked_and_counts_code_points() -> None:
    assert NgramHasher(NgramConfig(lower=False), native=False).ids("Hi") == [crc_id(gram, 8192) for gram in ["<H", "<Hi", "<Hi>", "Hi", "Hi>", "i>"]]
    # "İ" lowers to "i" + U+0307; a gram of 2 code points can be 3 bytes; a lone surrogate is its 3 bytes.
    lowered = ["<i", "<i\u0307", "<i\u0307>", "i\u0307", "i\u0307>", "\u0307>"]
    assert NgramHasher(native=False).ids("İ") == [crc_id(gram, 8192) for gram in lowered]
    surrogate = ["<\ud800", "<\ud800>", "\ud800>"]
    assert NgramHasher(native=False).ids("\ud800") == [zlib.crc32(g.encode("utf-8", "surrogatepass")) % 8192 + 1 for g in surrogate]


def test_whitespace_is_what_str_split_splits_on() -> None:
    splitting = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if len(("a" + c + "b").split()) == 2)
    assert splitting == WHITESPACE
    assert "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == WHITESPACE


# ---- encode, both implementations -------------------------------------------------------------------


@pytest.mark.parametrize("native", [pytest.param(True, marks=needs_native), False], ids=["c", "python"])
def test_empty_and_whitespace_only_texts_give_all_zero_rows(native: bool) -> None:
    texts = ["", " ", WHITESPACE, "\t\n \x1c", "\u3000\u2028\x85"]
    out = NgramHasher(native=native).encode(texts)
    assert out.dtype == np.int32
    assert out.shape == (5, 512)
    assert not out.any()


@pytest.mark.parametrize("native", [pytest.param(True, marks=needs_native), False], ids=["c", "python"])
def test_rows_are_the_ids_then_zeros_and_never_longer_than_length(native: bool) -> None:
    hasher = NgramHasher(NgramConfig(length=12), native=native)
    long_text = " ".join(f"word{i}" for i in range(500))
    out = hasher.encode(["Hi  mum!", long_text])
    assert out.shape == (2, 12)
    assert out[0].tolist() == [crc_id(gram, 8192) for gram in HI_MUM_GRAMS[:12]]
    assert out[1].all()
    assert out[1].tolist() == NgramHasher(NgramConfig(length=12), native=False).ids(long_text)
    short = NgramHasher(native=native).encode(["Hi  mum!"])[0]
    assert short[:20].all() and not short[20:].any()


@pytest.mark.parametrize("native", [pytest.param(True, marks=needs_native), False], ids=["c", "python"])
def test_encode_reads_utf8_bytes_and_refuses_what_as_texts_refuses(native: bool) -> None:
    hasher = NgramHasher(native=native)
    text = "Σπίτι İstanbul 😀 cafe\u0301"
    assert np.array_equal(hasher.encode([text.encode("utf-8"), bytearray(b"hi")]), hasher.encode([text, "hi"]))
    assert np.array_equal(hasher.encode(iter([text])), hasher.encode([text]))
    assert hasher.encode([]).shape == (0, 512)
    with pytest.raises(ValueError, match=r"^text at index 0 is bytes that are not UTF-8: byte 0xff at offset 0; "):
        hasher.encode([b"\xff"])
    with pytest.raises(TypeError, match=r"^texts must be a list of strings, found a single str; wrap it in a list$"):
        hasher.encode(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^text at index 1 must be str or UTF-8 bytes, found int$"):
        hasher.encode(["ok", 3])  # type: ignore[list-item]


# ---- C against the reference ------------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in asdict(c).items() if v != getattr(NgramConfig(), k)) or "default")
def test_c_equals_the_reference_on_random_texts(config: NgramConfig) -> None:
    count = FUZZ_TEXTS if config == NgramConfig() else FUZZ_TEXTS // 4
    texts = random_texts(count, seed=CONFIGS.index(config))
    native, python = NgramHasher(config, native=True), NgramHasher(config, native=False)
    assert native.native and not python.native
    got, expected = native.encode_checked(texts), reference_rows(python, texts)
    assert got.dtype == np.int32 and got.shape == expected.shape
    assert np.array_equal(got, expected), first_difference(got, expected, texts)
    if config == NgramConfig():  # the fuzz reaches every branch that matters
        filled = (expected != 0).sum(axis=1)
        assert (filled == config.length).sum() > 50 and (filled == 0).sum() > 20
        assert sum(not text.isascii() for text in texts) > count // 2 and sum(text.isascii() and bool(text.strip()) for text in texts) > 100


@needs_native
def test_c_equals_the_reference_one_message_at_a_time() -> None:
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    for config in (NgramConfig(), NgramConfig(buckets=3, min_n=1, max_n=2, length=9), NgramConfig(buckets=2**30, lower=False)):
        python = NgramHasher(config, native=False)
        for text in random_texts(200, seed=99):
            lowered = text.lower() if config.lower else text
            data = " ".join(lowered.split()).encode("utf-8", "surrogatepass")
            out = np.full(config.length, -1, dtype=np.int32)
            count = _lstm_c.ngram_ids(data, config.buckets, config.min_n, config.max_n, config.lower, out)
            expected = python.ids(text)
            assert count == len(expected)
            assert out[:count].tolist() == expected, text[:80]
            assert not out[count:].any()


@needs_native
def test_c_matches_on_the_messages_of_the_data_set_in_one_batch(data_path) -> None:
    texts = [line.split("\t", 1)[1] for line in data_path.read_text(encoding="utf-8").splitlines()][::5]
    got = NgramHasher(native=True).encode_checked(texts)  # over 16 KB of text: runs without the GIL
    assert np.array_equal(got, reference_rows(NgramHasher(native=False), texts))


@needs_native
def test_c_survives_bytes_that_are_not_utf8() -> None:
    """Malformed input cannot come from encode, but the kernel must still stay in bounds and keep its rules."""
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    rng = random.Random(7)
    tricky = [b"", b"\x80", b"\xbf\xbf\xbf", b"\xf0\x9f", b"\xf0", b"a\xe2\x82", b"\x80 \x80", b"\xff" * 40, b"<>" * 30]
    datas = tricky + [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) for _ in range(300)]
    for config in (NgramConfig(), NgramConfig(buckets=3, length=2), NgramConfig(min_n=1, max_n=16, buckets=2**31 - 2)):
        out = np.empty((len(datas), config.length), dtype=np.int32)
        _lstm_c.ngram_rows(datas, config.buckets, config.min_n, config.max_n, config.lower, out)
        for row in out:
            ids = row[row != 0]
            assert row[: len(ids)].all() and not row[len(ids) :].any()  # ids first, then zeros
            assert len(set(ids.tolist())) == len(ids) and ((ids >= 1) & (ids <= config.buckets)).all()
        again = np.empty_like(out)
        _lstm_c.ngram_rows(datas, config.buckets, config.min_n, config.max_n, config.lower, again)
        assert np.array_equal(out, again)  # nothing left over from one message or call to the next
    # Valid UTF-8 with the words already split: the same ids as the reference of the decoded text.
    text = "ab\u00e9 \U0001f600x \u4e2d"
    out = np.empty(512, dtype=np.int32)
    count = _lstm_c.ngram_ids(text.encode("utf-8"), 8192, 2, 5, False, out)
    assert out[:count].tolist() == NgramHasher(NgramConfig(lower=False), native=False).ids(text)


@needs_native
def test_threads_sharing_a_hasher_get_the_same_rows() -> None:
    hasher = NgramHasher()
    texts = random_texts(300, seed=3)  # several hundred KB: each call releases the GIL
    expected = hasher.encode_checked(texts)
    results: list[np.ndarray] = []

    def run() -> None:
        for _ in range(3):
            results.append(hasher.encode_checked(texts))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(np.array_equal(result, expected) for result in results)


@needs_native
def test_c_reads_an_ascii_str_in_place_and_lowers_only_its_ascii_letters() -> None:
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    text = "Hi MUM!\x1cWhere\tARE\x0byou"
    for lower in (True, False):
        config = NgramConfig(lower=lower)
        out = np.empty((2, 512), dtype=np.int32)
        _lstm_c.ngram_rows([text, text.encode("ascii")], 8192, 2, 5, lower, out)
        expected = NgramHasher(config, native=False).ids(text)
        assert out[0, : len(expected)].tolist() == expected and not out[0, len(expected) :].any()
        assert np.array_equal(out[0], out[1])


@needs_native
def test_c_refuses_bad_arguments() -> None:
    from smsguard.runtime import _lstm_c  # type: ignore[attr-defined]

    rows = np.zeros((1, 4), dtype=np.int32)
    with pytest.raises(ValueError, match=r"^buckets must be from 1 to 2147483646, found 0$"):
        _lstm_c.ngram_rows([b"a"], 0, 2, 5, True, rows)
    with pytest.raises(ValueError, match=r"^n-gram sizes must satisfy 1 <= min_n <= max_n <= 16, found min_n=3, max_n=2$"):
        _lstm_c.ngram_rows([b"a"], 8, 3, 2, True, rows)
    with pytest.raises(TypeError, match=r"^'float' object cannot be interpreted as an integer$"):
        _lstm_c.ngram_rows([b"a"], 8.0, 2, 5, True, rows)
    with pytest.raises(ValueError, match=r"^out must be a writable int32 array of shape \(len\(texts\), limit\) whose rows are contiguous$"):
        _lstm_c.ngram_rows([b"a"], 8, 2, 5, True, rows.astype(np.int64))
    wide = np.zeros((2, 8), dtype=np.int32)
    for strided in (wide[:, ::2], wide[::-1], np.zeros((2, 8, 2), dtype=np.int32)[:, :, 0], np.zeros((4, 4), dtype=np.int32).T):
        with pytest.raises(ValueError, match=r"^out must be a writable int32 array of shape \(len\(texts\), limit\) whose rows are contiguous$"):
            _lstm_c.ngram_rows([b"a", b"b"], 8, 2, 5, True, strided)
    with pytest.raises(ValueError, match=r"^out has 1 rows for 2 texts$"):
        _lstm_c.ngram_rows([b"a", b"b"], 8, 2, 5, True, rows)
    with pytest.raises(TypeError, match=r"^texts\[1\] must be bytes or an ASCII str, found a str that is not ASCII$"):
        _lstm_c.ngram_rows([b"a", "\u00e9"], 8, 2, 5, True, np.zeros((2, 4), dtype=np.int32))
    with pytest.raises(TypeError, match=r"^texts\[0\] must be bytes or an ASCII str, found bytearray$"):
        _lstm_c.ngram_rows([bytearray(b"a")], 8, 2, 5, True, rows)
    with pytest.raises(TypeError, match=r"^texts must be a list of bytes and ASCII str$"):
        _lstm_c.ngram_rows(None, 8, 2, 5, True, rows)
    with pytest.raises(TypeError, match=r"^ngram_rows takes 6 arguments \(texts, buckets, min_n, max_n, lower, out\), found 5$"):
        _lstm_c.ngram_rows([b"a"], 8, 2, 5, rows)
    with pytest.raises(ValueError, match=r"^out must be a writable int32 array of shape \(limit,\) whose rows are contiguous$"):
        _lstm_c.ngram_ids(b"a", 8, 2, 5, True, rows)
    read_only = np.zeros(4, dtype=np.int32)
    read_only.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        _lstm_c.ngram_ids(b"a", 8, 2, 5, True, read_only)
    assert _lstm_c.ngram_rows((b"a b", "c"), 8, 2, 5, True, np.zeros((2, 4), dtype=np.int32)) is None  # any sequence


# ---- the frozen spec --------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [pytest.param(True, marks=needs_native), False], ids=["c", "python"])
def test_rows_go_straight_into_the_columns_of_a_wider_array(native: bool) -> None:
    """A fused model's input: the word ids, then the n-gram ids written in place, every element of them
    (zeros included) and nothing outside them."""
    from smsguard.runtime import Vocabulary

    texts = ["WINNER!! Claim your prize now", "", "see you at 6 \u00e9t\u00e9", "x " * 400]
    hasher = NgramHasher(NgramConfig(length=64), native=native)
    wide = np.full((len(texts), 10 + 64 + 3), -7, dtype=np.int32)
    assert hasher.encode_checked(texts, wide[:, 10:74]) is not None
    np.testing.assert_array_equal(wide[:, 10:74], hasher.encode(texts))
    assert (wide[:, :10] == -7).all() and (wide[:, 74:] == -7).all()
    vocabulary = Vocabulary.fit(texts).with_ngrams(hasher)
    fused = vocabulary.encode(texts)
    assert fused.shape == (len(texts), vocabulary.width) and fused.flags.c_contiguous
    np.testing.assert_array_equal(fused, np.concatenate([vocabulary.encode_words(texts), hasher.encode(texts)], axis=1))


def test_to_dict_is_the_whole_spec_and_round_trips_through_json() -> None:
    hasher = NgramHasher(NgramConfig(buckets=4096, min_n=1, max_n=4, length=300, lower=False))
    data = hasher.to_dict()
    assert data == {
        "format": 1,
        "buckets": 4096,
        "min_n": 1,
        "max_n": 4,
        "length": 300,
        "lower": False,
        "hash": "crc32",
        "encoding": "utf-8",
        "encoding_errors": "surrogatepass",
        "wrap": ["<", ">"],
        "order": "word, start, n",
        "whitespace": WHITESPACE,
    }
    again = NgramHasher.from_dict(json.loads(json.dumps(data)))
    assert again == hasher and again.config == hasher.config
    assert again.to_dict() == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "n-gram bag format 2 is not supported (this smsguard reads 1)"),
        ({"format": True}, "n-gram bag format True is not supported (this smsguard reads 1)"),
        ({"hash": "md5"}, "n-gram bag field 'hash' is 'md5', this smsguard computes 'crc32'"),
        ({"wrap": ["[", "]"]}, "n-gram bag field 'wrap' is ['[', ']'], this smsguard computes ['<', '>']"),
        ({"order": "n, start, word"}, "n-gram bag field 'order' is 'n, start, word', this smsguard computes 'word, start, n'"),
        ({"whitespace": " "}, f"n-gram bag field 'whitespace' is ' ', this smsguard computes {WHITESPACE!r}"),
        ({"buckets": 0}, "n-gram bag is malformed: buckets must be an integer from 1 to 2147483646, found 0"),
        ({"buckets": "8192"}, "n-gram bag is malformed: buckets must be an integer from 1 to 2147483646, found '8192'"),
        ({"lower": 1}, "n-gram bag is malformed: lower must be true or false, found 1"),
    ],
)
def test_from_dict_names_the_field_that_is_wrong(change: dict, message: str) -> None:
    with pytest.raises(BundleError, match=f"^{re.escape(message)}$"):
        NgramHasher.from_dict(NgramHasher().to_dict() | change)


def test_from_dict_refuses_a_missing_field_and_a_non_object() -> None:
    data = NgramHasher().to_dict()
    del data["min_n"]
    with pytest.raises(BundleError, match=r"^n-gram bag is malformed: missing field 'min_n'$"):
        NgramHasher.from_dict(data)
    with pytest.raises(BundleError, match=r"^n-gram bag is malformed: expected a JSON object, found list$"):
        NgramHasher.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"buckets": 0}, "buckets must be an integer from 1 to 2147483646, found 0"),
        ({"buckets": 2**31 - 1}, "buckets must be an integer from 1 to 2147483646, found 2147483647"),
        ({"buckets": True}, "buckets must be an integer from 1 to 2147483646, found True"),
        ({"min_n": 0}, "n-gram sizes must be integers with 1 <= min_n <= max_n <= 16, found min_n=0, max_n=5"),
        ({"min_n": 4, "max_n": 3}, "n-gram sizes must be integers with 1 <= min_n <= max_n <= 16, found min_n=4, max_n=3"),
        ({"max_n": 17}, "n-gram sizes must be integers with 1 <= min_n <= max_n <= 16, found min_n=2, max_n=17"),
        ({"max_n": 5.0}, "n-gram sizes must be integers with 1 <= min_n <= max_n <= 16, found min_n=2, max_n=5.0"),
        ({"length": 0}, "length must be a positive integer, found 0"),
        ({"lower": "yes"}, "lower must be true or false, found 'yes'"),
    ],
)
def test_a_bad_config_says_which_setting_and_what_it_found(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        NgramConfig(**fields)


# ---- the fallback -----------------------------------------------------------------------------------


def test_without_the_extension_the_reference_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["Hi  mum!", "Σίσυφος İzmir 😀", ""]
    expected = reference_rows(NgramHasher(native=False), texts)
    monkeypatch.setattr(_native, "available", lambda: False)
    hasher = NgramHasher()
    assert not hasher.native
    assert repr(hasher) == "NgramHasher(NgramConfig(buckets=8192, min_n=2, max_n=5, length=512, lower=True), python)"
    assert np.array_equal(hasher.encode(texts), expected)
    with pytest.raises(BackendError, match=f"^{re.escape(NOT_BUILT)}$"):
        NgramHasher(native=True)
