"""Scoring a Spark DataFrame: `smsguard.spark.score(df, bundle)`, and the Spark engine of `smsguard score` (`pip install 'smsguard[spark]'`, Java 17+).

The rows go through `DataFrame.mapInArrow` in Arrow record batches of
`spark.sql.execution.arrow.maxRecordsPerBatch` rows (10,000 by default) to the engine-agnostic
`smsguard.score.Scorer`. The driver loads the bundle first (so a bad bundle, backend or column fails
before any job), packs the manifest, vocabulary and chosen model into one archive named after the
manifest's SHA-256 and ships it with `SparkContext.addFile`; each Python worker process unpacks it
once, checks its hashes, and keeps the loaded `Classifier` for every later batch and task.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from smsguard.runtime import Classifier
from smsguard.score._batch import DEFAULT_OUT_COL, DEFAULT_TEXT_COLUMN, OutputColumns, ScoreError, check_schema
from smsguard.score._inputs import InputFormat
from smsguard.score._job import Job, Summary
from smsguard.score._shipping import Ticket, pack, scorer_for, ticket_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

DEFAULT_MASTER = "local[*]"
LOOPBACK = "127.0.0.1"


def score(df: DataFrame, bundle: str | os.PathLike[str], text_col: str = DEFAULT_TEXT_COLUMN, out_col: str = DEFAULT_OUT_COL,
          backend: str = "auto", model: str | None = None, threads: int = 0) -> DataFrame:
    """`df` with five columns added: `{out_col}_probability` (float), `_label`, `_error`, `_model` and
    `_manifest_sha256` (strings). One output row per input row; every input column is kept. A null text
    gives a null probability and the error "text is null"; a binary text column is decoded row by row,
    and a row that is not UTF-8 gets the runtime's message. Lazy, like any transformation. `threads`: how many
    threads score a batch in each Python worker (`Classifier.predict_proba`'s; 0, one per core, the default: on two
    cores it was no slower than 1, and it keeps both cores busy when one task is left)."""
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    classifier = Classifier.load(bundle, backend=backend, model=model)
    columns = OutputColumns(out_col)
    check_spark_schema(df.schema, text_col, columns)
    ticket = ticket_for(classifier, text_col, out_col, threads)
    _ship(df.sparkSession, pack(classifier, ticket))
    added = [StructField(columns.probability, FloatType(), True)] + [StructField(name, StringType(), True) for name in columns.names[1:]]
    return df.mapInArrow(functools.partial(_score_batches, ticket), StructType([*df.schema.fields, *added]))


def check_spark_schema(schema: StructType, text_col: str, columns: OutputColumns, where: str = "DataFrame",
                       id_column: str | None = None) -> None:
    from pyspark.sql.types import BinaryType, CharType, NullType, StringType, VarcharType

    names = [f.name for f in schema.fields]
    kind = schema[text_col].dataType if text_col in names else None
    ok = isinstance(kind, (StringType, BinaryType, VarcharType, CharType, NullType))
    check_schema(names, text_col, kind.simpleString() if kind is not None else None, ok, columns, where, id_column)


_SHIPPED: set[tuple[str, str]] = set()  # (application id, archive name) already added to a SparkContext


def _ship(spark: SparkSession, archive: Path) -> None:
    context = spark.sparkContext
    key = (context.applicationId, archive.name)
    if key not in _SHIPPED:
        context.addFile(str(archive))
        _SHIPPED.add(key)


def _score_batches(ticket: Ticket, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Runs in Spark's Python workers: the shipped bundle is loaded on the first batch a process sees."""
    from pyspark import SparkFiles

    scorer = scorer_for(ticket, lambda: Path(SparkFiles.get(ticket.file_name)), lambda: Path(SparkFiles.getRootDirectory()))
    for batch in batches:
        yield scorer(batch)


# ---- a session, and the `smsguard score --engine spark` command ----------------------------------


def java_problem() -> str | None:
    """Why Spark cannot start a JVM here, or None."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not (Path(java_home) / "bin" / "java").exists():
            return f"JAVA_HOME '{java_home}' has no bin/java; point it at a Java 17+ installation or unset it"
        return None
    if shutil.which("java") is None:
        return "Spark needs Java 17 or later and none was found: install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    return None


def local_session(master: str = DEFAULT_MASTER, app_name: str = "smsguard-score", **conf: str) -> SparkSession:
    """A Spark session on this machine, bound to 127.0.0.1, without the web UI, whose Python workers run
    this interpreter (so they import the same smsguard). `master`: `local[N]`, or `local-cluster[N,1,1024]`
    for executors in separate JVMs."""
    problem = java_problem()
    if problem:
        raise ScoreError(problem)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.host", LOOPBACK)
        .config("spark.driver.bindAddress", LOOPBACK)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def read(spark: SparkSession, files: list[Path], fmt: InputFormat, text_column: str) -> DataFrame:
    paths = [str(p) for p in files]
    if fmt is InputFormat.PARQUET:
        return spark.read.parquet(*paths)
    if fmt is InputFormat.CSV:
        return spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(paths)
    return spark.read.json(paths, primitivesAsString=False)


class SparkEngine:
    """`smsguard score --engine spark`: a Spark session on this machine reads the input, `score` scores it, and
    Spark writes the Parquet parts (one per partition)."""

    requires: tuple[tuple[str, str], ...] = (("pyarrow", "score"), ("pyspark", "spark"))

    def __init__(self, master: str = DEFAULT_MASTER) -> None:
        self.master = master
        self._version = ""

    def describe(self) -> str:
        return f"Spark {self._version} {self.master}".replace("  ", " ")

    def write(self, job: Job, staging: Path) -> Summary:
        from pyspark.errors import PySparkException
        from pyspark.sql import functions as F

        config, columns = job.config, job.columns
        spark = local_session(self.master, **{"spark.sql.execution.arrow.maxRecordsPerBatch": str(config.batch_rows)})
        self._version = spark.version
        try:
            df = read(spark, job.files, job.format, config.text_column)
            check_spark_schema(df.schema, config.text_column, columns, f"input '{job.input_spec}'", config.id_column)
            scored = score(df, job.bundle, config.text_column, config.out_col, config.backend, config.model)
            scored.write.mode("overwrite").parquet(str(staging))
            written = spark.read.parquet(str(staging))
            counts = written.agg(F.count(F.lit(1)).alias("rows"), F.count(columns.error).alias("errors")).collect()[0]
            summary = Summary(rows=int(counts["rows"]), errors=int(counts["errors"]))
            if config.id_column and summary.errors:
                summary.error_ids = [r[0] for r in written.where(F.col(columns.error).isNotNull()).select(config.id_column).limit(10).collect()]
            return summary
        except PySparkException as error:
            msg = f"Spark failed: {' '.join(str(error).split())[:500]}"
            raise ScoreError(msg) from None
        finally:
            spark.stop()
