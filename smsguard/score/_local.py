"""The local engine of `smsguard score`: this process reads the input with pyarrow.dataset and scores it batch by
batch into one Parquet part per input file, rows in input order, with a progress bar on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from smsguard.score._batch import ScoreError, Scorer
from smsguard.score._inputs import InputFormat, display_name
from smsguard.score._job import Job, ScoreConfig, Summary


def file_format(fmt: InputFormat, text_column: str) -> ds.FileFormat:
    """How pyarrow reads each format. The text column of CSV and JSON is read as a string whatever it
    looks like (a column of numbers is still messages); a CSV file must be UTF-8."""
    if fmt is InputFormat.PARQUET:
        return ds.ParquetFileFormat()
    if fmt is InputFormat.CSV:
        return ds.CsvFileFormat(convert_options=pa_csv.ConvertOptions(column_types={text_column: pa.string()}))
    explicit = pa.schema([pa.field(text_column, pa.string())])
    return ds.JsonFileFormat(parse_options=pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer"))


def open_input(files: list[Path], fmt: InputFormat, spec: str, config: ScoreConfig) -> ds.Dataset:
    try:
        return ds.dataset([str(p) for p in files], format=file_format(fmt, config.text_column))
    except (pa.ArrowException, OSError) as error:
        msg = f"input '{spec}' cannot be read as {fmt.value}: {_one_line(error)}"
        raise ScoreError(msg) from None


def check_input(dataset: ds.Dataset, files: list[Path], scorer: Scorer, spec: str, id_column: str | None) -> None:
    """Refuse a missing or mistyped column before anything is scored; Parquet files are checked one by one
    (their schemas are in their footers), the others through the schema of the first file."""
    scorer.check(dataset.schema, f"input '{spec}'", id_column)
    if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format, ds.ParquetFileFormat):
        for fragment, path in zip(dataset.get_fragments(), files, strict=True):
            scorer.check(fragment.physical_schema, f"input file '{path}'", id_column)


class LocalEngine:
    """This process: one Parquet part per input file, written batch by batch, with a progress bar on stderr."""

    requires: tuple[tuple[str, str], ...] = (("pyarrow", "score"),)

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress  # a progress bar on stderr

    def describe(self) -> str:
        return "this process"

    def write(self, job: Job, staging: Path) -> Summary:
        config = job.config
        dataset = open_input(job.files, job.format, job.input_spec, config)
        scorer = Scorer(job.classifier, config.text_column, config.out_col)
        check_input(dataset, job.files, scorer, job.input_spec, config.id_column)
        summary = Summary()
        meter = Progress(_known_rows(dataset), sys.stderr if self.progress else None)
        for number, (fragment, path) in enumerate(zip(dataset.get_fragments(), job.files, strict=True)):
            part = f"part-{number:05d}.parquet"
            rows_before, errors_before = summary.rows, summary.errors
            with pq.ParquetWriter(staging / part, scorer.output_schema(dataset.schema)) as writer:
                for batch in _batches(fragment, dataset.schema, config.batch_rows, path):
                    scored = scorer(batch)
                    writer.write_batch(scored)
                    _count(summary, scored, scorer, config.id_column)
                    meter.advance(len(scored))
            summary.files.append({"input": display_name(path, job.root), "output": part, "rows": summary.rows - rows_before,
                                  "errors": summary.errors - errors_before})
        meter.close()
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
