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
from smsguard.train._run_folder import SPLIT_FORMAT

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


# eq=False: dataclass equality would compare numpy arrays elementwise and raise.
@dataclass(frozen=True, eq=False)
class Dataset:
    """The messages as loaded, in file order."""

    texts: tuple[str, ...]
    labels: np.ndarray  # int8, 1 = spam, 0 = ham
    rows: np.ndarray  # int64, 0-based data row of each message in the source (see ROW_NUMBERS_ARE)
    source: Path  # absolute
    sha256: str  # of the source file bytes

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True, eq=False)
class Split:
    """Positions into the deduplicated Dataset, each array sorted int64."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_size: float = 0.30  # fractions of the whole deduplicated set, as asked for
    validation_size: float = 0.10

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
        document = {
            "format": SPLIT_FORMAT,
            "source": {  # by name and hash: a run folder carries no path of the machine that made it
                "name": ds.source.name,
                "sha256": ds.sha256,
                "rows": len(ds) + int(duplicates_dropped),
            },
            "seed": int(seed),
            "test_size": float(self.test_size),
            "validation_size": float(self.validation_size),
            "duplicates_dropped": int(duplicates_dropped),
            "counts": counts,
            "row_numbers_are": ROW_NUMBERS_ARE,
        }
        # One line per row list: thousands of numbers, one per line, would bury the header.
        head = json.dumps(document, indent=2)[: -len("\n}")]
        lists = [f'  "{name}": {json.dumps(ds.rows[p].tolist())}' for name, p in parts.items()]
        write_atomic(path, (head + ",\n" + ",\n".join(lists) + "\n}\n").encode("utf-8"))


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


def deduplicate(ds: Dataset) -> tuple[Dataset, int]:
    """Drop exact duplicate texts, keeping the first occurrence; return (dataset, number dropped)."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(ds.texts):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    kept = np.asarray(keep, dtype=np.int64)
    out = _dataset(tuple(ds.texts[i] for i in keep), ds.labels[kept], ds.rows[kept], ds.source, ds.sha256)
    return out, len(ds) - len(out)


def split_dataset(ds: Dataset, seed: int, test_size: float = 0.30, validation_size: float = 0.10) -> Split:
    """Stratified split: test_size of the whole, then validation_size of the whole from the rest."""
    if not (test_size > 0 and validation_size > 0 and test_size + validation_size < 1):
        msg = (
            f"cannot split with test_size={test_size} and validation_size={validation_size}: "
            "expected both above 0 and their sum below 1"
        )
        raise DataError(msg)
    n = len(ds)
    # Whole-message counts, so validation is validation_size of the whole with no float drift
    # (validation_size / (1 - test_size) of the remainder can land a hair above an integer).
    n_test = round(test_size * n)
    n_validation = round(validation_size * n)
    positions = np.arange(n, dtype=np.int64)
    try:
        rest, test = train_test_split(positions, test_size=n_test, stratify=ds.labels, random_state=seed)
        train, validation = train_test_split(
            rest, test_size=n_validation, stratify=ds.labels[rest], random_state=seed
        )
    except ValueError as e:
        msg = (
            f"cannot split the {n} messages from {str(ds.source)!r} into test {test_size} and "
            f"validation {validation_size} stratified by label: {e}"
        )
        raise DataError(msg) from e
    return Split(
        train=_frozen(np.sort(train)),
        validation=_frozen(np.sort(validation)),
        test=_frozen(np.sort(test)),
        test_size=float(test_size),
        validation_size=float(validation_size),
    )


def read_split(
    path: Path, data: str | os.PathLike | None = None, text_column: str | None = None, label_column: str | None = None
) -> tuple[Dataset, Split]:
    """Rebuild a run's deduplicated data set and split from its split.json and the source file.

    The file is `data` when given, else found the way training finds it (`locate_data`: $SMSGUARD_DATA,
    ../shared/data, the checked download); runs written before split.json held names only recorded a
    path, which is tried first. Either way the file must be byte-identical to the one the run was
    trained on.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        recorded = document["source"].get("path")
        expected_sha = document["source"]["sha256"]
        parts = {name: document[name] for name in ("train", "validation", "test")}
    except FileNotFoundError:
        msg = f"split file '{path}' is missing; is this a folder written by `smsguard train`?"
        raise DataError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        msg = f"split file '{path}' is malformed: {type(error).__name__}: {error}"
        raise DataError(msg) from None
    if data is not None:
        source = Path(data)
    elif recorded and Path(recorded).is_file():
        source = Path(recorded)
    else:
        source = locate_data(None)
    ds, _ = deduplicate(load_messages(source, text_column, label_column))
    if ds.sha256 != expected_sha:
        msg = (
            f"data file '{source}' is not the one this run was trained on: sha256 {ds.sha256}, "
            f"expected {expected_sha}; pass --data PATH to the original file"
        )
        raise DataError(msg)
    position = {int(row): i for i, row in enumerate(ds.rows)}
    try:
        arrays = {name: np.sort(np.asarray([position[int(r)] for r in rows], dtype=np.int64)) for name, rows in parts.items()}
    except KeyError as error:
        msg = f"split file '{path}' names source row {error} which is not a deduplicated message of '{source}'"
        raise DataError(msg) from None
    split = Split(
        train=_frozen(arrays["train"]),
        validation=_frozen(arrays["validation"]),
        test=_frozen(arrays["test"]),
        test_size=float(document.get("test_size", 0.30)),
        validation_size=float(document.get("validation_size", 0.10)),
    )
    return ds, split


def _dataset(texts, labels, rows, source, sha256) -> Dataset:
    return Dataset(texts, _frozen(labels), _frozen(rows), source, sha256)


def _frozen(a: np.ndarray) -> np.ndarray:
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
