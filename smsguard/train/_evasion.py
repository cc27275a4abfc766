"""The obfuscations spammers use to step around a filter, as seeded pure functions `(text, rng, rate) -> text`,
one per `Family`: training adds obfuscated copies of its messages (`smsguard.train._augment`) and
benchmarks/evasion.py scores obfuscated test messages. docs/explanation/evasion.md says where each comes from.

`rate` is the share of the eligible words a family changes (about a third in the issue's table): each word it
applies to is drawn with probability `rate`; a character family then changes one character of the word (a
look-alike, a digit, an invisible character; about half of them for homoglyphs and case; all of them for
full-width forms), a word family the whole word; a sentence family adds benign text of about `rate` times the
message's words. Rate 0 returns the text unchanged. The functions draw from `rng` (numpy's `Generator`) and nothing else, so a seed fixes the output.

The word lists behind the word- and sentence-level families (misspellings and synonyms, benign sentences, chatty
openers and closers) come in two disjoint halves: training copies draw from one (`Use.TRAINING`), the
evaluation from the other (`Use.EVALUATION`), so the benchmark never scores a sentence or a substitute word
the model was trained on. The character tables are shared: they are the attacker's whole alphabet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from smsguard._enum import TextEnum

Obfuscation = Callable[[str, np.random.Generator, float], str]
DEFAULT_RATE = 1 / 3  # issue 19's table: about a third of the eligible words
TRAINING_STREAM, EVALUATION_STREAM = 0x7261696E, 0x6576616C  # "rain", "eval": one seed, separate generators


class Family(TextEnum):
    """The obfuscation families, by level: character, word, sentence, and all three at once."""

    LOOKALIKES = "lookalikes"  # Cyrillic and Greek letters for Latin ones
    HOMOGLYPHS = "homoglyphs"  # look-alikes from several scripts and compatibility forms, mixed
    ZERO_WIDTH = "zero-width"  # invisible format characters inside words
    DIGITS = "digits"  # digits for letters (leet: 0 for o, 3 for e)
    SYMBOLS = "symbols"  # symbols for letters (@ for a, $ for s)
    FULL_WIDTH = "full-width"  # full-width forms (U+FF01..U+FF5E)
    ACCENTS = "accents"  # accented letters and combining marks
    CASE = "case"  # letters with their case flipped
    TYPOS = "typos"  # one keyboard typo per word: insertion, deletion, swap or substitution
    SPACED = "spaced"  # words spaced out: F R E E
    DOTTED = "dotted"  # words dotted out: F.R.E.E
    PUNCTUATION = "punctuation"  # one punctuation mark inside a word: fr-ee
    VOWELS = "vowels"  # inner vowels dropped: mssge
    MISSPELLINGS = "misspellings"  # spam words swapped for a misspelling or a synonym from a small list
    EMOJI = "emoji"  # emoji between and glued to words
    GOOD_WORDS = "good-words"  # benign sentences appended
    CHATTY = "chatty"  # the message wrapped in a chatty opener and closer
    MIXED = "mixed"  # one character, one word and one sentence family together


class Use(TextEnum):
    """Which half of the word lists a family draws from."""

    TRAINING = "training"
    EVALUATION = "evaluation"


def _u(*points: int) -> str:
    return "".join(map(chr, points))


# ---- tables ---------------------------------------------------------------------------------------------
# Cyrillic and Greek letters that look like Latin ones (from Unicode's confusables data, the common cases).
CYRILLIC_GREEK: dict[str, str] = {
    "a": _u(0x430), "c": _u(0x441), "d": _u(0x501), "e": _u(0x435), "h": _u(0x4BB), "i": _u(0x456), "j": _u(0x458),
    "k": _u(0x3BA), "o": _u(0x43E, 0x3BF), "p": _u(0x440), "q": _u(0x51B), "s": _u(0x455), "u": _u(0x3C5), "v": _u(0x3BD),
    "x": _u(0x445), "y": _u(0x443),
    "A": _u(0x410, 0x391), "B": _u(0x412, 0x392), "C": _u(0x421), "E": _u(0x415, 0x395), "H": _u(0x41D, 0x397),
    "I": _u(0x406, 0x399), "J": _u(0x408), "K": _u(0x41A, 0x39A), "M": _u(0x41C, 0x39C), "N": _u(0x39D),
    "O": _u(0x41E, 0x39F), "P": _u(0x420, 0x3A1), "S": _u(0x405), "T": _u(0x422, 0x3A4), "X": _u(0x425, 0x3A7),
    "Y": _u(0x4AE, 0x3A5), "Z": _u(0x396),
}
# Beyond Cyrillic and Greek: Armenian, Cherokee, Latin small capitals and IPA letters (no compatibility
# decomposition), and the compatibility forms NFKC folds (mathematical bold and monospace, circled letters).
OTHER_SCRIPTS: dict[str, str] = {
    "a": _u(0x251, 0x1D00), "b": _u(0x299), "c": _u(0x1D04), "d": _u(0x1D05), "e": _u(0x1D07), "g": _u(0x261, 0x262),
    "h": _u(0x570, 0x29C), "i": _u(0x131, 0x26A), "j": _u(0x1D0A), "k": _u(0x1D0B), "l": _u(0x29F), "m": _u(0x1D0D),
    "n": _u(0x578, 0x274), "o": _u(0x585, 0x1D0F), "p": _u(0x1D18), "q": _u(0x566), "r": _u(0x280), "t": _u(0x1D1B),
    "u": _u(0x57D, 0x1D1C), "v": _u(0x1D20), "w": _u(0x1D21), "y": _u(0x28F), "z": _u(0x1D22),
    "A": _u(0x13AA), "B": _u(0x13F4), "C": _u(0x13DF), "E": _u(0x13AC), "G": _u(0x13C0), "H": _u(0x13BB), "J": _u(0x13AB),
    "K": _u(0x13E6), "M": _u(0x13B7), "P": _u(0x13E2), "R": _u(0x13A1), "S": _u(0x13DA), "T": _u(0x13A2), "V": _u(0x13D9),
    "W": _u(0x13B3), "Z": _u(0x13C3),
}
_ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _compatibility_forms(letter: str) -> str:
    """Mathematical bold, mathematical monospace and circled forms of an ASCII letter (no holes in these blocks)."""
    upper, offset = letter.isupper(), ord(letter.lower()) - ord("a")
    starts = (0x1D400, 0x1D670, 0x24B6) if upper else (0x1D41A, 0x1D68A, 0x24D0)
    return "".join(chr(start + offset) for start in starts)


HOMOGLYPHS: dict[str, str] = {c: CYRILLIC_GREEK.get(c, "") + OTHER_SCRIPTS.get(c, "") + _compatibility_forms(c) for c in _ASCII_LETTERS}
# Zero-width space, non-joiner, joiner, word joiner, byte order mark, soft hyphen, invisible times, Mongolian vowel separator.
INVISIBLES = _u(0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0xAD, 0x2062, 0x180E)
DIGITS: dict[str, str] = {"a": "4", "b": "8", "e": "3", "g": "9", "i": "1", "l": "1", "o": "0", "s": "5", "t": "7", "z": "2"}
DIGITS |= {k.upper(): v for k, v in DIGITS.items()}
SYMBOLS: dict[str, str] = {"a": "@", "c": "(", "e": "€", "i": "!", "l": "|", "o": "*", "s": "$", "t": "+", "x": "×"}
SYMBOLS |= {k.upper(): v for k, v in SYMBOLS.items()}
ACCENTED: dict[str, str] = {
    "a": "áàâäãåā", "c": "çćč", "e": "éèêëē", "i": "íìîïī", "n": "ñń", "o": "óòôöõøō", "u": "úùûüū", "y": "ýÿ",
    "A": "ÁÀÂÄÃÅ", "C": "ÇĆČ", "E": "ÉÈÊË", "I": "ÍÌÎÏ", "N": "ÑŃ", "O": "ÓÒÔÖÕØ", "U": "ÚÙÛÜ", "Y": "ÝŸ",
}
COMBINING = _u(0x301, 0x300, 0x302, 0x308, 0x303, 0x304, 0x30A, 0x327)  # acute, grave, circumflex, diaeresis, tilde, macron, ring, cedilla
KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")  # typos: a substitution or insertion is a neighbouring key
PUNCTUATION = "-*_.'~"
EMOJI = ("\U0001f600", "\U0001f602", "\U0001f389", "\U0001f525", "\U0001f4b0", "\U0001f381", "\U0001f4f1", "\u2728", "\U0001f44d", "\u2764\ufe0f", "\U0001f3c6", "\U0001f4b5")
VOWELS = set("aeiouAEIOU")

# Spam words, each with (training substitutes, evaluation substitutes): misspellings and synonyms, the
# "mad-lib" attack on SMS filters. The two halves never share a substitute.
SUBSTITUTES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "free": (("fre", "gratis"), ("freee", "complimentary")),
    "call": (("kall", "ring"), ("cal", "dial")),
    "win": (("winn", "bag"), ("wun", "scoop")),
    "won": (("wonn", "bagged"), ("wun", "scooped")),
    "winner": (("winnr", "champion"), ("wiinner", "victor")),
    "prize": (("prise", "reward"), ("prizze", "award")),
    "cash": (("kash", "money"), ("cashh", "funds")),
    "claim": (("claym", "collect"), ("clame", "redeem")),
    "urgent": (("urgnt", "pressing"), ("urjent", "important")),
    "mobile": (("mobil", "handset"), ("moblie", "phone")),
    "text": (("tekst", "message"), ("txtt", "msg")),
    "txt": (("tx", "sms"), ("txtt", "note")),
    "guaranteed": (("garanteed", "assured"), ("guarantied", "certain")),
    "awarded": (("awardd", "granted"), ("awared", "given")),
    "offer": (("ofer", "deal"), ("offr", "bargain")),
    "reply": (("repli", "respond"), ("replly", "answer")),
    "stop": (("stopp", "end"), ("stp", "quit")),
    "selected": (("selectd", "chosen"), ("sellected", "picked")),
    "chance": (("chanse", "opportunity"), ("chnce", "shot")),
    "draw": (("drawe", "lottery"), ("drow", "raffle")),
    "entry": (("entery", "ticket"), ("entri", "place")),
    "customer": (("custmer", "client"), ("costumer", "member")),
    "voucher": (("vouchr", "coupon"), ("vowcher", "token")),
    "bonus": (("bonnus", "extra"), ("bonuss", "gift")),
    "service": (("servise", "line"), ("srvice", "desk")),
    "congratulations": (("congratz", "well done"), ("kongratulations", "congrats")),
}
# Benign sentences, written for this project in the register of the data set's ham (none is taken from it).
GOOD_SENTENCES: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        "See you at lunch tomorrow.", "Mum says dinner is at seven.", "I'm on the bus, home in ten minutes.",
        "Did you remember to feed the cat?", "Thanks for last night, it was lovely.", "Can you pick up some milk on the way?",
        "Happy birthday, have a great day!", "Running a bit late, sorry.", "Let me know when you get home safe.",
        "The meeting moved to Thursday afternoon.", "Good luck with your exam today.", "I left my keys at yours I think.",
        "Shall we go for a walk later?", "Love you, see you soon.", "Just finished work, so tired.",
        "Is the football on tonight?", "Your mum called, ring her back.", "We need bread and eggs.",
        "Hope you feel better soon.", "Ok, no problem at all.",
    ),
    (
        "Are we still meeting at the station?", "Dad is cooking pasta tonight.", "Just got to the office.",
        "Don't forget your umbrella.", "That film was so good.", "Can you call me when you are free?",
        "I'll be there in five minutes.", "Have a safe trip home.", "Thanks for helping me move.",
        "What time does the party start?", "I'm at the shops, need anything?", "Sleep well, talk tomorrow.",
        "The kids are at grandma's.", "Let's have coffee next week.", "Sorry I missed your call.",
        "Traffic is terrible today.", "Lunch was great, thank you.", "Text me when you land.",
        "See you at the gym later.", "Nice one, well done mate.",
    ),
)
CHATTY_OPENERS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("Hey you! Hope your week is going ok.", "Hi it's me, long time no see.", "Morning! Quick one for you.", "Hiya, hope you and the family are well.", "Hello again, sorry for the late reply."),
    ("Hey hun, how are things?", "Hi mate, hope all is good.", "Evening! Just a quick message.", "Hello lovely, been ages!", "Hi there, hope you had a nice weekend."),
)
CHATTY_CLOSERS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("Anyway, talk soon x", "Let me know what you think :)", "Speak later, take care.", "Miss you lots, call me!", "Say hi to everyone from me."),
    ("Catch up soon yeah? x", "Have a lovely evening.", "Give me a ring later.", "Hugs to the kids!", "Take care of yourself x"),
)


# ---- shared pieces ---------------------------------------------------------------------------------------
_TOKENS = re.compile(r"(\s+)")


def _draw(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Which of n eligible items to change: each with probability `rate` (n draws whatever the rate)."""
    return rng.random(n) < rate


