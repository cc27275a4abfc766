"""Scoring a Dask DataFrame: `smsguard.dask.score(ddf, bundle)` (`pip install 'smsguard[dask]'`).

Each partition goes to the engine-agnostic `smsguard.score.Scorer` as one Arrow record batch (pandas ->
Arrow -> pandas). The driver loads the bundle first (so a bad bundle, backend or column fails before
any task), packs the manifest, vocabulary and chosen model into one archive and puts it in the task
graph once, under a key named after the manifest's SHA-256: each worker fetches it once, and each worker
process unpacks it, checks its hashes and keeps the loaded `Classifier` for every later partition.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from smsguard.runtime import Classifier, native_kernel
from smsguard.score._batch import DEFAULT_OUT_COL, DEFAULT_TEXT_COLUMN, OutputColumns, Scorer, check_arrow_schema
from smsguard.score._inputs import InputFormat
from smsguard.score._job import Job, Summary
from smsguard.score._shipping import Ticket, pack, private_folder, scorer_for, ticket_for

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client


LOOPBACK_ANY = "127.0.0.1:0"  # the HTTP servers an in-process cluster starts anyway (a worker's, the scheduler's): never 0.0.0.0


@dataclass(frozen=True)
class Parcel:
    """The shipped bundle: its ticket and the archive's bytes (a few MB), sent to each worker once."""

    ticket: Ticket
    archive: bytes


def score(ddf: dd.DataFrame, bundle: str | os.PathLike[str], text_col: str = DEFAULT_TEXT_COLUMN, out_col: str = DEFAULT_OUT_COL,
          backend: str = "auto", model: str | None = None, threads: int = 0) -> dd.DataFrame:
    """`ddf` with five columns added: `{out_col}_probability` (float32), `_label`, `_error`, `_model` and
    `_manifest_sha256`. One output row per input row, every input column and the index kept. Lazy.
    `threads`: `Classifier.predict_proba`'s for each partition; 0, the default, scores on the worker process's
    scoring threads, one per core, which its tasks share: while one task reads or writes, the other's partition
    has every core, and the last partition is not left to one core; 1 scores each partition on its task's own
    thread (on two cores the two are within noise of each other: docs/how-to/scoring.md)."""
    import dask

    classifier = Classifier.load(bundle, backend=backend, model=model)
    scorer = Scorer(classifier, text_col, out_col)
    check_frame(ddf._meta, text_col, OutputColumns(out_col))
    ticket = ticket_for(classifier, text_col, out_col, threads)
    parcel = dask.delayed(Parcel(ticket, pack(classifier, ticket).read_bytes()), name=ticket.file_name, traverse=False)
    return ddf.map_partitions(_score_partition, parcel, meta=score_frame(ddf._meta, scorer))


def check_frame(meta: pd.DataFrame, text_col: str, columns: OutputColumns, where: str = "DataFrame", id_column: str | None = None) -> None:
    """Refuse a missing or non-text column from the frame's dtypes, before any task runs."""
    schema = pa.Schema.from_pandas(meta.iloc[:0], preserve_index=False)
    check_arrow_schema(schema, text_col, columns, where, id_column)


