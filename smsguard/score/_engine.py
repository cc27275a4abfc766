"""`score_files`: what every engine shares, written once — the output folder refused or cleaned up front, the
input files found, the bundle loaded (every error before an engine starts), the Parquet parts written into
a staged folder that becomes the output whole or not at all, and `_smsguard.json` beside them. An engine
(`LocalEngine`, `SparkEngine`, `DaskEngine`) only reads, scores and writes the parts (`Engine.write`)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from smsguard import _console as console
from smsguard._staging import check_target, staged_folder, write_atomic
from smsguard.runtime import Classifier
from smsguard.score._batch import ScoreError, manifest_sha256
from smsguard.score._inputs import input_files
from smsguard.score._job import SUMMARY_NAME, Engine, Job, ScoreConfig, Summary
from smsguard.score._names import EngineName


def score_files(bundle: str | Path, input_spec: str, output: str | Path, config: ScoreConfig | None = None, force: bool = False,
                engine: Engine | None = None) -> Summary:
    """Score every row of `input_spec` with the bundle's model into Parquet at the folder `output` (local paths),
    with `engine` (default: this process, `LocalEngine`). Every input column is kept, plus the five of
    `OutputColumns`; nothing is left at `output` unless all of it was written."""
    if engine is None:
        from smsguard.score._local import LocalEngine

        engine = LocalEngine()
    config = config or ScoreConfig()
    output = Path(output)
    check_target(output, force, "output")
    files, fmt, root = input_files(input_spec, config.input_format)
    classifier = Classifier.load(bundle, backend=config.backend, model=config.model)  # a bad bundle fails before any engine starts
    job = Job(Path(bundle), input_spec, files, fmt, root, config, classifier)
    started = time.monotonic()
    with staged_folder(output, force, "output") as staging:
        summary = engine.write(job, staging)
        _write_summary(staging, summary, job, engine.describe())
    console.step(f"{summary.rows:,} rows scored ({summary.errors:,} with an error) in {time.monotonic() - started:.1f} s with {engine.describe()} into {output}")
    return summary


def engine_for(name: EngineName | str, master: str | None = None, workers: int | None = None) -> Engine:
    """The engine of that name, after checking that what it imports is installed (a one-line error says what to install)."""
    name = EngineName(name)
    if name is EngineName.SPARK:
        from smsguard.score.spark import DEFAULT_MASTER, SparkEngine

        engine: Engine = SparkEngine(master or DEFAULT_MASTER)
    elif name is EngineName.DASK:
        from smsguard.score.dask import DaskEngine

        engine = DaskEngine(workers)
    else:
        from smsguard.score._local import LocalEngine

        engine = LocalEngine()
    for module, extra in engine.requires:
        if importlib.util.find_spec(module) is None:
            msg = f"--engine {name.value} needs {module}: pip install 'smsguard[{extra}]'"
            raise ScoreError(msg)
    return engine


def _write_summary(folder: Path, summary: Summary, job: Job, engine: str) -> None:
    classifier = job.classifier
    data = {
        "bundle_manifest_sha256": manifest_sha256(job.bundle),
        "model": classifier.model.name,
        "backend": classifier.backend,
        "threshold": classifier.threshold,
        "engine": engine,
        "text_column": job.config.text_column,
        "columns": list(job.columns.names),
        "rows": summary.rows,
        "errors": summary.errors,
        "first_error_ids": summary.error_ids if job.config.id_column else None,
        "files": summary.files,
    }
    write_atomic(folder / SUMMARY_NAME, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))
