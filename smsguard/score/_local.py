"""The local engine of `smsguard score`: this process reads the input with pyarrow.dataset, scores it
batch by batch and writes Parquet into a staged folder that becomes the output whole or not at all."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from smsguard._staging import check_target, staged_folder
from smsguard.runtime._classifier import Classifier
from smsguard.score._batch import DEFAULT_OUT_COL, DEFAULT_TEXT_COLUMN, OutputColumns, ScoreError, Scorer, manifest_sha256
from smsguard.score._inputs import InputFormat, display_name, input_files

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
    batch_rows: int = DEFAULT_BATCH_ROWS  # rows read and scored at a time

    def __post_init__(self) -> None:
        if not isinstance(self.batch_rows, int) or self.batch_rows < 1:
            msg = f"batch_rows must be a positive integer, found {self.batch_rows!r}"
            raise ScoreError(msg)


@dataclass
class Summary:
    """What a scoring run wrote: rows, rows with an error (and the first ids of those), per file."""

    rows: int = 0
    errors: int = 0
    error_ids: list[object] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)


def file_format(fmt: InputFormat, text_column: str) -> ds.FileFormat:
    """How pyarrow reads each format. The text column of CSV and JSON is read as a string whatever it
    looks like (a column of numbers is still messages); a CSV file must be UTF-8."""
    if fmt is InputFormat.PARQUET:
        return ds.ParquetFileFormat()
    if fmt is InputFormat.CSV:
        return ds.CsvFileFormat(convert_options=pa_csv.ConvertOptions(column_types={text_column: pa.string()}))
    explicit = pa.schema([pa.field(text_column, pa.string())])
    return ds.JsonFileFormat(parse_options=pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer"))


def open_input(spec: str, config: ScoreConfig) -> tuple[ds.Dataset, list[Path], Path | None]:
    files, fmt, root = input_files(spec, config.input_format)
    try:
        dataset = ds.dataset([str(p) for p in files], format=file_format(fmt, config.text_column))
    except (pa.ArrowException, OSError) as error:
        msg = f"input '{spec}' cannot be read as {fmt.value}: {_one_line(error)}"
        raise ScoreError(msg) from None
    return dataset, files, root


def check_input(dataset: ds.Dataset, files: list[Path], scorer: Scorer, spec: str, id_column: str | None) -> None:
    """Refuse a missing or mistyped column before anything is scored; Parquet files are checked one by one
    (their schemas are in their footers), the others through the schema of the first file."""
    scorer.check(dataset.schema, f"input '{spec}'", id_column)
    if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format, ds.ParquetFileFormat):
        for fragment, path in zip(dataset.get_fragments(), files, strict=True):
            scorer.check(fragment.physical_schema, f"input file '{path}'", id_column)


def score_files(bundle: str | Path, input_spec: str, output: str | Path, config: ScoreConfig | None = None, force: bool = False,
                progress: TextIO | None = sys.stderr) -> Summary:
    """Score every row of `input_spec` with the bundle's model and write Parquet to the folder `output`:
    one part per input file, rows in input order, every input column kept plus the five of
    `OutputColumns`, and `_smsguard.json` (bundle hash, model, counts). Nothing is left at `output`
    unless all of it was written."""
    config = config or ScoreConfig()
    output = Path(output)
    check_target(output, force, "output")
    dataset, files, root = open_input(input_spec, config)
    classifier = Classifier.load(bundle, backend=config.backend, model=config.model)
    scorer = Scorer(classifier, config.text_column, config.out_col)
    check_input(dataset, files, scorer, input_spec, config.id_column)
    summary = Summary()
    meter = Progress(_known_rows(dataset), progress)
    with staged_folder(output, force, "output") as staging:
        for number, (fragment, path) in enumerate(zip(dataset.get_fragments(), files, strict=True)):
            part = f"part-{number:05d}.parquet"
            rows_before, errors_before = summary.rows, summary.errors
            with pq.ParquetWriter(staging / part, scorer.output_schema(dataset.schema)) as writer:
                for batch in _batches(fragment, dataset.schema, config.batch_rows, path):
                    scored = scorer(batch)
                    writer.write_batch(scored)
                    _count(summary, scored, scorer, config.id_column)
                    meter.advance(len(scored))
            summary.files.append({"input": display_name(path, root), "output": part, "rows": summary.rows - rows_before,
                                  "errors": summary.errors - errors_before})
        meter.close()
        (staging / SUMMARY_NAME).write_text(json.dumps(_summary_json(summary, scorer, config), indent=2) + "\n", encoding="utf-8")
    return summary


def _batches(fragment: ds.Fragment, schema: pa.Schema, rows: int, path: Path) -> Iterator[pa.RecordBatch]:
    try:
        for batch in fragment.to_batches(schema=schema, batch_size=rows):
            if len(batch):
                yield batch
    except (pa.ArrowException, OSError) as error:
        msg = f"input file '{path}' cannot be read: {_one_line(error)}"
        raise ScoreError(msg) from None


def _count(summary: Summary, scored: pa.RecordBatch, scorer: Scorer, id_column: str | None) -> None:
    errors = scored.column(scorer.columns.error)
    bad = len(errors) - errors.null_count  # the error column is null on every scored row
    summary.rows += len(scored)
    summary.errors += bad
    if bad and id_column and len(summary.error_ids) < 10:
        ids = scored.column(id_column).filter(errors.is_valid()).to_pylist()
        summary.error_ids.extend(ids[: 10 - len(summary.error_ids)])


def _summary_json(summary: Summary, scorer: Scorer, config: ScoreConfig) -> dict[str, object]:
    return {
        "bundle_manifest_sha256": scorer.manifest_sha256,
        "model": scorer.classifier.model.name,
        "backend": scorer.classifier.backend,
        "threshold": scorer.threshold,
        "text_column": config.text_column,
        "columns": list(scorer.columns.names),
        "rows": summary.rows,
        "errors": summary.errors,
        "first_error_ids": summary.error_ids if config.id_column else None,
        "files": summary.files,
    }


def _known_rows(dataset: ds.Dataset) -> int | None:
    """The row count where it costs nothing (Parquet footers); None for CSV and JSON."""
    if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format, ds.ParquetFileFormat):
        try:
            return int(dataset.count_rows())
        except (pa.ArrowException, OSError):
            return None
    return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line every few seconds elsewhere (logs)."""

    def __init__(self, total: int | None, stream: TextIO | None, every: float = 5.0) -> None:
        self.total, self.stream, self.every = total, stream, every
        self.done = 0
        self.started = self.shown = time.monotonic()
        self.live = bool(stream is not None and stream.isatty())

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.stream is not None and now - self.shown >= (0.1 if self.live else self.every):
            self.shown = now
            self._show(now, end="\r" if self.live else "\n")

    def close(self) -> None:
        if self.stream is not None:
            self._show(time.monotonic(), end="\n")

    def _show(self, now: float, end: str) -> None:
        assert self.stream is not None
        took = max(now - self.started, 1e-9)
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            head = f"[{bar:<30}] {share:4.0%} {self.done:,}/{self.total:,} rows"
        else:
            head = f"{self.done:,} rows"
        print(f"  {head}, {self.done / took:,.0f} rows/s, {took:.1f} s", end=end, file=self.stream, flush=True)


def write_engine_summary(folder: Path, summary: Summary, bundle: str | Path, config: ScoreConfig, engine: str) -> None:
    """`_smsguard.json` of a run on Spark or Dask: the bundle's hash, what was asked, and the counts."""
    data = {
        "bundle_manifest_sha256": manifest_sha256(bundle),
        "model": config.model,
        "backend": config.backend,
        "engine": engine,
        "text_column": config.text_column,
        "columns": list(OutputColumns(config.out_col).names),
        "rows": summary.rows,
        "errors": summary.errors,
        "first_error_ids": summary.error_ids if config.id_column else None,
    }
    (folder / SUMMARY_NAME).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
