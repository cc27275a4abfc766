"""Scoring a data set: `smsguard score`, and the per-batch function every engine maps.

- `Scorer(classifier)(batch)`: one Arrow record batch in, the same rows out with five columns added
  (`OutputColumns`); the engine-agnostic core.
- `score_files(bundle, input, output)`: the local engine (Parquet, CSV or JSON lines in, Parquet out).
- `smsguard.spark.score(df, bundle)` and `smsguard.dask.score(ddf, bundle)`: the same on Spark and Dask.

Needs pyarrow (`pip install 'smsguard[score]'`); the runtime itself does not.
"""

from smsguard.score._batch import NULL_TEXT, OutputColumns, ScoreError, Scorer, is_text_type, manifest_sha256, read_texts
from smsguard.score._inputs import InputFormat, input_files
from smsguard.score._local import ScoreConfig, Summary, score_files

__all__ = [
    "NULL_TEXT",
    "InputFormat",
    "OutputColumns",
    "ScoreConfig",
    "ScoreError",
    "Scorer",
    "Summary",
    "input_files",
    "is_text_type",
    "manifest_sha256",
    "read_texts",
    "score_files",
]
