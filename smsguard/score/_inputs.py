"""What `smsguard score --input` names: a file, a folder, or a glob of Parquet, CSV or JSON-lines files."""

from __future__ import annotations

import glob
from enum import Enum
from pathlib import Path

from smsguard.score._batch import ScoreError


class InputFormat(str, Enum):
    AUTO = "auto"  # from the files' suffixes
    PARQUET = "parquet"
    CSV = "csv"  # UTF-8, with a header row
    JSON = "json"  # JSON lines: one object per line


SUFFIXES = {
    ".parquet": InputFormat.PARQUET,
    ".pq": InputFormat.PARQUET,
    ".csv": InputFormat.CSV,
    ".json": InputFormat.JSON,
    ".jsonl": InputFormat.JSON,
    ".ndjson": InputFormat.JSON,
}


def _hidden(path: Path, root: Path) -> bool:
    """Files engines leave beside their data (`_SUCCESS`, `.part.crc`) are not data."""
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def input_files(spec: str, fmt: InputFormat = InputFormat.AUTO) -> tuple[list[Path], InputFormat, Path | None]:
    """The files `spec` names, sorted, their one format, and the folder they were found in (None for a
    file or a glob). Raises ScoreError, naming the input, for nothing found or formats that differ."""
    path = Path(spec)
    root: Path | None = None
    if path.is_file():
        files = [path]
    elif path.is_dir():
        root = path
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
        if fmt is InputFormat.AUTO:
            files = [p for p in files if p.suffix.lower() in SUFFIXES] or files
    elif glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    else:
        msg = f"input '{spec}' does not exist"
        raise ScoreError(msg)
    if not files:
        msg = f"input '{spec}' holds no files" if root else f"input '{spec}' matches no files"
        raise ScoreError(msg)
    if fmt is not InputFormat.AUTO:
        return files, fmt, root
    unknown = [p for p in files if p.suffix.lower() not in SUFFIXES]
    if unknown:
        msg = f"cannot tell the format of input file '{unknown[0]}' from its suffix; pass --input-format parquet, csv or json"
        raise ScoreError(msg)
    formats = sorted({SUFFIXES[p.suffix.lower()].value for p in files})
    if len(formats) > 1:
        msg = f"input '{spec}' mixes formats ({', '.join(formats)}); score one format at a time or pass --input-format"
        raise ScoreError(msg)
    return files, InputFormat(formats[0]), root


def display_name(path: Path, root: Path | None) -> str:
    """A file's name as recorded in the output's summary: relative to the input folder, never absolute."""
    return path.relative_to(root).as_posix() if root else path.name
