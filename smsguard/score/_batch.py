"""The engine-agnostic core of `smsguard score`: one Arrow record batch in, the same rows out with five
columns added. Every engine (the local one, Spark, Dask) calls `Scorer.__call__` on its batches, so
another engine is a thin adapter around it."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa

from smsguard._files import sha256_of
from smsguard.runtime import Classifier, SmsguardError, as_texts
from smsguard.runtime.bundle import MANIFEST_NAME

NULL_TEXT = "text is null"
DEFAULT_TEXT_COLUMN = "text"
DEFAULT_OUT_COL = "spam"


def manifest_sha256(bundle_dir: str | os.PathLike[str]) -> str:
    """The SHA-256 of a bundle's manifest.json. The manifest pins every other file by its own SHA-256, so
    this one hash names the whole bundle."""
    return sha256_of(Path(bundle_dir) / MANIFEST_NAME)


class ScoreError(SmsguardError):
    """A data set that cannot be scored as asked: a missing or mistyped column, a name clash, no input."""


@dataclass(frozen=True)
class OutputColumns:
    """The five columns scoring adds, named `{prefix}_probability`, `_label`, `_error`, `_model` and
    `_manifest_sha256` (prefix "spam" by default: `spam_probability`, ...)."""

    prefix: str = DEFAULT_OUT_COL

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not self.prefix:
            msg = f"out_col must be a non-empty column prefix, found {self.prefix!r}"
            raise ScoreError(msg)

    @property
    def probability(self) -> str:
        return f"{self.prefix}_probability"  # float32, null where the row has an error

    @property
    def label(self) -> str:
        return f"{self.prefix}_label"  # the bundle's label at the model's threshold, null with the probability

    @property
    def error(self) -> str:
        return f"{self.prefix}_error"  # why a row has no probability; null for every scored row

    @property
    def model(self) -> str:
        return f"{self.prefix}_model"  # the model file that scored the row

    @property
    def manifest_sha256(self) -> str:
        return f"{self.prefix}_manifest_sha256"  # the SHA-256 of the bundle's manifest.json, which pins every file

    @property
    def names(self) -> tuple[str, str, str, str, str]:
        return (self.probability, self.label, self.error, self.model, self.manifest_sha256)

    def arrow_fields(self) -> list[pa.Field]:
        return [pa.field(self.probability, pa.float32()), *(pa.field(name, pa.string()) for name in self.names[1:])]


def is_text_type(kind: pa.DataType) -> bool:
    """Whether an Arrow column of this type can hold messages: strings, bytes (decoded as UTF-8, row by
    row), a dictionary of those, or only nulls."""
    if pa.types.is_dictionary(kind):
        return is_text_type(kind.value_type)
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_null(kind)
        or kind in _VIEW_TYPES
    )


_VIEW_TYPES = tuple(make() for make in (getattr(pa, "string_view", None), getattr(pa, "binary_view", None)) if make)


def check_schema(names: Sequence[str], text_column: str, type_name: str | None, text_ok: bool, columns: OutputColumns, where: str,
                 id_column: str | None = None) -> None:
    """Refuse, in one line and before any work, a data set whose text column is missing or not text, whose
    id column is missing, or that already has a column scoring would add. Engines pass their own type names."""
    found = ", ".join(map(repr, names)) or "no columns"
    if text_column not in names:
        msg = f"{where} has no text column {text_column!r}; found {found}: pass --text-column NAME (text_col= in Python)"
        raise ScoreError(msg)
    if not text_ok:
        msg = f"{where}: text column {text_column!r} is {type_name}, expected strings (string or binary); pass --text-column with a column of messages"
        raise ScoreError(msg)
    if id_column is not None and id_column not in names:
        msg = f"{where} has no id column {id_column!r}; found {found}"
        raise ScoreError(msg)
    clash = [name for name in columns.names if name in names]
    if clash:
        msg = f"{where} already has column {clash[0]!r}, which scoring adds; pass --out-col with another prefix (out_col= in Python)"
        raise ScoreError(msg)


def check_arrow_schema(schema: pa.Schema, text_column: str, columns: OutputColumns, where: str, id_column: str | None = None) -> None:
    kind = schema.field(text_column).type if text_column in schema.names else None
    check_schema(schema.names, text_column, str(kind), kind is not None and is_text_type(kind), columns, where, id_column)


class Scorer:
    """A loaded `Classifier` and the names of the columns it reads and writes; `scorer(batch)` scores one
    Arrow record batch. Every input column is kept as it was, in order, and one output row is
    written per input row: a row whose text is null, or bytes that are not UTF-8, keeps its place with
    a null probability and label and says why in the error column.

    The probabilities are `classifier.predict_proba` of the batch's texts, so they equal scoring the whole
    data set in one call bit for bit on a batch-invariant backend (LiteRT and ONNX Runtime are).
    """

    def __init__(self, classifier: Classifier, text_column: str = DEFAULT_TEXT_COLUMN, out_col: str = DEFAULT_OUT_COL,
                 manifest_hash: str | None = None, threads: int = 0) -> None:
        self.classifier = classifier
        self.text_column = text_column
        self.threads = threads  # predict_proba's threads: 0, one per core; 1 where the engine runs a task per core itself (Dask)
        self.columns = OutputColumns(out_col)
        self._hashes = {classifier.bundle.path: manifest_hash or manifest_sha256(classifier.bundle.path)}

    @property
    def manifest_sha256(self) -> str:
        """The SHA-256 of the manifest of the bundle running now."""
        return self._hash_of(self.classifier.bundle.path)

    def _hash_of(self, bundle: Path) -> str:
        if bundle not in self._hashes:  # a bundle a reload swapped in: hashed once
            self._hashes[bundle] = manifest_sha256(bundle)
        return self._hashes[bundle]

    def check(self, schema: pa.Schema, where: str = "input", id_column: str | None = None) -> None:
        check_arrow_schema(schema, self.text_column, self.columns, where, id_column)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([*schema, *self.columns.arrow_fields()], metadata=schema.metadata)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts, errors = read_texts(batch.column(self.text_column))
        rows = len(texts)
        model = self.classifier.snapshot()  # the probabilities, labels, model and hash of one model, whatever a reload does
        if errors.count(None) == rows:  # the usual batch, every row a text: scored as it is, nothing to leave out
            probabilities = model.predict_proba(cast("list[str]", texts), threads=self.threads) if rows else np.zeros(0, dtype=np.float32)
            scores, labels = pa.array(probabilities, type=pa.float32()), pa.array(model.decision.labels_of(probabilities), type=pa.string())
        else:
            scores, labels = self._some_rows(model, texts, errors)
        added = [scores, labels, pa.array(errors, type=pa.string()), _constant(model.model.name, rows), _constant(self._hash_of(model.bundle.path), rows)]
        return pa.RecordBatch.from_arrays([*batch.columns, *added], schema=self.output_schema(batch.schema))

    def _some_rows(self, model: Classifier, texts: list[str | None], errors: list[str | None]) -> tuple[pa.Array, pa.Array]:
        """The probability and label columns of a batch with rows that cannot be scored: null there, the others scored."""
        rows = len(texts)
        good = np.fromiter((i for i, error in enumerate(errors) if error is None), dtype=np.int64)
        probabilities = np.zeros(rows, dtype=np.float32)
        scored = model.predict_proba([texts[i] for i in good], threads=self.threads) if len(good) else np.zeros(0, dtype=np.float32)
        probabilities[good] = scored
        missing = np.ones(rows, dtype=bool)
        missing[good] = False
        labels: list[str | None] = [None] * rows
        for i, label in zip(good.tolist(), model.decision.labels_of(scored), strict=True):
            labels[i] = label
        return pa.array(probabilities, type=pa.float32(), mask=missing), pa.array(labels, type=pa.string())


def _constant(value: str, rows: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), rows)


def read_texts(column: pa.Array) -> tuple[list[str | None], list[str | None]]:
    """The messages of an Arrow column, and per row None or why it cannot be scored.

    Strings are taken as they are; bytes (and strings whose bytes turn out not to be UTF-8, which Arrow
    does not always check) are decoded row by row, so one bad row gets its own error and no other.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_null(kind):
        return [None] * len(column), [NULL_TEXT] * len(column)
    if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or kind == getattr(pa, "binary_view", lambda: None)()):
        try:
            texts = column.to_pylist()
        except UnicodeDecodeError:
            texts = None
        if texts is not None:
            return texts, [None] * len(texts) if column.null_count == 0 else [NULL_TEXT if text is None else None for text in texts]
        column = column.cast(pa.large_binary())  # bytes that are not UTF-8 under a string type: decode row by row
    texts, errors = [], []
    for raw in column.to_pylist():
        text, error = _decode(raw)
        texts.append(text)
        errors.append(error)
    return texts, errors


_INDEX = re.compile(r"^text at index \d+ ")


def _decode(raw: bytes | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, NULL_TEXT
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        next(as_texts([raw]))  # the runtime's own message, without the index of a list of one
    except ValueError as error:
        return None, _INDEX.sub("text ", str(error))
    raise AssertionError("bytes that Python cannot decode were decoded by the runtime")  # pragma: no cover
