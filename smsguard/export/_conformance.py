"""The conformance file: messages that cover the hard cases of the input spec (case mapping, whitespace,
surrogates, the `num_words` cut, lengths, normalisation), with the ids the Python reference gives
(`Vocabulary.encode`) and the probability the native backend gives on every `.npz` model of a bundle. Every
port (Java, JavaScript, C) replays it; `compare` is the one check they are all held to.

    smsguard conformance BUNDLE --out FILE [--uci PATH]
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsguard._files import sha256_of
from smsguard._staging import write_atomic
from smsguard.export._parity import FLOAT_ATOL
from smsguard.runtime import Bundle, BundleError, Classifier, Decision, ModelFormat, NgramHasher, Vocabulary
from smsguard.runtime.bundle import MANIFEST_NAME

CONFORMANCE_FORMAT = 1
PROBABILITY_TOLERANCE = FLOAT_ATOL  # a port runs the same float32 model; only the order of sums and its exp differ
UCI_SAMPLE = 100  # real messages added with --uci: every kind of SMS, in a file that stays a few hundred kB
LONG_TEXT_CHARS = 10_000  # the long case: far past maxlen and the bag's length, still a small file


@dataclass(frozen=True)
class Case:
    name: str
    text: str


@dataclass(frozen=True)
class Conformance:
    """A conformance file as read: the bundle it was made for, its tolerance, models and cases."""

    manifest_sha256: str
    serial: int
    tolerance: float
    models: tuple[str, ...]
    cases: tuple[dict[str, Any], ...]  # name, text, ids, probabilities

    @classmethod
    def read(cls, path: Path) -> Conformance:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data["format"] != CONFORMANCE_FORMAT:
                msg = f"conformance file '{path}' has format {data['format']!r}, this smsguard reads {CONFORMANCE_FORMAT}"
                raise BundleError(msg)
            return cls(
                manifest_sha256=data["bundle"]["manifest_sha256"],
                serial=int(data["bundle"]["serial"]),
                tolerance=float(data["tolerance"]["probability"]),
                models=tuple(data["models"]),
                cases=tuple(data["cases"]),
            )
        except OSError as error:
            msg = f"conformance file '{path}' cannot be read: {error.strerror or error}"
            raise BundleError(msg) from None
        except (ValueError, KeyError, TypeError) as error:
            msg = f"conformance file '{path}' is malformed: {type(error).__name__}: {error}"
            raise BundleError(msg) from None

    @property
    def texts(self) -> list[str]:
        return [case["text"] for case in self.cases]

    @property
    def ids(self) -> np.ndarray:
        return np.array([case["ids"] for case in self.cases], dtype=np.int64)

    def probabilities(self, model: str) -> np.ndarray:
        return np.array([case["probabilities"][model] for case in self.cases], dtype=np.float64)


# ---- the cases --------------------------------------------------------------------------------------------


def hard_cases(vocabulary: Vocabulary) -> list[Case]:
    """The spec's hard cases for this vocabulary (its num_words, maxlen and bag length), in a fixed order."""
    return [
        *_case_mapping(),
        *_whitespace(),
        *_surrogates_and_emoji(),
        *_sizes(vocabulary),
        *_normalisation(),
    ]


def _case_mapping() -> list[Case]:
    return [
        Case("dotted capital I (lowercases to two code points)", "İstanbul İZMİR KİLİM"),
        Case("special lowercase: sharp s, Kelvin, Ohm, Angstrom, titlecase dz", "STRAẞE 5K 3Ω Å ǅemal ǈ ǋ"),
        Case("lowercase that differs across Unicode versions (U+1C89, U+A7CB, U+10D50)", "\u1c89\u1c8a \ua7cb\ua7cc \U00010d50\U00010d51 \U00016ea0"),
        Case("Cherokee and Deseret capitals", "ᏣᎳᎩ \U00010400\U00010401 \U000104b0"),
        Case("final sigma at the end of a word", "ΟΔΟΣ ΟΔΟΣ"),
        Case("final sigma before punctuation and a filter", "ΟΔΟΣ. ΟΔΟΣ-ΟΔΟΣ! (ΛΟΓΟΣ)"),
        Case("sigma inside a word", "ΣΟΦΙΑ ΟΔΟΣΑ"),
        Case("sigma alone", "Σ"),
        Case("sigma after a case-ignorable character", "Α'Σ Α\u0301Σ Α\u00adΣ"),
        Case("sigma before a case-ignorable then a letter", "ΑΣ'Α ΑΣ\u0301Β ΑΣ'"),
        Case("sigma after a non-letter", "1Σ .Σ ΑΣ1"),
        Case("sigmas in a row", "ΑΣΣ ΣΣΣ ΑΣΣΑ"),
        Case("mixed case words", "FREE free Free fReE WINNER Winner"),
    ]


