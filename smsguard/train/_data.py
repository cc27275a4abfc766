"""The data step: find the SMS Spam Collection (local, or downloaded and checked), load it, drop
duplicate texts, and split it into train/validation/test the same way every time."""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from smsguard import _console as console
from smsguard._columns import LABEL_COLUMNS, TEXT_COLUMNS
from smsguard._files import sha256_of
from smsguard._staging import write_atomic
from smsguard.runtime import SmsguardError
from smsguard.train._run_folder import SPLIT_FORMAT, SPLITS_FORMAT

__all__ = [
    "UPSTREAM_SHA256",
    "UPSTREAM_URL",
    "DataError",
    "Dataset",
    "Split",
    "deduplicate",
    "load_messages",
    "locate_data",
    "read_split",
    "split_dataset",
]

UPSTREAM_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
UPSTREAM_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
UPSTREAM_PAGE = "https://archive.ics.uci.edu/dataset/228/sms+spam+collection"
UPSTREAM_MEMBER = "SMSSpamCollection"
DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation; the zip is ~200 kB

CSV_LABELS = {"spam": 1, "ham": 0, "1": 1, "0": 0}
ROW_NUMBERS_ARE = "0-based data rows of the source file (UCI: line number - 1; CSV: row after the header)"
_LOCAL_HINT = f"pass --data PATH to a local copy of SMSSpamCollection (see {UPSTREAM_PAGE})"
_SHARED_RELATIVE = Path("../shared/data/SMSSpamCollection")


class DataError(SmsguardError):
    """The data set is missing, unreadable, malformed, or cannot be downloaded or split."""


@dataclass(frozen=True)
class SourceFile:
    """A data file by name and hash (what a run records: no path of the machine that made it)."""

    name: str
    sha256: str
    rows: int  # messages in the file, duplicates included

    def to_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows}


# eq=False: dataclass equality would compare numpy arrays elementwise and raise.
@dataclass(frozen=True, eq=False)
class Dataset:
    """The messages as loaded, in file order (several files: one after the other, `origin` saying whose)."""

    texts: tuple[str, ...]
    labels: np.ndarray  # int8, 1 = spam, 0 = ham
    rows: np.ndarray  # int64, 0-based data row of each message in its source (see ROW_NUMBERS_ARE)
    source: Path  # absolute; the first file's when there are several
    sha256: str  # of the (first) source file's bytes
    origin: np.ndarray | None = None  # int16, each message's file in `files` (None: one file)
    files: tuple[SourceFile, ...] = ()  # every source file, in the order given

    def __post_init__(self) -> None:
        if not self.files:
            object.__setattr__(self, "files", (SourceFile(self.source.name, self.sha256, len(self.texts)),))
        if self.origin is None:
            object.__setattr__(self, "origin", frozen(np.zeros(len(self.texts), dtype=np.int16)))

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def sources(self) -> np.ndarray:
        """Each message's file, as an index into `files`."""
        assert self.origin is not None
        return self.origin


