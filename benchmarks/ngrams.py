"""Microseconds a message of the n-gram bag (`NgramHasher.encode_checked`) in C and in the Python
reference, beside the word tokenizer, on the SMS data set, one message at a time and 2048 at a time.

    python benchmarks/ngrams.py [--repeat 5]

Each figure is the best of `repeat` passes over the same messages, after one warm-up pass, in CPU time
of this thread: on a machine shared with a training run, time spent waiting for a core does not count
(a core shared with it through SMT still slows every figure). A few seconds on one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from smsguard.runtime import NgramHasher, Vocabulary
from smsguard.runtime._native import NOT_BUILT, available

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "SMSSpamCollection"
MESSAGES = 4096  # a pass: two batches of 2048, or 4096 calls of one
REFERENCE_MESSAGES = 512  # the Python reference is ~100x slower: fewer messages, same figure


def per_message(encode: Callable[[list[str]], object], texts: list[str], batch: int, repeat: int) -> float:
    chunks = [texts[start : start + batch] for start in range(0, len(texts), batch)]
    best = float("inf")
    for attempt in range(repeat + 1):
        began = time.thread_time()
        for chunk in chunks:
            encode(chunk)
        took = time.thread_time() - began
        if attempt:  # the first pass warms up
            best = min(best, took)
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes per figure; the best is reported")
    args = parser.parse_args()
    if not available():
        raise SystemExit(NOT_BUILT)
    texts = [line.split("\t", 1)[1] for line in DATA.read_text(encoding="utf-8").splitlines()]
    sample = texts[:MESSAGES]
    vocabulary = Vocabulary.fit(texts)
    native, reference = NgramHasher(native=True), NgramHasher(native=False)

    def both(chunk: list[str]) -> None:
        vocabulary.encode_checked(chunk)
        native.encode_checked(chunk)

    print(f"{len(sample)} messages of {DATA.name}: {sum(map(len, sample)) / len(sample):.0f} characters on average, {sum(not t.isascii() for t in sample)} not ASCII")
    for batch in (1, 2048):
        print(f"batch {batch:4d}  bag, C                  {per_message(native.encode_checked, sample, batch, args.repeat):7.2f} µs a message")
        print(f"batch {batch:4d}  bag, Python reference   {per_message(reference.encode_checked, sample[:REFERENCE_MESSAGES], min(batch, REFERENCE_MESSAGES), 1):7.2f} µs a message")
        print(f"batch {batch:4d}  word tokenizer          {per_message(vocabulary.encode_checked, sample, batch, args.repeat):7.2f} µs a message")
        print(f"batch {batch:4d}  tokenizer + bag (C)     {per_message(both, sample, batch, args.repeat):7.2f} µs a message")


if __name__ == "__main__":
    main()