def _pick(rng: np.random.Generator, options: Sequence[str] | str) -> str:
    return options[int(rng.integers(len(options)))]


def _split_core(token: str) -> tuple[str, str, str]:
    """A token as (leading punctuation, its core: the letters and digits from the first to the last, trailing punctuation)."""
    start, end = 0, len(token)
    while start < end and not token[start].isalnum():
        start += 1
    while end > start and not token[end - 1].isalnum():
        end -= 1
    return token[:start], token[start:end], token[end:]


def _by_word(text: str, rng: np.random.Generator, rate: float, eligible: Callable[[str], bool], change: Callable[[str, np.random.Generator], str]) -> str:
    """`rate` of the words whose core is `eligible` get their core replaced by `change`; whitespace and the
    punctuation around a core are kept."""
    tokens = _TOKENS.split(text)
    parts = [_split_core(token) for token in tokens]
    where = [i for i, (_, core, _) in enumerate(parts) if core and eligible(core)]
    for i, chosen in zip(where, _draw(rng, len(where), rate), strict=True):
        if chosen:
            head, core, tail = parts[i]
            tokens[i] = head + change(core, rng) + tail
    return "".join(tokens)


# ---- character level: in each word drawn, one character changed (or about half of them, or all) -------------
def _in_one_place(text: str, rng: np.random.Generator, rate: float, eligible: Callable[[str], bool], change: Callable[[str, np.random.Generator], str]) -> str:
    """`rate` of the words with an `eligible` character get one of those characters, drawn at random, changed."""

    def changed(core: str, rng: np.random.Generator) -> str:
        where = [i for i, c in enumerate(core) if eligible(c)]
        i = where[int(rng.integers(len(where)))]
        return core[:i] + change(core[i], rng) + core[i + 1 :]

    return _by_word(text, rng, rate, lambda core: any(map(eligible, core)), changed)