def _whitespace() -> list[Case]:
    whitespace = NgramHasher().to_dict()["whitespace"]  # the spec's 29 code points, str.split()'s
    every = [Case(f"whitespace U+{ord(char):04X} between words", f"call{char}now{char}{char}free") for char in whitespace]
    return [
        *every,
        Case("every whitespace character in one text", "a" + "b".join(whitespace) + "c"),
        Case("characters that look blank but are not whitespace", "a\u200bb c\u180ed e\ufeffF g\u2060h i\u00adj"),
        Case("NUL inside and around words", "\x00call\x00now \x00 free\x00"),
        Case("NUL alone", "\x00"),
        Case("control characters", "a\x01b\x7fc \x1bd\x08e \x9ff"),
        Case("carriage return and no-break space (not filters)", "hello\rworld free\u00a0prize\r\ncall"),
    ]


def _surrogates_and_emoji() -> list[Case]:
    return [
        Case("lone high surrogate at the start", "\ud800call now"),
        Case("lone high surrogate in the middle", "call\udbffnow free"),
        Case("lone high surrogate at the end", "call now\ud83d"),
        Case("lone low surrogate at the start", "\udc00call now"),
        Case("lone low surrogate in the middle", "call\udfffnow free"),
        Case("lone low surrogate at the end", "call now\ude00"),
        Case("low then high surrogate (two lone ones)", "a\udc00\ud800b \udfff\udbff"),
        Case("lone surrogates as whole words", "\ud800 \udc00 \udbff\udbff"),
        Case("emoji outside the BMP", "Free 🎁 gift 😀😀 win 💰💰💰"),
        Case("emoji with modifiers, flags and joiners", "👍🏽 🇬🇧🇺🇸 👨\u200d👩\u200d👧 ❤\ufe0f"),
        Case("supplementary letters and digits", "𝐅𝐑𝐄𝐄 𝟏𝟐𝟑 \U00020000\U0002a6d6 \U0001f170\U0001f171"),
        Case("the last code points", "\U0010ffff \U000e0001\U000e007f \U000fffff"),
    ]


def _sizes(vocabulary: Vocabulary) -> list[Case]:
    config = vocabulary.config
    by_id = sorted(vocabulary.word_index.items(), key=lambda item: item[1])
    known = [word for word, index in by_id if word != config.oov_token and word.isascii() and word.isalnum()]
    limit = config.num_words
    below = [word for word, index in by_id if limit and index == limit - 1]
    past = [word for word, index in by_id if limit and index >= limit and word != config.oov_token]
    length = vocabulary.ngrams.config.length if vocabulary.ngrams else 512
    rng = random.Random(17)
    many_grams = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(3, 9))) for _ in range(length))
    long_text = _long_text(random.Random(18), known)
    cases = [
        Case("empty", ""),
        Case("whitespace only", " \t\n\u3000\u00a0 "),
        Case("filters only", "!!! ... ??? --- ***"),
        Case("an unknown word", "zqxjvbkw"),
        Case(f"maxlen - 1 known words ({config.maxlen - 1})", " ".join(known[: config.maxlen - 1])),
        Case(f"maxlen known words ({config.maxlen})", " ".join(known[: config.maxlen])),
        Case(f"more known words than maxlen ({config.maxlen + 25}): truncating", " ".join(known[: config.maxlen + 25])),
        Case(f"more distinct n-grams than the bag's length ({length})", many_grams),
        Case(f"a long text ({LONG_TEXT_CHARS} characters)", long_text),
        Case("one long word (3,000 letters)", "a" * 1000 + "b" * 1000 + "c" * 1000),
    ]
    if below:
        cases.append(Case(f"the word just below num_words (id {vocabulary.word_index[below[0]]})", f"{below[0]} {below[0]}"))
    if past:  # export keeps no word past num_words; a hand-made vocabulary may
        cases.append(Case(f"a word at or past num_words (id {vocabulary.word_index[past[0]]})", past[0]))
    return cases


