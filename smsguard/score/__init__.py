"""Scoring a data set: `smsguard score`, and the per-batch function every engine maps.

- `Scorer(classifier)(batch)`: one Arrow record batch in, the same rows out with five columns added
  (`OutputColumns`); the engine-agnostic core.
- `score_files(bundle, input, output, engine=...)`: a data set (Parquet, CSV or JSON lines) into Parquet, whole or
  not at all, with `LocalEngine` (this process), `smsguard.score.spark.SparkEngine` or
  `smsguard.score.dask.DaskEngine` (`engine_for(name)`): one preamble, each engine only reads, scores and writes.
- `smsguard.spark.score(df, bundle)` and `smsguard.dask.score(ddf, bundle)`: a DataFrame inside your own job.

Needs pyarrow (`pip install 'smsguard[score]'`); the runtime itself does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time `__getattr__` imports on first use (pyarrow only then)
    from smsguard.score._batch import NULL_TEXT, OutputColumns, ScoreError, Scorer, is_text_type, manifest_sha256, read_texts
    from smsguard.score._engine import engine_for, score_files
    from smsguard.score._inputs import InputFormat, input_files
    from smsguard.score._job import SUMMARY_NAME, Engine, Job, ScoreConfig, Summary
    from smsguard.score._local import LocalEngine
    from smsguard.score._names import EngineName

_WHERE = {
    **dict.fromkeys(("NULL_TEXT", "OutputColumns", "ScoreError", "Scorer", "is_text_type", "manifest_sha256", "read_texts"), "_batch"),
    **dict.fromkeys(("SUMMARY_NAME", "Engine", "Job", "ScoreConfig", "Summary"), "_job"),
    **dict.fromkeys(("engine_for", "score_files"), "_engine"),
    **dict.fromkeys(("InputFormat", "input_files"), "_inputs"),
    "LocalEngine": "_local",
    "EngineName": "_names",
}
__all__ = [
    "NULL_TEXT",
    "SUMMARY_NAME",
    "Engine",
    "EngineName",
    "InputFormat",
    "Job",
    "LocalEngine",
    "OutputColumns",
    "ScoreConfig",
    "ScoreError",
    "Scorer",
    "Summary",
    "engine_for",
    "input_files",
    "is_text_type",
    "manifest_sha256",
    "read_texts",
    "score_files",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.score' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.score.{_WHERE[name]}"), name)
