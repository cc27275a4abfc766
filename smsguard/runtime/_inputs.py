"""What the runtime takes as messages: any iterable of str or UTF-8 bytes, one at a time, with a one-line error
naming the index and what was found for anything else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an id


def as_texts(texts: Iterable[str | bytes]) -> Iterator[str]:
    """The messages of `texts` one at a time, as str: bytes are decoded as UTF-8.

    Raises TypeError, naming what was found, for anything but an iterable of str and bytes (a bare
    string included: it is not a list of one message), and ValueError for bytes that are not UTF-8;
    an item's error names its index. A generator is read lazily, so a caller can stream it in chunks.
    """
    if isinstance(texts, (str, bytes, bytearray)):
        msg = f"texts must be a list of strings, found a single {type(texts).__name__}; wrap it in a list"
        raise TypeError(msg)
    if not isinstance(texts, Iterable):
        msg = f"texts must be a list of strings, found {'None' if texts is None else type(texts).__name__}"
        raise TypeError(msg)
    return (_as_text(text, position) for position, text in enumerate(texts))


def _as_text(text: object, position: int) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as error:
            msg = (
                f"text at index {position} is bytes that are not UTF-8: byte 0x{text[error.start]:02x} at offset "
                f"{error.start}; decode it yourself (for example with .decode('latin-1')) and pass str"
            )
            raise ValueError(msg) from None
    msg = f"text at index {position} must be str or UTF-8 bytes, found {type(text).__name__}"
    raise TypeError(msg)


