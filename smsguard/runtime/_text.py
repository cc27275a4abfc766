"""What happens to a message before either branch sees it, pinned in the frozen vocabulary (vocab.json `text`).

Two parts, each a table drawn once from the Unicode data of the Python that trains, so that every runtime
(this one on any Python version, Java, JavaScript, C) computes the same ids without its own Unicode tables:

- `Lowercase`: `str.lower()` as a table (every code point whose lowercase differs) and CPython's rule for
  a capital sigma at the end of a word, with the two sets that rule reads (cased, case-ignorable);
- `Normaliser` (optional): 1. remove invisible characters; 2. fold compatibility forms (each code point's
  NFKC on its own: full-width, mathematical and circled letters, ligatures, no-break spaces); 3. inside a
  word that holds an ASCII letter, map look-alike letters of other scripts to the ASCII letter they imitate
  (Cyrillic "а" in "Frее"); 4. join letters spaced or dotted apart ("F R E E", "F.R.E.E" -> "FREE").

The steps and their tables are the spec a port implements (docs/reference/bundle-format.md, "text"); this
module is its reference. ASCII text, most SMS, skips everything but the join, one regular expression.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smsguard._errors import BundleError
from smsguard.runtime._lookalikes import LOOKALIKES

TEXT_FORMAT = 1  # vocab.json's `text` section
SIGMA, SMALL_SIGMA, FINAL_SIGMA = 0x3A3, "σ", "ς"
# The characters `str.split()` splits on (`str.isspace()`), stable since Unicode 6.3: the words of the look-alike
# step and of the n-gram bag.
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# Invisible code points removed besides category Cf: Default_Ignorable_Code_Point's others (variation selectors,
# the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors).
INVISIBLE_EXTRA = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))
# Cf characters that are visible (prepended concatenation marks, interlinear annotation): kept.
VISIBLE_FORMAT = ((0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD))
# Blocks whose compatibility forms fold only to scripts an English SMS model has no words for; left out of the
# fold table to keep it small (CJK compatibility ideographs, Hangul compatibility jamo, Arabic presentation forms).
FOLD_SKIPPED = ((0x3131, 0x318E), (0xF900, 0xFAFF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF), (0xFFA0, 0xFFDC), (0x2F800, 0x2FA1F))
AGREES_KEPT = 65536  # characters whose lowering a Lowercase remembers having checked against this Python's str.lower()
JOIN_SEPARATORS = " .-_*+~|/·•"  # what spammers put between letters (not the apostrophe or comma of "K..k..i'm, ok")
JOIN_MIN_LETTERS = 4  # "u r a" (SMS shorthand, 21 ham messages of the UCI data) stays; "F R E E" joins
JOIN_MAX_SEPARATOR_RUN = 2  # "F. R. E. E" joins; wider gaps are words of their own

Ranges = tuple[tuple[int, int], ...]  # inclusive [first, last] code point ranges, sorted


def ranges_of(codes: Iterable[int]) -> Ranges:
    """Sorted code points as inclusive ranges."""
    out: list[list[int]] = []
    for code in sorted(set(codes)):
        if out and code == out[-1][1] + 1:
            out[-1][1] = code
        else:
            out.append([code, code])
    return tuple((first, last) for first, last in out)


def codes_of(ranges: Ranges) -> Iterable[int]:
    for first, last in ranges:
        yield from range(first, last + 1)


def _set(obj: object, **attributes: Any) -> None:
    """Derived attributes of a frozen dataclass, set once in __post_init__."""
    for name, value in attributes.items():
        object.__setattr__(obj, name, value)


def _in(ranges: Ranges, starts: Sequence[int], code: int) -> bool:
    at = bisect.bisect_right(starts, code) - 1
    return at >= 0 and code <= ranges[at][1]


@dataclass(frozen=True, eq=False)
class Lowercase:
    """`str.lower()` of the Python that made the table, on any Python: the full lowercase mapping of each code
    point, and a capital sigma lowered to final sigma in CPython's Final_Sigma context."""

    mapping: Mapping[int, str]  # every code point but U+03A3 whose lowercase differs from it
    cased: Ranges  # for the sigma rule: code points that are cased and not case-ignorable
    case_ignorable: Ranges
    table: dict[int, str] = field(init=False, repr=False)  # for str.translate
    _ascii: bool = field(init=False, repr=False)
    _cased_starts: list[int] = field(init=False, repr=False)
    _ignorable_starts: list[int] = field(init=False, repr=False)
    _agrees: dict[str, bool] = field(init=False, repr=False)  # character -> whether this Python's str.lower() lowers it as the table

    def __post_init__(self) -> None:
        ascii_ok = all(self.mapping.get(c) == chr(c + 32) for c in range(65, 91)) and not any(c < 128 and not 65 <= c <= 90 for c in self.mapping)
        _set(self, table=dict(self.mapping), _ascii=ascii_ok, _cased_starts=[r[0] for r in self.cased], _ignorable_starts=[r[0] for r in self.case_ignorable],
             _agrees={})

    def __call__(self, text: str) -> str:
        if self._ascii and text.isascii():
            return text.lower()  # the table's ASCII part is A-Z -> a-z, checked above
        if "Σ" not in text:
            # Without a capital sigma, lowering is character by character, in str.lower() (fast) as in the table (str.translate,
            # slow): where this Python lowers every character of the text as the table does, they give the same text.
            if self._ascii and all(map(self._python_agrees, non_ascii(text))):
                return text.lower()
            return text.translate(self.table)
        return "".join(self._final_sigma(text, i) if ch == "Σ" else self.table.get(ord(ch), ch) for i, ch in enumerate(text))

    def with_offsets(self, text: str) -> tuple[str, list[int]]:
        """`self(text)`, and for each of its characters the index in `text` of the one it came from ("İ" lowers to
        two characters, both from it)."""
        if self._ascii and text.isascii():
            return text.lower(), list(range(len(text)))
        pieces = [self._final_sigma(text, at) if char == "Σ" else self.table.get(ord(char), char) for at, char in enumerate(text)]
        return "".join(pieces), [at for at, piece in enumerate(pieces) for _ in piece]

    def _final_sigma(self, text: str, at: int) -> str:
        """CPython's handle_capital_sigma: a cased letter before (case-ignorable ones skipped), none after."""
        before = at - 1
        while before >= 0 and self._ignorable(text[before]):
            before -= 1
        if before < 0 or not self._cased(text[before]):
            return SMALL_SIGMA
        after = at + 1
        while after < len(text) and self._ignorable(text[after]):
            after += 1
        return FINAL_SIGMA if after == len(text) or not self._cased(text[after]) else SMALL_SIGMA

    def _python_agrees(self, char: str) -> bool:
        """Whether this Python's str.lower() lowers `char` as the table does (never for Σ, whose rule reads its neighbours);
        remembered for the first AGREES_KEPT characters asked about (an SMS uses few; a text of every code point, many)."""
        agrees = self._agrees.get(char)
        if agrees is None:
            agrees = char != "Σ" and char.lower() == self.table.get(ord(char), char)
            if len(self._agrees) < AGREES_KEPT:
                self._agrees[char] = agrees
        return agrees

    def _cased(self, char: str) -> bool:
        return _in(self.cased, self._cased_starts, ord(char))

    def _ignorable(self, char: str) -> bool:
        return _in(self.case_ignorable, self._ignorable_starts, ord(char))

    @classmethod
    @functools.cache
    def of_this_python(cls) -> Lowercase:
        """The table of this Python's `str.lower()`, probed code point by code point (about 2 s, once)."""
        mapping = {}
        cased, ignorable = [], []
        for code in range(0x110000):
            char = chr(code)
            lowered = char.lower()
            if lowered != char and code != SIGMA:
                mapping[code] = lowered
            # The sigma rule itself tells the two sets apart: a case-ignorable character is skipped on the way back
            # to the cased "A"; a cased one ends the scan and makes the sigma final on its own.
            alone_final = (char + "Σ").lower()[-1] == FINAL_SIGMA
            if alone_final:
                cased.append(code)
            elif ("A" + char + "Σ").lower()[-1] == FINAL_SIGMA:
                ignorable.append(code)
        return cls(mapping, ranges_of(cased), ranges_of(ignorable))

    def to_dict(self) -> dict[str, Any]:
        return {
            "map": {format(code, "x"): value for code, value in sorted(self.mapping.items())},
            "final_sigma": {"cased": [list(r) for r in self.cased], "case_ignorable": [list(r) for r in self.case_ignorable]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lowercase:
        sigma = data["final_sigma"]
        return cls(_code_map(data["map"], "lowercase.map"), _ranges(sigma["cased"], "cased"), _ranges(sigma["case_ignorable"], "case_ignorable"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lowercase) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class JoinRule:
    """Letters spaced or dotted apart: at least `min_letters` single ASCII letters or digits, each pair apart by
    1 to `max_separator_run` of `separators`, with no letter or digit on either side, become one word."""

    min_letters: int = JOIN_MIN_LETTERS
    separators: str = JOIN_SEPARATORS
    max_separator_run: int = JOIN_MAX_SEPARATOR_RUN

    def prefilter(self) -> tuple[bytes, re.Pattern[bytes]]:
        """For ASCII text: a 256-byte table mapping letters and digits to `a`, the ASCII separators to `s`, the rest to
        `o`, and a pattern over the mapped bytes that every run of the rule contains (its inner letters, each between
        separators). A text the pattern misses has nothing to join; most SMS are such texts, and the check costs a
        `bytes.translate` and a literal search."""
        ascii_separators = [char for char in self.separators if char.isascii()]
        table = bytearray(b"o" * 256)
        for code in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
            table[code] = ord("a")
        for char in ascii_separators:
            table[ord(char)] = ord("s")
        inner = self.min_letters - 2  # at least 0: from_dict refuses min_letters < 2; each inner letter sits between separators ("sas")
        body = "sa" + f"(?:s{{1,{self.max_separator_run}}}a){{{inner - 1}}}" + "s" if inner > 0 else "s?a"
        return bytes(table), re.compile(body.encode("ascii"))

    def pattern(self) -> str:
        """The regular expression of the spec; Python's re, Java's java.util.regex and JavaScript's RegExp read it alike."""
        separators = "".join("\\" + char if char in "\\]-^[" else char for char in self.separators)
        return (
            f"(?<![A-Za-z0-9])[A-Za-z0-9](?:[{separators}]{{1,{self.max_separator_run}}}[A-Za-z0-9])"
            f"{{{self.min_letters - 1},}}(?![A-Za-z0-9])"
        )


@dataclass(frozen=True, eq=False)
class Normaliser:
    """The four steps of the spec, in order: remove, fold, look-alikes (in words with an ASCII letter), join."""

    remove: Ranges
    fold: Mapping[int, str]
    lookalikes: Mapping[int, str]
    join: JoinRule = JoinRule()
    _removing: dict[int, str | None] = field(init=False, repr=False)
    _lookalike_table: dict[int, str] = field(init=False, repr=False)
    _removing_chars: frozenset[str] = field(init=False, repr=False)  # the keys of the two tables, as characters: a text
    _lookalike_chars: frozenset[str] = field(init=False, repr=False)  # with none of them skips str.translate (slow)
    _join: re.Pattern[str] = field(init=False, repr=False)
    _prefilter: tuple[bytes, re.Pattern[bytes]] = field(init=False, repr=False)
    _words: re.Pattern[str] = field(init=False, repr=False)
    _ascii_fast: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # ASCII text skips the first three steps when no table holds an ASCII code point (checked here, so that a
        # hand-made table that does still gets every step). Removing wins over folding, as in the spec's order.
        _set(
            self,
            _removing=dict(self.fold) | {code: None for code in codes_of(self.remove)},
            _lookalike_table=dict(self.lookalikes),
            _removing_chars=frozenset(map(chr, [*self.fold, *codes_of(self.remove)])),
            _lookalike_chars=frozenset(map(chr, self.lookalikes)),
            _join=re.compile(self.join.pattern()),
            _prefilter=self.join.prefilter(),
            _words=re.compile(f"[^{re.escape(WHITESPACE)}]+"),
            _ascii_fast=all(code >= 128 for code in (*codes_of(self.remove), *self.fold, *self.lookalikes)),
        )

    @property
    def ascii_join(self) -> JoinRule | None:
        """The rule this normaliser is on ASCII text when it is its join rule alone (no table holds an ASCII code point and
        no separator is a letter or digit, as the C featuriser needs), else None."""
        if not self._ascii_fast or any(char.isascii() and char.isalnum() for char in self.join.separators):
            return None
        return self.join

    def __call__(self, text: str) -> str:
        if self._ascii_fast and text.isascii():
            table, inner_letters = self._prefilter
            mapped = text.encode("ascii").translate(table)
            if b"sas" not in mapped or not inner_letters.search(mapped):
                return text  # nothing to join: most SMS, in well under a microsecond
            return self._join.sub(_letters_only, text)
        if not self._removing_chars.isdisjoint(self._others(text)):
            text = text.translate(self._removing)
        if not self._lookalike_chars.isdisjoint(self._others(text)):  # only then look for words to map
            text = self._words.sub(self._map_lookalikes, text)
        return self._join.sub(_letters_only, text)

    def with_offsets(self, text: str) -> tuple[str, list[int]]:
        """`self(text)`, and for each of its characters the index in `text` of the character it came from (a folded
        "ﬀ" gives two characters from one; a removed one gives none; a joined "F R E E" keeps its letters'): what
        an explanation needs to show a span of the normalised text in the message as written."""
        chars, sources = text, list(range(len(text)))
        if not (self._ascii_fast and text.isascii()):
            chars, sources = _mapped(chars, sources, self._removing)
            if chars.translate(self._lookalike_table) != chars:
                inside = [False] * len(chars)  # in a word that holds an ASCII letter
                for word in self._words.finditer(chars):
                    if _ASCII_LETTER.search(word.group()):
                        inside[word.start() : word.end()] = [True] * (word.end() - word.start())
                chars, sources = _mapped(chars, sources, self._lookalike_table, inside)
        kept: list[int] = []
        out: list[str] = []
        end = 0
        for match in self._join.finditer(chars):
            out.append(chars[end : match.start()])
            kept.extend(sources[end : match.start()])
            letters = [at for at in range(match.start(), match.end()) if chars[at].isascii() and chars[at].isalnum()]
            out.append("".join(chars[at] for at in letters))
            kept.extend(sources[at] for at in letters)
            end = match.end()
        out.append(chars[end:])
        kept.extend(sources[end:])
        return "".join(out), kept

    def _others(self, text: str) -> Iterable[str]:
        """The characters of `text` that a table may hold: its non-ASCII ones, unless a table holds an ASCII one."""
        return non_ascii(text) if self._ascii_fast else text

    def _map_lookalikes(self, word: re.Match[str]) -> str:
        text = word.group()
        return text.translate(self._lookalike_table) if _ASCII_LETTER.search(text) else text

    @classmethod
    @functools.cache
    def of_this_python(cls) -> Normaliser:
        """The tables from this Python's Unicode data and the committed look-alike table (`_lookalikes.py`)."""
        format_chars = (c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
        remove = set(format_chars) | set(codes_of(INVISIBLE_EXTRA))
        remove -= set(codes_of(VISIBLE_FORMAT))
        skipped = set(codes_of(FOLD_SKIPPED))
        fold = {}
        for code in range(0x110000):
            if code in remove or code in skipped or 0xD800 <= code <= 0xDFFF:
                continue
            folded = unicodedata.normalize("NFKC", chr(code))
            if folded != chr(code):
                fold[code] = "".join(ch for ch in folded if ord(ch) not in remove)
        lookalikes = {code: value for code, value in LOOKALIKES.items() if code not in fold and code not in remove}
        return cls(ranges_of(remove), fold, lookalikes)

    def to_dict(self) -> dict[str, Any]:
        join = self.join
        return {
            "remove": [list(r) for r in self.remove],
            "fold": {format(code, "x"): value for code, value in sorted(self.fold.items())},
            "lookalikes": {format(code, "x"): value for code, value in sorted(self.lookalikes.items())},
            "join": {"min_letters": join.min_letters, "separators": join.separators, "max_separator_run": join.max_separator_run},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normaliser:
        join = data["join"]
        rule = JoinRule(int(join["min_letters"]), str(join["separators"]), int(join["max_separator_run"]))
        if rule.min_letters < 2 or rule.max_separator_run < 1 or not rule.separators:
            msg = f"join needs min_letters >= 2, max_separator_run >= 1 and separators, found {join!r}"
            raise ValueError(msg)
        return cls(_ranges(data["remove"], "remove"), _code_map(data["fold"], "fold"), _code_map(data["lookalikes"], "lookalikes"), rule)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normaliser) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


_ASCII_LETTER = re.compile("[A-Za-z]")
NON_ASCII = re.compile("[^\x00-\x7f]")
_FINDALL_UP_TO = 4096  # characters: a longer text's non-ASCII characters are collected without a list of them all


def non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of `text`. A short text's from the regular expression (fast when there are
    few); a long one's from the set of its characters, so that a 10 MB text of CJK does not make a list of 3 million
    one-character strings (280 MB)."""
    if len(text) <= _FINDALL_UP_TO:
        return set(NON_ASCII.findall(text))
    return {char for char in set(text) if not char.isascii()}


def _mapped(text: str, sources: list[int], table: Mapping[int, str | None], where: list[bool] | None = None) -> tuple[str, list[int]]:
    """`text.translate(table)` (only at the positions `where` is True, when given), with each output character's source.
    Only the characters the table changes are visited: most of a message is kept as it is, in slices."""
    if text.translate(table) == text and where is None:
        return text, sources
    chars: list[str] = []
    out: list[int] = []
    end = 0
    for at, char in enumerate(text):
        code = ord(char)
        if code in table and (where is None or where[at]):
            chars.append(text[end:at])
            out.extend(sources[end:at])
            piece = table[code] or ""
            chars.append(piece)
            out.extend([sources[at]] * len(piece))
            end = at + 1
    chars.append(text[end:])
    out.extend(sources[end:])
    return "".join(chars), out


def _letters_only(match: re.Match[str]) -> str:
    return "".join(char for char in match.group() if char.isascii() and char.isalnum())


@dataclass(frozen=True, eq=False)
class TextSpec:
    """vocab.json's `text` section: the pinned lowercase, and the normaliser when the model was trained with one."""

    lowercase: Lowercase
    normaliser: Normaliser | None = None
    unicode: str = ""  # the Unicode version the tables were drawn from (informative: nothing reads it)

    def normalise(self, text: str) -> str:
        return text if self.normaliser is None else self.normaliser(text)

    @functools.cached_property
    def sha256(self) -> str:
        """SHA-256 of the section as JSON with sorted keys: names the tables (a personal state records which it was made with)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def of_this_python(cls, normalise: bool) -> TextSpec:
        return cls(Lowercase.of_this_python(), Normaliser.of_this_python() if normalise else None, unicodedata.unidata_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TEXT_FORMAT,
            "unicode": self.unicode,
            "lowercase": self.lowercase.to_dict(),
            "normalise": None if self.normaliser is None else self.normaliser.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> TextSpec:
        """Read what `to_dict` wrote; a BundleError names the first field that is wrong."""
        try:
            if not isinstance(data, Mapping):
                msg = f"expected a JSON object, found {type(data).__name__}"
                raise TypeError(msg)
            if data.get("format") != TEXT_FORMAT:
                msg = f"text format {data.get('format')!r} is not supported (this smsguard reads {TEXT_FORMAT})"
                raise BundleError(msg)
            normaliser = None if data.get("normalise") is None else Normaliser.from_dict(data["normalise"])
            return cls(Lowercase.from_dict(data["lowercase"]), normaliser, str(data.get("unicode", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            msg = f"text section is malformed: {type(error).__name__}: {error}"
            raise BundleError(msg) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpec) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _code_map(data: Mapping[str, Any], what: str) -> dict[int, str]:
    if not isinstance(data, Mapping):
        msg = f"{what} must map hex code points to strings"
        raise TypeError(msg)
    out = {}
    for key, value in data.items():
        code = int(key, 16)
        if not 0 <= code <= 0x10FFFF or not isinstance(value, str):
            msg = f"{what} entry {key!r}: {value!r} is not a code point and a string"
            raise ValueError(msg)
        out[code] = value
    return out


def _ranges(data: Any, what: str) -> Ranges:
    ranges = tuple((int(first), int(last)) for first, last in data)
    if any(not 0 <= first <= last <= 0x10FFFF for first, last in ranges) or list(ranges) != sorted(ranges):
        msg = f"{what} must be sorted [first, last] code point ranges"
        raise ValueError(msg)
    return ranges
