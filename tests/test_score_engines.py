"""Scoring on real engines: a Spark session whose executors are separate processes, and a Dask
LocalCluster of two worker processes, each started once for the module. Slow (seconds to start)."""

from __future__ import annotations

import collections
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import cannot_run, missing_module
from score_cases import EXACT_BACKENDS, bad_rows_table, check_bad_rows, read_output, reference, same_bits, write_parts

from smsguard.cli import main
from smsguard.score import ScoreError

pytestmark = pytest.mark.slow

# Executors in their own JVMs and Python workers, sharing nothing with the driver but what is shipped.
SPARK_MASTER = os.environ.get("SMSGUARD_SPARK_MASTER", "local-cluster[2,1,1024]")


def by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


# ---- Spark ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    if missing_module("pyspark", "pip install 'smsguard[spark]'"):
        cannot_run(missing_module("pyspark", "pip install 'smsguard[spark]'"))
    from smsguard.spark import java_problem, local_session

    problem = java_problem()
    if problem:
        cannot_run(f"Spark tests need Java: {problem}")
    session = local_session(SPARK_MASTER, "smsguard-tests")
    yield session
    session.stop()


@pytest.fixture
def arrow_batch_rows(spark):
    """Set Spark's Arrow batch size for one test."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    yield lambda rows: spark.conf.set(key, str(rows))
    spark.conf.set(key, before)


@pytest.fixture(scope="module")
def uci_parquet(uci_texts, tmp_path_factory) -> tuple[Path, pa.Table]:
    table = pa.table({"id": pa.array(range(len(uci_texts)), pa.int64()), "text": uci_texts})
    return write_parts(table, tmp_path_factory.mktemp("uci") / "in", 4), table


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("batch_rows", [100, 10_000])
def test_spark_scores_equal_plain_scoring_bit_for_bit(spark, arrow_batch_rows, bundle_dir, uci_parquet, backend, batch_rows):
    from smsguard.spark import score

    folder, table = uci_parquet
    arrow_batch_rows(batch_rows)
    df = spark.read.parquet(str(folder)).repartition(7)  # partitions of other sizes than the files
    out = by_id(score(df, bundle_dir, text_col="text", out_col="spam", backend=backend).toArrow())
    assert out.column("id").to_pylist() == table.column("id").to_pylist()
    expected = reference(bundle_dir, backend, table.column("text").to_pylist())
    got = out.column("spam_probability").to_numpy()
    assert same_bits(got, expected), f"max diff {np.max(np.abs(got - expected)):.2g}"


def test_spark_keeps_bad_rows_and_their_ids(spark, bundle_dir, uci_texts, tmp_path):
    from smsguard.spark import score

    table = bad_rows_table(uci_texts[:40])
    write_parts(table, tmp_path / "in", 3)
    df = spark.read.parquet(str(tmp_path / "in"))
    assert df.schema["text"].dataType.simpleString() == "binary"
    out = by_id(score(df, bundle_dir, backend="onnxruntime").toArrow())
    assert len(out) == len(table)
    check_bad_rows(out, table, bundle_dir)


def test_spark_loads_the_bundle_once_per_worker_process(spark, arrow_batch_rows, bundle_dir, uci_parquet):
    from smsguard.spark import score

    folder, table = uci_parquet
    arrow_batch_rows(100)  # 56 batches, 8 tasks
    df = spark.read.parquet(str(folder)).repartition(8)
    scored = score(df, bundle_dir, backend="litert")
    assert scored.count() == len(table)
    scored.select("id").collect()

    def loads(batches):
        from smsguard.score._shipping import LOADS

        counts = collections.Counter(t.file_name + t.backend for t in LOADS)
        for _ in batches:
            pass
        yield pa.record_batch({"pid": [os.getpid()], "most": [max(counts.values(), default=0)]})

    reports = spark.range(16).repartition(16).mapInArrow(loads, "pid long, most long").collect()
    assert max(r.most for r in reports) == 1  # some worker loaded it, none loaded it twice


def test_spark_refuses_a_text_column_of_the_wrong_type_in_one_line(spark, bundle_dir):
    from smsguard.spark import score

    df = spark.createDataFrame([(1, 2)], "id long, text long")
    with pytest.raises(ScoreError, match=re.escape("DataFrame: text column 'text' is bigint, expected strings")) as caught:
        score(df, bundle_dir)
    assert "\n" not in str(caught.value)
    with pytest.raises(ScoreError, match="DataFrame has no text column 'body'"):
        score(df, bundle_dir, text_col="body")


def test_score_engine_spark_writes_what_the_local_engine_writes(capsys, spark, bundle_dir, uci_texts, tmp_path):
    table = bad_rows_table(uci_texts[:300])
    write_parts(table, tmp_path / "in", 2)
    common = ["score", "--bundle", bundle_dir, "--input", tmp_path / "in", "--backend", "onnxruntime", "--id-column", "id"]
    assert main([str(a) for a in [*common, "--output", tmp_path / "local"]]) == 0
    status = main([str(a) for a in [*common, "--output", tmp_path / "spark", "--engine", "spark", "--master", "local[2]"]])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "300 rows scored (2 with an error)" in err
    assert by_id(read_output(tmp_path / "spark")).equals(read_output(tmp_path / "local"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "local", "spark"]


# ---- Dask ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    if missing_module("distributed", "pip install 'smsguard[dask]'"):
        cannot_run(missing_module("distributed", "pip install 'smsguard[dask]'"))
    from smsguard.dask import local_client

    with local_client(workers=2, threads=False) as client:  # worker processes: each loads the bundle itself
        yield client


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("partitions", [1, 3, 40])
def test_dask_scores_equal_plain_scoring_bit_for_bit(dask_client, bundle_dir, uci_parquet, backend, partitions):
    import dask.dataframe as dd

    from smsguard.dask import score

    folder, table = uci_parquet
    ddf = dd.read_parquet(str(folder)).repartition(npartitions=partitions)
    out = score(ddf, bundle_dir, text_col="text", out_col="spam", backend=backend).compute()
    assert out["id"].tolist() == table.column("id").to_pylist()
    expected = reference(bundle_dir, backend, table.column("text").to_pylist())
    got = out["spam_probability"].to_numpy(dtype=np.float32)
    assert same_bits(got, expected), f"max diff {np.max(np.abs(got - expected)):.2g}"


def test_a_cluster_of_threads_scores_as_plain_scoring(bundle_dir, uci_parquet):
    """`local_client()` where the native kernel is built: one worker of two threads in this process (scoring releases the
    GIL), same bits."""
    pytest.importorskip("distributed", reason="dask is not installed: pip install 'smsguard[dask]'")
    import dask.dataframe as dd

    from smsguard.dask import local_client, score

    folder, table = uci_parquet
    with local_client(workers=2) as client:
        assert client.scheduler.address.startswith("inproc://") and client.nthreads() == {next(iter(client.nthreads())): 2}
        out = score(dd.read_parquet(str(folder)).repartition(npartitions=3), bundle_dir, backend="native").compute()
    expected = reference(bundle_dir, "native", table.column("text").to_pylist())
    assert same_bits(out["spam_probability"].to_numpy(dtype=np.float32), expected)


def test_dask_keeps_bad_rows_and_their_ids_and_loads_once_per_worker(dask_client, bundle_dir, uci_texts, tmp_path):
    import dask.dataframe as dd

    from smsguard.dask import score

    table = bad_rows_table(uci_texts[:60])
    write_parts(table, tmp_path / "in", 6)
    out = score(dd.read_parquet(str(tmp_path / "in")), bundle_dir, backend="onnxruntime").compute()
    check_bad_rows(pa.Table.from_pandas(out, preserve_index=False), table, bundle_dir)

    def loads() -> int:
        from smsguard.score._shipping import LOADS

        return max(collections.Counter(LOADS).values(), default=0)

    assert max(dask_client.run(loads).values()) == 1


def test_dask_refuses_a_text_column_of_the_wrong_type_in_one_line(dask_client, bundle_dir):
    import dask.dataframe as dd
    import pandas as pd

    from smsguard.dask import score

    ddf = dd.from_pandas(pd.DataFrame({"id": [1, 2], "text": [3.5, 4.5]}), npartitions=1)
    with pytest.raises(ScoreError, match=re.escape("DataFrame: text column 'text' is double, expected strings")):
        score(ddf, bundle_dir)


def test_score_engine_dask_writes_what_the_local_engine_writes(capsys, bundle_dir, uci_texts, tmp_path):
    table = bad_rows_table(uci_texts[:300])
    write_parts(table, tmp_path / "in", 2)
    common = ["score", "--bundle", bundle_dir, "--input", tmp_path / "in", "--backend", "onnxruntime", "--id-column", "id"]
    assert main([str(a) for a in [*common, "--output", tmp_path / "local"]]) == 0
    status = main([str(a) for a in [*common, "--output", tmp_path / "dask", "--engine", "dask", "--workers", "2"]])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "300 rows scored (2 with an error)" in err
    local = read_output(tmp_path / "local")
    assert read_output(tmp_path / "dask").select(local.schema.names).equals(local)


def test_spark_tests_say_why_they_skip_without_java(monkeypatch, tmp_path):
    from smsguard.spark import java_problem

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert "Spark needs Java 17 or later and none was found" in java_problem()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert "has no bin/java" in java_problem()
    assert shutil.which("java") is None
    with pytest.raises(ScoreError, match="has no bin/java"):
        from smsguard.spark import local_session

        local_session("local[1]")