@dataclass(frozen=True, eq=False)
class Split:
    """Positions into the deduplicated Dataset, each array sorted int64."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_size: float = 0.30  # fractions of the whole deduplicated set, as asked for
    validation_size: float = 0.10
    kind: str = "stratified"  # how it was drawn (train._config.SplitKind)

    def to_json(self, ds: Dataset, duplicates_dropped: int, seed: int, path: Path) -> None:
        """Write the split to the file `path` (e.g. run/split.json) as source row numbers, atomically."""
        path = Path(path)
        parts = {"train": self.train, "validation": self.validation, "test": self.test}
        for name, positions in parts.items():
            outside = positions[(positions < 0) | (positions >= len(ds))]
            if len(outside):
                msg = (
                    f"split part {name!r} does not fit the data set from {str(ds.source)!r}: "
                    f"expected positions 0 to {len(ds) - 1}, found {int(outside[0])}"
                )
                raise DataError(msg)
        counts = {
            name: {"ham": int((ds.labels[p] == 0).sum()), "spam": int((ds.labels[p] == 1).sum())}
            for name, p in parts.items()
        }
        several = len(ds.files) > 1 or self.kind != "stratified"
        document = {
            "format": SPLITS_FORMAT if several else SPLIT_FORMAT,
            # by name and hash: a run folder carries no path of the machine that made it
            **({"sources": [f.to_dict() for f in ds.files], "split": self.kind} if several else
               {"source": {"name": ds.source.name, "sha256": ds.sha256, "rows": len(ds) + int(duplicates_dropped)}}),
            "seed": int(seed),
            "test_size": float(self.test_size),
            "validation_size": float(self.validation_size),
            "duplicates_dropped": int(duplicates_dropped),
            "counts": counts,
            **({"counts_by_source": _counts_by_source(ds, parts)} if several else {}),
            "row_numbers_are": ROW_NUMBERS_ARE + (": each row is [source, row], source an index into sources" if several else ""),
        }
        # One line per row list: thousands of numbers, one per line, would bury the header.
        head = json.dumps(document, indent=2)[: -len("\n}")]
        rows = {name: np.stack([ds.sources[p], ds.rows[p]], axis=1).tolist() if several else ds.rows[p].tolist() for name, p in parts.items()}
        lists = [f'  "{name}": {json.dumps(rows[name], separators=(",", ":") if several else None)}' for name in parts]
        write_atomic(path, (head + ",\n" + ",\n".join(lists) + "\n}\n").encode("utf-8"))


def _counts_by_source(ds: Dataset, parts: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, int]]]:
    return {
        f.name: {name: {"ham": int(((ds.labels[p] == 0) & (ds.sources[p] == k)).sum()), "spam": int(((ds.labels[p] == 1) & (ds.sources[p] == k)).sum())}
                 for name, p in parts.items()}
        for k, f in enumerate(ds.files)
    }


def locate_data(path: str | os.PathLike | None = None) -> Path:
    """Return the data file: `path`, else $SMSGUARD_DATA, else ../shared/data, else the checked download."""
    if path is not None:
        return _existing_file(Path(path).expanduser(), repr(str(path)))
    env = os.environ.get("SMSGUARD_DATA")
    if env:
        return _existing_file(Path(env).expanduser(), f"SMSGUARD_DATA={env!r}")
    checkout_root = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / _SHARED_RELATIVE, checkout_root / _SHARED_RELATIVE):
        if candidate.is_file():
            return candidate.resolve()
    return _download_upstream()


def load_messages(
    path: str | os.PathLike,
    text_column: str | None = None,
    label_column: str | None = None,
) -> Dataset:
    """Load the UCI `label<TAB>text` file, or a CSV file when the name ends in .csv."""
    name = repr(str(path))
    source = _existing_file(Path(path).expanduser(), name)
    try:
        data = source.read_bytes()
    except OSError as e:
        msg = f"cannot read {name}: {e.strerror or e}"
        raise DataError(msg) from e
    if not data:
        msg = f"{name} is empty: expected the SMS Spam Collection ('label<TAB>text' lines) or a CSV file"
        raise DataError(msg)
    if source.name.lower().endswith(".csv"):
        texts, labels, rows = _parse_csv(data, name, text_column, label_column)
    else:
        texts, labels, rows = _parse_uci(data, name)
    if not texts:
        msg = f"{name} has no messages: expected at least one spam and one ham message"
        raise DataError(msg)
    spam = sum(labels)
    if spam == 0 or spam == len(labels):
        only = "ham" if spam == 0 else "spam"
        msg = f"{name} has only {only} messages ({len(labels)}): expected both spam and ham"
        raise DataError(msg)
    return _dataset(
        tuple(texts),
        np.asarray(labels, dtype=np.int8),
        np.asarray(rows, dtype=np.int64),
        source.resolve(),
        hashlib.sha256(data).hexdigest(),
    )


def load_sources(paths: Sequence[str | os.PathLike[str]], text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """The messages of every file, in order: `origin` is each message's file (0 = the first). Not deduplicated."""
    if not paths:
        msg = "no data files: give at least one --data"
        raise DataError(msg)
    loaded = [load_messages(path, text_column, label_column) for path in paths]
    if len(loaded) == 1:
        return loaded[0]
    seen: dict[str, int] = {}
    for position, ds in enumerate(loaded):
        if ds.sha256 in seen:
            msg = f"data file '{paths[position]}' is the same file as '{paths[seen[ds.sha256]]}' (sha256 {ds.sha256}): give each file once"
            raise DataError(msg)
        seen[ds.sha256] = position
    files = tuple(ds.files[0] for ds in loaded)
    return Dataset(
        tuple(t for ds in loaded for t in ds.texts),
        frozen(np.concatenate([ds.labels for ds in loaded])),
        frozen(np.concatenate([ds.rows for ds in loaded])),
        loaded[0].source,
        loaded[0].sha256,
        frozen(np.concatenate([np.full(len(ds), k, dtype=np.int16) for k, ds in enumerate(loaded)])),
        files,
    )