def _long_text(rng: random.Random, known: Sequence[str]) -> str:
    pieces: list[str] = []
    size = 0
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'£$€éßΣΟΔç😀\u00a0\t\n"
    while size < LONG_TEXT_CHARS:
        piece = rng.choice(known) if rng.random() < 0.5 and known else "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        pieces.append(piece)
        size += len(piece) + 1
    return " ".join(pieces)[:LONG_TEXT_CHARS]


def _normalisation() -> list[Case]:
    """Evasions the format 2 normalisation undoes (a bundle without it must leave them as they are)."""
    return [
        Case("full-width letters", "ＦＲＥＥ ｐｒｉｚｅ！ Ｃａｌｌ ０８００"),
        Case("zero-width characters inside words", "fr\u200bee pri\u200dze c\u200call w\u2060in"),
        Case("soft hyphen and bidi controls inside words", "pri\u00adze fr\u202eee c\u200fall"),
        Case("variation selectors inside words", "fre\ufe0fe wi\U000e0100n"),
        Case("Cyrillic look-alikes inside Latin words", "frее cаll nоw wіnnеr"),
        Case("Greek look-alikes inside Latin words", "FRΕΕ ΤΟΝΕ cΑLL"),
        Case("a pure Cyrillic word and a pure Greek one", "привет мир Καλημέρα κόσμε"),
        Case("spaced letters", "F R E E entry W I N N E R"),
        Case("dotted letters", "F.R.E.E c.a.l.l now"),
        Case("letters apart with other separators", "F-R-E-E F_R_E_E F*R*E*E F+R+E+E F~R~E~E F|R|E|E F/R/E/E F:R:E:E F,R,E,E F'R'E'E F·R·E·E F•R•E•E"),
        Case("a run of two separators, and of three", "F..R..E..E F...R...E...E F. R. E. E"),
        Case("spaced digits", "0 8 0 0 1 2 3 4 call 0.8.0.0"),
        Case("short spaced words stay", "u r a star, c u l8r, i o u"),
        Case("spaced letters next to words", "xF R E Ey F R E E2 aF R E E"),
        Case("mathematical, circled and parenthesised letters", "𝐅𝐑𝐄𝐄 ⓕⓡⓔⓔ ⒡⒭⒠⒠ 🄵🅁🄴🄴"),
        Case("ligatures, superscripts and fractions", "ﬁnd ﬂat ﬀ x² ½ ™ №"),
        Case("full-width spaced letters", "Ｆ Ｒ Ｅ Ｅ"),
    ]


def uci_cases(path: Path, count: int = UCI_SAMPLE, seed: int = 0) -> list[Case]:
    """A seeded sample of `count` real messages of the UCI file (named by their line)."""
    from smsguard.train import load_messages

    texts = list(load_messages(path).texts)
    chosen = sorted(random.Random(seed).sample(range(len(texts)), min(count, len(texts))))
    return [Case(f"UCI line {i + 1}", texts[i]) for i in chosen]


# ---- the file ---------------------------------------------------------------------------------------------


def conformance(bundle_dir: Path, uci: Path | None = None) -> dict[str, Any]:
    """The conformance file's content for a bundle: the hard cases (and a UCI sample), their ids and, for
    every `.npz` model, their probabilities in the native backend (a BackendError when it is not built)."""
    bundle = Bundle.load(bundle_dir)
    cases = hard_cases(bundle.vocabulary) + (uci_cases(uci) if uci else [])
    _check_cases(cases)
    texts = [case.text for case in cases]
    ids = bundle.vocabulary.encode(texts)
    models = [entry.name for entry in bundle.models.values() if entry.format is ModelFormat.NPZ]
    probabilities = {name: Classifier.load(bundle_dir, backend="native", model=name).predict_proba(texts) for name in models}  # the reference backend
    return {
        "format": CONFORMANCE_FORMAT,
        "bundle": {"manifest_sha256": sha256_of(Path(bundle_dir) / MANIFEST_NAME), "serial": bundle.manifest.serial},
        "tolerance": {"probability": PROBABILITY_TOLERANCE},
        "models": models,
        "cases": [
            {"name": case.name, "text": case.text, "ids": row.tolist(), "probabilities": {name: float(probabilities[name][i]) for name in models}}
            for i, (case, row) in enumerate(zip(cases, ids, strict=True))
        ],
    }


