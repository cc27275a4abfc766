"""Every UCI message's probability from the native backend of the smsguard on PYTHONPATH, saved once from a reference
build and held against another, bit for bit (issue 22: a faster kernel keeps the bits users had). Each .npz model of the
bundle, through every path: one message at a time, in bulk, in batches of 1 to 9 and of 10 to 299 messages of mixed
lengths, on ready ids (as given, and sorted by length), with workers=2, and on ids with the AVX2 and baseline kernels:

    PYTHONPATH=REFERENCE_CHECKOUT python tools/native_parity.py save BUNDLE ref.npz   # e.g. main, built in place
    PYTHONPATH=$PWD python tools/native_parity.py check BUNDLE ref.npz                # exit 1 when a bit differs

Every path must also equal the reference's one-at-a-time scores (the baseline kernel its own, since without fused
multiply-adds its bits are others)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from smsguard.runtime import BackendError, Classifier
from smsguard.runtime._backends import NativeSession, backend_info
from smsguard.train import load_messages

EXTRA = ["", " ", "win", "ünïcode tëxt ✓ free", "a " * 300, "WINNER!! Claim your prize now " * 20]  # edges: empty, long, not ASCII


def scores(bundle: Path, data: Path) -> dict[str, np.ndarray]:
    texts = [*load_messages(data).texts, *EXTRA]
    got: dict[str, np.ndarray] = {}
    for path in sorted(bundle.glob("*.npz")):
        model = path.name
        classifier = Classifier.load(bundle, backend="native", model=model)
        got[f"{model}:single"] = np.concatenate([classifier.predict_proba([text]) for text in texts])
        got[f"{model}:bulk"] = classifier.predict_proba(texts)
        got[f"{model}:batches"] = np.concatenate(list(batches(classifier, texts)))
        got[f"{model}:workers2"] = classifier.predict_proba(texts, workers=2)
        ids = classifier.encode(texts)
        got[f"{model}:ids"] = classifier.session.run(ids)
        order = np.argsort(np.count_nonzero(ids[:, : classifier.vocabulary.config.maxlen], axis=1), kind="stable")
        got[f"{model}:ids_sorted"] = np.empty(len(ids), dtype=np.float32)
        got[f"{model}:ids_sorted"][order] = classifier.session.run(ids[order])
        for isa in ("avx2", "baseline"):
            try:
                session = NativeSession(backend_info("native"), classifier.bundle.model_path(classifier.model), classifier.model, isa=isa)
            except BackendError:  # a CPU without AVX2: the path is not there to compare
                continue
            got[f"{model}:ids@{isa}"] = session.run(ids)
    return got


def batches(classifier: Classifier, texts: list[str]):
    rng = np.random.default_rng(0)
    start = 0
    while start < len(texts):
        size = int(rng.integers(1, 10)) if rng.random() < 0.8 else int(rng.integers(10, 300))
        yield classifier.predict_proba(texts[start : start + size])
        start += size


def check(got: dict[str, np.ndarray], reference: Path) -> int:
    ref = np.load(reference)
    bad = 0
    for key, values in got.items():
        model = key.split(":")[0]
        alone = ref[f"{model}:ids@baseline"] if key.endswith("@baseline") else ref[f"{model}:single"]
        differ = int((values.view(np.uint32) != ref[key].view(np.uint32)).sum()) if key in ref else len(values)
        same = differ == 0 and values.tobytes() == alone.tobytes()
        print(f"{'OK ' if same else 'BAD'} {key}: {len(values)} scores, {differ} differ from the reference's")
        bad += not same
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["save", "check"])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("reference", type=Path, help="the .npz of scores to save or to check against")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "SMSSpamCollection")
    args = parser.parse_args()
    got = scores(args.bundle, args.data)
    if args.mode == "save":
        np.savez(args.reference, **got)
        print(f"saved {len(got)} arrays of scores to {args.reference}")
        return 0
    return check(got, args.reference)


if __name__ == "__main__":
    sys.exit(main())