def deduplicate(ds: Dataset) -> tuple[Dataset, int]:
    """Drop exact duplicate texts, keeping the first occurrence; return (dataset, number dropped)."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(ds.texts):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    kept = np.asarray(keep, dtype=np.int64)
    out = Dataset(tuple(ds.texts[i] for i in keep), frozen(ds.labels[kept]), frozen(ds.rows[kept]), ds.source, ds.sha256, frozen(ds.sources[kept]), ds.files)
    return out, len(ds) - len(out)


def split_dataset(ds: Dataset, seed: int, test_size: float = 0.30, validation_size: float = 0.10) -> Split:
    """Stratified split: test_size of the whole, then validation_size of the whole from the rest. With several
    files, stratified by file and label together, so that each part holds each file's share (by label alone when a
    file has too few messages of a label for that)."""
    check_sizes(test_size, validation_size)
    n = len(ds)
    # Whole-message counts, so validation is validation_size of the whole with no float drift
    # (validation_size / (1 - test_size) of the remainder can land a hair above an integer).
    n_test = round(test_size * n)
    n_validation = round(validation_size * n)
    positions = np.arange(n, dtype=np.int64)
    strata = [ds.labels.astype(np.int64) + 2 * ds.sources, ds.labels] if len(ds.files) > 1 else [ds.labels]
    for number, stratum in enumerate(strata):
        try:
            rest, test = train_test_split(positions, test_size=n_test, stratify=stratum, random_state=seed)
            train, validation = train_test_split(rest, test_size=n_validation, stratify=stratum[rest], random_state=seed)
            break
        except ValueError as e:
            if number + 1 < len(strata):
                continue
            msg = (
                f"cannot split the {n} messages from {str(ds.source)!r} into test {test_size} and "
                f"validation {validation_size} stratified by label: {e}"
            )
            raise DataError(msg) from e
    return Split(
        train=frozen(np.sort(train)),
        validation=frozen(np.sort(validation)),
        test=frozen(np.sort(test)),
        test_size=float(test_size),
        validation_size=float(validation_size),
    )


stratified_split = split_dataset


def check_sizes(test_size: float, validation_size: float) -> None:
    if not (test_size > 0 and validation_size > 0 and test_size + validation_size < 1):
        msg = (
            f"cannot split with test_size={test_size} and validation_size={validation_size}: "
            "expected both above 0 and their sum below 1"
        )
        raise DataError(msg)


def read_split(
    path: Path, data: str | os.PathLike | Sequence[str | os.PathLike] | None = None, text_column: str | None = None, label_column: str | None = None
) -> tuple[Dataset, Split]:
    """Rebuild a run's deduplicated data set and split from its split.json and the source files.

    A file is found in `data` (a path or several, any order) by its hash, else the way training finds the UCI
    file (`locate_data`: $SMSGUARD_DATA, ../shared/data, the checked download); runs written before split.json
    held names only recorded a path, which is tried first. Every file must be byte-identical to the one the run
    was trained on.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        recorded = document["sources"] if document.get("format") == SPLITS_FORMAT else [document["source"]]
        parts = {name: document[name] for name in ("train", "validation", "test")}
    except FileNotFoundError:
        msg = f"split file '{path}' is missing; is this a folder written by `smsguard train`?"
        raise DataError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        msg = f"split file '{path}' is malformed: {type(error).__name__}: {error}"
        raise DataError(msg) from None
    given = [data] if isinstance(data, (str, os.PathLike)) else list(data or [])
    files = [_source_file(path, source, given, len(recorded)) for source in recorded]
    ds, _ = deduplicate(load_sources(files, text_column, label_column))
    for source, found, loaded in zip(recorded, files, ds.files, strict=True):
        if loaded.sha256 != source["sha256"]:
            msg = (
                f"data file '{found}' is not the one this run was trained on: sha256 {loaded.sha256}, "
                f"expected {source['sha256']}; pass --data PATH to the original file"
            )
            raise DataError(msg)
    several = document.get("format") == SPLITS_FORMAT
    position = {(int(o), int(row)): i for i, (o, row) in enumerate(zip(ds.sources, ds.rows, strict=True))}
    try:
        arrays = {name: np.sort(np.asarray([position[(int(r[0]), int(r[1])) if several else (0, int(r))] for r in rows], dtype=np.int64))
                  for name, rows in parts.items()}
    except KeyError as error:
        msg = f"split file '{path}' names source row {error} which is not a deduplicated message of its data files"
        raise DataError(msg) from None
    split = Split(
        train=frozen(arrays["train"]),
        validation=frozen(arrays["validation"]),
        test=frozen(arrays["test"]),
        test_size=float(document.get("test_size", 0.30)),
        validation_size=float(document.get("validation_size", 0.10)),
        kind=str(document.get("split", "stratified")),
    )
    return ds, split