def _in_many_places(text: str, rng: np.random.Generator, rate: float, eligible: Callable[[str], bool], change: Callable[[str, np.random.Generator], str]) -> str:
    """`rate` of the words with an `eligible` character get each of those characters changed with probability
    1/2, at least one."""

    def changed(core: str, rng: np.random.Generator) -> str:
        where = [i for i, c in enumerate(core) if eligible(c)]
        chosen = rng.random(len(where)) < 0.5
        chosen[int(rng.integers(len(where)))] = True
        chars = list(core)
        for i in np.asarray(where)[chosen]:
            chars[i] = change(core[i], rng)
        return "".join(chars)

    return _by_word(text, rng, rate, lambda core: any(map(eligible, core)), changed)


def _from(table: dict[str, str]) -> Callable[[str, np.random.Generator], str]:
    return lambda c, rng: _pick(rng, table[c])


def lookalikes(text: str, rng: np.random.Generator, rate: float) -> str:
    """One Latin letter of a word replaced by a Cyrillic or Greek look-alike: `FREE` -> `FR\u0415E`."""
    return _in_one_place(text, rng, rate, CYRILLIC_GREEK.__contains__, _from(CYRILLIC_GREEK))


def homoglyphs(text: str, rng: np.random.Generator, rate: float) -> str:
    """About half the Latin letters of a word replaced by look-alikes drawn from several scripts and forms:
    Cyrillic, Greek, Armenian, Cherokee, small capitals, mathematical bold and monospace, circled letters."""
    return _in_many_places(text, rng, rate, HOMOGLYPHS.__contains__, _from(HOMOGLYPHS))


