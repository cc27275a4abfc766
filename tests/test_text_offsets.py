"""`with_offsets`: the normaliser's and the lowercase table's output, each character with the index of the one it
came from in the message as written (what an explanation needs to show its spans in the original text)."""

from __future__ import annotations

import random

import pytest

from smsguard.runtime import Lowercase, Normaliser

LOWER = Lowercase.of_this_python()
NORMALISE = Normaliser.of_this_python()
EVERY_CODE_POINT = [chr(code) for code in range(0x110000)]
CHUNK = 4096  # code points per text when every code point is run


def images(char: str) -> set[str]:
    """What one character can become in the normaliser's output: itself, its fold, its fold's look-alikes."""
    folded = char.translate(NORMALISE._removing)
    out = {char, *folded}
    return out | {NORMALISE.lookalikes.get(ord(c), c) for c in out}


def check(text: str) -> None:
    normalised, sources = NORMALISE.with_offsets(text)
    assert normalised == NORMALISE(text), repr(text)
    assert len(sources) == len(normalised)
    assert sources == sorted(sources) and all(0 <= at < len(text) for at in sources), repr(text)
    for char, at in zip(normalised, sources, strict=True):
        assert char in images(text[at]), (text, char, at)


def test_with_offsets_gives_the_normalised_text_on_every_code_point() -> None:
    for start in range(0, 0x110000, CHUNK):
        chunk = EVERY_CODE_POINT[start : start + CHUNK]
        check("".join(chunk))  # each beside its neighbours in code point order
        check(" ".join("a" + char + "b" for char in chunk[::7]))  # inside a word with ASCII letters: look-alikes apply


@pytest.mark.parametrize("seed", range(4))
def test_with_offsets_gives_the_normalised_text_on_generated_texts(seed: int) -> None:
    """Texts drawn from what each step acts on: separators and single letters (join), look-alikes next to ASCII
    letters, folded and removed characters, whitespace of every kind, and any code point."""
    rng = random.Random(seed)
    near = [*"FREEcall0800 .-_*+~|/·•", "\u200b", "\u00ad", "\ufe0f", "а", "е", "о", "Ｆ", "ﬀ", "①", "𝐀", "\u00a0", "\u2003", "\n", "İ", "Σ", "\ud800"]
    for _ in range(5000):
        text = "".join(rng.choice(near) if rng.random() < 0.85 else rng.choice(EVERY_CODE_POINT) for _ in range(rng.randint(0, 30)))
        check(text)


@pytest.mark.parametrize(
    ("text", "normalised", "sources"),
    [
        ("F R E E now", "FREE now", [0, 2, 4, 6, 7, 8, 9, 10]),  # the joined letters keep their own places
        ("W\u200bIN", "WIN", [0, 2, 3]),  # a removed character gives nothing
        ("ﬀ!", "ff!", [0, 0, 1]),  # a ligature folds to two characters from one
        ("Frее", "Free", [0, 1, 2, 3]),  # look-alikes map one to one
        ("𝐅𝐑𝐄𝐄", "FREE", [0, 1, 2, 3]),  # one code point each, whatever its UTF-16 length
        ("", "", []),
    ],
)
def test_with_offsets_examples(text: str, normalised: str, sources: list[int]) -> None:
    assert NORMALISE.with_offsets(text) == (normalised, sources)


def test_lowercase_with_offsets_on_every_code_point_and_the_final_sigma() -> None:
    for start in range(0, 0x110000, CHUNK):
        text = "".join(EVERY_CODE_POINT[start : start + CHUNK])
        lowered, sources = LOWER.with_offsets(text)
        assert lowered == LOWER(text)
        assert sources == sorted(sources) and len(sources) == len(lowered)
        assert all(lowered[k] in LOWER(text[at]) for k, at in enumerate(sources))
    assert LOWER.with_offsets("İΣ ΑΣ. Σ") == ("i̇ς ας. σ", [0, 0, 1, 2, 3, 4, 5, 6, 7])
    assert LOWER.with_offsets("AbC") == ("abc", [0, 1, 2])