def score_frame(frame: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """One pandas partition through the Arrow scorer (as one record batch); the partition's index is kept."""
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    batches = [scorer(batch) for batch in table.to_batches()]
    scored = pa.Table.from_batches(batches, schema=scorer.output_schema(table.schema)).to_pandas()
    scored.index = frame.index
    return scored


def _score_partition(frame: pd.DataFrame, parcel: Parcel) -> pd.DataFrame:
    """Runs on the workers: the shipped bundle is loaded on the first partition a process sees."""
    return score_frame(frame, scorer_for(parcel.ticket, lambda: _archive_file(parcel), private_folder))


def _archive_file(parcel: Parcel) -> Path:
    path = private_folder() / parcel.ticket.file_name
    path.write_bytes(parcel.archive)
    return path


# ---- a cluster, and the `smsguard score --engine dask` command -----------------------------------


def local_client(workers: int | None = None, threads: bool | None = None) -> Client:
    """A LocalCluster on this machine, without the dashboard: with `threads` one worker of `workers` threads (default: one
    per core) in this process, talking in-process (no socket); else one single-threaded worker process per core, bound to
    127.0.0.1. By default threads where smsguard's native kernel is built: the default backend scores from text to
    probability without the GIL, and a cluster of threads moves no partition between processes (faster, half the memory,
    benchmarks/results/scoring.md); pass threads=False for a backend whose tokenizing holds the GIL."""
    from distributed import Client, LocalCluster

    count = workers or os.cpu_count() or 1
    if threads is None:
        threads = native_kernel().available
    if threads:
        cluster = LocalCluster(n_workers=1, threads_per_worker=count, processes=False, dashboard_address=None,  # talks in-process, and
                               worker_dashboard_address=LOOPBACK_ANY, scheduler_kwargs={"dashboard_address": LOOPBACK_ANY})  # serves on loopback alone
    else:
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    return Client(cluster)


def read(files: list[Path], fmt: InputFormat, text_column: str) -> dd.DataFrame:
    import dask.dataframe as dd

    paths = [str(p) for p in files]
    if fmt is InputFormat.PARQUET:
        return dd.read_parquet(paths)
    if fmt is InputFormat.CSV:
        return dd.read_csv(paths, dtype={text_column: "string"}, blocksize=None)
    return dd.read_json(paths, lines=True, dtype={text_column: "string"}, blocksize=None)


def _part_name(number: int) -> str:
    return f"part-{number:05d}.parquet"  # in partition order when sorted by name


def _written_schema(files: list[Path], fmt: InputFormat, scorer_columns: OutputColumns) -> pa.Schema | None:
    """The schema of the output parts. Dask would infer it from a frame of made-up values, which fails on
    columns of bytes; a Parquet input gives it exactly (its schema plus the added columns). For CSV and
    JSON each part's own schema is used."""
    import pyarrow.parquet as pq

    if fmt is not InputFormat.PARQUET:
        return None
    schema = pq.read_schema(files[0]).remove_metadata()
    return pa.schema([*schema, *scorer_columns.arrow_fields()])


class DaskEngine:
    """`smsguard score --engine dask`: a LocalCluster (`local_client`: threads when the native backend scores, which
    releases the GIL; single-threaded worker processes for any other) reads the input, `score` scores it, and Dask writes
    the Parquet parts (one per partition)."""

    requires: tuple[tuple[str, str], ...] = (("pyarrow", "score"), ("distributed", "dask"))

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        self._described = "Dask"

    def describe(self) -> str:
        return self._described

    def write(self, job: Job, staging: Path) -> Summary:
        import dask

        config, columns = job.config, job.columns
        ddf = read(job.files, job.format, config.text_column)
        check_frame(ddf._meta, config.text_column, columns, f"input '{job.input_spec}'", config.id_column)
        native = config.backend in ("auto", "native") and native_kernel().available  # "auto" picks the native backend first
        with local_client(self.workers, threads=native) as client:
            threads = client.nthreads()
            self._described = f"Dask {dask.__version__} LocalCluster {len(threads)} workers x {max(threads.values(), default=0)} threads"
            scored = score(ddf, job.bundle, config.text_column, config.out_col, config.backend, config.model)
            errors = scored[columns.error].notnull()
            schema = _written_schema(job.files, job.format, columns)
            write = scored.to_parquet(str(staging), write_index=False, compute=False, schema=schema, name_function=_part_name)
            wanted: list[Any] = [write, scored.shape[0], errors.sum()]
            if config.id_column:
                wanted.append(scored[errors][config.id_column].head(10, npartitions=-1, compute=False))
            results = dask.compute(*wanted)
        summary = Summary(rows=int(results[1]), errors=int(results[2]))
        if config.id_column:
            summary.error_ids = list(results[3])
        return summary
