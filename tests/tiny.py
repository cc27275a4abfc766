"""A tiny real bundle made with NumPy alone, in well under a second: the fast tier's bundle.

A vocabulary fitted on a few messages (with the pinned text spec and its normaliser), a fused LSTM of
seeded random weights folded into `.npz` models exactly as export folds a trained one (`write_npz`), and a
manifest whose golden vectors the NumPy backend computed. Nothing here trains, converts or imports
TensorFlow, so every runtime path (tokenizer, bag, backends, manifest, signing, verify, reload, the scorer,
the CLI) can be tested in milliseconds; the slow tier repeats what matters on a trained, exported model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smsguard._staging import write_json
from smsguard.export._primed import write_npz
from smsguard.runtime import (
    Bundle,
    BundleFile,
    FileKind,
    GoldenVector,
    Manifest,
    ModelFormat,
    NgramConfig,
    NgramHasher,
    Quantization,
    TextSpec,
    TokenizerConfig,
    Variant,
    Vocabulary,
)
from smsguard.runtime._backends import backend_info, open_session
from smsguard.runtime.bundle import MANIFEST_NAME, VOCAB_NAME, Form, model_file_name

TEXTS = (
    "WINNER!! You have won a £900 prize, call 09061701461 to claim now",
    "FREE entry in 2 a wkly comp to win FA Cup final tkts, text FA to 87121",
    "URGENT! Your mobile number has been awarded a £2000 bonus, call now",
    "Congratulations, you have been selected for a free holiday, reply YES",
    "Are we still on for dinner tonight? I'll be there around 7",
    "Ok lor, see you at the station at 6",
    "Sorry, I'll call you later, in a meeting now",
    "Can you pick up some milk on your way home?",
    "Happy birthday! Hope you have a lovely day",
    "I'm on my way, be there in 10 minutes",
)
GOLDEN = (*TEXTS, "", "Ｆ Ｒ Ｅ Ｅ entry, cаll now", "İstanbul ΣΑΣ see you", "a\x00b \ud800 😀", "x " * 60)
MAXLEN, UNITS, EMBEDDING, BUCKETS, NGRAM_LENGTH = 12, 8, 6, 251, 40


def weights(vocabulary: Vocabulary, seed: int) -> dict[str, Any]:
    """Seeded weights shaped like a trained fused model's, by role (what `export._primed.keras_weights` gives)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 2, BUCKETS + 1).astype(np.float32)
    scores[0] = 0.0
    return {
        "embedding": rng.normal(0, 0.5, (vocabulary.size, EMBEDDING)).astype(np.float32),
        "kernel": rng.normal(0, 0.5, (EMBEDDING, 4 * UNITS)).astype(np.float32),
        "recurrent": rng.normal(0, 0.3, (UNITS, 4 * UNITS)).astype(np.float32),
        "bias": rng.normal(0, 0.1, 4 * UNITS).astype(np.float32),
        "dense_kernel": rng.normal(0, 1.0, UNITS).astype(np.float32),
        "dense_bias": np.array([0.1], dtype=np.float32),
        "ngram_scores": scores,
        "ngram_bias": np.array([-0.2], dtype=np.float32),
        "ngram_length": np.array(NGRAM_LENGTH, dtype=np.int64),
    }


def vocabulary(normalise: bool = True, ngrams: bool = True, oov_token: str | None = "<UNKNOWN>") -> Vocabulary:
    config = TokenizerConfig(num_words=60, lower=False, oov_token=oov_token, maxlen=MAXLEN)
    fitted = Vocabulary.fit(TEXTS, config, TextSpec.of_this_python(normalise))
    return fitted.with_ngrams(NgramHasher(NgramConfig(buckets=BUCKETS, length=NGRAM_LENGTH)) if ngrams else None)


def make_bundle(folder: Path, *, seed: int = 0, threshold: float = 0.5, serial: int = 1, normalise: bool = True,
                edit: Callable[[Vocabulary], Vocabulary] | None = None, ngrams: bool = True, oov_token: str | None = "<UNKNOWN>") -> Path:
    """A bundle at `folder` (created): vocab.json, model.float32.npz, model.int8.npz and model.int8.compact.npz (the
    compact form, for packs), manifest.json. Fused unless `ngrams` is False (the word LSTM alone); `oov_token=None`
    drops unknown words instead of giving them an id."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    vocab = vocabulary(normalise, ngrams, oov_token)
    vocab = edit(vocab) if edit else vocab
    write_json(folder / VOCAB_NAME, vocab.to_dict(), compact=True)
    fold = weights(vocab, seed) if ngrams else {k: v for k, v in weights(vocab, seed).items() if not k.startswith("ngram")}
    entries = [BundleFile.describe(folder / VOCAB_NAME, FileKind.VOCABULARY)]
    for quantization, form in ((Quantization.FLOAT32, Form.FOLDED), (Quantization.INT8, Form.FOLDED), (Quantization.INT8, Form.COMPACT)):
        name = model_file_name(ModelFormat.NPZ, quantization, Variant.PRIMED, form)
        write_npz(fold, MAXLEN, folder / name, quantize=quantization is Quantization.INT8, compact=form is Form.COMPACT)
        entries.append(
            BundleFile.describe(folder / name, FileKind.MODEL, format=ModelFormat.NPZ, quantization=quantization, variant=Variant.PRIMED,
                                tolerance=1e-5 if quantization is Quantization.FLOAT32 else 0.01, form=form)
        )
    ids = vocab.encode(GOLDEN)
    outputs = {e.name: open_session(backend_info("numpy"), folder / e.name, e).run(ids) for e in entries[1:]}
    golden = tuple(
        GoldenVector(text, tuple(int(v) for v in ids[i]), "spam" if i < 4 else "ham", float(outputs["model.float32.npz"][i]),
                     {name: float(out[i]) for name, out in outputs.items()})
        for i, text in enumerate(GOLDEN)
    )
    manifest = Manifest(threshold=threshold, files=tuple(entries), recommended={ModelFormat.NPZ: "model.int8.npz"}, golden=golden, serial=serial,
                        created="2026-12-04T00:00:00+00:00")
    write_json(folder / MANIFEST_NAME, manifest.to_dict())
    Bundle.load(folder).check_files()
    return folder