def _source_file(split_path: Path, source: dict, given: list[str | os.PathLike], count: int) -> Path:
    """The file a split's source names: among `given` by hash (the only one given, for a one-file run, whatever its
    bytes: a mismatch is then reported as such), at its recorded path (older runs), or where training finds the UCI file."""
    if count == 1 and len(given) == 1:
        return Path(given[0])
    for candidate in given:
        if Path(candidate).is_file() and sha256_of(Path(candidate)) == source["sha256"]:
            return Path(candidate)
    if source.get("path") and Path(source["path"]).is_file():
        return Path(source["path"])
    if not given or source["sha256"] == UPSTREAM_SHA256:
        return locate_data(None)
    msg = f"split file '{split_path}' names data file '{source['name']}' (sha256 {source['sha256']}), which is none of --data; pass --data PATH for it (one per file)"
    raise DataError(msg)


def _dataset(texts, labels, rows, source, sha256) -> Dataset:
    return Dataset(texts, frozen(labels), frozen(rows), source, sha256)


def frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _existing_file(path: Path, name: str) -> Path:
    if path.is_dir():
        msg = f"{name} is a directory: expected the SMSSpamCollection file or a CSV file"
        raise DataError(msg)
    if not path.is_file():
        msg = f"{name} does not exist: {_LOCAL_HINT}"
        raise DataError(msg)
    return path


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _parse_uci(data: bytes, name: str) -> tuple[list[str], list[int], list[int]]:
    # utf-8-sig drops a leading byte-order mark, which would otherwise stick to the first label.
    text = data.decode("utf-8-sig", errors="replace")
    texts: list[str] = []
    labels: list[int] = []
    rows: list[int] = []
    # split("\n"), not splitlines(): messages may hold \x0b, \x1c or U+2028, which are not line ends.
    for index, line in enumerate(text.split("\n")):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        label, tab, message = line.partition("\t")
        if not tab or label not in ("spam", "ham"):
            found = _shown(line) if not tab else f"label {_shown(label)}"
            msg = f"{name} line {index + 1}: expected 'label<TAB>text' with label spam or ham, found {found}"
            raise DataError(msg)
        texts.append(message)
        labels.append(1 if label == "spam" else 0)
        rows.append(index)
    return texts, labels, rows