def _check_cases(cases: Sequence[Case]) -> None:
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        msg = f"conformance cases must have distinct names, found {duplicates[0]!r} twice"
        raise ValueError(msg)
    for case in cases:  # what JSON cannot carry (a high then a low lone surrogate become one code point) is not a case
        if json.loads(json.dumps(case.text, ensure_ascii=True)) != case.text:
            msg = f"conformance case {case.name!r} does not survive a JSON round trip"
            raise ValueError(msg)


def write_conformance(bundle_dir: Path, out: Path, uci: Path | None = None) -> dict[str, Any]:
    """Write the conformance file of `bundle_dir` to `out` (whole or not at all; every non-ASCII
    character as a JSON escape, so a lone surrogate travels as `\\udc80`); returns its content."""
    data = conformance(bundle_dir, uci)
    head = json.dumps({key: value for key, value in data.items() if key != "cases"}, ensure_ascii=True)
    lines = ",\n".join(json.dumps(case, ensure_ascii=True, separators=(",", ":")) for case in data["cases"])
    write_atomic(Path(out), f'{head[:-1]}, "cases": [\n{lines}\n]}}\n'.encode("ascii"))  # one case a line: reviewable, diffable
    return data


# ---- the check every runtime is held to ------------------------------------------------------------------


def compare(
    expected: Conformance,
    ids: np.ndarray,
    probabilities: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float],
    labels: Mapping[str, Sequence[str]] | None = None,
    label_names: tuple[str, str] = ("ham", "spam"),
) -> list[str]:
    """What keeps a runtime's results from conforming (empty: they conform): its `ids` (one row per case)
    must be identical, and for each model its probabilities within the file's tolerance with the label at
    the model's threshold identical (the runtime's own `labels` when given, else derived from its
    probabilities by the contract's rule, `Decision`)."""
    problems = []
    names = [case["name"] for case in expected.cases]
    want_ids = expected.ids
    if ids.shape != want_ids.shape:
        problems.append(f"ids: expected shape {want_ids.shape}, found {ids.shape}")
    else:
        for row in np.nonzero((ids != want_ids).any(axis=1))[0]:
            column = int(np.argmax(ids[row] != want_ids[row]))
            problems.append(f"ids of case {names[row]!r} differ from column {column}: {ids[row][column]} instead of {want_ids[row][column]}")
    for model in expected.models:
        if model not in probabilities:
            problems.append(f"{model}: no probabilities")
            continue
        want, got = expected.probabilities(model), np.asarray(probabilities[model], dtype=np.float64)
        decision = Decision(thresholds[model], label_names)
        want_labels = decision.labels_of(want)
        got_labels = list(labels[model]) if labels and model in labels else decision.labels_of(got)
        for i, name in enumerate(names):
            if not abs(got[i] - want[i]) <= expected.tolerance:
                problems.append(f"{model}: case {name!r}: probability {got[i]:.8g}, expected {want[i]:.8g} (tolerance {expected.tolerance:g})")
            if got_labels[i] != want_labels[i]:
                problems.append(f"{model}: case {name!r}: label {got_labels[i]!r}, expected {want_labels[i]!r}")
    return problems


def python_problems(bundle_dir: Path, expected: Conformance, backend: str = "native") -> list[str]:
    """The conformance file through the Python runtime (`backend`): `compare`'s problems (empty: it conforms)."""
    bundle = Bundle.load(bundle_dir)
    if sha256_of(Path(bundle_dir) / MANIFEST_NAME) != expected.manifest_sha256:
        return [f"the conformance file was made for another bundle (manifest sha256 {expected.manifest_sha256})"]
    texts = expected.texts
    probabilities, thresholds = {}, {}
    for model in expected.models:
        classifier = Classifier.load(bundle_dir, backend=backend, model=model)
        probabilities[model] = classifier.predict_proba(texts)
        thresholds[model] = classifier.threshold
    return compare(expected, bundle.vocabulary.encode(texts), probabilities, thresholds, label_names=bundle.labels)
