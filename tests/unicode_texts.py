"""Texts that hold a port of the runtime (JavaScript, Java) to the Python one: a seeded Unicode set that holds every
code point 0..0x10FFFF, and 1 MB messages. Shared by the ports' tests (`test_client_js.py`); every text travels
through JSON unchanged, which is how the ports' command lines read them."""

from __future__ import annotations

import json
import random

UNICODE_WINDOW = 64  # code points per text of the window set: 17,408 texts cover 0..0x10FFFF
SIGMA_WINDOW = 48  # code points per text of the word set, each as a word of its own ("a<c>Σ"): 23,211 texts
RANDOM_TEXTS = 3000  # seeded random mixes on top
MEGABYTE = 1 << 20
TOP = 0x110000


def travels(text: str) -> bool:
    """JSON carries the text unchanged: a high then a low lone surrogate would arrive as the one code point they pair into."""
    return json.loads(json.dumps(text)) == text


def unicode_texts(seed: int = 0) -> list[str]:
    """More than 40,000 texts that hold every code point twice: in a run of its neighbours, and as a word of its own
    between an ASCII letter and a capital sigma (where lowercase, fold, look-alikes, removal and the final-sigma rule
    all read it); then seeded random mixes of ASCII, whitespace, sigma, the normaliser's cases, lone surrogates and
    supplementary code points."""
    windows = ["".join(map(chr, range(start, min(start + UNICODE_WINDOW, TOP)))) for start in range(0, TOP, UNICODE_WINDOW)]
    words = [" ".join(f"a{chr(code)}\u03a3" for code in range(start, min(start + SIGMA_WINDOW, TOP))) for start in range(0, TOP, SIGMA_WINDOW)]
    rng = random.Random(seed)
    texts = [*windows, *words, *(_random_text(rng) for _ in range(RANDOM_TEXTS))]
    return [text if travels(text) else json.loads(json.dumps(text)) for text in texts]


def _random_text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 80)):
        roll = rng.random()
        if roll < 0.45:
            pieces.append(chr(rng.randint(32, 126)))
        elif roll < 0.6:
            pieces.append(chr(rng.randint(0x80, 0x800)))
        elif roll < 0.75:
            pieces.append(rng.choice(" \t\n\x00\u00a0\u3000\u2028\u0085\u200b\u00ad\u03a3\u03c2\u0130I\u0307'.-·•ＦＲＥＥ\U0001d400😀аеоіΑΕΟ"))
        elif roll < 0.9:
            pieces.append(chr(rng.randint(0, 0xFFFF)))
        else:
            pieces.append(chr(rng.randint(0x10000, 0x10FFFF)))
    return "".join(pieces)


def megabyte_texts() -> dict[str, str]:
    """1 MB messages a port must handle in time linear in their length: the shapes that make a naive port quadratic
    (one long word, sigmas among case-ignorables, letters spaced apart for the join) or deep in recursion."""
    rng = random.Random(1)
    return {
        "words": ("free prize call now " * (MEGABYTE // 20))[:MEGABYTE],
        "one word": "x" * MEGABYTE,
        "spaced letters": ("F R E E " * (MEGABYTE // 8))[:MEGABYTE],
        "dotted letters": "a" + ".b" * (MEGABYTE // 2),
        "sigmas and case-ignorables": ("ΑΣ'''''" + "'" * 1000) * (MEGABYTE // 1007),
        "whitespace": " \t\u3000" * (MEGABYTE // 3),
        "lone surrogates": "\ud800x" * (MEGABYTE // 2),
        "mixed": "".join(rng.choice("abc XYZ 019 .,!'£€ΣΑΟçé😀\u00a0\u200b") for _ in range(MEGABYTE)),
    }