def _parse_csv(
    data: bytes, name: str, text_column: str | None, label_column: str | None
) -> tuple[list[str], list[int], list[int]]:
    try:
        frame = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="replace"
        )
    except pd.errors.EmptyDataError as e:
        msg = f"{name} has no header row: expected a CSV file with a text and a label column"
        raise DataError(msg) from e
    except (pd.errors.ParserError, ValueError) as e:
        msg = f"{name} is not a readable CSV file: {e}"
        raise DataError(msg) from e
    columns = [str(c) for c in frame.columns]
    text_name = _pick_column(columns, text_column, TEXT_COLUMNS, "text", name)
    label_name = _pick_column(columns, label_column, LABEL_COLUMNS, "label", name)
    texts = frame[text_name].tolist()
    labels: list[int] = []
    for index, raw in enumerate(frame[label_name].tolist()):
        value = CSV_LABELS.get(raw.strip().lower())
        if value is None:
            msg = (
                f"{name} row {index + 1}: expected label spam, ham, 1 or 0 in column {label_name!r}, "
                f"found {_shown(raw)}"
            )
            raise DataError(msg)
        labels.append(value)
    return texts, labels, list(range(len(texts)))


def _pick_column(
    columns: list[str], asked: str | None, defaults: tuple[str, ...], kind: str, name: str
) -> str:
    if asked is not None:
        if asked in columns:
            return asked
        wanted = repr(asked)
    else:
        for candidate in defaults:
            if candidate in columns:
                return candidate
        wanted = "(looked for " + ", ".join(map(repr, defaults)) + ")"
    found = ", ".join(map(repr, columns)) or "none"
    msg = (
        f"{name} has no {kind} column {wanted}; found columns {found}: "
        "pass --text-column/--label-column to name the right ones"
    )
    raise DataError(msg)


def _cache_dir() -> Path:
    if os.environ.get("SMSGUARD_CACHE"):
        return Path(os.environ["SMSGUARD_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "smsguard"


def _download_upstream() -> Path:
    """Return the cached upstream file, downloading, unzipping and checking it first if needed."""
    url = os.environ.get("SMSGUARD_DATA_URL") or UPSTREAM_URL
    target = _cache_dir() / UPSTREAM_MEMBER
    try:
        if target.is_file() and sha256_of(target) == UPSTREAM_SHA256:
            return target
    except OSError:
        pass  # unreadable cache entry: fetch a fresh copy over it
    console.step(f"Downloading the SMS Spam Collection to {target} ...")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            archive = response.read()
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            members = [m for m in bundle.namelist() if m.rsplit("/", 1)[-1] == UPSTREAM_MEMBER]
            if not members:
                msg = f"the zip has no member {UPSTREAM_MEMBER!r}"
                raise DataError(msg)
            content = bundle.read(members[0])
        digest = hashlib.sha256(content).hexdigest()
        if digest != UPSTREAM_SHA256:
            msg = f"{UPSTREAM_MEMBER} has SHA-256 {digest}, expected {UPSTREAM_SHA256}"
            raise DataError(msg)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, content)
    except (DataError, OSError, zipfile.BadZipFile, ValueError) as e:
        # URLError and HTTPError are OSErrors; ValueError covers a malformed URL.
        cause = _cause(e)
        msg = f"could not download the SMS Spam Collection from {url} ({cause}); {_LOCAL_HINT}"
        raise DataError(msg) from e
    return target


def _cause(e: BaseException) -> str:
    if isinstance(e, (DataError, urllib.error.HTTPError)):
        return str(e)  # HTTPError reads "HTTP Error 404: Not Found"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)  # "[Errno -3] Temporary failure in name resolution", "timed out", ...
    return f"{type(e).__name__}: {e}"