def zero_width(text: str, rng: np.random.Generator, rate: float) -> str:
    """An invisible format character inserted inside a word of 2 or more letters and digits: `FR\u200bEE`."""

    def changed(core: str, rng: np.random.Generator) -> str:
        at = 1 + int(rng.integers(len(core) - 1))
        return core[:at] + _pick(rng, INVISIBLES) + core[at:]

    return _by_word(text, rng, rate, lambda core: len(core) >= 2, changed)


def digits(text: str, rng: np.random.Generator, rate: float) -> str:
    """One letter of a word replaced by the digit that looks like it: `FREE` -> `FR3E`."""
    return _in_one_place(text, rng, rate, DIGITS.__contains__, _from(DIGITS))


def symbols(text: str, rng: np.random.Generator, rate: float) -> str:
    """One letter of a word replaced by a symbol that looks like it: `cash` -> `c@sh`."""
    return _in_one_place(text, rng, rate, SYMBOLS.__contains__, _from(SYMBOLS))


def full_width(text: str, rng: np.random.Generator, rate: float) -> str:
    """A whole word in full-width forms, as a full-width keyboard types it: `FREE` -> U+FF26 U+FF32 U+FF25 U+FF25."""
    return _by_word(text, rng, rate, lambda core: core.isascii(), lambda core, rng: "".join(chr(ord(c) + 0xFEE0) for c in core))


