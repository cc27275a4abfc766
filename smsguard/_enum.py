"""`TextEnum`: the base of every string-valued setting, at every boundary (CLI flags, files, configs)."""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """A string-valued setting that prints as its value (Python 3.10 and 3.11 format mixed-in enums
    differently; `enum.StrEnum` needs 3.11). Compares equal to its value."""

    def __str__(self) -> str:
        return str(self.value)
