"""What a scoring run is, for `score_files` and every engine: its settings (`ScoreConfig`), the checked job
(`Job`), what it wrote (`Summary`) and the `Engine` protocol. Apart from `_engine`, which picks and runs the
engines: the engines import these types, `_engine` imports the engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from smsguard.runtime import Classifier
from smsguard.score._batch import DEFAULT_OUT_COL, DEFAULT_TEXT_COLUMN, OutputColumns, ScoreError
from smsguard.score._inputs import InputFormat

SUMMARY_NAME = "_smsguard.json"  # beside the Parquet parts; engines and readers skip names starting with "_"
DEFAULT_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ScoreConfig:
    """What to score and how; the same fields for every engine."""

    text_column: str = DEFAULT_TEXT_COLUMN  # the column holding the messages
    id_column: str | None = None  # a column that must be there, named in the summary of rows with errors
    out_col: str = DEFAULT_OUT_COL  # prefix of the added columns: spam_probability, spam_label, spam_error, ...
    backend: str = "auto"
    model: str | None = None  # a model file of the bundle; default: the recommended one for the backend
    input_format: InputFormat = InputFormat.AUTO
    batch_rows: int = DEFAULT_BATCH_ROWS  # rows read and scored at a time (Spark: its Arrow batch size)

    def __post_init__(self) -> None:
        if not isinstance(self.batch_rows, int) or self.batch_rows < 1:
            msg = f"batch_rows must be a positive integer, found {self.batch_rows!r}"
            raise ScoreError(msg)


@dataclass
class Summary:
    """What a scoring run wrote: rows, rows with an error (and the first ids of those), per file when known."""

    rows: int = 0
    errors: int = 0
    error_ids: list[object] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One `score_files` call, checked: the input files, the bundle loaded on this (driver) process, the settings."""

    bundle: Path
    input_spec: str
    files: list[Path]
    format: InputFormat
    root: Path | None  # the folder the input files were found in, for their names in the summary
    config: ScoreConfig
    classifier: Classifier

    @property
    def columns(self) -> OutputColumns:
        return OutputColumns(self.config.out_col)


class Engine(Protocol):
    """Reads the job's input, scores it with `Scorer` (directly or through `score(df, bundle)`) and writes
    Parquet parts into `staging`; the counts it returns go into `_smsguard.json`."""

    requires: tuple[tuple[str, str], ...]  # (module, pip extra) it imports

    def write(self, job: Job, staging: Path) -> Summary: ...

    def describe(self) -> str: ...