def accents(text: str, rng: np.random.Generator, rate: float) -> str:
    """One letter of a word given an accent: half the time a precomposed letter (`\u00e9`), half the time the
    letter and a combining mark (`e` U+0301), which looks the same and is another string."""

    def change(c: str, rng: np.random.Generator) -> str:
        return _pick(rng, ACCENTED[c]) if rng.random() < 0.5 else c + _pick(rng, COMBINING)

    return _in_one_place(text, rng, rate, ACCENTED.__contains__, change)


def case(text: str, rng: np.random.Generator, rate: float) -> str:
    """About half the ASCII letters of a word with their case flipped: `free` -> `fReE`."""
    return _in_many_places(text, rng, rate, lambda c: c.isascii() and c.isalpha(), lambda c, rng: c.swapcase())


def typos(text: str, rng: np.random.Generator, rate: float) -> str:
    """One keyboard typo in a word of 3 or more ASCII letters, never at its first letter: a neighbouring key
    inserted or substituted, a letter deleted, or two letters swapped."""
    return _by_word(text, rng, rate, lambda core: len(core) >= 3 and core.isascii() and core.isalpha(), _typo)


def _typo(word: str, rng: np.random.Generator) -> str:
    at = 1 + int(rng.integers(len(word) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:at] + _neighbour(word[at], rng) + word[at:]
    if kind == 1:
        return word[:at] + word[at + 1 :]
    if kind == 2 and at + 1 < len(word):
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return word[:at] + _neighbour(word[at], rng) + word[at + 1 :]


def _neighbour(letter: str, rng: np.random.Generator) -> str:
    """A key beside `letter` on a QWERTY keyboard, in its case."""
    row = next(r for r in KEYBOARD if letter.lower() in r)
    i = row.index(letter.lower())
    near = _pick(rng, row[max(i - 1, 0) : i] + row[i + 1 : i + 2])
    return near.upper() if letter.isupper() else near


# ---- word level ------------------------------------------------------------------------------------------
def _spread(core: str) -> bool:
    """A word to space or dot out: 3 or more letters and digits, at least one a letter (numbers are left alone)."""
    return len(core) >= 3 and core.isalnum() and not core.isdigit()


def spaced(text: str, rng: np.random.Generator, rate: float) -> str:
    """Words (`_spread`) spaced out: `FREE` -> `F R E E`."""
    return _by_word(text, rng, rate, _spread, lambda core, rng: " ".join(core))


def dotted(text: str, rng: np.random.Generator, rate: float) -> str:
    """Words (`_spread`) dotted out: `FREE` -> `F.R.E.E`."""
    return _by_word(text, rng, rate, _spread, lambda core, rng: ".".join(core))


def punctuation(text: str, rng: np.random.Generator, rate: float) -> str:
    """One punctuation mark inside a word of 3 or more letters: `free` -> `fr-ee`."""

    def change(core: str, rng: np.random.Generator) -> str:
        at = 1 + int(rng.integers(len(core) - 1))
        return core[:at] + _pick(rng, PUNCTUATION) + core[at:]

    return _by_word(text, rng, rate, lambda core: len(core) >= 3 and core.isalpha(), change)


def vowels(text: str, rng: np.random.Generator, rate: float) -> str:
    """The inner vowels of a word of 4 or more letters dropped, as in text speak: `message` -> `mssge`."""
    return _by_word(
        text, rng, rate,
        lambda core: len(core) >= 4 and core.isalpha() and any(c in VOWELS for c in core[1:-1]),
        lambda core, rng: core[0] + "".join(c for c in core[1:-1] if c not in VOWELS) + core[-1],
    )


def misspellings(text: str, rng: np.random.Generator, rate: float, use: Use = Use.EVALUATION) -> str:
    """Spam words (`SUBSTITUTES`) swapped for a misspelling or a synonym, in their case: `FREE` -> `GRATIS`."""
    half = int(use is Use.EVALUATION)

    def change(core: str, rng: np.random.Generator) -> str:
        word = _pick(rng, SUBSTITUTES[core.lower()][half])
        if core.isupper() and len(core) > 1:
            return word.upper()
        return word.capitalize() if core[0].isupper() else word

    return _by_word(text, rng, rate, lambda core: core.lower() in SUBSTITUTES, change)


def emoji(text: str, rng: np.random.Generator, rate: float) -> str:
    """An emoji after a word: glued to it half the time (`WIN\U0001f389`), else as a word of its own."""
    return _by_word(text, rng, rate, bool, lambda core, rng: core + ("" if rng.random() < 0.5 else " ") + _pick(rng, EMOJI))


# ---- sentence level --------------------------------------------------------------------------------------
def _words_to_add(text: str, rate: float) -> int:
    return math.ceil(rate * len(text.split()))


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def good_words(text: str, rng: np.random.Generator, rate: float, use: Use = Use.EVALUATION) -> str:
    """Benign sentences appended (the "good word" attack) until at least `rate` times the message's words are added."""
    pool, wanted = GOOD_SENTENCES[int(use is Use.EVALUATION)], _words_to_add(text, rate)
    added: list[str] = []
    while _words(added) < wanted:
        added.append(_pick(rng, pool))
    return " ".join([text, *added])


def chatty(text: str, rng: np.random.Generator, rate: float, use: Use = Use.EVALUATION) -> str:
    """The message wrapped in chat: an opener before it, a closer after it, then more of each in turn until at
    least `rate` times the message's words are added."""
    half, wanted = int(use is Use.EVALUATION), _words_to_add(text, rate)
    before: list[str] = []
    after: list[str] = []
    while _words(before + after) < wanted:
        if len(before) <= len(after):
            before.append(_pick(rng, CHATTY_OPENERS[half]))
        else:
            after.append(_pick(rng, CHATTY_CLOSERS[half]))
    return " ".join([*before, text, *after])


CHARACTER_LEVEL = (Family.LOOKALIKES, Family.HOMOGLYPHS, Family.ZERO_WIDTH, Family.DIGITS, Family.SYMBOLS, Family.FULL_WIDTH, Family.ACCENTS, Family.CASE, Family.TYPOS)
WORD_LEVEL = (Family.SPACED, Family.DOTTED, Family.PUNCTUATION, Family.VOWELS, Family.MISSPELLINGS, Family.EMOJI)
SENTENCE_LEVEL = (Family.GOOD_WORDS, Family.CHATTY)


def mixed(text: str, rng: np.random.Generator, rate: float, use: Use = Use.EVALUATION) -> str:
    """A multi-level attack: one sentence-level family, then one word-level, then one character-level family,
    each drawn at random and applied at `rate`."""
    for level in (SENTENCE_LEVEL, WORD_LEVEL, CHARACTER_LEVEL):
        text = obfuscation(level[int(rng.integers(len(level)))], use)(text, rng, rate)
    return text


_FUNCTIONS: dict[Family, Callable[..., str]] = {
    Family.LOOKALIKES: lookalikes, Family.HOMOGLYPHS: homoglyphs, Family.ZERO_WIDTH: zero_width, Family.DIGITS: digits,
    Family.SYMBOLS: symbols, Family.FULL_WIDTH: full_width, Family.ACCENTS: accents, Family.CASE: case, Family.TYPOS: typos,
    Family.SPACED: spaced, Family.DOTTED: dotted, Family.PUNCTUATION: punctuation, Family.VOWELS: vowels,
    Family.MISSPELLINGS: misspellings, Family.EMOJI: emoji, Family.GOOD_WORDS: good_words, Family.CHATTY: chatty, Family.MIXED: mixed,
}
_WITH_LISTS = (Family.MISSPELLINGS, Family.GOOD_WORDS, Family.CHATTY, Family.MIXED)


def obfuscation(family: Family | str, use: Use = Use.EVALUATION) -> Obfuscation:
    """The family's function `(text, rng, rate) -> text`, drawing on the word lists of `use`."""
    family = as_family(family)
    function = _FUNCTIONS[family]
    return partial(function, use=use) if family in _WITH_LISTS else function


def as_family(name: Family | str) -> Family:
    try:
        return Family(name)
    except ValueError:
        msg = f"unknown obfuscation family {name!r}: expected one of {', '.join(f.value for f in Family)}"
        raise ValueError(msg) from None


def parse_families(text: str) -> tuple[Family, ...]:
    """`all`, or family names separated by commas, as a tuple of families in the order given (each once)."""
    if text.strip() == "all":
        return tuple(Family)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        msg = f"expected 'all' or obfuscation family names separated by commas, found {text!r}"
        raise ValueError(msg)
    return tuple(dict.fromkeys(as_family(name) for name in names))


def evaluation_texts(texts: Sequence[str], family: Family, seed: int, rate: float = DEFAULT_RATE) -> list[str]:
    """`texts` obfuscated by `family` for scoring, from the evaluation half of the word lists, with a generator
    of their own (seed, family): never the stream training copies are drawn from."""
    rng = np.random.default_rng([seed, EVALUATION_STREAM, list(Family).index(family)])
    function = obfuscation(family, Use.EVALUATION)
    return [function(text, rng, rate) for text in texts]

